"""Leases held in the database, so that processes on several machines exclude each other."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store


class Leases(Store):
    """Named leases: one holder at a time (a user's event queue, a one-off set-up task)."""

    collection_name = "leases"
    expires = True

    async def acquire(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        try:
            doc = await self.col.find_one_and_update(
                {"_id": name, "$or": [{"expires_at": {"$lt": now}}, {"owner": owner}]},
                {"$set": {"owner": owner, "expires_at": now + ttl}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # someone else holds a live lease
        return doc is not None and doc.get("owner") == owner

    async def release(self, name: str, owner: str) -> None:
        await self.col.delete_one({"_id": name, "owner": owner})
