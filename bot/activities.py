"""Bearer activities (担い手活動): posting, applying, cancelling, attendance, and what residents
are told about it (moving up from the waiting list).

Capacity and the waiting list live in `bot.storage.activities` (seat and position inserts); this
service adds the messages. It is used by the chat hooks (`bot/dialog/hooks/activities.py`), the
staff console and API (`bot/staff/resources/activities.py`) and the worker's reminder job.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.domain.activities import (
    JST,
    Activity,
    attendance_code,
    check_attendance_code,
)
from bot.domain.places import get_place
from bot.line.client import LineClient
from bot.render import Renderer
from bot.settings import Settings
from bot.storage.activities import Applied, Cancelled, Promotion

if TYPE_CHECKING:
    from bot.premium import PremiumService
    from bot.storage import Storage

log = logging.getLogger(__name__)


def place_name(code: str) -> str:
    place = get_place(code)
    return place.display_name if place else code


def activity_context(activity: Activity) -> dict[str, Any]:
    """What templates show of an activity (times in Japan time)."""
    starts = activity.starts_at.astimezone(JST)
    ends = activity.ends_at.astimezone(JST)
    weekday = "月火水木金土日"[starts.weekday()]
    return {
        "id": activity.id,
        "title": activity.title,
        "kind_label": activity.kind.label,
        "place_name": place_name(activity.municipality_code),
        "when": f"{starts.month}月{starts.day}日（{weekday}）{starts:%H:%M}〜{ends:%H:%M}",
        "date": f"{starts.month}月{starts.day}日",
        "where": activity.place,
        "capacity": activity.capacity,
        "description": activity.description,
    }


def attendance_secret(settings: Settings) -> bytes:
    """The key of the attendance codes, derived from the card signing secret."""
    return hmac.new(
        settings.card_signing_secret.encode(), b"attendance-codes", hashlib.sha256
    ).digest()


class CheckIn(StrEnum):
    RECORDED = "recorded"
    ALREADY = "already"
    WRONG = "wrong"
    NONE_TODAY = "none_today"


@dataclass(frozen=True)
class CheckInResult:
    result: CheckIn
    activity: Activity | None = None


class ActivityService:
    """Activities with the resident-facing messages. `line`/`renderer` may be None (no pushes)."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        line: LineClient | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.line = line
        self.renderer = renderer

    @classmethod
    def of(
        cls,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        premium: PremiumService | None,
        renderer: Renderer | None = None,
    ) -> ActivityService:
        """The service over the LINE client the process's Premium service pushes with (no
        pushes without one)."""
        line = premium.line if premium is not None else None
        if renderer is None and premium is not None:
            renderer = premium.renderer
        return cls(storage, clock, settings, line, renderer)

    # --- attendance codes -------------------------------------------------------------------

    def code(self, activity: Activity, day: date | None = None) -> str:
        """The code staff show on the day of the activity."""
        return attendance_code(activity.id, attendance_secret(self.settings), day or activity.day)

    # --- residents ----------------------------------------------------------------------------

    async def upcoming_for(self, user_id: str) -> list[Activity]:
        """Activities not yet started at the places the person is registered with."""
        codes = sorted(await self.storage.registrations.place_codes(user_id))
        return await self.storage.activities.upcoming(codes, self.clock.now())

    async def apply(self, activity: Activity, user_id: str) -> Applied:
        applied = await self.storage.rosters.apply(activity, user_id, self.clock.now())
        await self.tell_promoted(activity, applied.promoted)
        return applied

    async def cancel(self, activity: Activity, user_id: str, *, again: bool = False) -> Cancelled:
        """Withdraw and tell whoever moved up. `again`: a withdrawal run again after a crash,
        which may have come before the telling: every move up to a seat is told (once per move:
        those told before are not sent again)."""
        rosters = self.storage.rosters
        cancelled = await rosters.cancel(activity, user_id, self.clock.now())
        promoted = await rosters.promotions(activity.id) if again else cancelled.promoted
        await self.tell_promoted(activity, promoted)
        return cancelled

    async def resize(self, activity: Activity, capacity: int) -> tuple[Promotion, ...]:
        promoted = await self.storage.rosters.resize(activity, capacity, self.clock.now())
        await self.tell_promoted(activity, promoted)
        return promoted

    async def today_for(self, user_id: str) -> list[Activity]:
        """The person's confirmed activities taking place today (Japan date)."""
        mine = await self.storage.rosters.mine(user_id)
        confirmed = [aid for aid, (state, _) in mine.items() if state == "confirmed"]
        today = self.clock.now_jst().date()
        found = await self.storage.activities.by_ids(confirmed)
        return sorted(
            (a for a in found.values() if a.day == today), key=lambda a: (a.starts_at, a.id)
        )

    async def check_in(self, user_id: str, text: str) -> CheckInResult:
        """The code typed in the chat: attendance at today's activity it belongs to."""
        today_activities = await self.today_for(user_id)
        if not today_activities:
            return CheckInResult(CheckIn.NONE_TODAY)
        secret = attendance_secret(self.settings)
        today = self.clock.now_jst().date()
        for activity in today_activities:
            if check_attendance_code(activity.id, secret, today, text):
                recorded = await self.storage.attendance.record(
                    activity, user_id, "code", self.clock.now()
                )
                return CheckInResult(CheckIn.RECORDED if recorded else CheckIn.ALREADY, activity)
        return CheckInResult(CheckIn.WRONG)

    async def mark(self, activity: Activity, user_id: str, staff: str) -> bool:
        """Staff mark attendance in the console; False when it was recorded already."""
        return await self.storage.attendance.record(
            activity, user_id, "staff", self.clock.now(), staff=staff
        )

    # --- telling residents --------------------------------------------------------------------

    async def tell_promoted(self, activity: Activity, promoted: Sequence[Promotion]) -> None:
        for promotion in promoted:
            await self.push(
                promotion.user_id,
                "activities/promoted",
                activity_context(activity),
                f"activity-promoted:{promotion.token}",
                activity.municipality_code,
            )

    async def push(
        self, user_id: str, template: str, context: dict[str, Any], key: str, municipality: str
    ) -> bool:
        """Push once per key; False (logged) when it could not go out."""
        if self.line is None or self.renderer is None:
            log.warning("no LINE client: message not sent", extra={"template": template})
            return False
        try:
            messages = self.renderer.render(template, context, municipality=municipality)
            return await self.line.push(user_id, messages, logical_key=key)
        except Exception:
            log.exception("message could not be sent", extra={"template": template})
            return False
