"""LINE users of the account: only what delivery needs (follow state), nothing personal."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from bot.storage.base import Store
from bot.storage.db import Document


class Users(Store):
    collection_name = "users"
    personal_data = True

    async def follow(self, user_id: str, now: datetime) -> Document | None:
        """Mark the user as following; returns the document as it was before (None if new)."""
        return await self.col.find_one_and_update(
            {"_id": user_id},
            {
                "$set": {"blocked": False, "followed_at": now},
                "$setOnInsert": {"created_at": now},
            },
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )

    async def block(self, user_id: str, now: datetime) -> None:
        await self.col.update_one(
            {"_id": user_id},
            {"$set": {"blocked": True, "blocked_at": now}, "$setOnInsert": {"created_at": now}},
            upsert=True,
        )

    async def is_blocked(self, user_id: str) -> bool:
        doc = await self.col.find_one({"_id": user_id}, projection={"blocked": 1})
        return bool(doc and doc.get("blocked"))

    async def delete(self, user_id: str) -> None:
        await self.col.delete_one({"_id": user_id})

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"_id": user_id})).deleted_count
