"""Registrations: one document per (person, place), numbered per place.

Document (collection `registrations`; `bot/cards.py` and the staff console rely on this shape):

    {_id: ObjectId, user_id, place_code, tier: "basic"|"premium", status: "active",
     types: [RelationshipType values], connection, residence_code, age_band, nickname,
     number: "042056-000123-2", since: datetime UTC, valid_until: datetime UTC | None,
     card_version: int, via: municipality code | None, answers: {question_id: answer},
     origin: flow run id | None, blocked?: true, created_at, updated_at}

`via` is set on a prefecture registration made together with a municipality registration. The
unique index on (user_id, place_code) decides races: two confirmations give one registration.
`blocked` is there while the person blocks the account (`bot/storage/users.py`): a news segment
leaves them out in its query. `origin` names the flow run that made it, so that run, completed again after a crash, finishes
its own registration instead of refusing it as made already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from bot.domain.places import get_place
from bot.domain.registration import Tier, places_to_register, registration_number
from bot.storage.base import Store
from bot.storage.counters import Counters
from bot.storage.db import Document
from bot.storage.stats import Stats

ACTIVE = "active"


@dataclass(frozen=True)
class BasicApplication:
    """What a resident answered in the Basic registration flow."""

    user_id: str
    place_code: str
    types: Sequence[str]
    connection: str
    residence_code: str
    age_band: str
    nickname: str
    answers: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # the flow run that applied: run again, it finds its own registrations


@dataclass(frozen=True)
class Created:
    """Outcome of `create_basic`: the new registrations, or `already` when the place was taken."""

    registration: Document | None = None
    prefecture: Document | None = None  # created together (None when it existed or N/A)

    @property
    def already(self) -> bool:
        return self.registration is None


@dataclass(frozen=True)
class Removed:
    """Outcome of `remove`: the place codes whose registrations were deleted."""

    place_codes: tuple[str, ...] = ()

    @property
    def removed(self) -> bool:
        return bool(self.place_codes)


class Registrations(Store):
    collection_name = "registrations"
    personal_data = True

    def __init__(self, db: Any, stats: Stats | None = None) -> None:
        super().__init__(db)
        self.counters = Counters(db)
        self.stats = stats if stats is not None else Stats(db)

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("user_id", ASCENDING), ("place_code", ASCENDING)], name="user_place", unique=True
            ),
            IndexModel([("place_code", ASCENDING), ("status", ASCENDING)], name="place_status"),
        ]

    # --- reading ---------------------------------------------------------------------------

    async def get(self, registration_id: str) -> Document | None:
        """The registration with this id (the string form of its ObjectId), or None."""
        try:
            oid = ObjectId(registration_id)
        except (InvalidId, TypeError):
            return None
        return await self.col.find_one({"_id": oid})

    async def find(self, user_id: str, place_code: str) -> Document | None:
        return await self.col.find_one({"user_id": user_id, "place_code": place_code})

    async def for_user(self, user_id: str) -> list[Document]:
        """The person's registrations, oldest first."""
        cursor = self.col.find({"user_id": user_id}).sort([("created_at", ASCENDING)])
        docs = [doc async for doc in cursor]
        # FerretDB and MongoDB agree on the sort; ties (same instant) by id for a stable order.
        docs.sort(key=lambda doc: (doc.get("created_at") or datetime.min, str(doc["_id"])))
        return docs

    async def place_codes(self, user_id: str, but_origin: str = "") -> set[str]:
        """Every place the person is registered with, prefectures made together included;
        with `but_origin`, not those that flow run made."""
        cursor = self.col.find({"user_id": user_id}, projection={"place_code": 1, "origin": 1})
        return {
            str(doc["place_code"])
            async for doc in cursor
            if not but_origin or doc.get("origin") != but_origin
        }

    async def count_for_place(self, place_code: str) -> int:
        return await self.col.count_documents({"place_code": place_code, "status": ACTIVE})

    # --- writing ---------------------------------------------------------------------------

    async def next_number(self, place_code: str) -> str:
        seq = await self.counters.next_unique(f"registration:{place_code}")
        return registration_number(seq, place_code)

    def _document(
        self,
        application: BasicApplication,
        place_code: str,
        number: str,
        via: str | None,
        now: datetime,
    ) -> Document:
        return {
            "_id": ObjectId(),
            "user_id": application.user_id,
            "place_code": place_code,
            "tier": Tier.BASIC.value,
            "status": ACTIVE,
            "types": list(application.types),
            "connection": application.connection,
            "residence_code": application.residence_code,
            "age_band": application.age_band,
            "nickname": application.nickname,
            "number": number,
            "since": now,
            "valid_until": None,
            "card_version": 1,
            "via": via,
            "answers": dict(application.answers) if via is None else {},
            "origin": application.origin or None,
            "created_at": now,
            "updated_at": now,
        }

    async def create_basic(self, application: BasicApplication, now: datetime) -> Created:
        """Register with the place, and with its prefecture unless already registered there.

        The caller checks eligibility (`check_basic`) first; this only makes the documents. A
        place already registered (a double tap, two devices) gives `Created()` (`already`),
        unless the application's `origin` made it: then this finishes what that call left (a
        completion run again after a crash). A number drawn for a registration that then loses
        the race is not reused: numbers may have gaps, never duplicates.
        """
        place = get_place(application.place_code)
        if place is None:
            raise ValueError(f"unknown place code {application.place_code!r}")
        codes = places_to_register(place)
        main = self._document(
            application, place.code, await self.next_number(place.code), None, now
        )
        try:
            await self.col.insert_one(main)
        except DuplicateKeyError:
            ours = self._ours(application, await self.find(application.user_id, place.code))
            if ours is None:
                return Created()
            main = ours
        prefecture: Document | None = None
        for code in codes[1:]:
            if (existing := await self.find(application.user_id, code)) is not None:
                prefecture = self._ours(application, existing) or prefecture
                continue
            doc = self._document(application, code, await self.next_number(code), place.code, now)
            try:
                await self.col.insert_one(doc)
            except DuplicateKeyError:
                continue
            prefecture = doc
        await self.stats.registrations_changed(application.user_id, now)
        return Created(registration=main, prefecture=prefecture)

    @staticmethod
    def _ours(application: BasicApplication, doc: Document | None) -> Document | None:
        """`doc` if this application's flow run made it (read back after a crash)."""
        if doc is None or not application.origin or doc.get("origin") != application.origin:
            return None
        return doc

    async def remove(self, user_id: str, place_code: str) -> Removed:
        """Delete a registration; a prefecture registration made with it goes too.

        When another municipality registration of the same prefecture remains, the prefecture
        registration stays and is attributed to that one instead.
        """
        removed = await self._remove(user_id, place_code)
        if removed.removed:
            await self.stats.registrations_changed(user_id)
        return removed

    async def _remove(self, user_id: str, place_code: str) -> Removed:
        doc = await self.find(user_id, place_code)
        if doc is None:
            return Removed()
        result = await self.col.delete_one({"_id": doc["_id"]})
        if result.deleted_count != 1:
            return Removed()
        removed = [place_code]
        place = get_place(place_code)
        if place is None or place.is_prefecture:
            return Removed(tuple(removed))
        prefecture = await self.find(user_id, place.prefecture_code)
        if prefecture is None or prefecture.get("via") != place_code:
            return Removed(tuple(removed))
        others = [
            other
            for other in await self.for_user(user_id)
            if other["place_code"] != place.prefecture_code
            and (p := get_place(str(other["place_code"]))) is not None
            and p.prefecture_code == place.prefecture_code
        ]
        if others:
            await self.col.update_one(
                {"_id": prefecture["_id"]}, {"$set": {"via": others[0]["place_code"]}}
            )
        elif (await self.col.delete_one({"_id": prefecture["_id"]})).deleted_count == 1:
            removed.append(place.prefecture_code)
        return Removed(tuple(removed))

    async def delete_for_user(self, user_id: str) -> int:
        """Every registration of the person (data deletion): their cards show as revoked."""
        return (await self.col.delete_many({"user_id": user_id})).deleted_count

    async def set_tier(
        self,
        registration_id: ObjectId | str,
        tier: Tier,
        valid_until: datetime | None,
        now: datetime,
    ) -> Document | None:
        """Move a registration to `tier` (Premium approval, renewal, fall-back to Basic).

        The card changes with the tier, so `card_version` is bumped: cards issued before show as
        revoked on the verification page. Returns the updated registration (None if unknown).
        """
        try:
            oid = (
                registration_id
                if isinstance(registration_id, ObjectId)
                else ObjectId(registration_id)
            )
        except (InvalidId, TypeError):
            return None
        result = await self.col.update_one(
            {"_id": oid},
            {
                "$set": {"tier": tier.value, "valid_until": valid_until, "updated_at": now},
                "$inc": {"card_version": 1},
            },
        )
        if result.matched_count != 1:
            return None
        updated = await self.col.find_one({"_id": oid})
        if updated is not None:
            await self.stats.registrations_changed(str(updated["user_id"]), now)
        return updated

    async def update_details(
        self,
        user_id: str,
        place_code: str,
        now: datetime,
        *,
        types: Sequence[str] | None = None,
        nickname: str | None = None,
    ) -> int:
        """Change types and/or nickname of a registration and of the prefecture made with it."""
        changes: dict[str, Any] = {"updated_at": now}
        if types is not None:
            changes["types"] = list(types)
        if nickname is not None:
            changes["nickname"] = nickname
        result = await self.col.update_many(
            {"user_id": user_id, "$or": [{"place_code": place_code}, {"via": place_code}]},
            {"$set": changes},
        )
        await self.stats.registrations_changed(user_id, now)
        return result.modified_count
