"""Properties of rule expansion, checked with hypothesis."""

from datetime import date, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.garbage import (
    Area,
    Calendar,
    Category,
    CollectionCenter,
    EveryOtherWeek,
    HolidayHandling,
    HolidayPolicy,
    NthWeekday,
    OnDate,
    Rule,
    Schedule,
    Suspension,
    Weekday,
    Weekly,
    collection_days,
    days_between,
    nth_of_month,
)

FIRST = date(2026, 1, 1)
LAST = date(2029, 12, 31)

dates = st.dates(min_value=FIRST, max_value=LAST)
weekdays = st.sampled_from(list(Weekday))
rules: st.SearchStrategy[Rule] = st.one_of(
    st.builds(Weekly, weekdays),
    st.builds(NthWeekday, weekdays, st.integers(1, 5)),
    st.builds(EveryOtherWeek, weekdays, dates),
    st.builds(OnDate, dates),
)
policies = st.one_of(
    st.just(HolidayPolicy()),
    st.just(HolidayPolicy(HolidayHandling.SKIPPED)),
    st.builds(HolidayPolicy, st.just(HolidayHandling.MOVED), st.none(), st.booleans()),
    st.builds(
        HolidayPolicy,
        st.just(HolidayHandling.MOVED),
        st.integers(-7, 7).filter(bool),
        st.booleans(),
    ),
)


@st.composite
def suspensions(draw: st.DrawFn) -> Suspension:
    start = draw(dates)
    end = start + timedelta(days=draw(st.integers(0, 20)))
    scope = draw(st.sampled_from([{}, {"area": "本町"}, {"center": "センター"}]))
    return Suspension(start, end, **scope)


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    months = draw(st.none() | st.frozensets(st.integers(1, 12), min_size=1))
    schedule = Schedule("c", tuple(draw(st.lists(rules, min_size=1, max_size=4))), months)
    return Calendar(
        areas=(Area("本町", center="センター", schedules=(schedule,)),),
        categories=(Category("c", "燃やすごみ", holiday=draw(policies)),),
        centers=(CollectionCenter("センター"),),
        suspensions=tuple(draw(st.lists(suspensions(), max_size=3))),
    )


@st.composite
def windows(draw: st.DrawFn) -> tuple[date, date]:
    start = draw(st.dates(min_value=date(2026, 6, 1), max_value=date(2029, 6, 1)))
    return start, start + timedelta(days=draw(st.integers(0, 150)))


@given(weekdays, st.integers(1, 5), windows())
def test_nth_weekday_dates_are_that_weekday_in_the_nth_block(
    weekday: Weekday, nth: int, window: tuple[date, date]
) -> None:
    found = list(NthWeekday(weekday, nth).occurrences(*window))
    for day in found:
        assert day.weekday() == weekday
        assert (nth - 1) * 7 < day.day <= nth * 7
        assert nth_of_month(day) == nth
    expected = [
        d for d in days_between(*window) if d.weekday() == weekday and nth_of_month(d) == nth
    ]
    assert found == expected


@settings(max_examples=300)
@given(calendars(), windows())
def test_no_date_on_a_suspension_and_sorted_unique(
    calendar: Calendar, window: tuple[date, date]
) -> None:
    found = collection_days(calendar, "本町", "c", *window)
    assert found == sorted(set(found))
    assert all(window[0] <= d <= window[1] for d in found)
    for day in found:
        assert not calendar.is_suspended("本町", day), day


@settings(max_examples=300)
@given(calendars(), windows(), st.data())
def test_expansion_splits(
    calendar: Calendar, window: tuple[date, date], data: st.DataObject
) -> None:
    start, end = window
    split = start + timedelta(days=data.draw(st.integers(0, (end - start).days)))
    whole = collection_days(calendar, "本町", "c", start, end)
    left = collection_days(calendar, "本町", "c", start, split)
    right = collection_days(calendar, "本町", "c", split + timedelta(days=1), end)
    assert whole == left + right


@settings(max_examples=200)
@given(calendars(), windows(), st.integers(1, 60))
def test_expansion_does_not_depend_on_the_window_start(
    calendar: Calendar, window: tuple[date, date], earlier: int
) -> None:
    start, end = window
    wide = collection_days(calendar, "本町", "c", start - timedelta(days=earlier), end)
    assert [d for d in wide if d >= start] == collection_days(calendar, "本町", "c", start, end)


@given(weekdays, dates, windows())
def test_every_other_week_dates_are_14_days_apart(
    weekday: Weekday, anchor: date, window: tuple[date, date]
) -> None:
    calendar = Calendar(
        areas=(Area("本町", schedules=(Schedule("c", (EveryOtherWeek(weekday, anchor),)),)),),
        categories=(Category("c", "燃やすごみ"),),
    )
    found = collection_days(calendar, "本町", "c", *window)
    assert all((b - a).days == 14 for a, b in pairwise(found))
    anchor_monday = anchor - timedelta(days=anchor.weekday())
    for day in found:
        assert day.weekday() == weekday
        assert ((day - anchor_monday).days // 7) % 2 == 0
    if (window[1] - window[0]).days >= 13:
        assert found  # a two-week window always has one
