"""Daily snapshots of the counters, for the trend (worker job at 00:05 Japan time).

Each run writes, for the Japan day that just ended, one document per scope (place, prefecture,
nation) with its counters. The key is scope + day and the write is an insert, so a second run
the same day (a retry, a second worker) changes nothing.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from bot.clock import Clock
from bot.storage import Storage

log = logging.getLogger("bot.jobs.snapshots")


def snapshot_day(clock: Clock) -> date:
    """The day a snapshot taken now stands for: the Japan day that just ended."""
    return clock.now_jst().date() - timedelta(days=1)


async def take_snapshots(storage: Storage, clock: Clock, day: date | None = None) -> int:
    """Snapshot every scope for `day` (default: yesterday in Japan); returns documents written."""
    day = day or snapshot_day(clock)
    states = await storage.stats.states()
    written = await storage.stats.snapshots.take(
        day, {scope: state.fields for scope, state in states.items()}, clock.now()
    )
    log.info(
        "stats snapshots taken",
        extra={"day": day.isoformat(), "scopes": len(states), "written": written},
    )
    return written
