"""Outgoing sends with their `X-Line-Retry-Key`, stored before the first attempt.

A send is named by a logical key (e.g. "fallback:<webhookEventId>"); whoever sends it again after
a crash or a retry reuses the same retry key, so LINE accepts it once and answers 409 after that.
A send to one person stores their LINE user id (indexed), so 「データを削除」 finds it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import IndexModel

from bot.storage.base import Store
from bot.storage.db import Document

# LINE keeps retry keys for 24 hours; after that a retry would send again, so we keep ours longer
# and refuse to resend a key older than LINE's window.
RETRY_KEY_WINDOW = timedelta(hours=24)
KEEP_SENDS = timedelta(days=2)


@dataclass(frozen=True)
class StoredKey:
    """A send's stored retry key, when it was first stored and the send's status."""

    retry_key: str
    first_seen: datetime
    status: str


class Sends(Store):
    collection_name = "sends"
    expires = True
    personal_data = True  # pushes name their recipient

    def indexes(self) -> list[IndexModel]:
        return [IndexModel("user_id", name="user_id")]

    async def retry_key(self, logical_key: str, now: datetime, user_id: str = "") -> StoredKey:
        """The retry key for this send (created on first call). `user_id`: the one recipient of
        a push ("" for multicasts and broadcasts)."""
        return (await self.retry_keys({logical_key: user_id}, now))[logical_key]

    async def retry_keys(
        self, recipients: Mapping[str, str], now: datetime
    ) -> dict[str, StoredKey]:
        """`retry_key` for several sends (logical key → recipient) in one round trip: insert
        first, as most sends are new; a resend, or a send another process stored first, keeps
        the key stored before."""
        docs: dict[str, Document] = {}
        for logical_key, user_id in recipients.items():
            docs[logical_key] = {
                "_id": logical_key,
                "retry_key": str(uuid.uuid4()),
                "status": "pending",
                "created_at": now,
                "expires_at": now + KEEP_SENDS,
            }
            if user_id:
                docs[logical_key]["user_id"] = user_id
        taken = await self.insert_new(list(docs.values()))
        if taken:
            async for doc in self.col.find({"_id": {"$in": sorted(taken)}}):
                docs[str(doc["_id"])] = doc
        return {
            key: StoredKey(str(doc["retry_key"]), doc["created_at"], str(doc["status"]))
            for key, doc in docs.items()
        }

    async def mark(self, logical_key: str, status: str, now: datetime, detail: str = "") -> None:
        await self.col.update_one(
            {"_id": logical_key},
            {"$set": {"status": status, "finished_at": now, "detail": detail}},
        )

    async def delete_for_user(self, user_id: str) -> int:
        """The person's sends: by the stored user id; and among the few sends without one
        (multicasts, broadcasts, and sends stored before the field existed; matched through the
        index as null), those whose logical key names the person."""
        if not user_id:
            return 0
        result = await self.col.delete_many({"user_id": user_id})
        legacy = await self.col.delete_many(
            {"user_id": None, "_id": {"$regex": f"(^|:){re.escape(user_id)}(:|$)"}}
        )
        return result.deleted_count + legacy.deleted_count
