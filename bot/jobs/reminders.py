"""Garbage-day reminders for collection days inside a resident's stay (MIC slide 4).

Every few minutes the worker looks at the stays that are not over and, for each collection day
of the next two days that falls inside a stay, works out the reminder moment (the resident's
time, 20:00 the evening before by default, moved out of quiet hours: `reminder_at`). When that
moment has come, the collection is still ahead (garbage out by 08:00 on the day) and it is not
quiet hours now, each (user, date, category) is claimed by a unique insert and the claimed ones
are pushed in one message under a logical key, so a reminder is sent once, even with two workers
or a crash between claim and push (unsent claims are pushed again with the same key).
Never outside a stay, never when the resident switched ごみ・滞在 off for the place.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from datetime import date, datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.domain.garbage import Calendar, Category, collection_days, date_label
from bot.domain.stays import JST, PUT_OUT_BY, in_quiet_hours, reminder_at
from bot.garbage import items_text, place_name
from bot.line.client import LineClient
from bot.render import Renderer
from bot.storage import Storage
from bot.storage.preferences import Topic
from bot.storage.stays import ReminderSettings

log = logging.getLogger(__name__)

LOOK_AHEAD_DAYS = 2  # a reminder is at most the evening before (or the day itself)


def _storage(services_or_storage: Any) -> Storage:
    storage = getattr(services_or_storage, "storage", services_or_storage)
    if not isinstance(storage, Storage):
        raise TypeError("pass Services or Storage")
    return storage


def deadline(day: date) -> datetime:
    return datetime.combine(day, PUT_OUT_BY, tzinfo=JST)


def reminder_key(user_id: str, day: date, category_ids: list[str]) -> str:
    return f"gomi-reminder:{user_id}:{day.isoformat()}:{'+'.join(category_ids)}"


class _Run:
    def __init__(self, storage: Storage, line: LineClient, renderer: Renderer, now: datetime):
        self.storage = storage
        self.line = line
        self.renderer = renderer
        self.now = now
        self.today = now.astimezone(JST).date()
        self.calendars: dict[str, Calendar | None] = {}
        self.settings: dict[str, ReminderSettings] = {}

    async def calendar(self, code: str) -> Calendar | None:
        if code not in self.calendars:
            try:
                self.calendars[code] = await self.storage.garbage_calendars.get(code)
            except Exception:  # a stored calendar that no longer reads: skip, say so
                log.exception("garbage calendar unreadable", extra={"place": code})
                self.calendars[code] = None
        return self.calendars[code]

    async def reminder_settings(self, user_id: str) -> ReminderSettings:
        if user_id not in self.settings:
            self.settings[user_id] = await self.storage.stays.reminder_settings(user_id)
        return self.settings[user_id]

    async def allowed(self, user_id: str, code: str) -> bool:
        if await self.storage.registrations.find(user_id, code) is None:
            return False
        states = await self.storage.preferences.for_place(user_id, code)
        return bool(states.get(Topic.GARBAGE, True))

    async def deliver(self, key: str) -> bool:
        """Push the claims of one key (again: the logical key keeps it to one delivery)."""
        claims = [doc async for doc in self.storage.stays.reminders.find({"key": key})]
        if not claims:
            return False
        first = claims[0]
        user_id, code, area = str(first["user_id"]), str(first["place_code"]), str(first["area"])
        day = date.fromisoformat(str(first["day"]))
        calendar = await self.calendar(code)
        categories: list[Category] = []
        if calendar is not None:
            wanted = {str(doc["category_id"]) for doc in claims}
            categories = [c for c in calendar.categories if c.id in wanted]
        if not categories or self.now >= deadline(day):
            await self.storage.stays.mark_sent(key)  # too late, or nothing left to say
            return False
        when = "今日" if day == self.today else "明日" if day == self.today + timedelta(1) else ""
        messages = self.renderer.render(
            "stays/reminder",
            {
                "place_name": place_name(code),
                "area": area,
                "day_label": f"{when} {date_label(day)}".strip(),
                "put_out_by": f"{day.month}月{day.day}日の朝{PUT_OUT_BY.hour}時",
                "categories": [{"name": c.name, "items": items_text(c)} for c in categories],
            },
            municipality=code,
        )
        await self.line.push(user_id, messages, key)
        await self.storage.stays.mark_sent(key)
        return True


async def run_reminders(
    services_or_storage: Any,
    line: LineClient,
    renderer: Renderer,
    clock: Clock,
    *,
    users: Collection[str] | None = None,
) -> int:
    """Send the reminders that are due now; the number of messages pushed.

    `users` limits the run to some residents (tests share one database).
    """
    storage = _storage(services_or_storage)
    run = _Run(storage, line, renderer, clock.now())
    if in_quiet_hours(run.now):
        return 0
    sent = 0
    unsent = await storage.stays.unsent_reminders()
    for key in sorted({str(d["key"]) for d in unsent if users is None or d["user_id"] in users}):
        try:
            sent += await run.deliver(key)
        except Exception:  # tried again on the next run, until the collection day's morning
            log.exception("garbage reminder not delivered", extra={"key": key})
    due: dict[tuple[str, str, str, date], list[Category]] = defaultdict(list)
    for stored in await storage.stays.current(run.today):
        stay = stored.stay
        if users is not None and stored.user_id not in users:
            continue
        calendar = await run.calendar(stay.place) if stay.area else None
        if calendar is None or stay.area not in calendar.area_names():
            continue
        settings = await run.reminder_settings(stored.user_id)
        for offset in range(LOOK_AHEAD_DAYS + 1):
            day = run.today + timedelta(days=offset)
            if not stay.contains(day) or run.now >= deadline(day):
                continue
            moment = reminder_at(day, settings.remind_time, settings.evening_before)
            if moment > run.now:
                continue
            group = due[(stored.user_id, stay.place, stay.area, day)]
            for category in calendar.categories:
                if category in group:
                    continue
                if collection_days(calendar, stay.area, category.id, day, day):
                    group.append(category)
    for (user_id, code, area, day), categories in due.items():
        if not categories or not await run.allowed(user_id, code):
            continue
        key = reminder_key(user_id, day, [c.id for c in categories])
        claimed = 0
        for category in categories:
            claimed += await storage.stays.claim_reminder(
                user_id, day, category.id, key, run.now, place_code=code, area=area
            )
        if claimed:
            try:
                sent += await run.deliver(key)
            except Exception:  # pushed again with the same key on the next run
                log.exception("garbage reminder not delivered", extra={"key": key})
    return sent


def reminder_job(
    storage: Storage, line: Callable[[], LineClient], renderer: Renderer, clock: Clock
) -> Callable[[], Awaitable[int]]:
    """The worker's job: `run_reminders` with the process's renderer (municipalities' template
    overrides included); `line` is asked for the LINE client at each run."""

    async def job() -> int:
        return await run_reminders(storage, line(), renderer, clock)

    return job
