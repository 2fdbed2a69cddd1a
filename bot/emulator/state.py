"""Everything the emulator remembers, in memory and bounded."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.emulator import ids
from bot.emulator.faults import Faults
from bot.emulator.ratelimit import RateLimiter

INBOX_LIMIT = 1000  # per user; seq numbers keep counting
CONTENT_LIMIT = 500  # images users sent
EVENT_LIMIT = 2000  # events kept for redelivery, and delivery records
NARROWCAST_LIMIT = 1000

# Quote tokens come back only for messages a user can quote.
QUOTABLE = {"text", "textV2", "sticker", "image", "video"}


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class InboxEntry:
    seq: int
    via: str
    message: dict[str, Any]
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "via": self.via, "message": self.message, "at": iso(self.at)}


@dataclass
class User:
    user_id: str
    display_name: str
    following: bool = False
    blocked: bool = False
    rich_menu_id: str | None = None
    inbox: deque[InboxEntry] = field(default_factory=lambda: deque(maxlen=INBOX_LIMIT))
    last_seq: int = 0
    # LINE hides a quick reply once the user acts; entries up to this seq lost theirs.
    quick_reply_hidden_upto: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def receive(self, via: str, message: dict[str, Any]) -> None:
        self.last_seq += 1
        self.inbox.append(InboxEntry(self.last_seq, via, message, datetime.now(UTC)))
        # Wake every waiter, then give later waiters a fresh event to wait on.
        self.arrived.set()
        self.arrived = asyncio.Event()

    def after(self, seq: int) -> list[InboxEntry]:
        return [entry for entry in self.inbox if entry.seq > seq]

    async def wait_after(self, seq: int, timeout: float) -> list[InboxEntry]:
        deadline = time.monotonic() + timeout
        while not (found := self.after(seq)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                break
        return found

    def acted(self) -> None:
        self.quick_reply_hidden_upto = self.last_seq

    def to_json(self) -> dict[str, Any]:
        return {
            "userId": self.user_id,
            "displayName": self.display_name,
            "following": self.following,
            "blocked": self.blocked,
        }


@dataclass
class RichMenu:
    rich_menu_id: str
    body: dict[str, Any]
    image: bytes | None = None
    image_type: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"richMenuId": self.rich_menu_id, **self.body}


@dataclass(frozen=True)
class AcceptedRequest:
    request_id: str
    sent_messages: list[dict[str, str]] | None
    expires: float


@dataclass
class Delivery:
    webhook_event_id: str
    event_type: str
    user_id: str
    is_redelivery: bool
    status: int
    error: str | None
    body: dict[str, Any]
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "webhookEventId": self.webhook_event_id,
            "type": self.event_type,
            "userId": self.user_id,
            "isRedelivery": self.is_redelivery,
            "status": self.status,
            "error": self.error,
            "body": self.body,
            "at": iso(self.at),
        }


class EmulatorState:
    """Users, their inboxes, rich menus and the platform's bookkeeping for one channel."""

    def __init__(
        self,
        *,
        channel_secret: str,
        access_token: str,
        webhook_url: str | None,
        rate_limits: Mapping[str, float] | None = None,
        reply_token_ttl: float = 60.0,
        retry_key_ttl: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel_secret = channel_secret
        self.access_token = access_token
        self.webhook_url = webhook_url
        self.bot_user_id = ids.bot_user_id(channel_secret)
        self.reply_token_ttl = reply_token_ttl
        self.retry_key_ttl = retry_key_ttl
        self.clock = clock
        self._initial_rate_limits = dict(rate_limits or {})
        self.message_ids = ids.MessageIds()
        self.reset()

    def reset(self) -> None:
        """Back to a fresh channel; the webhook URL and TTLs are wiring and stay."""
        self.users: dict[str, User] = {}
        self.rich_menus: dict[str, RichMenu] = {}
        self.aliases: dict[str, str] = {}
        self.default_rich_menu: str | None = None
        self.reply_tokens: dict[str, tuple[str, float]] = {}  # token -> (userId, expires)
        self.retry_keys: OrderedDict[str, AcceptedRequest] = OrderedDict()
        self.contents: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self.narrowcasts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.events: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.deliveries: deque[Delivery] = deque(maxlen=EVENT_LIMIT)
        self.requests: dict[str, Counter[str]] = {}
        self.messages_delivered = 0
        self.redeliver = False
        self.rate_limiter = RateLimiter(self._initial_rate_limits)
        self.faults = Faults()

    # --- users and their inboxes

    def add_user(self, user_id: str, display_name: str) -> User:
        user = self.users[user_id] = User(user_id, display_name)
        return user

    def deliver(self, user_id: str, via: str, messages: list[dict[str, Any]]) -> None:
        """Put messages in a user's inbox unless LINE would drop them (blocked, not a friend)."""
        user = self.users.get(user_id)
        if user is None or user.blocked or not (user.following or via == "reply"):
            return
        for message in messages:
            user.receive(via, message)
            self.messages_delivered += 1

    def sent_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        sent = []
        for message in messages:
            entry = {"id": self.message_ids.new()}
            if message.get("type") in QUOTABLE:
                entry["quoteToken"] = ids.quote_token()
            sent.append(entry)
        return sent

    def rich_menu_for(self, user: User) -> tuple[RichMenu, str] | None:
        """The menu a user sees and whether it is linked to them ("user") or the default."""
        if user.rich_menu_id in self.rich_menus:
            return self.rich_menus[user.rich_menu_id], "user"
        if self.default_rich_menu in self.rich_menus:
            return self.rich_menus[self.default_rich_menu], "default"
        return None

    # --- reply tokens and retry keys

    def issue_reply_token(self, user_id: str) -> str:
        now = self.clock()
        for token, (_, expires) in list(self.reply_tokens.items()):
            if expires <= now:
                del self.reply_tokens[token]
        token = ids.reply_token()
        self.reply_tokens[token] = (user_id, now + self.reply_token_ttl)
        return token

    def use_reply_token(self, token: str) -> str | None:
        """The user a valid token replies to; the token is spent either way."""
        user_id, expires = self.reply_tokens.pop(token, ("", 0.0))
        return user_id if user_id and expires > self.clock() else None

    def accepted(self, retry_key: str) -> AcceptedRequest | None:
        now = self.clock()
        while self.retry_keys:
            oldest = next(iter(self.retry_keys.values()))
            if oldest.expires > now:
                break
            self.retry_keys.popitem(last=False)
        return self.retry_keys.get(retry_key)

    def accept(self, retry_key: str, request_id: str, sent: list[dict[str, str]] | None) -> None:
        self.retry_keys[retry_key] = AcceptedRequest(
            request_id, sent, self.clock() + self.retry_key_ttl
        )

    # --- bounded stores

    def keep_content(self, message_id: str, data: bytes, content_type: str) -> None:
        _put(self.contents, message_id, (data, content_type), CONTENT_LIMIT)

    def keep_event(self, event: dict[str, Any]) -> None:
        _put(self.events, event["webhookEventId"], event, EVENT_LIMIT)

    def keep_narrowcast(self, request_id: str, progress: dict[str, Any]) -> None:
        _put(self.narrowcasts, request_id, progress, NARROWCAST_LIMIT)

    def count_request(self, route: str, status: int) -> None:
        self.requests.setdefault(route, Counter())[str(status)] += 1


def _put(store: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    store[key] = value
    while len(store) > limit:
        store.popitem(last=False)


STATE = web.AppKey("emulator_state", EmulatorState)
