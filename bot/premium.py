"""Premium applications: identity verification behind an interface, staff review by default.

The national app will verify identity with the My Number card; until a municipality plugs in such
a verifier, the resident sends a photo of an identity or activity document in the chat
(`dialogs/premium.yaml`) and the municipality's staff review it (`bot/staff/resources/premium.py`).
Either way the resident hears the result in the chat, pushed by `PremiumService`.

Eligibility (`check_application`) follows `check_premium`: a qualifying relationship type (③ 担い手
or ④ 二地域居住 by default; a municipality may designate others in its `municipalities` document,
field `premium_types`), never the residence municipality, at most 3 Premium places at once
(applications still waiting count as places: four approvals cannot exceed the limit), not twice,
and not while an application for the place is waiting.

Approval makes the registration Premium for one year (`set_tier`; the card version changes, so the
new card shows プレミアム登録) and discards the document; rejection discards it too. A decision is
made exactly once, however many staff press the button at the same moment
(`PremiumApplications.decide`), so the resident is told once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

from bson import ObjectId
from linebot.v3.messaging import AsyncMessagingApiBlob, Message

from bot.clock import JST, Clock
from bot.domain.places import get_place
from bot.domain.registration import (
    PREMIUM_MAX_PLACES,
    PREMIUM_TYPES,
    RENEWAL_MIN_ACTIVITIES,
    Refusal,
    RelationshipType,
    Tier,
    check_premium,
    premium_valid_until,
)
from bot.line.client import LineClient
from bot.render import Renderer
from bot.settings import Settings
from bot.storage import Storage
from bot.storage.db import Document
from bot.storage.premium import APPROVED, PENDING, REJECTED, WITHDRAWN

log = logging.getLogger("bot.premium")

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
_IMAGE_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
PENDING_REASON = "pending"  # eligibility: an application for the place is already waiting


class DocumentRejected(Exception):
    """The photo cannot be used; `template` is the retry message to show the resident."""

    def __init__(self, template: str) -> None:
        super().__init__(template)
        self.template = template


def sniff_image(content: bytes) -> str:
    """The content type of a JPEG or PNG photo within the size limit; raises otherwise."""
    if not content:
        raise DocumentRejected("premium/document_empty")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise DocumentRejected("premium/document_too_large")
    for magic, content_type in _IMAGE_TYPES.items():
        if content.startswith(magic):
            return content_type
    raise DocumentRejected("premium/document_type")


# --- eligibility -----------------------------------------------------------------------------------


def place_name(code: object) -> str:
    place = get_place(str(code)) if code else None
    return place.display_name if place else str(code or "")


def is_active_premium(registration: Document, now: datetime) -> bool:
    """Premium, active, and not past its validity."""
    if registration.get("tier") != Tier.PREMIUM.value or registration.get("status") != "active":
        return False
    valid_until = registration.get("valid_until")
    if not isinstance(valid_until, datetime):
        return True
    aware = valid_until if valid_until.tzinfo else valid_until.replace(tzinfo=UTC)
    return aware >= now


def current_residence(registrations: Sequence[Document]) -> str | None:
    """The residence given most recently (registrations oldest first)."""
    for doc in reversed(registrations):
        if doc.get("residence_code"):
            return str(doc["residence_code"])
    return None


async def designated_types(storage: Storage, place_code: str) -> tuple[RelationshipType, ...]:
    """The relationship types that qualify for Premium at this place."""
    doc = await storage.municipalities.get(place_code)
    designated: list[RelationshipType] = []
    for value in (doc or {}).get("premium_types") or []:
        try:
            designated.append(RelationshipType(str(value)))
        except ValueError:
            log.warning("unknown premium type ignored", extra={"place": place_code})
    return tuple(designated) or PREMIUM_TYPES


@dataclass(frozen=True)
class Eligibility:
    """Whether a resident may apply for Premium at a place, and why not."""

    place_code: str
    registration: Document | None
    reason: str = ""  # a `Refusal` value, PENDING_REASON, or "" when allowed
    message: str = ""
    counted_pending: int = 0  # waiting applications counted towards the limit
    designated: tuple[RelationshipType, ...] = PREMIUM_TYPES  # the types that qualify here

    @property
    def ok(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Standing:
    """The resident's registrations and Premium places, read once for several checks."""

    registrations: list[Document]
    active_premium: frozenset[str]
    pending: frozenset[str]
    residence: str | None = None
    designated: dict[str, tuple[RelationshipType, ...]] = field(default_factory=dict)


async def standing_of(storage: Storage, user_id: str, now: datetime) -> Standing:
    registrations = await storage.registrations.for_user(user_id)
    pending = await storage.premium_applications.pending_for_user(user_id)
    designated = {
        str(doc["place_code"]): await designated_types(storage, str(doc["place_code"]))
        for doc in registrations
    }
    return Standing(
        registrations=registrations,
        active_premium=frozenset(
            str(doc["place_code"]) for doc in registrations if is_active_premium(doc, now)
        ),
        pending=frozenset(str(doc["place_code"]) for doc in pending),
        residence=current_residence(registrations),
        designated=designated,
    )


def eligibility(standing: Standing, place_code: str) -> Eligibility:
    registration = next(
        (doc for doc in standing.registrations if doc["place_code"] == place_code), None
    )
    if registration is None:
        return Eligibility(
            place_code,
            None,
            Refusal.UNKNOWN_PLACE.value,
            f"{place_name(place_code)}にはまだふるさと登録がありません。",
        )
    if place_code in standing.pending:
        return Eligibility(
            place_code,
            registration,
            PENDING_REASON,
            f"{place_name(place_code)}のプレミアム登録は、ただいま審査中です。"
            "結果はこのトークでお知らせしますので、もうしばらくお待ちください。",
        )
    # Waiting applications elsewhere hold a place: approving them all must stay within 3.
    others_pending = standing.pending - {place_code}
    types = [t for t in map(_type, registration.get("types") or []) if t is not None]
    designated = standing.designated.get(place_code, PREMIUM_TYPES)
    decision = check_premium(
        place_code,
        standing.residence,
        types,
        standing.active_premium | others_pending,
        designated,
    )
    if decision.ok:
        return Eligibility(place_code, registration, designated=designated)
    counted = len(others_pending) if decision.reason is Refusal.PREMIUM_LIMIT else 0
    return Eligibility(
        place_code,
        registration,
        str(decision.reason),
        decision.message,
        counted_pending=counted,
        designated=designated,
    )


def _type(value: object) -> RelationshipType | None:
    try:
        return RelationshipType(str(value))
    except ValueError:
        return None


async def check_application(
    storage: Storage, user_id: str, place_code: str, now: datetime
) -> Eligibility:
    return eligibility(await standing_of(storage, user_id, now), place_code)


# --- verification and review -----------------------------------------------------------------------


class IdentityVerifier(Protocol):
    """Decides how an application's identity is verified."""

    name: str

    async def submitted(self, application: Document) -> None:
        """Called once the application and its document are stored."""


class StaffReview:
    """The default: the application waits in the municipality's review queue."""

    name = "staff_review"

    async def submitted(self, application: Document) -> None:
        log.info(
            "premium application waits for staff review", extra={"place": application["place_code"]}
        )


class ReviewRefused(Exception):
    """An application that cannot be approved now; `code` and a Japanese `message` for staff."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Decision:
    application: Document
    registration: Document | None
    notified: bool = False  # the resident was told in the chat


class PremiumService:
    def __init__(
        self,
        storage: Storage,
        line: LineClient,
        blob: AsyncMessagingApiBlob,
        renderer: Renderer,
        clock: Clock,
        verifier: IdentityVerifier | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.storage = storage
        self.line = line
        self.blob = blob
        self.renderer = renderer
        self.clock = clock
        self.verifier = verifier or StaffReview()
        self.settings = settings  # to send the new card with the approval

    async def fetch_document(self, message_id: str) -> tuple[bytes, str]:
        """The photo the resident sent, checked for type and size."""
        content = bytes(await self.blob.get_message_content(message_id, _request_timeout=30))
        return content, sniff_image(content)

    async def apply(
        self, registration: Document, content: bytes, content_type: str, origin: str = ""
    ) -> Document | None:
        """Store the application and its document; None when one is already waiting (except
        one the flow run `origin` submitted: this finishes it, after a crash)."""
        now = self.clock.now()
        submitted = await self.storage.premium_applications.submit(
            registration["user_id"],
            registration["place_code"],
            registration["_id"],
            self.verifier.name,
            now,
            origin,
        )
        if submitted.application is None:
            return None
        application = submitted.application
        documents = self.storage.identity_documents
        try:
            if not await documents.exists(application["_id"]):
                await documents.put(
                    application["_id"], registration["user_id"], content, content_type, now
                )
        except Exception:
            # No application without its document in the queue.
            await self.storage.premium_applications.decide(
                application["_id"], WITHDRAWN, "system", "書類を保存できませんでした。", now
            )
            raise
        await self.verifier.submitted(application)
        return application

    async def approve(self, application_id: str, staff: str) -> Decision | None:
        """Approve once; None when it was decided already. `ReviewRefused` when the resident's
        registration is gone (the application is withdrawn) or Premium is full elsewhere."""
        now = self.clock.now()
        application = await self._pending_with_registration(application_id, staff, now)
        if application is None:
            return None
        others = await self.storage.registrations.for_user(str(application["user_id"]))
        active = {
            str(doc["place_code"])
            for doc in others
            if is_active_premium(doc, now) and doc["place_code"] != application["place_code"]
        }
        if len(active) >= PREMIUM_MAX_PLACES:
            raise ReviewRefused(
                "premium_limit",
                f"この方はすでに{PREMIUM_MAX_PLACES}か所でプレミアム登録をしているため、"
                "承認できません。",
            )
        decided = await self.storage.premium_applications.decide(
            application_id, APPROVED, staff, "", now
        )
        if decided is None:
            return None
        valid_until = _end_of_day(premium_valid_until(now.astimezone(JST).date()))
        updated = await self.storage.registrations.set_tier(
            decided["registration_id"], Tier.PREMIUM, valid_until, now
        )
        await self.storage.identity_documents.discard(decided["_id"])
        card = self._card(updated) if updated is not None else []
        notified = await self._tell(
            decided,
            "premium/approved",
            {
                "valid_until": valid_until,
                "has_card": bool(card),
                "renewal_activities": RENEWAL_MIN_ACTIVITIES,
            },
            card,
        )
        return Decision(decided, updated, notified)

    async def reject(self, application_id: str, staff: str, reason: str) -> Decision | None:
        """Reject once with the reason the resident is told; None when decided already.
        `ReviewRefused` when the registration is gone (the application is withdrawn)."""
        now = self.clock.now()
        if await self._pending_with_registration(application_id, staff, now) is None:
            return None
        decided = await self.storage.premium_applications.decide(
            application_id, REJECTED, staff, reason, now
        )
        if decided is None:
            return None
        await self.storage.identity_documents.discard(decided["_id"])
        notified = await self._tell(decided, "premium/rejected", {"reason": reason})
        return Decision(decided, None, notified)

    async def _pending_with_registration(
        self, application_id: str, staff: str, now: datetime
    ) -> Document | None:
        """The application while it waits (else None). When the resident has removed the
        registration meanwhile, it is withdrawn instead, silently (`ReviewRefused`): telling
        them about a place they left would only confuse."""
        application = await self.storage.premium_applications.get(application_id)
        if application is None or application.get("status") != PENDING:
            return None
        registration = await self.storage.registrations.get(str(application["registration_id"]))
        if registration is not None and registration.get("user_id") == application["user_id"]:
            return application
        withdrawn = await self.storage.premium_applications.decide(
            application_id, WITHDRAWN, staff, "登録が解除されました。", now
        )
        if withdrawn is None:
            return None
        await self.storage.identity_documents.discard(withdrawn["_id"])
        raise ReviewRefused(
            "registration_removed",
            "この方はすでに登録を解除しているため、申請は取り下げになりました。",
        )

    async def document(self, application: Document) -> tuple[bytes, str] | None:
        application_id = application["_id"]
        if not isinstance(application_id, ObjectId):
            return None
        return await self.storage.identity_documents.get(application_id)

    def _card(self, registration: Document) -> list[Message]:
        if self.settings is None:
            return []
        try:
            from bot.cards import card_messages

            return list(card_messages(registration, settings=self.settings))[:4]
        except Exception:
            log.exception("the new Premium card could not be rendered")
            return []

    async def _tell(
        self,
        application: Document,
        template: str,
        context: dict[str, Any],
        extra: Sequence[Message] = (),
    ) -> bool:
        """Push the result to the resident, once per application; False if it did not go out
        (blocked, or LINE failed: the decision stands and is logged)."""
        code = str(application["place_code"])
        try:
            messages = self.renderer.render(
                template, {"place": place_name(code), **context}, municipality=code
            )
            return await self.line.push(
                str(application["user_id"]),
                [*messages, *extra],
                logical_key=f"premium:{application['_id']}",
            )
        except Exception:
            log.exception(
                "the resident could not be told the Premium decision",
                extra={"application": str(application["_id"])},
            )
            return False


def _end_of_day(day: date) -> datetime:
    """The last valid day, as the end of that day in Japan time, stored in UTC."""
    return datetime.combine(day, time(23, 59, 59), JST).astimezone(UTC)
