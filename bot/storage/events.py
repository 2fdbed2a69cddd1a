"""Inbound webhook events: each `webhookEventId` stored once, handled once, per user in order.

Two collections: `inbound_events` keeps every event for three days (its `_id` is what makes a
redelivery a no-op), and `pending_events` holds one small document per event not handled yet:
the queue that the per-user lookups and the sweep read. On FerretDB a filter on anything but
`_id` reads the whole collection, so a lookup among all kept events grew with traffic (the soak
run measured 144 ms a lookup at 2,200 kept events, twice per event); the queue stays as small as
the backlog. A queue entry is written with its event and removed after the event is finished.
The lookup removes an entry whose event is finished (the process died before removing it) or
missing for over `ORPHAN_AFTER` (storing it failed), and stops at one whose event is missing
but young: it is being stored, and the user's later events must wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store
from bot.storage.db import Document

# Long enough to absorb LINE's redeliveries (they stop well within a day).
KEEP_EVENTS = timedelta(days=3)
# A queue entry without its event this long after it was written lost its event to a crash.
ORPHAN_AFTER = timedelta(minutes=1)
QUEUE_ORDER = [("ts", ASCENDING), ("received_at", ASCENDING), ("_id", ASCENDING)]


class PendingEvents(Store):
    """The queue of events not handled yet: `{_id: webhookEventId, user_key, ts, received_at}`."""

    collection_name = "pending_events"
    expires = True  # an entry nobody removed goes with its event
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("user_key", ASCENDING), *QUEUE_ORDER], name="by_user"),
            IndexModel([("received_at", ASCENDING)], name="by_age"),
        ]

    async def add(self, event_id: str, user_key: str, ts: int, now: datetime) -> None:
        doc = {
            "_id": event_id,
            "user_key": user_key,
            "ts": ts,
            "received_at": now,
            "expires_at": now + KEEP_EVENTS,
        }
        with contextlib.suppress(DuplicateKeyError):  # a redelivery of a queued event
            await self.col.insert_one(doc)

    async def queue(self, user_key: str) -> list[Document]:
        return await self.col.find({"user_key": user_key}, sort=QUEUE_ORDER).to_list(None)

    async def remove(self, event_id: str) -> None:
        await self.col.delete_one({"_id": event_id})

    async def stale_user_keys(self, older_than: datetime, limit: int = 100) -> list[str]:
        """Users with events left waiting (a process died mid-way), for the sweep."""
        cursor = self.col.find(
            {"received_at": {"$lt": older_than}}, projection={"user_key": 1}, limit=limit
        )
        return list({doc["user_key"] async for doc in cursor})

    async def delete_for_user(self, user_id: str, *, handling: str = "") -> int:
        """Only the entry of `handling`: the events queued behind it are handled next."""
        if not handling:
            return 0
        result = await self.col.delete_one({"_id": handling, "user_key": user_id})
        return result.deleted_count


class InboundEvents(Store):
    collection_name = "inbound_events"
    expires = True
    personal_data = True

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self.pending = PendingEvents(db)

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("user_key", ASCENDING)], name="by_user")]

    async def add(self, event: dict[str, Any], user_key: str, now: datetime) -> bool:
        """Store a new event; False when this `webhookEventId` was seen before.

        The event is kept as JSON text: a field LINE adds one day (a key with '.' or '$',
        nested arrays, a number beyond 64 bits) must not make the database refuse the
        event, or LINE would redeliver it, and everything after it, for ever."""
        ts = event.get("timestamp")
        ts = ts if type(ts) is int and -(2**63) <= ts < 2**63 else 0
        event_id = event["webhookEventId"]
        document: Document = {
            "_id": event_id,
            "user_key": user_key,
            "ts": ts,
            "type": str(event.get("type")),
            "event": json.dumps(event, ensure_ascii=False),
            "status": "pending",
            "received_at": now,
            "expires_at": now + KEEP_EVENTS,
        }

        async def store() -> bool:
            try:
                await self.col.insert_one(document)
            except DuplicateKeyError:
                return False
            return True

        # Queued and stored at once (one round trip of waiting, not two). Every delivery queues,
        # a redelivery too: an event stored while its queue entry failed (the webhook then
        # answered 503) is queued by LINE's redelivery; a handled event's new entry is removed
        # by the next lookup.
        _, stored = await asyncio.gather(self.pending.add(event_id, user_key, ts, now), store())
        return stored

    @staticmethod
    def event_of(stored: Document) -> dict[str, Any]:
        """The LINE event of a stored document ({} once finished)."""
        raw = stored.get("event")
        if isinstance(raw, str):
            event = json.loads(raw)
            return event if isinstance(event, dict) else {}
        return raw if isinstance(raw, dict) else {}  # stored before events were kept as text

    async def first_pending(self, queue: list[Document], now: datetime) -> Document | None:
        """The first event of a queue (`PendingEvents.queue`) not handled yet (see the module
        doc for stray entries)."""
        for entry in queue:
            stored = await self.col.find_one({"_id": entry["_id"]})
            if stored is not None and stored.get("status") == "pending":
                return stored
            if stored is not None or entry["received_at"] < now - ORPHAN_AFTER:
                await self.pending.remove(entry["_id"])
            else:
                # Its event is being stored: nothing after it may go first. Its delivery's own
                # handling comes once it is stored (or LINE redelivers it, if storing failed).
                return None
        return None

    async def next_pending(self, user_key: str, now: datetime) -> Document | None:
        """The user's oldest event not handled yet."""
        return await self.first_pending(await self.pending.queue(user_key), now)

    async def mark_reply(self, event_id: str, n: int, messages: list[dict[str, Any]]) -> None:
        """Remember reply `n` to this event just before it is sent: that it was tried, and what
        it said, so an attempt after a crash can resend it once (the turn is not run twice)."""
        text = json.dumps(messages, ensure_ascii=False)
        await self.col.update_one(
            {"_id": event_id}, {"$set": {"replies_tried": n, f"replies.{n}": text}}
        )

    @staticmethod
    def replies_of(stored: Document) -> dict[int, list[dict[str, Any]]]:
        """The replies `mark_reply` recorded on a stored event, by number."""
        raw = stored.get("replies")
        if not isinstance(raw, dict):
            return {}
        return {int(n): json.loads(text) for n, text in raw.items() if str(n).isdigit()}

    async def finish(self, event_id: str, status: str, now: datetime, error: str = "") -> None:
        # What the resident typed, and what we answered, is dropped once the event is handled.
        # Filtered by `_id` alone: FerretDB reads the whole collection for any other filter.
        update: Document = {
            "$set": {"status": status, "done_at": now},
            "$unset": {"event": "", "replies": ""},
        }
        if error:
            update["$set"]["error"] = error
        await self.col.update_one({"_id": event_id}, update)
        await self.pending.remove(event_id)

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
