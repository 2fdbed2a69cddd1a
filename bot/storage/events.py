"""Inbound webhook events: each `webhookEventId` stored once, handled once, per user in order."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store
from bot.storage.db import Document

# Long enough to absorb LINE's redeliveries (they stop well within a day).
KEEP_EVENTS = timedelta(days=3)


class InboundEvents(Store):
    collection_name = "inbound_events"
    expires = True
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("status", ASCENDING), ("user_key", ASCENDING), ("ts", ASCENDING)],
                name="pending_by_user",
            ),
            IndexModel([("status", ASCENDING), ("received_at", ASCENDING)], name="by_age"),
        ]

    async def add(self, event: dict[str, Any], user_key: str, now: datetime) -> bool:
        """Store a new event; False when this `webhookEventId` was seen before.

        The event is kept as JSON text: a field LINE adds one day (a key with '.' or '$',
        nested arrays, a number beyond 64 bits) must not make the database refuse the
        event, or LINE would redeliver it, and everything after it, for ever."""
        ts = event.get("timestamp")
        try:
            await self.col.insert_one(
                {
                    "_id": event["webhookEventId"],
                    "user_key": user_key,
                    "ts": ts if type(ts) is int and -(2**63) <= ts < 2**63 else 0,
                    "type": str(event.get("type")),
                    "event": json.dumps(event, ensure_ascii=False),
                    "status": "pending",
                    "received_at": now,
                    "expires_at": now + KEEP_EVENTS,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    @staticmethod
    def event_of(stored: Document) -> dict[str, Any]:
        """The LINE event of a stored document ({} once finished)."""
        raw = stored.get("event")
        if isinstance(raw, str):
            event = json.loads(raw)
            return event if isinstance(event, dict) else {}
        return raw if isinstance(raw, dict) else {}  # stored before events were kept as text

    async def next_pending(self, user_key: str) -> Document | None:
        return await self.col.find_one(
            {"user_key": user_key, "status": "pending"},
            sort=[("ts", ASCENDING), ("received_at", ASCENDING), ("_id", ASCENDING)],
        )

    async def mark_attempt(self, event_id: str, conversation_version: int) -> None:
        """Remember the user's conversation version as handling starts: a later attempt that
        finds a newer version knows this one committed the turn."""
        await self.col.update_one(
            {"_id": event_id}, {"$set": {"attempt_version": conversation_version}}
        )

    async def mark_reply(self, event_id: str, n: int) -> None:
        """Remember that reply `n` to this event is about to be sent."""
        await self.col.update_one({"_id": event_id}, {"$set": {"replies_tried": n}})

    async def finish(self, event_id: str, status: str, now: datetime, error: str = "") -> None:
        # The event body may hold what the resident typed: drop it once handled.
        update: Document = {"$set": {"status": status, "done_at": now}, "$unset": {"event": ""}}
        if error:
            update["$set"]["error"] = error
        await self.col.update_one({"_id": event_id, "status": "pending"}, update)

    async def stale_user_keys(self, older_than: datetime, limit: int = 100) -> list[str]:
        """Users with events left pending (a process died mid-way), for the worker's sweep."""
        cursor = self.col.find(
            {"status": "pending", "received_at": {"$lt": older_than}},
            projection={"user_key": 1},
            limit=limit,
        )
        return list({doc["user_key"] async for doc in cursor})

    async def get(self, event_id: str) -> Document | None:
        return await self.col.find_one({"_id": event_id})

    async def delete_for_user(self, user_id: str, *, handling: str = "") -> int:
        """The user's events (data deletion), and `handling`, the event being handled now.

        Events still waiting behind the one being handled stay: they came after the request and
        are handled next as new messages.
        """
        query: Document = {"user_key": user_id, "status": {"$ne": "pending"}}
        if handling:
            query = {
                "user_key": user_id,
                "$or": [{"status": {"$ne": "pending"}}, {"_id": handling}],
            }
        return (await self.col.delete_many(query)).deleted_count
