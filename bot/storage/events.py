"""Inbound webhook events: each `webhookEventId` stored once, handled once, per user in order.

Two collections, so that handling an event touches only small ones:
- `pending_events` holds each event not handled yet, with all its handling needs (the LINE
  event, the replies recorded before sending): the queue that the per-user lookups and the
  sweep read. It stays as small as the backlog; an event leaves it once handled.
- `inbound_events` keeps every event's id for three days, and a turn only inserts into it: the
  receipt (`_id` = `webhookEventId`, so an event is stored once however often it is delivered)
  and, once handled, the ending (`<id>:end`, its status; no personal data).

On FerretDB every filter, even one on `_id`, reads the whole collection: reading and updating
events where all of three days' events are kept made each turn dearer with the traffic (the
soak run measured 144 ms a lookup at 2,200 kept events; the chat benchmark's FerretDB spent most
of its time there). An insert checks the unique `_id` through its index.

A delivery of an event whose receipt is there already finds it still queued (the same `_id`:
nothing to do) or queues it again: either it was handled, and its ending says so, or its
earlier delivery never queued it (storing failed) and it is handled now. The lookup reads the
ending for an event a repeated delivery queued or found queued (`check`), and for one whose
handling may have got as far as its ending (`replies_tried`, or `check` set by `finish`), and
drops it if it is there.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from bot.storage.base import Store
from bot.storage.db import Document

# Long enough to absorb LINE's redeliveries (they stop well within a day).
KEEP_EVENTS = timedelta(days=3)
QUEUE_ORDER = [("ts", ASCENDING), ("received_at", ASCENDING), ("_id", ASCENDING)]


def _is_redelivery(event: dict[str, Any]) -> bool:
    """LINE sent this event before (webhook redelivery, for a delivery that failed)."""
    context = event.get("deliveryContext")
    return isinstance(context, dict) and context.get("isRedelivery") is True


def ending_id(event_id: str) -> str:
    """The `_id` of an event's ending in `inbound_events`."""
    return f"{event_id}:end"


class PendingEvents(Store):
    """The events not handled yet: `{_id: webhookEventId, user_key, ts, received_at, type,
    event, status: "pending"}`, plus `replies_tried`/`replies` once a reply was recorded and
    `check` when a repeated delivery queued it (see the module doc)."""

    collection_name = "pending_events"
    expires = True  # an event nobody handled goes after KEEP_EVENTS
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("user_key", ASCENDING), *QUEUE_ORDER], name="by_user"),
            IndexModel([("received_at", ASCENDING)], name="by_age"),
        ]

    async def queue(self, user_key: str) -> list[Document]:
        return await self.col.find({"user_key": user_key}, sort=QUEUE_ORDER).to_list(None)

    async def get(self, event_id: str) -> Document | None:
        return await self.col.find_one({"_id": event_id})

    async def remove(self, event_id: str, user_key: str) -> None:
        # With the user in the filter, a sharded cluster asks one shard (docs/SCALING.md).
        await self.col.delete_one({"_id": event_id, "user_key": user_key})

    async def stale_user_keys(self, older_than: datetime, limit: int = 100) -> list[str]:
        """Users with events left waiting (a process died mid-way), for the sweep."""
        cursor = self.col.find(
            {"received_at": {"$lt": older_than}}, projection={"user_key": 1}, limit=limit
        )
        return list({doc["user_key"] async for doc in cursor})

    async def delete_for_user(self, user_id: str, *, handling: str = "") -> int:
        """Only `handling`, the event being handled now: the events queued behind it came after
        the request and are handled next as new messages."""
        if not handling:
            return 0
        result = await self.col.delete_one({"_id": handling, "user_key": user_id})
        return result.deleted_count


class InboundEvents(Store):
    """Every event's receipt and ending (see the module doc); `pending` is the queue, which
    the methods here that take a queued event read and write."""

    collection_name = "inbound_events"
    expires = True
    personal_data = True  # a receipt names the user

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self.pending = PendingEvents(db)

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("user_key", ASCENDING)], name="by_user")]

    async def add(self, event: dict[str, Any], user_key: str, now: datetime) -> bool:
        """Store and queue a new event; False when this `webhookEventId` was seen before.

        The event is kept as JSON text: a field LINE adds one day (a key with '.' or '$',
        nested arrays, a number beyond 64 bits) must not make the database refuse the
        event, or LINE would redeliver it, and everything after it, for ever."""
        ts = event.get("timestamp")
        ts = ts if type(ts) is int and -(2**63) <= ts < 2**63 else 0
        event_id = event["webhookEventId"]
        expires_at = now + KEEP_EVENTS
        receipt: Document = {
            "_id": event_id,
            "user_key": user_key,
            "received_at": now,
            "expires_at": expires_at,
        }
        queued: Document = {
            "_id": event_id,
            "user_key": user_key,
            "ts": ts,
            "type": str(event.get("type")),
            "event": json.dumps(event, ensure_ascii=False),
            "status": "pending",
            "received_at": now,
            "expires_at": expires_at,
        }
        if _is_redelivery(event):
            queued["check"] = True
        # Both at once (one round trip of waiting, not two). Every delivery queues: an event
        # whose receipt was stored while queueing it failed (the webhook then answered 503) is
        # queued by LINE's redelivery; one handled already is dropped by the lookup (`check`).
        new, requeued = await asyncio.gather(
            self.insert_if_new(receipt), self.pending.insert_if_new(queued)
        )
        if not new and not (requeued and "check" in queued):
            # Seen before: have the lookup read the ending before handling it, also when the
            # delivery that queued it is not marked as a redelivery (a proxy's retry; LINE
            # marks its own) or when this delivery found it queued already. A task that reads
            # a repeat so queued before this update handles it again: only for an unmarked
            # repeat of a handled event read in that instant.
            await self.pending.col.update_one(
                {"_id": event_id, "user_key": user_key}, {"$set": {"check": True}}
            )
        return new

    @staticmethod
    def event_of(stored: Document) -> dict[str, Any]:
        """The LINE event of a queued event."""
        raw = stored.get("event")
        event = json.loads(raw) if isinstance(raw, str) else None
        return event if isinstance(event, dict) else {}

    async def first_pending(self, queue: list[Document]) -> Document | None:
        """The first event not handled yet of a queue (`PendingEvents.queue`). Only a queue read
        while holding the user's lease is up to date: a handled event leaves the queue before
        its lease is let go (see the module doc for the ones that read their ending)."""
        for stored in queue:
            event_id, user_key = str(stored["_id"]), str(stored["user_key"])
            if (stored.get("check") or stored.get("replies_tried")) and await self.ended(event_id):
                await self.pending.remove(event_id, user_key)  # handled; its removal was cut short
                continue
            return stored
        return None

    async def next_pending(self, user_key: str) -> Document | None:
        """The user's oldest event not handled yet."""
        return await self.first_pending(await self.pending.queue(user_key))

    async def ended(self, event_id: str) -> bool:
        return await self.col.find_one({"_id": ending_id(event_id)}, {"_id": 1}) is not None

    async def mark_reply(
        self, event_id: str, user_key: str, n: int, messages: list[dict[str, Any]]
    ) -> None:
        """Remember reply `n` to this event just before it is sent: that it was tried, and what
        it said, so an attempt after a crash can resend it once (the turn is not run twice)."""
        text = json.dumps(messages, ensure_ascii=False)
        await self.pending.col.update_one(
            {"_id": event_id, "user_key": user_key},
            {"$set": {"replies_tried": n, f"replies.{n}": text}},
        )

    @staticmethod
    def replies_of(stored: Document) -> dict[int, list[dict[str, Any]]]:
        """The replies `mark_reply` recorded on a queued event, by number."""
        raw = stored.get("replies")
        if not isinstance(raw, dict):
            return {}
        return {int(n): json.loads(text) for n, text in raw.items() if str(n).isdigit()}

    async def finish(
        self,
        event_id: str,
        user_key: str,
        status: str,
        now: datetime,
        error: str = "",
        *,
        marked: bool = False,
    ) -> None:
        """The event is handled: its ending is stored, then it leaves the queue, and with it
        what the resident typed and what we answered. `marked`: the queued event records a
        reply already, so a lookup reads its ending; otherwise it is marked to, first, so that
        an attempt after one cut short between the two writes (a crash, or a write that went
        through unanswered) does not handle it again."""
        if not marked:
            await self.pending.col.update_one(
                {"_id": event_id, "user_key": user_key}, {"$set": {"check": True}}
            )
        ending: Document = {
            "_id": ending_id(event_id),
            "status": status,
            "done_at": now,
            "expires_at": now + KEEP_EVENTS,
        }
        if error:
            ending["error"] = error
        await self.insert_if_new(ending)  # False: an earlier attempt got this far
        await self.pending.remove(event_id, user_key)

    async def get(self, event_id: str) -> Document | None:
        """Where an event stands: queued (`status` pending), ended (its ending's `status`), or
        received but never queued (`status` received); None when never seen (or removed)."""
        queued = await self.pending.get(event_id)
        if queued is not None:
            return queued
        ending = await self.col.find_one({"_id": ending_id(event_id)})
        if ending is not None:
            return {**ending, "_id": event_id}
        receipt = await self.col.find_one({"_id": event_id})
        return None if receipt is None else {**receipt, "status": "received"}

    async def delete_for_user(self, user_id: str, *, handling: str = "") -> int:
        """The user's receipts (data deletion), but those of events still queued behind
        `handling`, the event being handled now: they came after the request and are handled
        next as new messages. Endings name nobody."""
        behind = [e["_id"] for e in await self.pending.queue(user_id) if e["_id"] != handling]
        query: Document = {"user_key": user_id}
        if behind:
            query["_id"] = {"$nin": behind}
        return (await self.col.delete_many(query)).deleted_count
