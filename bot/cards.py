"""The registration card (ふるさと住民登録証): its LINE Flex message, QR code and verification.

A card is a Flex bubble rendered from `templates/card/`; its QR code opens
`PUBLIC_BASE_URL/verify/{token}`, where `token` is signed with `CARD_SIGNING_SECRET` and names the
registration and its `card_version` (bumping the version revokes every card issued before).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import segno
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from linebot.v3.messaging import FlexMessage, Message

from bot.clock import JST
from bot.domain.cards import CardStatus, card_status, sign_card_token, verify_card_token
from bot.domain.places import get_place
from bot.domain.registration import Tier
from bot.render import RenderError, json_messages
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.storage import Storage

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

# LINE's limits (bytes of the compact JSON, as the platform counts them).
MAX_BUBBLE_BYTES = 30_000
MAX_CAROUSEL_BYTES = 50_000
MAX_CAROUSEL_BUBBLES = 12
MAX_MESSAGES = 5
MAX_CARDS_PER_REQUEST = MAX_CAROUSEL_BUBBLES * MAX_MESSAGES

NICKNAME_MAX = 40
NO_NICKNAME = "（ニックネーム未設定）"
NO_EXPIRY = "期限なし"

# The QR code: medium error correction, 8 px a module, the standard quiet zone of 4 modules.
QR_ERROR = "m"
QR_SCALE = 8
QR_BORDER = 4

Registration = Mapping[str, Any]


# --- tokens, URLs and the QR code -----------------------------------------------------------------


def _secret(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def card_token(registration: Registration, secret: str | bytes) -> str:
    """The signed token of this registration's current card."""
    return sign_card_token(
        str(registration["_id"]), int(registration.get("card_version", 1)), _secret(secret)
    )


def verify_url(registration: Registration, settings: Settings) -> str:
    """`PUBLIC_BASE_URL/verify/{token}`: what the card's QR code opens."""
    return verify_url_for_token(card_token(registration, settings.card_signing_secret), settings)


def verify_url_for_token(token: str, settings: Settings) -> str:
    return f"{settings.public_base_url}/verify/{token}"


def qr_image_url(registration: Registration, settings: Settings) -> str:
    """`PUBLIC_BASE_URL/verify/{token}/qr.png`: the card's QR code image."""
    return verify_url(registration, settings) + "/qr.png"


def qr_code(url: str) -> segno.QRCode:
    """The QR code (never a Micro QR) that encodes `url`."""
    return segno.make(url, error=QR_ERROR, micro=False)


def qr_png(url: str) -> bytes:
    """A PNG of the QR code of `url` (black on white, with the quiet zone)."""
    out = io.BytesIO()
    qr_code(url).save(out, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return out.getvalue()


# --- display values -------------------------------------------------------------------------------


def japan_date(value: date | datetime) -> date:
    """The Japan calendar date of a date or datetime (naive datetimes are UTC)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(JST).date()
    return value


def japanese_date(value: date | datetime) -> str:
    """「2027年1月9日」 (the Japan date)."""
    day = japan_date(value)
    return f"{day.year}年{day.month}月{day.day}日"


def valid_until_label(value: date | datetime | None) -> str:
    """The last valid day, or 「期限なし」 for a registration without expiry (Basic)."""
    return NO_EXPIRY if value is None else japanese_date(value)


def place_name(code: object) -> str:
    """「宮城県気仙沼市」 for a known code, else the code itself."""
    place = get_place(str(code))
    return place.display_name if place else str(code)


def tier_label(tier: object) -> str:
    try:
        return Tier(str(tier)).label
    except ValueError:
        return str(tier)


def display_nickname(nickname: object) -> str:
    """The nickname as shown on the card and the verification page (trimmed, at most 40 chars)."""
    text = " ".join(str(nickname or "").split())
    if not text:
        return NO_NICKNAME
    return text if len(text) <= NICKNAME_MAX else text[: NICKNAME_MAX - 1] + "…"


def card_context(registration: Registration, settings: Settings) -> dict[str, str]:
    """What `templates/card/bubble.json` shows of one registration."""
    url = verify_url(registration, settings)
    since = registration.get("since") or registration.get("created_at")
    return {
        "place_name": place_name(registration.get("place_code")),
        "tier": str(registration.get("tier", "")),
        "tier_label": tier_label(registration.get("tier")),
        "nickname": display_nickname(registration.get("nickname")),
        "number": str(registration.get("number") or "—"),
        "since": japanese_date(since) if isinstance(since, date) else "—",
        "valid_until": valid_until_label(registration.get("valid_until")),
        "verify_url": url,
        "qr_url": url + "/qr.png",
    }


# --- Flex messages --------------------------------------------------------------------------------


def _json_string(value: Any) -> str:
    """Every `{{ }}` output: the value as the inside of a JSON string (as in `bot/render.py`)."""
    return json.dumps("" if value is None else str(value), ensure_ascii=False)[1:-1]


@cache
def _environment() -> SandboxedEnvironment:
    # The conventions of bot/render.py's JSON templates. The card area is rendered here (it is
    # one of its FOREIGN_AREAS): carousels and LINE's size limits need more than one template.
    return SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_json_string,
    )


def _render(name: str, context: Mapping[str, Any]) -> tuple[dict[str, Any], FlexMessage]:
    """The rendered message as JSON and as the SDK's validated model."""
    rendered = _environment().get_template(name).render(context)
    [message] = json_messages(rendered, name)  # SDK models; unknown fields are errors
    if not isinstance(message, FlexMessage):
        raise RenderError(f"template {name} must render to one Flex message")
    data = json.loads(rendered)
    return data, message


def json_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON, as LINE measures Flex sizes."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _check_limits(data: dict[str, Any], name: str) -> None:
    """LINE's limits: 1 to 12 bubbles, a bubble at most 30 KB, a carousel at most 50 KB."""
    contents = data["contents"]
    bubbles = contents["contents"] if contents["type"] == "carousel" else [contents]
    if not 1 <= len(bubbles) <= MAX_CAROUSEL_BUBBLES:
        raise RenderError(f"template {name}: a carousel holds 1 to {MAX_CAROUSEL_BUBBLES} bubbles")
    for bubble in bubbles:
        if json_size(bubble) > MAX_BUBBLE_BYTES:
            raise RenderError(f"template {name}: a bubble is larger than {MAX_BUBBLE_BYTES} bytes")
    if contents["type"] == "carousel" and json_size(contents) > MAX_CAROUSEL_BYTES:
        raise RenderError(f"template {name}: larger than {MAX_CAROUSEL_BYTES} bytes")


def card_messages(registration: Registration, *, settings: Settings) -> list[Message]:
    """The registration card as one Flex message (a bubble)."""
    data, message = _render("card/card.json", {"card": card_context(registration, settings)})
    _check_limits(data, "card/card.json")
    return [message]


def _carousel(cards: list[dict[str, str]]) -> list[Message]:
    """One carousel message, or several when the cards exceed 50 KB together."""
    data, message = _render("card/carousel.json", {"cards": cards})
    if len(cards) > 1 and json_size(data["contents"]) > MAX_CAROUSEL_BYTES:
        half = len(cards) // 2
        return _carousel(cards[:half]) + _carousel(cards[half:])
    _check_limits(data, "card/carousel.json")
    return [message]


def card_message_batches(
    registrations: Sequence[Registration], settings: Settings
) -> list[list[Message]]:
    """Every card, as carousels of at most 12, in batches of at most 5 messages (one request)."""
    if len(registrations) == 1:
        return [card_messages(registrations[0], settings=settings)]
    contexts = [card_context(registration, settings) for registration in registrations]
    messages: list[Message] = []
    for start in range(0, len(contexts), MAX_CAROUSEL_BUBBLES):
        messages.extend(_carousel(contexts[start : start + MAX_CAROUSEL_BUBBLES]))
    return [messages[i : i + MAX_MESSAGES] for i in range(0, len(messages), MAX_MESSAGES)]


def cards_carousel(registrations: Sequence[Registration], settings: Settings) -> list[Message]:
    """Several cards as carousels of at most 12 bubbles, at most 5 messages (one send request).

    A single registration gives its card bubble; none gives no message. Cards that do not fit in
    5 messages (more than 60) are left out and logged: use `card_message_batches` to send them all.
    """
    batches = card_message_batches(registrations, settings)
    if len(batches) > 1:
        left_out = sum(len(batch) for batch in batches[1:])
        log.warning(
            "cards left out of one request",
            extra={"cards": len(registrations), "messages_left_out": left_out},
        )
    return batches[0] if batches else []


# --- verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardCheck:
    """What the verification page shows for a genuine token.

    The details are given only while the token is the registration's current card (valid or
    expired); a revoked card or a deleted registration shows its status alone.
    """

    status: CardStatus
    place_name: str | None = None
    tier: str | None = None
    tier_label: str | None = None
    nickname: str | None = None
    valid_until: str | None = None


async def get_registration(storage: Storage, registration_id: str) -> dict[str, Any] | None:
    """The registration with this id (string form of its ObjectId), or None."""
    return await storage.registrations.get(registration_id)


async def check_card(
    token: str, *, storage: Storage, settings: Settings, now: datetime
) -> CardCheck | None:
    """The card's status and what may be shown of it; None for a token that is not genuine.

    Database errors propagate (the page answers 503): a card is never called invalid or revoked
    because the database was away.
    """
    claims = verify_card_token(token, _secret(settings.card_signing_secret))
    if claims is None:
        return None
    registration = await get_registration(storage, claims.registration_id)
    if registration is None:
        return CardCheck(status=CardStatus.REVOKED)
    valid_until = registration.get("valid_until")
    if valid_until is not None and not isinstance(valid_until, date):
        valid_until = date.min  # unreadable expiry: fail closed (expired), never "no expiry"
    status = card_status(
        now,
        valid_until,
        revoked=registration.get("status") != "active",
        version_in_token=claims.version,
        current_version=_int(registration.get("card_version"), default=1),
    )
    if status is CardStatus.REVOKED:
        return CardCheck(status=status)
    return CardCheck(
        status=status,
        place_name=place_name(registration.get("place_code")),
        tier=str(registration.get("tier", "")),
        tier_label=tier_label(registration.get("tier")),
        nickname=display_nickname(registration.get("nickname")),
        valid_until="—" if valid_until == date.min else valid_until_label(valid_until),
    )


def _int(value: object, *, default: int) -> int:
    if value is None:
        return default
    return value if isinstance(value, int) and not isinstance(value, bool) else -1
