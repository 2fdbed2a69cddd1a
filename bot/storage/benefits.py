"""Benefits (特典) municipalities publish, and who has been told about them.

Documents:

- `benefits`: one per (place, benefit id)::

    {_id: "<place_code>:<benefit_id>", place_code, benefit_id, title, description, kind,
     eligibility: {tiers, types, outside_prefecture, min_days_registered, program_id,
                   program_name, age_bands},
     valid_from: "YYYY-MM-DD" | None, valid_until: "YYYY-MM-DD" | None,
     partner_shops: [{name, address}], how_to_use,
     status: "draft" | "published", published_at, notices_pending: bool, created_at, updated_at}

- `benefit_notices` (personal data): one per (benefit, resident) told about it, inserted before
  the resident is put in a batch; its unique `_id` is the "told once" claim::

    {_id: "<benefit key>|<user_id>", benefit_key, user_id, batch_id, created_at}

- `benefit_notice_batches`: a work item per batch of at most 500 residents of one benefit (the
  residents are the notices naming the batch)::

    {_id: batch_id, benefit_key, place_code, status: "filling" | "ready" | "sent" | "failed",
     count, not_before, created_at, sent_at, detail}

Exclusivity comes only from the unique `_id` inserts (FerretDB applies conditional updates
non-atomically); status updates only record progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bot.domain.benefits import Benefit, BenefitKind, Eligibility, PartnerShop
from bot.domain.registration import AgeBand, RelationshipType, Tier
from bot.storage.base import Store
from bot.storage.db import Document
from bot.storage.registrations import ACTIVE, Registrations

DRAFT = "draft"
PUBLISHED = "published"

FILLING = "filling"
READY = "ready"
SENT = "sent"
FAILED = "failed"


def benefit_key(place_code: str, benefit_id: str) -> str:
    """The stored id of a benefit: ids are chosen per place."""
    return f"{place_code}:{benefit_id}"


def _day(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def eligibility_document(rule: Eligibility) -> Document:
    return {
        "tiers": sorted(str(t) for t in rule.tiers),
        "types": sorted(str(t) for t in rule.types),
        "outside_prefecture": rule.outside_prefecture,
        "min_days_registered": rule.min_days_registered,
        "program_id": rule.program_id,
        "program_name": rule.program_name,
        "age_bands": sorted(str(b) for b in rule.age_bands),
    }


def eligibility_from(doc: Any) -> Eligibility:
    data = doc if isinstance(doc, dict) else {}
    tiers = frozenset(Tier(t) for t in data.get("tiers") or () if t in Tier._value2member_map_)
    return Eligibility(
        tiers=tiers or frozenset(Tier),
        types=frozenset(
            RelationshipType(t)
            for t in data.get("types") or ()
            if t in RelationshipType._value2member_map_
        ),
        outside_prefecture=bool(data.get("outside_prefecture", False)),
        min_days_registered=max(0, int(data.get("min_days_registered") or 0)),
        program_id=str(data["program_id"]) if data.get("program_id") else None,
        program_name=str(data.get("program_name") or ""),
        age_bands=frozenset(
            AgeBand(b) for b in data.get("age_bands") or () if b in AgeBand._value2member_map_
        ),
    )


def benefit_document(benefit: Benefit) -> Document:
    return {
        "place_code": benefit.municipality_code,
        "benefit_id": benefit.id,
        "title": benefit.title,
        "description": benefit.description,
        "kind": benefit.kind.value,
        "eligibility": eligibility_document(benefit.eligibility),
        "valid_from": benefit.valid_from.isoformat() if benefit.valid_from else None,
        "valid_until": benefit.valid_until.isoformat() if benefit.valid_until else None,
        "partner_shops": [{"name": s.name, "address": s.address} for s in benefit.partner_shops],
        "how_to_use": benefit.how_to_use,
    }


def benefit_from(doc: Document) -> Benefit:
    try:
        kind = BenefitKind(str(doc.get("kind")))
    except ValueError:
        kind = BenefitKind.OTHER
    return Benefit(
        id=str(doc["benefit_id"]),
        municipality_code=str(doc["place_code"]),
        title=str(doc.get("title") or ""),
        description=str(doc.get("description") or ""),
        kind=kind,
        eligibility=eligibility_from(doc.get("eligibility")),
        valid_from=_day(doc.get("valid_from")),
        valid_until=_day(doc.get("valid_until")),
        partner_shops=tuple(
            PartnerShop(str(s.get("name") or ""), str(s.get("address") or ""))
            for s in doc.get("partner_shops") or ()
            if isinstance(s, dict) and s.get("name")
        ),
        how_to_use=str(doc.get("how_to_use") or ""),
    )


@dataclass(frozen=True)
class StoredBenefit:
    """A benefit with its publication state."""

    benefit: Benefit
    status: str
    published_at: datetime | None
    notices_pending: bool
    updated_at: datetime | None

    @property
    def key(self) -> str:
        return benefit_key(self.benefit.municipality_code, self.benefit.id)

    @property
    def published(self) -> bool:
        return self.status == PUBLISHED

    @classmethod
    def of(cls, doc: Document) -> StoredBenefit:
        return cls(
            benefit=benefit_from(doc),
            status=PUBLISHED if doc.get("status") == PUBLISHED else DRAFT,
            published_at=doc.get("published_at"),
            notices_pending=bool(doc.get("notices_pending", False)),
            updated_at=doc.get("updated_at"),
        )


class Benefits(Store):
    collection_name = "benefits"

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("place_code", ASCENDING), ("status", ASCENDING)], name="place_status"),
            IndexModel(
                [("status", ASCENDING), ("notices_pending", ASCENDING)], name="pending_notices"
            ),
        ]

    async def put(self, benefit: Benefit, now: datetime) -> StoredBenefit:
        """Add or change a benefit; a new one is a draft, a published one stays published."""
        key = benefit_key(benefit.municipality_code, benefit.id)
        update: Document = {
            "$set": benefit_document(benefit) | {"updated_at": now},
            "$setOnInsert": {"status": DRAFT, "notices_pending": False, "created_at": now},
        }
        try:
            await self.col.update_one({"_id": key}, update, upsert=True)
        except DuplicateKeyError:  # two first saves raced: the document exists now
            await self.col.update_one({"_id": key}, {"$set": update["$set"]})
        doc = await self.col.find_one({"_id": key})
        assert doc is not None
        return StoredBenefit.of(doc)

    async def get(self, place_code: str, benefit_id: str) -> StoredBenefit | None:
        return await self.by_key(benefit_key(place_code, benefit_id))

    async def by_key(self, key: str) -> StoredBenefit | None:
        doc = await self.col.find_one({"_id": key})
        return StoredBenefit.of(doc) if doc is not None else None

    async def for_place(self, place_code: str) -> list[StoredBenefit]:
        """Every benefit of a place, published or not (for staff), by id."""
        cursor = self.col.find({"place_code": place_code}).sort([("benefit_id", ASCENDING)])
        return [StoredBenefit.of(doc) async for doc in cursor]

    async def published_for(self, place_codes: Iterable[str]) -> list[StoredBenefit]:
        codes = sorted(set(place_codes))
        if not codes:
            return []
        cursor = self.col.find({"place_code": {"$in": codes}, "status": PUBLISHED})
        return [StoredBenefit.of(doc) async for doc in cursor]

    async def publish(
        self, place_code: str, benefit_id: str, now: datetime, *, notify: bool = True
    ) -> StoredBenefit | None:
        """Publish; the notice job then tells every eligible resident once (see module doc)."""
        key = benefit_key(place_code, benefit_id)
        result = await self.col.update_one(
            {"_id": key},
            {
                "$set": {
                    "status": PUBLISHED,
                    "published_at": now,
                    "notices_pending": notify,
                    "updated_at": now,
                }
            },
        )
        return await self.by_key(key) if result.matched_count else None

    async def unpublish(
        self, place_code: str, benefit_id: str, now: datetime
    ) -> StoredBenefit | None:
        key = benefit_key(place_code, benefit_id)
        result = await self.col.update_one(
            {"_id": key},
            {"$set": {"status": DRAFT, "notices_pending": False, "updated_at": now}},
        )
        return await self.by_key(key) if result.matched_count else None

    async def remove(self, place_code: str, benefit_id: str) -> bool:
        result = await self.col.delete_one({"_id": benefit_key(place_code, benefit_id)})
        return result.deleted_count == 1

    async def with_pending_notices(self) -> list[StoredBenefit]:
        cursor = self.col.find({"status": PUBLISHED, "notices_pending": True})
        return [StoredBenefit.of(doc) async for doc in cursor]

    async def notices_planned(self, key: str, published_at: datetime | None) -> None:
        """Every eligible resident has a notice claim; a publication since then stays pending."""
        query: Document = {"_id": key}
        if published_at is not None:
            query["published_at"] = published_at
        await self.col.update_one(query, {"$set": {"notices_pending": False}})


class BenefitNotices(Store):
    """Who was told about which benefit: the unique `_id` is the once-only claim."""

    collection_name = "benefit_notices"
    personal_data = True

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self._registrations: AsyncCollection[Document] = db[Registrations.collection_name]

    async def active_registrations(
        self, place_code: str, user_ids: Sequence[str]
    ) -> dict[str, Document]:
        """The active registrations with the place of these residents, by user id."""
        if not user_ids:
            return {}
        cursor = self._registrations.find(
            {"place_code": place_code, "status": ACTIVE, "user_id": {"$in": list(user_ids)}}
        )
        return {str(doc["user_id"]): doc async for doc in cursor}

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("batch_id", ASCENDING)], name="batch"),
            IndexModel([("benefit_key", ASCENDING)], name="benefit"),
            IndexModel([("user_id", ASCENDING)], name="user"),
        ]

    async def claim(self, key: str, user_id: str, batch_id: str, now: datetime) -> bool:
        """True when this resident had not been claimed for this benefit before (now they are)."""
        try:
            await self.col.insert_one(
                {
                    "_id": f"{key}|{user_id}",
                    "benefit_key": key,
                    "user_id": user_id,
                    "batch_id": batch_id,
                    "created_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def already_told(self, key: str, user_ids: Sequence[str]) -> set[str]:
        """Which of these residents already have a claim for this benefit."""
        ids = [f"{key}|{user_id}" for user_id in user_ids]
        cursor = self.col.find({"_id": {"$in": ids}}, projection={"user_id": 1})
        return {str(doc["user_id"]) async for doc in cursor}

    async def users_of_batch(self, batch_id: str) -> list[str]:
        cursor = self.col.find({"batch_id": batch_id}, projection={"user_id": 1})
        return sorted({str(doc["user_id"]) async for doc in cursor})

    async def count_for(self, key: str) -> int:
        return await self.col.count_documents({"benefit_key": key})

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count


class BenefitNoticeBatches(Store):
    """Batches of notices to send with one multicast each (no resident ids here)."""

    collection_name = "benefit_notice_batches"

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("status", ASCENDING), ("not_before", ASCENDING)], name="status")]

    async def open(
        self, batch_id: str, key: str, place_code: str, not_before: datetime, now: datetime
    ) -> None:
        await self.col.insert_one(
            {
                "_id": batch_id,
                "benefit_key": key,
                "place_code": place_code,
                "status": FILLING,
                "count": 0,
                "not_before": not_before,
                "created_at": now,
                "sent_at": None,
                "detail": "",
            }
        )

    async def seal(self, batch_id: str, count: int) -> None:
        if count == 0:
            await self.col.delete_one({"_id": batch_id})
            return
        await self.col.update_one({"_id": batch_id}, {"$set": {"status": READY, "count": count}})

    async def seal_abandoned(self, older_than: datetime) -> list[str]:
        """Batches a crashed planner left filling: their claims are made, so send them."""
        cursor = self.col.find({"status": FILLING, "created_at": {"$lt": older_than}})
        ids = [str(doc["_id"]) async for doc in cursor]
        for batch_id in ids:
            await self.col.update_one(
                {"_id": batch_id, "status": FILLING}, {"$set": {"status": READY}}
            )
        return ids

    async def due(self, now: datetime, limit: int = 50) -> list[Document]:
        cursor = self.col.find({"status": READY, "not_before": {"$lte": now}}).sort(
            [("created_at", ASCENDING)]
        )
        return [doc async for doc in cursor.limit(limit)]

    async def finish(self, batch_id: str, status: str, now: datetime, detail: str = "") -> None:
        await self.col.update_one(
            {"_id": batch_id}, {"$set": {"status": status, "sent_at": now, "detail": detail}}
        )

    async def for_benefit(self, key: str) -> list[Document]:
        cursor = self.col.find({"benefit_key": key}).sort([("created_at", ASCENDING)])
        return [doc async for doc in cursor]
