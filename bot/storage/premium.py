"""Premium applications and the identity documents submitted with them.

A document is kept only until the application is decided, then deleted: what the platform keeps
is the decision (who, when, why), not the resident's ID photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import Binary, ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store
from bot.storage.db import Document

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"


def _object_id(value: str) -> ObjectId | None:
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


class PremiumApplications(Store):
    collection_name = "premium_applications"

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
        self, user_id: str, place_code: str, registration_id: Any, verifier: str, now: datetime
    ) -> Submitted:
        doc: Document = {
            "_id": ObjectId(),
            "user_id": user_id,
            "place_code": place_code,
            "registration_id": registration_id,
            "verifier": verifier,
            "status": PENDING,
            "open_key": f"{user_id}:{place_code}",
            "submitted_at": now,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return Submitted(None)
        return Submitted(doc)

    async def get(self, application_id: str) -> Document | None:
        oid = _object_id(application_id)
        return await self.col.find_one({"_id": oid}) if oid else None

    async def pending_for(self, place_codes: list[str], limit: int = 100) -> list[Document]:
        cursor = self.col.find(
            {"place_code": {"$in": place_codes}, "status": PENDING},
            sort=[("submitted_at", ASCENDING)],
            limit=limit,
        )
        return [doc async for doc in cursor]

    async def decide(
        self, application_id: str, status: str, staff: str, reason: str, now: datetime
    ) -> Document | None:
        """Approve or reject a pending application once; None when it was not pending."""
        oid = _object_id(application_id)
        if oid is None:
            return None
        return await self.col.find_one_and_update(
            {"_id": oid, "status": PENDING},
            {
                "$set": {
                    "status": status,
                    "decided_by": staff,
                    "reason": reason,
                    "decided_at": now,
                    "open_key": f"{oid}:{status}",
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    async def for_user(self, user_id: str) -> list[Document]:
        return [doc async for doc in self.col.find({"user_id": user_id})]

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count


class IdentityDocuments(Store):
    collection_name = "identity_documents"

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

    async def discard(self, application_id: ObjectId) -> None:
        await self.col.delete_many({"application_id": application_id})

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count
