"""Registration card tokens for the QR verification page, and the card's status."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum

MAX_TOKEN_LENGTH = 128
_MAC_BYTES = 16
_MAX_ID_BYTES = 64
_MAC_CONTEXT = b"furusato-card-token:"
_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{22})")
_VERSION = re.compile(r"0|[1-9][0-9]{0,9}")
_JST = timezone(timedelta(hours=9), "JST")


@dataclass(frozen=True)
class CardClaims:
    """What a valid token says: which registration, and which card version."""

    registration_id: str
    version: int


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    """Decode unpadded base64url; None unless `text` is the canonical encoding."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _encode(raw) == text else None


def _mac(payload: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, _MAC_CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def sign_card_token(registration_id: str, version: int, secret: bytes) -> str:
    """A short URL-safe token: base64url(「id|version」) + "." + base64url(truncated HMAC)."""
    payload = f"{registration_id}|{version}".encode()
    if not secret or not registration_id or len(registration_id.encode()) > _MAX_ID_BYTES:
        raise ValueError("secret and registration_id (at most 64 bytes) are required")
    if not _VERSION.fullmatch(str(version)):
        raise ValueError("version must be an integer from 0 to 9,999,999,999")
    return f"{_encode(payload)}.{_encode(_mac(payload, secret))}"


def verify_card_token(token: str, secret: bytes) -> CardClaims | None:
    """The claims of a genuine token, or None for anything else; never raises."""
    match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None or not secret:
        return None
    payload, mac = _decode(match[1]), _decode(match[2])
    if payload is None or mac is None or not hmac.compare_digest(mac, _mac(payload, secret)):
        return None
    try:
        registration_id, separator, version = payload.decode("utf-8").rpartition("|")
    except UnicodeDecodeError:
        return None
    if not separator or not registration_id or not _VERSION.fullmatch(version):
        return None
    return CardClaims(registration_id=registration_id, version=int(version))


class CardStatus(StrEnum):
    """What the verification page shows."""

    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def label(self) -> str:
        """Japanese label."""
        return {
            CardStatus.VALID: "有効",
            CardStatus.EXPIRED: "有効期限切れ",
            CardStatus.REVOKED: "失効",
        }[self]


def _japan_date(value: date) -> date:
    """The Japan calendar date of a date or datetime (naive datetimes are UTC)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(_JST).date()
    return value


def card_status(
    now: datetime,
    valid_until: date | None,
    revoked: bool,
    version_in_token: int,
    current_version: int,
) -> CardStatus:
    """Revoked (or reissued) beats expired; `valid_until` is the last valid day, None for none."""
    if revoked or version_in_token != current_version:
        return CardStatus.REVOKED
    if valid_until is not None and _japan_date(now) > _japan_date(valid_until):
        return CardStatus.EXPIRED
    return CardStatus.VALID
