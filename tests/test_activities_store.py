"""Bearer activities against the real database: capacity under concurrency (seat inserts), the
waiting list moving up, attendance recorded once, counts per person, place and year."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.activities import ActivityService, CheckIn
from bot.clock import Clock
from bot.domain.activities import Activity, ActivityKind, ApplyOutcome
from bot.settings import Settings
from bot.storage import Storage


def new_user() -> str:
    return "U" + uuid.uuid4().hex


async def post(
    storage: Storage, capacity: int, *, days: int = 10, place: str = "042056"
) -> Activity:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    draft = Activity(
        "new",
        place,
        "浜の清掃ボランティア",
        ActivityKind.VOLUNTEER,
        starts,
        starts + timedelta(hours=3),
        "気仙沼港",
        capacity,
        "軍手をご持参ください。",
    )
    return await storage.activities.add(draft, datetime.now(UTC))


async def test_twenty_apply_at_once_for_ten_places(storage: Storage) -> None:
    activity = await post(storage, 10)
    people = [new_user() for _ in range(20)]
    now = datetime.now(UTC)
    results = await asyncio.gather(
        *(storage.rosters.apply(activity, person, now) for person in people)
    )
    outcomes = [r.outcome for r in results]
    assert outcomes.count(ApplyOutcome.CONFIRMED) == 10
    assert outcomes.count(ApplyOutcome.WAITLISTED) == 10
    view = await storage.rosters.view(activity.id, activity.capacity)
    assert len(view.confirmed) == 10 and len(view.waiting) == 10
    assert set(view.confirmed) | set(view.waiting) == set(people)
    assert sorted(view.seats.values()) == list(range(1, 11))
    positions = sorted(r.position for r in results if r.position is not None)
    assert positions == sorted(set(positions))  # nobody shares a position

    # Applying again changes nothing.
    again = await storage.rosters.apply(activity, people[0], now)
    assert again.outcome is ApplyOutcome.ALREADY

    # Cancellations move the head of the waiting list up, one each, even when they race.
    leaving = list(view.confirmed[:3])
    head = list(view.waiting[:3])
    cancelled = await asyncio.gather(
        *(storage.rosters.cancel(activity, person, now) for person in leaving)
    )
    promoted = [p.user_id for c in cancelled for p in c.promoted]
    assert sorted(promoted) == sorted(head)
    after = await storage.rosters.view(activity.id, activity.capacity)
    assert len(after.confirmed) == 10 and len(after.waiting) == 7
    assert set(head) <= set(after.confirmed)
    assert not set(leaving) & (set(after.confirmed) | set(after.waiting))
    assert after.waiting == view.waiting[3:]


async def test_waiting_person_cancels_and_capacity_grows(storage: Storage) -> None:
    activity = await post(storage, 1)
    first, second, third = new_user(), new_user(), new_user()
    now = datetime.now(UTC)
    assert (await storage.rosters.apply(activity, first, now)).outcome is ApplyOutcome.CONFIRMED
    waiting = await storage.rosters.apply(activity, second, now)
    assert waiting.outcome is ApplyOutcome.WAITLISTED and waiting.position == 1
    assert (await storage.rosters.apply(activity, third, now)).position == 2
    gone = await storage.rosters.cancel(activity, second, now)
    assert gone.was == "waiting" and gone.promoted == ()
    assert await storage.rosters.status(activity.id, third) == ("waiting", 1)
    promoted = await storage.rosters.resize(activity, 2, now)
    assert [p.user_id for p in promoted] == [third]
    with pytest.raises(ValueError):
        await storage.rosters.resize(activity, 1, now)
    assert (await storage.rosters.cancel(activity, new_user(), now)).was is None


async def test_attendance_by_code_and_counts(storage: Storage, settings: Settings) -> None:
    clock = Clock()
    service = ActivityService(storage, clock, settings)
    activity = await post(storage, 5, days=3)
    person = new_user()
    await service.apply(activity, person)
    assert (await service.check_in(person, "ABCDEF")).result is CheckIn.NONE_TODAY
    clock.offset = activity.starts_at - datetime.now(UTC) + timedelta(minutes=10)
    code = service.code(activity)
    wrong = "222222" if code != "222222" else "333333"
    assert (await service.check_in(person, wrong)).result is CheckIn.WRONG
    typed = code[:3].lower() + "-" + code[3:]  # lower case and a hyphen are fine
    assert (await service.check_in(person, typed)).result is CheckIn.RECORDED
    assert (await service.check_in(person, code)).result is CheckIn.ALREADY
    assert not await service.mark(activity, person, "staff@example.jp")  # counted once
    day = activity.day
    assert await storage.attendance.count(person, "042056", day, day) == 1
    assert await storage.attendance.count(person, "072133", day, day) == 0
    assert (
        await storage.attendance.count(person, "042056", date(2000, 1, 1), date(2000, 12, 31)) == 0
    )
    by_person = await storage.attendance.counts_for_place("042056", day.year)
    assert by_person[person] == 1
    # Someone not taking part cannot use the code.
    stranger = new_user()
    assert (await service.check_in(stranger, code)).result is CheckIn.NONE_TODAY
