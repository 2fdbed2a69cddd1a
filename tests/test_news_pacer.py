"""The news sender's pacing: LINE's multicast limit over every second, and catching up after a
hold-up (plain logic: the pacer is given the times)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.news import Pacer


def test_requests_all_ready_go_on_an_even_schedule() -> None:
    pacer = Pacer(200)
    starts = [pacer.reserve(10.0) for _ in range(400)]
    assert starts == pytest.approx([10.0 + i / 200 for i in range(400)])


def test_a_hold_up_is_caught_up_at_twice_the_pace_then_the_schedule_holds() -> None:
    pacer = Pacer(100)
    first = [pacer.reserve(0.0) for _ in range(10)]  # 0.00 … 0.09
    assert first[-1] == pytest.approx(0.09)
    # Nothing asked for until 0.5 s: the next ones go 5 ms apart until back on the schedule.
    late = [pacer.reserve(0.5) for _ in range(100)]
    assert late[:3] == pytest.approx([0.5, 0.505, 0.51])
    assert late[80] == pytest.approx(0.9)  # request 90: on the schedule again, 10 ms apart
    assert late[-1] == pytest.approx(1.09)
    assert all(b - a >= 0.005 - 1e-9 for a, b in pairwise(late))


def test_an_idle_pacer_owes_at_most_its_catch_up_and_never_over_the_limit() -> None:
    pacer = Pacer(200)
    for _ in range(200):
        pacer.reserve(0.0)
    after_a_pause = [pacer.reserve(60.0) for _ in range(201)]
    # A minute idle: CATCH_UP_S of schedule is owed; the catch-up goes at twice the pace until
    # 200 started within a second, and the next waits for that second to pass.
    assert after_a_pause[199] == pytest.approx(60.0 + 199 / 400)
    assert after_a_pause[200] == pytest.approx(61.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(min_value=0, max_value=0.05), st.floats(min_value=0, max_value=2)),
        min_size=1,
        max_size=600,
    )
)
def test_never_more_than_the_limit_within_any_second(gaps: list[float]) -> None:
    pacer = Pacer(200)
    now, asked, starts = 0.0, [], []
    for gap in gaps:  # requests asked for after random hold-ups and pauses
        now += gap
        asked.append(now)
        starts.append(pacer.reserve(now))
    assert all(start >= at for start, at in zip(starts, asked, strict=True))
    assert all(b - a >= 1 / 400 - 1e-9 for a, b in pairwise(starts))
    for i, start in enumerate(starts):
        window = [s for s in starts[i:] if s < start + 1.0 - 1e-9]
        assert len(window) <= 200
