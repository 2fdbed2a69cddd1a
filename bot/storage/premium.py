"""Premium applications, the claims that decide them exactly once, and the identity documents.

Documents:

    premium_applications: {_id: ObjectId, user_id, place_code, registration_id, verifier,
        status: "pending"|"approved"|"rejected"|"withdrawn", open_key, origin (the flow run
        that submitted it), submitted_at, decided_by?, reason?, decided_at?}
    premium_decisions: {_id: application id, user_id, place_code, status, decided_by, reason,
        decided_at}
    identity_documents: {application_id, user_id, content_type, size, data: Binary, created_at}

Deciding is claimed with an insert: the first `premium_decisions` document with the application's
id wins, every other caller gets None. Conditional updates are not enough here: FerretDB 1.24
lets several racing `update_one({"status": "pending"})` match, so two staff approving at once
would both "win" and the resident would be told twice. Only an insert against a unique key
(`_id` here) is exclusive on every server we support.

A document is kept only until the application is decided, then deleted: what the platform keeps
is the decision (who, when, why), not the resident's ID photo.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import Binary, ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store
from bot.storage.db import Document

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"  # the registration was removed before anyone decided
DECIDED = (APPROVED, REJECTED, WITHDRAWN)
STATUSES = (PENDING, *DECIDED)


def _object_id(value: str | ObjectId) -> ObjectId | None:
    if isinstance(value, ObjectId):
        return value
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


@dataclass(frozen=True)
class Submitted:
    application: Document | None  # None: an application for this place is already waiting

    @property
    def already_pending(self) -> bool:
        return self.application is None


class PremiumDecisions(Store):
    """One document per decided application, keyed by the application's id (no other index).

    Held by `PremiumApplications`; its only index is `_id`, so it needs no `ensure_indexes`.
    """

    collection_name = "premium_decisions"
    personal_data = True  # deleted with the applications (`PremiumApplications.delete_for_user`)

    async def claim(self, decision: Document) -> bool:
        """Insert the decision; False when the application was decided already."""
        return await self.insert_if_new(decision)

    async def get(self, application_id: ObjectId) -> Document | None:
        return await self.col.find_one({"_id": application_id})

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count


class PremiumApplications(Store):
    collection_name = "premium_applications"
    personal_data = True

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self.decisions = PremiumDecisions(db)

    def indexes(self) -> list[IndexModel]:
        return [
            # One waiting application per (person, place): `open_key` is unique and only a
            # pending application carries the bare key (portable: no partial indexes).
            IndexModel([("open_key", ASCENDING)], name="open_key", unique=True),
            IndexModel(
                [("place_code", ASCENDING), ("status", ASCENDING), ("submitted_at", ASCENDING)],
                name="queue",
            ),
            IndexModel([("user_id", ASCENDING)], name="by_user"),
        ]

    async def submit(
        self,
        user_id: str,
        place_code: str,
        registration_id: Any,
        verifier: str,
        now: datetime,
        origin: str = "",
    ) -> Submitted:
        """A new waiting application; `Submitted(None)` when one is waiting already, unless the
        flow run `origin` made that one (it is run again after a crash and gets it back)."""
        doc: Document = {
            "_id": ObjectId(),
            "user_id": user_id,
            "place_code": place_code,
            "registration_id": registration_id,
            "verifier": verifier,
            "status": PENDING,
            "open_key": f"{user_id}:{place_code}",
            "origin": origin or None,
            "submitted_at": now,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return Submitted(await self.waiting_from(user_id, place_code, origin))
        return Submitted(doc)

    async def waiting_from(self, user_id: str, place_code: str, origin: str) -> Document | None:
        """The person's waiting application for the place if flow run `origin` submitted it."""
        if not origin:
            return None
        doc = await self.col.find_one({"open_key": f"{user_id}:{place_code}"})
        return doc if doc is not None and doc.get("origin") == origin else None

    # --- reading -----------------------------------------------------------------------------

    async def get(self, application_id: str | ObjectId) -> Document | None:
        oid = _object_id(application_id)
        return await self.col.find_one({"_id": oid}) if oid else None

    async def get_for(self, place_codes: Collection[str], application_id: str) -> Document | None:
        """The application if it is for one of these places (a tenant's), else None."""
        oid = _object_id(application_id)
        if oid is None or not place_codes:
            return None
        return await self.col.find_one({"_id": oid, "place_code": {"$in": list(place_codes)}})

    async def pending_for(self, place_codes: Collection[str], limit: int = 100) -> list[Document]:
        """The review queue of these places, oldest first."""
        if not place_codes:
            return []
        cursor = self.col.find(
            {"place_code": {"$in": list(place_codes)}, "status": PENDING},
            sort=[("submitted_at", ASCENDING), ("_id", ASCENDING)],
            limit=limit,
        )
        return [doc async for doc in cursor]

    async def decided_for(
        self, place_codes: Collection[str], status: str | None = None, limit: int = 100
    ) -> list[Document]:
        """Decided applications of these places, the latest decision first."""
        if not place_codes:
            return []
        statuses = [status] if status else list(DECIDED)
        cursor = self.col.find(
            {"place_code": {"$in": list(place_codes)}, "status": {"$in": statuses}},
            sort=[("decided_at", DESCENDING), ("_id", DESCENDING)],
            limit=limit,
        )
        return [doc async for doc in cursor]

    async def pending_for_user(self, user_id: str) -> list[Document]:
        cursor = self.col.find({"user_id": user_id, "status": PENDING})
        return [doc async for doc in cursor]

    async def for_user(self, user_id: str) -> list[Document]:
        return [doc async for doc in self.col.find({"user_id": user_id})]

    # --- deciding ----------------------------------------------------------------------------

    async def decide(
        self, application_id: str | ObjectId, status: str, staff: str, reason: str, now: datetime
    ) -> Document | None:
        """Decide a pending application exactly once; None when it is unknown or was decided.

        Of any number of racing callers exactly one gets the decided application back: the one
        whose claim (an insert keyed by the application id) went in. The application document
        is updated afterwards for the queue and the console.
        """
        if status not in DECIDED:
            raise ValueError(f"not a decision: {status!r}")
        oid = _object_id(application_id)
        if oid is None:
            return None
        application = await self.col.find_one({"_id": oid})
        if application is None or application.get("status") != PENDING:
            return None
        decision: Document = {
            "_id": oid,
            "user_id": application["user_id"],
            "place_code": application["place_code"],
            "status": status,
            "decided_by": staff,
            "reason": reason,
            "decided_at": now,
        }
        if not await self.decisions.claim(decision):
            await self._settle(oid)
            return None
        fields = _decided_fields(oid, decision)
        await self.col.update_one({"_id": oid}, {"$set": fields})
        return {**application, **fields}

    async def _settle(self, oid: ObjectId) -> None:
        """A claim exists: make sure the application shows it (its winner may have died between
        the claim and the update). Writes the claim's own values, so racing it is harmless."""
        decision = await self.decisions.get(oid)
        if decision is None:
            return
        await self.col.update_one(
            {"_id": oid, "status": PENDING}, {"$set": _decided_fields(oid, decision)}
        )

    async def delete_for_user(self, user_id: str) -> int:
        await self.decisions.delete_for_user(user_id)
        return (await self.col.delete_many({"user_id": user_id})).deleted_count


def _decided_fields(oid: ObjectId, decision: Document) -> Document:
    status = str(decision["status"])
    return {
        "status": status,
        "decided_by": decision["decided_by"],
        "reason": decision["reason"],
        "decided_at": decision["decided_at"],
        # Frees the (person, place) key: the resident may apply again after a decision.
        "open_key": f"{oid}:{status}",
    }


class IdentityDocuments(Store):
    collection_name = "identity_documents"
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("application_id", ASCENDING)], name="by_application")]

    async def put(
        self,
        application_id: ObjectId,
        user_id: str,
        content: bytes,
        content_type: str,
        now: datetime,
    ) -> None:
        await self.col.insert_one(
            {
                "application_id": application_id,
                "user_id": user_id,
                "content_type": content_type,
                "size": len(content),
                "data": Binary(content),
                "created_at": now,
            }
        )

    async def get(self, application_id: ObjectId) -> tuple[bytes, str] | None:
        doc = await self.col.find_one({"application_id": application_id})
        if doc is None:
            return None
        return bytes(doc["data"]), str(doc["content_type"])

    async def exists(self, application_id: ObjectId) -> bool:
        found = await self.col.find_one({"application_id": application_id}, projection={"_id": 1})
        return found is not None

    async def discard(self, application_id: ObjectId) -> None:
        await self.col.delete_many({"application_id": application_id})

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count
