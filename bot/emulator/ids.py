"""Identifiers shaped like the ones the LINE platform hands out."""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import time
import uuid

USER_ID = re.compile(r"U[0-9a-f]{32}")

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def user_id() -> str:
    return "U" + uuid.uuid4().hex


def bot_user_id(channel_secret: str) -> str:
    """The bot's own user id (webhook `destination`), stable for one channel secret."""
    return "U" + hashlib.sha256(channel_secret.encode()).hexdigest()[:32]


def webhook_event_id() -> str:
    """A ULID: 48-bit millisecond time then 80 random bits, Crockford base32 (26 chars)."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def request_id() -> str:
    return str(uuid.uuid4())


def reply_token() -> str:
    return uuid.uuid4().hex


def quote_token() -> str:
    return secrets.token_urlsafe(48)


def rich_menu_id() -> str:
    return "richmenu-" + uuid.uuid4().hex


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class MessageIds:
    """Numeric message ids as LINE uses them (18 digits), increasing."""

    def __init__(self) -> None:
        self._next = itertools.count(int(time.time() * 1000) * 100000)

    def new(self) -> str:
        return str(next(self._next))
