"""The day-before reminder of a bearer activity, to everyone taking part (late applicants too,
until the activity starts); once per (activity, person)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.activities import activity_context
from bot.clock import Clock
from bot.domain.activities import reminder_due
from bot.line.client import LineClient
from bot.render import Renderer

if TYPE_CHECKING:
    from bot.jobs.worker import Worker
    from bot.storage import Storage

log = logging.getLogger(__name__)
FILL_AHEAD = timedelta(days=366)


async def run_activity_reminders(
    storage: Storage, line: LineClient, renderer: Renderer, clock: Clock
) -> int:
    """Remind the participants of activities starting within a day and a half; pushes made."""
    now = clock.now()
    sent = await fill_freed_seats(storage, line, renderer, clock)
    for activity in await storage.activities.starting_between(now, now + timedelta(days=2)):
        if not reminder_due(activity, now):
            continue
        view = await storage.rosters.view(activity.id, activity.capacity)
        for user_id in view.confirmed:
            try:
                messages = renderer.render(
                    "activities/reminder",
                    activity_context(activity),
                    municipality=activity.municipality_code,
                )
                if await line.push(
                    user_id, messages, logical_key=f"activity-reminder:{activity.id}:{user_id}"
                ):
                    sent += 1
            except Exception:
                log.exception("activity reminder failed", extra={"activity": activity.id})
    return sent


async def fill_freed_seats(
    storage: Storage, line: LineClient, renderer: Renderer, clock: Clock
) -> int:
    """Seats freed without a cancellation (a resident's data deleted) go to the waiting list."""
    now = clock.now()
    sent = 0
    for activity in await storage.activities.starting_between(now, now + FILL_AHEAD):
        for promotion in await storage.rosters.fill(activity, now):
            try:
                messages = renderer.render(
                    "activities/promoted",
                    activity_context(activity),
                    municipality=activity.municipality_code,
                )
                if await line.push(
                    promotion.user_id,
                    messages,
                    logical_key=f"activity-promoted:{promotion.token}",
                ):
                    sent += 1
            except Exception:
                log.exception("promotion message failed", extra={"activity": activity.id})
    return sent


def schedule(worker: Worker) -> None:
    """The activity reminders (every 15 minutes) and the Premium renewals (daily, 00:30 JST)."""
    from datetime import time

    from bot.jobs.renewals import run_renewals

    line, renderer = worker.pipeline.line, worker.renderer
    worker.every(
        timedelta(minutes=15),
        lambda: run_activity_reminders(worker.storage, line, renderer, worker.clock),
        "activity-reminders",
    )
    worker.daily(
        time(0, 30),
        lambda: run_renewals(worker.storage, line, renderer, worker.clock),
        "premium-renewals",
        grace=timedelta(hours=12),
    )
