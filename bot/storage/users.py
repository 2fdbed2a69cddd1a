"""LINE users of the account: only what delivery needs (follow state), nothing personal.

A block is also marked on the person's registrations (`blocked: true`), so that a news segment
leaves them out in its query instead of a planner holding every blocked id of the nation.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from bot.storage.base import Store
from bot.storage.db import Document
from bot.storage.registrations import Registrations


class Users(Store):
    collection_name = "users"
    personal_data = True

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self._registrations: AsyncCollection[Document] = db[Registrations.collection_name]

    async def follow(self, user_id: str, now: datetime) -> Document | None:
        """Mark the user as following; returns the document as it was before (None if new)."""
        before = await self.col.find_one_and_update(
            {"_id": user_id},
            {
                "$set": {"blocked": False, "followed_at": now},
                "$setOnInsert": {"created_at": now},
            },
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        # Whatever `before` says: a follow handled again after a crash between the two writes
        # finds the user unblocked already, yet must still clear the registrations.
        await self._registrations.update_many(
            {"user_id": user_id, "blocked": True}, {"$unset": {"blocked": ""}}
        )
        return before

    async def block(self, user_id: str, now: datetime) -> None:
        """Remember the block (an unfollow), also on the person's registrations. Run again after
        a crash in between, it finishes the second write."""
        await self.col.update_one(
            {"_id": user_id},
            {"$set": {"blocked": True, "blocked_at": now}, "$setOnInsert": {"created_at": now}},
            upsert=True,
        )
        await self._registrations.update_many({"user_id": user_id}, {"$set": {"blocked": True}})

    async def is_blocked(self, user_id: str) -> bool:
        doc = await self.col.find_one({"_id": user_id}, projection={"blocked": 1})
        return bool(doc and doc.get("blocked"))

    async def delete(self, user_id: str) -> None:
        await self.col.delete_one({"_id": user_id})

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"_id": user_id})).deleted_count
