"""Webhook events from storage to the handler: once each, one user at a time, in time order.

The web process stores every event (the unique `webhookEventId` makes redeliveries no-ops),
answers LINE, then handles the user's pending events in the background under a per-user lease,
so two web processes never handle one user's events at once or out of order. A sweep picks up
events left pending by a process that died.

Exactly once across faults (docs/RELIABILITY.md):
- the database away mid-way: the user's queue is retried in this process, with the same lease
  owner, once the database answers; the event is not marked failed;
- a turn is not run twice: the conversation state a turn writes names its event; a handler
  that finds its event named there raises `TurnCommitted`, and the event is finished without
  running the turn again (a turn that writes no state changes nothing when run again);
- a reply is neither lost nor sent twice: the event records each reply (its number and its
  messages) just before it is sent; an attempt after an interrupted one resends a recorded
  reply only by the same reply token or under the same push retry key, which LINE accepts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from linebot.v3.messaging import Message
from pymongo.errors import PyMongoError

from bot.background import cancelling, stop_if_cancelled
from bot.clock import Clock
from bot.line.client import LineClient
from bot.line.incoming import EventHandler, Incoming, Kind, Location, TurnCommitted
from bot.storage import Storage
from bot.storage.db import Document

log = logging.getLogger("bot.pipeline")

# The holder renews its lease while a handler runs (every third of the TTL), so the TTL only
# bounds how long a dead process's users wait before someone else takes their queue.
LEASE_TTL = timedelta(seconds=30)
# A pending event older than this whose user has no live lease was abandoned by a dead process.
STALE_AFTER = timedelta(seconds=30)
# While the database is away, a user's queue is retried with these pauses, then left to the sweep.
DB_RETRY_FIRST_S = 0.5
DB_RETRY_MAX_S = 4.0
DB_RETRY_FOR_S = 120.0
SWEEP_INTERVAL_S = 10.0
# Turns one process runs at once. Unbounded, 100 users at once queued so much database work that
# storing a new webhook took over `STORE_TIMEOUT_S` and LINE got 503s (the chat benchmark);
# each turn then waits its place in order, and a webhook's store waits behind at most these.
HANDLING_SLOTS = 16

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
        "timestamp": _when(event.get("timestamp")),
    }
    kind = event.get("type")
    if kind == "message":
        message = _dict(event.get("message"))
        mkind = _MESSAGE_KINDS.get(str(message.get("type")), "other")
        if mkind == "text":
            return Incoming(kind="text", text=str(message.get("text", "")), **base)
        if mkind == "image":
            return Incoming(kind="image", message_id=str(message.get("id", "")), **base)
        if mkind == "location":
            return Incoming(kind="location", location=_location(message), **base)
        return Incoming(kind=mkind, **base)
    if kind == "postback":
        postback = _dict(event.get("postback"))
        params = _dict(postback.get("params"))
        return Incoming(
            kind="postback",
            data=str(postback.get("data", "")),
            params={str(k): str(v) for k, v in params.items()},
            **base,
        )
    if kind == "follow":
        follow = _dict(event.get("follow"))
        return Incoming(kind="follow", is_unblocked=bool(follow.get("isUnblocked")), **base)
    if kind == "unfollow":
        return Incoming(kind="unfollow", **base)
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: Any) -> dict[str, Any]:
    """A part of an event that should be an object; {} when LINE (or anyone) sent otherwise."""
    return value if isinstance(value, dict) else {}


def _when(value: Any) -> datetime:
    """An event's timestamp (ms); the epoch when it is none a clock can show."""
    try:
        return datetime.fromtimestamp(_int(value) / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return datetime.fromtimestamp(0, UTC)


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
        # Replies a turn produced but could not record (database away), by event: sent when a
        # retry finds the turn committed, so the resident still gets the answer once.
        self._unsent: dict[str, dict[int, Sequence[Message]]] = {}
        self._slots = asyncio.Semaphore(HANDLING_SLOTS)
        # Users with a task here, and whether an event of theirs was stored since that task
        # last read their queue: a second task would only fail to take the lease.
        self._again: dict[str, bool] = {}

    async def accept(self, events: Sequence[Any], users: list[str]) -> None:
        """Store new events; `users` gets the users whose queues need handling, also when a
        database error (raised) stops it part way."""
        now = self.clock.now()
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
            try:
                stored = await self.storage.inbound_events.add(event, user_key, now)
            except PyMongoError:
                # A timeout may come after the insert went through: look for it anyway.
                users.append(user_key)
                raise
            if not stored:
                # Stored by a delivery that then failed (or whose process died), it may still
                # be waiting: this one is the moment to pick it up. Handled already, the
                # lookup drops it again (`InboundEvents.add`).
                log.info("duplicate event", extra={"event_id": event["webhookEventId"]})
            users.append(user_key)

    def schedule(self, user_keys: Sequence[str]) -> None:
        for user_key in dict.fromkeys(user_keys):
            if user_key in self._again:
                self._again[user_key] = True  # its task reads the queue again before it ends
                continue
            self._again[user_key] = False
            task = asyncio.create_task(self.process_user(user_key))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def drain(self, timeout: float | None = None) -> int:
        """Wait for the events being handled (graceful shutdown); the tasks still running after
        `timeout` are cancelled and counted: their events stay pending for the sweep."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self.tasks:
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                break
            await asyncio.wait(list(self.tasks), timeout=remaining)
        left = list(self.tasks)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        return len(left)

    async def process_user(self, user_key: str) -> None:
        try:
            await self._process_user(user_key)
        finally:
            # An event stored after the task's last look at the queue (it gave up, or lost
            # the lease) gets a task of its own, as it would have without this one; a
            # cancelled task (shutdown) leaves it to the sweep.
            if self._again.pop(user_key, False) and not cancelling():
                self.schedule([user_key])

    async def _process_user(self, user_key: str) -> None:
        # Each call holds the lease under its own name, so two tasks of one process exclude
        # each other just as two processes do. The name survives database outages: once the
        # database is back, this task renews its own lease and goes on where it stopped.
        owner = uuid.uuid4().hex
        delay = DB_RETRY_FIRST_S
        gave_up_at = asyncio.get_running_loop().time() + DB_RETRY_FOR_S
        while True:
            try:
                await self._drain_user(user_key, owner)
                return
            except PyMongoError as exc:
                stop_if_cancelled()
                if asyncio.get_running_loop().time() >= gave_up_at:
                    log.error("database away too long; the sweep will retry the user's events")
                    return
                log.warning(
                    "database away while handling events; retrying",
                    extra={"error": type(exc).__name__, "delay_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)
            except Exception:
                stop_if_cancelled()
                log.exception("handling a user's events failed; the sweep will retry")
                return

    async def _drain_user(self, user_key: str, owner: str) -> None:
        leases = self.storage.leases
        events = self.storage.inbound_events

        async def read_queue() -> list[Document]:
            self._again[user_key] = False  # what is stored from here on, this read may miss
            return await events.pending.queue(user_key)

        while True:
            # The queue is read while the lease is being taken (a round trip saved), once it
            # is seen free: what its previous holder handled has left the queue by then.
            acquired, queue = await leases.acquire_then(
                user_key, owner, self.clock.now(), LEASE_TTL, read_queue
            )
            if not acquired:
                return  # the holder picks up what is queued (below)
            assert queue is not None  # read when the lease was taken
            held_at = self.clock.now()
            try:
                while (event := await events.first_pending(queue)) is not None:
                    # A slot per event, not per queue: a user who writes again at once does
                    # not keep it while others wait.
                    async with self._slots:
                        # A lease taken (or renewed) less than half its TTL ago is still ours:
                        # ask the database only when it may have run out while a handler ran,
                        # or while this turn waited for its slot.
                        if self.clock.now() - held_at >= LEASE_TTL / 2:
                            if not await leases.acquire(
                                user_key, owner, self.clock.now(), LEASE_TTL
                            ):
                                return  # our lease ran out and another process took the queue
                            held_at = self.clock.now()
                        async with self._renewing(user_key, owner):
                            await self._handle(event)
                    if queue[-1]["_id"] == event["_id"] and not self._again[user_key]:
                        break  # the last one read: what other processes stored is read below
                    # Read again before the next: one with an earlier time may have been stored
                    # meanwhile, by this process or another.
                    queue = await read_queue()
            finally:
                await leases.release(user_key, owner)
            # An event stored while we held the lease is ours to pick up: its sender saw our
            # lease and left it to us.
            queue = await read_queue()
            pending = await events.first_pending(queue)
            if pending is None and not self._again[user_key]:
                return

    @contextlib.asynccontextmanager
    async def _renewing(self, user_key: str, owner: str) -> AsyncIterator[None]:
        """Keep the lease alive while a handler runs (LINE retries can take a while)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(LEASE_TTL.total_seconds() / 3)
                try:
                    await self.storage.leases.acquire(user_key, owner, self.clock.now(), LEASE_TTL)
                except PyMongoError:
                    stop_if_cancelled()

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _handle(self, stored: dict[str, Any]) -> None:
        event_id, user_key = str(stored["_id"]), str(stored["user_key"])
        event = self.storage.inbound_events.event_of(stored)
        events = self.storage.inbound_events
        if event.get("mode") == "standby":
            await events.finish(event_id, user_key, "skipped", self.clock.now())
            return
        incoming = to_incoming(event)
        if incoming is None:
            log.info("event type not handled", extra={"event_id": event_id, "type": _type(event)})
            await events.finish(event_id, user_key, "ignored", self.clock.now())
            return
        tried = _int(stored.get("replies_tried"))
        token = event.get("replyToken")
        reply_token = token if isinstance(token, str) else None
        # Numbered replies of this attempt, each recorded on the event before it is sent.
        replies = 0

        async def reply(messages: Sequence[Message]) -> None:
            nonlocal replies
            replies += 1
            await self._send_reply(
                stored, incoming.user_id, reply_token, replies, messages, replies <= tried
            )

        status, error = "done", ""
        try:
            await self.handler(incoming, reply)
        except TurnCommitted as committed:
            # Running it again would apply it twice: send the answer stored with the commit and
            # what the earlier attempt recorded, at most once each (see `_send_reply`).
            log.warning("event committed by an earlier attempt", extra={"event_id": event_id})
            stored_replies = {1: committed.reply} if committed.reply else {}
            recorded: dict[int, Sequence[Message]] = {
                n: [Message.from_dict(m) for m in messages]
                for n, messages in (stored_replies | events.replies_of(stored)).items()
            }
            resend = sorted((recorded | self._unsent.pop(event_id, {})).items())
            for n, messages in resend:
                await self._send_reply(
                    stored, incoming.user_id, reply_token, n, messages, n <= tried
                )
            replies = len(resend)
        except PyMongoError:
            raise  # not the handler's fault: the event stays pending and is retried
        except Exception as exc:
            log.exception("event handler failed", extra={"event_id": event_id})
            status, error = "failed", type(exc).__name__
        self._unsent.pop(event_id, None)
        await events.finish(
            event_id, user_key, status, self.clock.now(), error, marked=tried > 0 or replies > 0
        )

    async def _send_reply(
        self,
        stored: dict[str, Any],
        user_id: str,
        reply_token: str | None,
        n: int,
        messages: Sequence[Message],
        tried: bool,
    ) -> None:
        """Reply number `n` to an event, at most once whatever happened to earlier attempts.

        `tried`: an earlier attempt got as far as sending it (it may have gone out). Then only
        ways LINE refuses twice are used: the same reply token (spent if it went out), or a push
        under the retry key the earlier push stored.
        """
        event_id = str(stored["_id"])
        if tried:
            log.warning("reply tried by an interrupted attempt; resending once", extra={"n": n})
        else:
            try:
                await self.storage.inbound_events.mark_reply(
                    event_id,
                    str(stored["user_key"]),
                    n,
                    [message.to_dict() for message in messages],
                )
            except PyMongoError:
                # Not sent: kept for a retry that finds this turn committed.
                self._unsent.setdefault(event_id, {})[n] = messages
                raise
        await self.line.reply(
            reply_token if n == 1 else None,
            user_id,
            messages,
            logical_key=f"reply:{event_id}:{n}",
            push_fallback=not tried,
        )

    async def sweep(self) -> int:
        """Start handling events left pending by a process that died (or gave up on the
        database); the number of users. A user whose queue is still leased is left alone."""
        user_keys = await self.storage.inbound_events.pending.stale_user_keys(
            self.clock.now() - STALE_AFTER
        )
        self.schedule(user_keys)
        return len(user_keys)

    async def sweep_forever(self, interval: float = SWEEP_INTERVAL_S) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if found := await self.sweep():
                    log.info("sweep found pending events", extra={"users": found})
            except PyMongoError as exc:
                stop_if_cancelled()
                log.warning("sweep skipped: database away", extra={"error": type(exc).__name__})


def _type(event: Any) -> str:
    return str(event.get("type")) if isinstance(event, dict) else type(event).__name__
