"""Daily snapshots: one document per scope and day, written once however often the job runs; and
the worker schedules them (00:05) and the recount (03:00) in Japan time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.clock import JST, Clock
from bot.domain.stats import NATION, place_scope, pref_scope
from bot.jobs.recount import LEASE, LEASE_TTL, run_recount
from bot.jobs.snapshots import snapshot_day, take_snapshots
from bot.jobs.worker import Worker
from bot.services import make_pipeline, open_services
from bot.settings import Settings
from bot.storage import Mongo, Storage
from tests.test_stats_support import application, new_user, open_storage, own_database


@pytest.fixture
async def fresh(mongo_uri: str) -> AsyncIterator[Storage]:
    async with own_database(mongo_uri) as (mongo, _):
        yield await open_storage(mongo)


async def test_a_day_is_snapshotted_once_per_scope(fresh: Storage) -> None:
    clock = Clock()
    for _ in range(3):
        await fresh.registrations.create_basic(application(new_user(), "042056"), clock.now())
    day = snapshot_day(clock)
    assert day == clock.now_jst().date() - timedelta(days=1)
    scopes = {place_scope("042056"), place_scope("040002"), pref_scope("040002"), NATION}
    # Several workers (or retries) at once: still one document per scope and day.
    written = await asyncio.gather(*(take_snapshots(fresh, clock) for _ in range(5)))
    assert sum(written) == len(scopes)
    assert await take_snapshots(fresh, clock) == 0
    docs = [doc async for doc in fresh.stats.snapshots.col.find({"day": day.isoformat()})]
    assert sorted(doc["scope"] for doc in docs) == sorted(scopes)
    nation = next(doc for doc in docs if doc["scope"] == NATION)
    assert (nation["people"], nation["registrations"]) == (3, 6)
    assert nation["_id"] == f"{NATION}|{day.isoformat()}"
    # The day after, new documents; the trend lists the days in order.
    await fresh.registrations.create_basic(application(new_user(), "042056"), clock.now())
    assert await take_snapshots(fresh, clock, day + timedelta(days=1)) == len(scopes)
    await take_snapshots(fresh, clock, day - timedelta(days=5))
    trend = await fresh.stats.snapshots.trend(NATION, day - timedelta(days=30))
    assert [d["day"] for d in trend] == [
        (day - timedelta(days=5)).isoformat(),
        day.isoformat(),
        (day + timedelta(days=1)).isoformat(),
    ]
    assert [d["people"] for d in trend] == [4, 3, 4]
    assert await fresh.stats.snapshots.trend(NATION, day + timedelta(days=2)) == []


async def test_the_worker_runs_snapshots_and_the_recount_at_night_japan_time(
    settings: Settings,
) -> None:
    clock = Clock()
    async with open_services(settings, clock) as services:
        worker = Worker(services.storage, clock, make_pipeline(services, None), services.renderer)
        worker.add_standard_jobs()
        jobs = {job.id: job for job in worker.scheduler.get_jobs()}
    for name, hour, minute in (("stats-snapshots", 0, 5), ("stats-recount", 3, 0)):
        trigger = jobs[name].trigger
        assert isinstance(trigger, CronTrigger)
        assert trigger.timezone == JST
        fields = {f.name: str(f) for f in trigger.fields}
        assert (fields["hour"], fields["minute"]) == (str(hour), str(minute))
        assert jobs[name].max_instances == 1


async def test_a_worker_started_after_midnight_takes_the_missed_snapshots(
    settings: Settings,
) -> None:
    for hour, minute, expected in ((0, 40, True), (6, 0, True), (6, 10, False), (23, 0, False)):
        clock = at_jst(hour, minute)
        async with open_services(settings, clock) as services:
            worker = Worker(
                services.storage, clock, make_pipeline(services, None), services.renderer
            )
            worker.add_standard_jobs()
            ids = {job.id for job in worker.scheduler.get_jobs()}
        assert ("stats-snapshots-catch-up" in ids) is expected, (hour, minute)
        assert "stats-recount-catch-up" not in ids


def at_jst(hour: int, minute: int) -> Clock:
    """A clock showing today at hour:minute in Japan."""
    clock = Clock()
    now = clock.now_jst()
    clock.offset = now.replace(hour=hour, minute=minute, second=30) - now
    return clock


def test_the_snapshot_day_is_the_japan_day_that_ended() -> None:
    clock = Clock()
    # 2027-01-09 15:05 UTC is 2027-01-10 00:05 in Japan: the snapshot is of 9 January.
    clock.offset = datetime(2027, 1, 9, 15, 5, tzinfo=UTC) - Clock().now()
    assert snapshot_day(clock) == date(2027, 1, 9)


async def test_the_recount_job_takes_a_lease(mongo_uri: str) -> None:
    async with own_database(mongo_uri) as (mongo, _):
        storage = await open_storage(Mongo(mongo_uri, mongo.db.name))
        clock = Clock()
        assert await storage.leases.acquire(LEASE, "someone-else", clock.now(), LEASE_TTL)
        assert await run_recount(storage, clock) is None  # another recount is running
        await storage.leases.release(LEASE, "someone-else")
        drift = await run_recount(storage, clock)
        assert drift is not None and drift.clean
        await storage.mongo.close()
