"""Premium applications: identity verification behind an interface, staff review by default.

The national app will verify identity with the My Number card; until a municipality plugs in such
a verifier, the resident sends a photo of an identity or activity document in the chat and the
municipality's staff review it. Either way the resident hears the result in the chat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Protocol

from bson import ObjectId
from linebot.v3.messaging import AsyncMessagingApiBlob

from bot.clock import JST, Clock
from bot.domain.places import get_place
from bot.domain.registration import Tier, premium_valid_until
from bot.line.client import LineClient
from bot.render import Renderer
from bot.storage import Storage
from bot.storage.db import Document
from bot.storage.premium import APPROVED, REJECTED

log = logging.getLogger("bot.premium")

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
_IMAGE_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


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


@dataclass(frozen=True)
class Decision:
    application: Document
    registration: Document | None


class PremiumService:
    def __init__(
        self,
        storage: Storage,
        line: LineClient,
        blob: AsyncMessagingApiBlob,
        renderer: Renderer,
        clock: Clock,
        verifier: IdentityVerifier | None = None,
    ) -> None:
        self.storage = storage
        self.line = line
        self.blob = blob
        self.renderer = renderer
        self.clock = clock
        self.verifier = verifier or StaffReview()

    async def fetch_document(self, message_id: str) -> tuple[bytes, str]:
        """The photo the resident sent, checked for type and size."""
        content = bytes(await self.blob.get_message_content(message_id, _request_timeout=30))
        return content, sniff_image(content)

    async def apply(
        self, registration: Document, content: bytes, content_type: str
    ) -> Document | None:
        """Store the application and its document; None when one is already waiting."""
        now = self.clock.now()
        submitted = await self.storage.premium_applications.submit(
            registration["user_id"],
            registration["place_code"],
            registration["_id"],
            self.verifier.name,
            now,
        )
        if submitted.application is None:
            return None
        application = submitted.application
        await self.storage.identity_documents.put(
            application["_id"], registration["user_id"], content, content_type, now
        )
        await self.verifier.submitted(application)
        return application

    async def approve(self, application_id: str, staff: str) -> Decision | None:
        now = self.clock.now()
        application = await self.storage.premium_applications.decide(
            application_id, APPROVED, staff, "", now
        )
        if application is None:
            return None
        valid_until = _end_of_day(premium_valid_until(now.astimezone(JST).date()))
        registration = await self.storage.registrations.set_tier(
            application["registration_id"], Tier.PREMIUM, valid_until, now
        )
        await self.storage.identity_documents.discard(application["_id"])
        await self._tell(application, "premium/approved", {"valid_until": valid_until})
        return Decision(application, registration)

    async def reject(self, application_id: str, staff: str, reason: str) -> Decision | None:
        now = self.clock.now()
        application = await self.storage.premium_applications.decide(
            application_id, REJECTED, staff, reason, now
        )
        if application is None:
            return None
        await self.storage.identity_documents.discard(application["_id"])
        await self._tell(application, "premium/rejected", {"reason": reason})
        return Decision(application, None)

    async def document(self, application: Document) -> tuple[bytes, str] | None:
        application_id = application["_id"]
        if not isinstance(application_id, ObjectId):
            return None
        return await self.storage.identity_documents.get(application_id)

    async def _tell(self, application: Document, template: str, context: dict[str, object]) -> None:
        place = get_place(str(application["place_code"]))
        messages = self.renderer.render(
            template,
            {"place": place.display_name if place else application["place_code"], **context},
        )
        await self.line.push(
            str(application["user_id"]), messages, logical_key=f"premium:{application['_id']}"
        )


def _end_of_day(day: date) -> datetime:
    """The last valid day, as the end of that day in Japan time, stored in UTC."""
    return datetime.combine(day, time(23, 59, 59), JST).astimezone(UTC)
