"""Webhook events from storage to the handler: once each, one user at a time, in time order.

The web process stores every event (the unique `webhookEventId` makes redeliveries no-ops),
answers LINE, then handles the user's pending events in the background under a per-user lease,
so two web processes never handle one user's events at once or out of order. The worker sweeps
events left pending by a process that died.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from linebot.v3.messaging import Message

from bot.clock import Clock
from bot.line.client import LineClient
from bot.line.incoming import EventHandler, Incoming, Kind, Location
from bot.storage import Storage

log = logging.getLogger("bot.pipeline")

LEASE_TTL = timedelta(seconds=60)
# A pending event older than this whose user has no live lease was abandoned by a dead process.
STALE_AFTER = timedelta(seconds=30)

_MESSAGE_KINDS: dict[str, Kind] = {
    "text": "text",
    "image": "image",
    "location": "location",
    "sticker": "sticker",
}


def user_key_of(event: dict[str, Any]) -> str | None:
    source = event.get("source")
    if not isinstance(source, dict):
        return None
    for field in ("userId", "groupId", "roomId"):
        value = source.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def to_incoming(event: dict[str, Any]) -> Incoming | None:
    """The part of a LINE event the dialog layer needs; None for what we do not handle."""
    source = event.get("source") or {}
    user_id = source.get("userId") if isinstance(source, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    base: dict[str, Any] = {
        "user_id": user_id,
        "event_id": str(event.get("webhookEventId", "")),
        "timestamp": datetime.fromtimestamp(_int(event.get("timestamp")) / 1000, UTC),
    }
    kind = event.get("type")
    if kind == "message":
        message = event.get("message") or {}
        mkind = _MESSAGE_KINDS.get(str(message.get("type")), "other")
        if mkind == "text":
            return Incoming(kind="text", text=str(message.get("text", "")), **base)
        if mkind == "image":
            return Incoming(kind="image", message_id=str(message.get("id", "")), **base)
        if mkind == "location":
            return Incoming(kind="location", location=_location(message), **base)
        return Incoming(kind=mkind, **base)
    if kind == "postback":
        postback = event.get("postback") or {}
        params = postback.get("params") or {}
        return Incoming(
            kind="postback",
            data=str(postback.get("data", "")),
            params={str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {},
            **base,
        )
    if kind == "follow":
        follow = event.get("follow") or {}
        return Incoming(kind="follow", is_unblocked=bool(follow.get("isUnblocked")), **base)
    if kind == "unfollow":
        return Incoming(kind="unfollow", **base)
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _location(message: dict[str, Any]) -> Location | None:
    try:
        return Location(
            title=str(message.get("title") or ""),
            address=str(message.get("address") or ""),
            latitude=float(message["latitude"]),
            longitude=float(message["longitude"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


class Pipeline:
    def __init__(
        self, storage: Storage, line: LineClient, handler: EventHandler, clock: Clock
    ) -> None:
        self.storage = storage
        self.line = line
        self.handler = handler
        self.clock = clock
        self.tasks: set[asyncio.Task[None]] = set()

    async def accept(self, events: Sequence[Any]) -> list[str]:
        """Store new events; the users whose queues now need handling. Raises on database errors."""
        now = self.clock.now()
        users: list[str] = []
        # Stored in time order: a task already handling this user may pick each one up at once.
        for event in sorted(
            events, key=lambda e: _int(e.get("timestamp")) if isinstance(e, dict) else 0
        ):
            if not isinstance(event, dict) or not isinstance(event.get("webhookEventId"), str):
                log.warning("event without webhookEventId ignored", extra={"type": _type(event)})
                continue
            user_key = user_key_of(event)
            if user_key is None:
                log.info("event without a source ignored", extra={"type": _type(event)})
                continue
            if await self.storage.inbound_events.add(event, user_key, now):
                if user_key not in users:
                    users.append(user_key)
            else:
                log.info("duplicate event ignored", extra={"event_id": event["webhookEventId"]})
        return users

    def schedule(self, user_keys: Sequence[str]) -> None:
        for user_key in user_keys:
            task = asyncio.create_task(self.process_user(user_key))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for the events being handled (graceful shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def process_user(self, user_key: str) -> None:
        # Each call holds the lease under its own name, so two tasks of one process exclude
        # each other just as two processes do.
        owner = uuid.uuid4().hex
        leases = self.storage.leases
        try:
            while await leases.acquire(user_key, owner, self.clock.now(), LEASE_TTL):
                try:
                    while event := await self.storage.inbound_events.next_pending(user_key):
                        if not await leases.acquire(user_key, owner, self.clock.now(), LEASE_TTL):
                            return  # our lease ran out and another process took the queue
                        await self._handle(event)
                finally:
                    await leases.release(user_key, owner)
                # An event stored while we released the lease is ours to pick up: its sender
                # saw our lease and left it to us.
                if await self.storage.inbound_events.next_pending(user_key) is None:
                    return
        except Exception:
            log.exception("handling a user's events failed; the worker will retry")

    async def _handle(self, stored: dict[str, Any]) -> None:
        event_id = str(stored["_id"])
        event: dict[str, Any] = stored.get("event") or {}
        if event.get("mode") == "standby":
            await self.storage.inbound_events.finish(event_id, "skipped", self.clock.now())
            return
        incoming = to_incoming(event)
        if incoming is None:
            log.info("event type not handled", extra={"event_id": event_id, "type": _type(event)})
            await self.storage.inbound_events.finish(event_id, "ignored", self.clock.now())
            return
        replies = 0
        reply_token = event.get("replyToken") if isinstance(event.get("replyToken"), str) else None

        async def reply(messages: Sequence[Message]) -> None:
            nonlocal replies
            replies += 1
            await self.line.reply(
                reply_token if replies == 1 else None,
                incoming.user_id,
                messages,
                logical_key=f"reply:{event_id}:{replies}",
            )

        try:
            await self.handler(incoming, reply)
        except Exception as exc:
            log.exception("event handler failed", extra={"event_id": event_id})
            await self.storage.inbound_events.finish(
                event_id, "failed", self.clock.now(), type(exc).__name__
            )
            return
        await self.storage.inbound_events.finish(event_id, "done", self.clock.now())

    async def sweep(self) -> int:
        """Handle events left pending by a process that died (run by the worker)."""
        user_keys = await self.storage.inbound_events.stale_user_keys(
            self.clock.now() - STALE_AFTER
        )
        for user_key in user_keys:
            await self.process_user(user_key)
        return len(user_keys)


def _type(event: Any) -> str:
    return str(event.get("type")) if isinstance(event, dict) else type(event).__name__
