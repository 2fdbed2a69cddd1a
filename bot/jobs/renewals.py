"""Premium renewal: reminders 30 and 7 days before the last valid day, and the decision after it.

At least the municipality's number of activities (default 3) attended in the 365 days ending with
the last valid day renews the registration for one more year; fewer moves it back to Basic. The
member is told either way, with their count. Each decision is claimed once per (registration,
last valid day) (`RenewalDecisions`); each message is pushed once per logical key.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.domain.activities import RENEWAL_REMINDER_DAYS, renewal_activity_count
from bot.domain.registration import PREMIUM_VALIDITY_DAYS, Renewal, Tier, renewal_outcome
from bot.line.client import LineClient
from bot.premium import place_name
from bot.render import Renderer
from bot.storage.activities import (
    RenewalKind,
    end_of_day,
    last_valid_day,
    premium_registrations,
)
from bot.storage.db import Document

if TYPE_CHECKING:
    from bot.storage import Storage

log = logging.getLogger(__name__)


async def _push(
    line: LineClient,
    renderer: Renderer,
    registration: Document,
    template: str,
    context: dict[str, Any],
    key: str,
) -> bool:
    code = str(registration["place_code"])
    try:
        messages = renderer.render(
            template, {"place": place_name(code), **context}, municipality=code
        )
        return await line.push(str(registration["user_id"]), messages, logical_key=key)
    except Exception:
        log.exception("renewal message could not be sent", extra={"key": key})
        return False


async def run_renewals(storage: Storage, line: LineClient, renderer: Renderer, clock: Clock) -> int:
    """One pass over the Premium registrations; the number of messages pushed (or re-tried)."""
    today = clock.now_jst().date()
    sent = 0
    for registration in await premium_registrations(storage.registrations):
        try:
            sent += await _one(storage, line, renderer, clock, registration, today)
        except Exception:
            log.exception("renewal failed", extra={"registration": str(registration["_id"])})
    return sent


async def _one(
    storage: Storage,
    line: LineClient,
    renderer: Renderer,
    clock: Clock,
    registration: Document,
    today: date,
) -> int:
    reg_id = str(registration["_id"])
    place = str(registration["place_code"])
    user_id = str(registration["user_id"])
    last_day = last_valid_day(registration["valid_until"])
    required = await storage.activity_settings.required(place)
    attendances = await storage.attendance.for_user(user_id, place)
    count = renewal_activity_count(attendances, place, last_day)
    outcome = renewal_outcome(count, required)
    if today <= last_day:
        days_left = (last_day - today).days
        # 30 days before until the 7-day reminder; then the 7-day one until the last day.
        windows = sorted(RENEWAL_REMINDER_DAYS, reverse=True)
        for index, days in enumerate(windows):
            later = windows[index + 1] if index + 1 < len(windows) else -1
            if later < days_left <= days:
                pushed = await _push(
                    line,
                    renderer,
                    registration,
                    "renewal/reminder",
                    {
                        "valid_until": last_day.isoformat(),
                        "days": days_left,
                        "count": count,
                        "required": required,
                    },
                    f"renewal-reminder:{reg_id}:{last_day.isoformat()}:{days}",
                )
                return 1 if pushed else 0
        return 0
    kind = RenewalKind.RENEWED if outcome.result is Renewal.RENEWED else RenewalKind.BASIC
    decision = await storage.renewal_decisions.decide(
        registration, last_day, kind, count, required, clock.now()
    )
    kind = RenewalKind(str(decision["outcome"]))
    count, required = int(decision["count"]), int(decision["required"])
    if kind is RenewalKind.RENEWED:
        new_last = last_day + timedelta(days=PREMIUM_VALIDITY_DAYS)
        await storage.registrations.set_tier(
            registration["_id"], Tier.PREMIUM, end_of_day(new_last), clock.now()
        )
        context = {"valid_until": new_last.isoformat(), "count": count, "required": required}
        template = "renewal/renewed"
    else:
        await storage.registrations.set_tier(registration["_id"], Tier.BASIC, None, clock.now())
        context = {"last_day": last_day.isoformat(), "count": count, "required": required}
        template = "renewal/basic"
    key = f"renewal:{reg_id}:{last_day.isoformat()}:{kind.value}"
    return 1 if await _push(line, renderer, registration, template, context, key) else 0
