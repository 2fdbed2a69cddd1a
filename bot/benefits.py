"""Benefits for residents: what is open to whom, and telling eligible residents once on publish.

Notices (run by the worker, `bot/jobs/benefit_notices.py`):

1. Planning: for a benefit published with `notices_pending`, the residents of its place who allow
   the topic 「特典」 are read in chunks; the eligible ones are claimed one by one with a unique
   insert (`benefit_notices`, `_id` = benefit + resident) naming a batch opened just before
   (`benefit_notice_batches`). A resident already claimed (told before, or by a concurrent
   planner) is skipped: nobody is told twice about one benefit, even after unpublish and
   publish again. A batch holds at most 500 residents (LINE's multicast limit).
2. Sending: a ready batch whose time has come is sent with one `multicast` under the logical key
   `benefit-notice:<batch id>` (a resend after a crash reuses the stored retry key: LINE delivers
   it once). Nothing is sent in quiet hours (21:00–08:00 Japan time): a batch planned then waits
   until 08:00.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from linebot.v3.messaging import Message

from bot.clock import JST, Clock
from bot.domain.benefits import (
    Benefit,
    EligibilityResult,
    Holder,
    _display_key,
    is_eligible,
    slide5_benefits,
)
from bot.domain.programs import slide5_programs
from bot.domain.registration import AgeBand, RelationshipType, Tier
from bot.domain.stays import defer_out_of_quiet_hours, in_quiet_hours
from bot.line.client import LineClient, SendFailed
from bot.render import Button, Renderer
from bot.storage import Storage
from bot.storage.benefits import StoredBenefit
from bot.storage.db import Document
from bot.storage.preferences import Topic

log = logging.getLogger(__name__)

MULTICAST_MAX = 500
PLAN_CHUNK = 500
ABANDONED_AFTER = timedelta(minutes=10)
NOTICE_TEMPLATE = "benefits/notice"


# --- holders and eligibility -------------------------------------------------------------------


def _japan_date(value: Any, fallback: date) -> date:
    if isinstance(value, datetime):
        from bot.cards import japan_date

        return japan_date(value)
    if isinstance(value, date):
        return value
    return fallback


def holder_of(registration: Mapping[str, Any], program_ids: Iterable[str], today: date) -> Holder:
    """What eligibility needs to know of one registration (a registrations document)."""
    try:
        tier = Tier(str(registration.get("tier")))
    except ValueError:
        tier = Tier.BASIC
    types = frozenset(
        RelationshipType(t)
        for t in registration.get("types") or ()
        if t in RelationshipType._value2member_map_
    )
    band = registration.get("age_band")
    residence = registration.get("residence_code")
    return Holder(
        place_code=str(registration.get("place_code")),
        tier=tier,
        types=types,
        residence_code=str(residence) if residence else None,
        registered_since=_japan_date(
            registration.get("since") or registration.get("created_at"), today
        ),
        program_ids=frozenset(program_ids),
        age_band=AgeBand(str(band)) if band in AgeBand._value2member_map_ else None,
    )


@dataclass(frozen=True)
class Offer:
    """A published benefit as one resident sees it."""

    stored: StoredBenefit
    result: EligibilityResult
    registration: Document | None

    @property
    def benefit(self) -> Benefit:
        return self.stored.benefit


async def _holders(storage: Storage, user_id: str, today: date) -> dict[str, Holder]:
    programs = await storage.program_links.programs_of(user_id)
    return {
        str(doc["place_code"]): holder_of(doc, programs, today)
        for doc in await storage.registrations.for_user(user_id)
        if doc.get("status") == "active"
    }


async def open_offers(storage: Storage, user_id: str, today: date) -> list[Offer]:
    """The published benefits this resident can use today, ending soonest first."""
    holders = await _holders(storage, user_id, today)
    offers = [
        Offer(stored, result, None)
        for stored in await storage.benefits.published_for(holders)
        if (
            result := is_eligible(stored.benefit, holders[stored.benefit.municipality_code], today)
        ).ok
    ]
    return sorted(offers, key=lambda offer: _display_key(offer.benefit))


async def closed_count(storage: Storage, user_id: str, today: date) -> int:
    """Published benefits of the resident's places that are not open to them."""
    holders = await _holders(storage, user_id, today)
    return sum(
        1
        for stored in await storage.benefits.published_for(holders)
        if not is_eligible(stored.benefit, holders[stored.benefit.municipality_code], today).ok
    )


async def offer(storage: Storage, user_id: str, key: str, today: date) -> Offer | None:
    """One published benefit for this resident (open or not), with their registration there."""
    stored = await storage.benefits.by_key(key)
    if stored is None or not stored.published:
        return None
    place = stored.benefit.municipality_code
    registration = await storage.registrations.find(user_id, place)
    if registration is None or registration.get("status") != "active":
        holder = Holder(
            place_code="",
            tier=Tier.BASIC,
            types=frozenset(),
            residence_code=None,
            registered_since=today,
        )
        return Offer(stored, is_eligible(stored.benefit, holder, today), None)
    programs = await storage.program_links.programs_of(user_id)
    holder = holder_of(registration, programs, today)
    return Offer(stored, is_eligible(stored.benefit, holder, today), registration)


# --- notices -----------------------------------------------------------------------------------


def detail_data(key: str) -> str:
    """Postback data of 「詳しく見る」 (a command the dialog engine runs)."""
    return f"action=cmd&name=benefit&b={key}"


def notice_messages(renderer: Renderer, stored: StoredBenefit) -> list[Message]:
    from bot.cards import place_name

    benefit = stored.benefit
    return renderer.render(
        NOTICE_TEMPLATE,
        {
            "place_name": place_name(benefit.municipality_code),
            "title": benefit.title,
            "kind_label": benefit.kind.label,
            "valid_until": benefit.valid_until,
        },
        quick_replies=[
            Button("詳しく見る", data=detail_data(stored.key)),
            Button("特典一覧", data="action=cmd&name=benefits"),
        ],
    )


@dataclass
class NoticeRun:
    """What one run of the notice job did."""

    planned: int = 0  # residents newly claimed
    batches: int = 0  # batches opened
    sent_batches: int = 0
    sent_to: int = 0
    deferred: bool = False  # quiet hours: nothing sent


async def plan_notices(storage: Storage, stored: StoredBenefit, now: datetime) -> NoticeRun:
    """Claim every eligible resident not told yet into batches of at most 500 (see module doc)."""
    run = NoticeRun()
    benefit = stored.benefit
    key = stored.key
    place = benefit.municipality_code
    today = now.astimezone(JST).date()
    not_before = defer_out_of_quiet_hours(now) if in_quiet_hours(now) else now
    chunk: list[str] = []

    async def flush(users: Sequence[str]) -> None:
        told = await storage.benefit_notices.already_told(key, users)
        fresh = [u for u in users if u not in told]
        if not fresh:
            return
        regs = await storage.benefit_notices.active_registrations(place, fresh)
        programs = await storage.program_links.programs_of_users(fresh)
        eligible = [
            u
            for u in fresh
            if u in regs and is_eligible(benefit, holder_of(regs[u], programs[u], today), today).ok
        ]
        for start in range(0, len(eligible), MULTICAST_MAX):
            batch_id = f"{key}#{secrets.token_hex(6)}"
            await storage.benefit_notice_batches.open(batch_id, key, place, not_before, now)
            count = 0
            for user_id in eligible[start : start + MULTICAST_MAX]:
                if await storage.benefit_notices.claim(key, user_id, batch_id, now):
                    count += 1
            await storage.benefit_notice_batches.seal(batch_id, count)
            run.planned += count
            run.batches += 1 if count else 0

    async for user_id in storage.preferences.recipients_allowing(place, Topic.BENEFITS):
        chunk.append(user_id)
        if len(chunk) >= PLAN_CHUNK:
            await flush(chunk)
            chunk = []
    if chunk:
        await flush(chunk)
    await storage.benefits.notices_planned(key, stored.published_at)
    return run


async def send_due_batches(
    storage: Storage, clock: Clock, line: LineClient, renderer: Renderer
) -> NoticeRun:
    run = NoticeRun()
    now = clock.now()
    await storage.benefit_notice_batches.seal_abandoned(now - ABANDONED_AFTER)
    if in_quiet_hours(now):
        run.deferred = True
        return run
    for batch in await storage.benefit_notice_batches.due(now):
        batch_id = str(batch["_id"])
        stored = await storage.benefits.by_key(str(batch["benefit_key"]))
        if stored is None or not stored.published:
            await storage.benefit_notice_batches.finish(batch_id, "failed", now, "unpublished")
            continue
        users = await storage.benefit_notices.users_of_batch(batch_id)
        if not users:
            await storage.benefit_notice_batches.finish(batch_id, "sent", now, "no recipients")
            continue
        messages = notice_messages(renderer, stored)
        try:
            await line.multicast(users, messages, f"benefit-notice:{batch_id}")
        except SendFailed as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                await storage.benefit_notice_batches.finish(batch_id, "failed", now, str(exc))
            log.warning("benefit notice batch not sent", extra={"batch": batch_id})
            continue
        await storage.benefit_notice_batches.finish(batch_id, "sent", clock.now())
        run.sent_batches += 1
        run.sent_to += len(users)
    return run


async def run_benefit_notices(
    storage: Storage, clock: Clock, line: LineClient, renderer: Renderer | None = None
) -> NoticeRun:
    """The worker job: plan the notices of newly published benefits, then send what is due."""
    total = NoticeRun()
    for stored in await storage.benefits.with_pending_notices():
        planned = await plan_notices(storage, stored, clock.now())
        total.planned += planned.planned
        total.batches += planned.batches
    sent = await send_due_batches(storage, clock, line, renderer or Renderer())
    total.sent_batches, total.sent_to, total.deferred = (
        sent.sent_batches,
        sent.sent_to,
        sent.deferred,
    )
    if total.planned or total.sent_batches:
        log.info(
            "benefit notices",
            extra={"planned": total.planned, "batches": total.batches, "sent": total.sent_to},
        )
    return total


# --- demo data ---------------------------------------------------------------------------------


async def seed_slide5(storage: Storage, now: datetime) -> None:
    """The programs and benefits of slide 5, published without notices (idempotent)."""
    for program in slide5_programs():
        existing = await storage.programs.get(program.id)
        if existing is None:
            await storage.programs.put(program, now)
    for benefit in slide5_benefits():
        stored = await storage.benefits.get(benefit.municipality_code, benefit.id)
        if stored is None:
            await storage.benefits.put(benefit, now)
            await storage.benefits.publish(benefit.municipality_code, benefit.id, now, notify=False)
