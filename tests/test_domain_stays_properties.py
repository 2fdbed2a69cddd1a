"""Properties of stays, checked with hypothesis."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.garbage import Weekday, days_between
from bot.domain.stays import Stay, StayPattern, overlaps, spans_of

PLACES = ["042056", "070009"]

dates = st.dates(min_value=date(2026, 1, 1), max_value=date(2029, 12, 31))
patterns = st.builds(
    StayPattern,
    st.frozensets(st.sampled_from(list(Weekday)), min_size=1),
    st.frozensets(st.integers(1, 5), max_size=3),
)


@st.composite
def stays(draw: st.DrawFn) -> Stay:
    start = draw(dates)
    end = start + timedelta(days=draw(st.integers(0, 120)))
    return Stay(draw(st.sampled_from(PLACES)), start, end, draw(st.none() | patterns))


@st.composite
def windows(draw: st.DrawFn) -> tuple[date, date]:
    start = draw(dates)
    return start, start + timedelta(days=draw(st.integers(0, 150)))


@settings(max_examples=300)
@given(stays(), windows(), st.data())
def test_stay_expansion_splits(stay: Stay, window: tuple[date, date], data: st.DataObject) -> None:
    start, end = window
    split = start + timedelta(days=data.draw(st.integers(0, (end - start).days)))
    whole = [s.day for s in stay.days(start, end)]
    left = [s.day for s in stay.days(start, split)]
    right = [s.day for s in stay.days(split + timedelta(days=1), end)]
    assert whole == left + right
    assert whole == [day for day in days_between(start, end) if stay.contains(day)]
    assert [day for span in stay.spans(start, end) for day in span.days()] == whole
    assert spans_of(whole) == stay.spans(start, end)


@settings(max_examples=300)
@given(stays(), stays())
def test_overlap_is_symmetric(a: Stay, b: Stay) -> None:
    assert overlaps(a, b) == overlaps(b, a)
    shared = any(a.contains(day) and b.contains(day) for day in days_between(a.start, a.end))
    assert overlaps(a, b) == (a.place == b.place and shared)


@given(stays())
def test_a_stay_overlaps_itself_when_it_has_days(stay: Stay) -> None:
    assert overlaps(stay, stay) == bool(stay.days(stay.start, stay.end))


@given(dates, st.integers(0, 200))
def test_weekend_stays_are_saturdays_and_sundays(start: date, length: int) -> None:
    end = start + timedelta(days=length)
    stay = Stay("042056", start, end, StayPattern(frozenset({Weekday.SAT, Weekday.SUN})))
    found = [s.day for s in stay.days(start, end)]
    assert all(day.weekday() in (5, 6) for day in found)
    assert found == [day for day in days_between(start, end) if day.weekday() >= 5]
