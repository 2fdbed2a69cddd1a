"""parse_5374(export_5374(c)) == c for generated calendars (hypothesis)."""

from datetime import date, timedelta

from hypothesis import assume, given, settings
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
    Remark,
    Rule,
    Schedule,
    Suspension,
    TargetItem,
    Weekday,
    Weekly,
)
from bot.domain.gomi5374 import export_5374, parse_5374

# Characters that stress CSV and our cell syntax: commas, quotes, newlines, colons, asterisks,
# full-width spaces inside (never at the ends: the parser trims fields).
ALPHABET = "本町港東西燃やすごみ資源缶びんＡＢ12３ abc,\"'\n:*・〜（）#\u3000"

texts = st.text(ALPHABET, max_size=12).map(str.strip)
names = texts.filter(bool)
dates = st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31))
weekdays = st.sampled_from(list(Weekday))
rules: st.SearchStrategy[Rule] = st.one_of(
    st.builds(Weekly, weekdays),
    st.builds(NthWeekday, weekdays, st.integers(1, 5)),
    st.builds(EveryOtherWeek, weekdays, dates),
    st.builds(OnDate, dates),
)
policies = st.one_of(
    st.builds(HolidayPolicy, st.sampled_from([HolidayHandling.COLLECTED, HolidayHandling.SKIPPED])),
    st.builds(HolidayPolicy, st.just(HolidayHandling.MOVED), st.none(), st.booleans()),
    st.builds(HolidayPolicy, st.just(HolidayHandling.MOVED), st.integers(-14, 14).filter(bool)),
)
coordinates = st.none() | st.tuples(
    st.floats(-90, 90, allow_nan=False), st.floats(-180, 180, allow_nan=False)
)


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    remark_ids = draw(
        st.lists(st.from_regex(r"[0-9A-Za-z_-]{1,4}", fullmatch=True), unique=True, max_size=3)
    )
    remarks = tuple(Remark(i, draw(texts)) for i in remark_ids)
    category_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    category_ids = [draw(st.just(name) | names) for name in category_names]
    if len(set(category_ids)) < len(category_ids):
        category_ids = category_names
    categories = tuple(
        Category(
            id=cid,
            name=name,
            items=tuple(draw(st.lists(st.builds(TargetItem, names, texts, texts), max_size=3))),
            notes=draw(texts),
            holiday=draw(policies),
            sublabel=draw(texts),
            style=draw(texts),
            color=draw(texts),
        )
        for cid, name in zip(category_ids, category_names, strict=True)
    )
    centers = tuple(
        CollectionCenter(name, draw(texts), draw(texts), draw(texts))
        for name in draw(st.lists(names, max_size=3, unique=True))
    )
    areas = []
    for name in draw(st.lists(names, max_size=4, unique=True)):
        schedules = []
        for cid in draw(st.lists(st.sampled_from(category_ids), unique=True)):
            schedule_rules = tuple(draw(st.lists(rules, max_size=4)))
            refs = (
                tuple(draw(st.lists(st.sampled_from(remark_ids), max_size=2))) if remark_ids else ()
            )
            if not schedule_rules and not refs:
                schedule_rules = (draw(rules),)
            months = draw(st.none() | st.frozensets(st.integers(1, 12), min_size=1))
            schedules.append(Schedule(cid, schedule_rules, months, refs))
        center = draw(st.sampled_from(["", *(c.name for c in centers)]))
        place = draw(coordinates)
        lat, lng = place if place else (None, None)
        areas.append(Area(name, center, tuple(schedules), lat, lng))
    suspensions = []
    scopes: list[dict[str, str]] = [{}]
    scopes += [{"center": c.name} for c in centers]
    scopes += [{"area": a.name} for a in areas]
    for _ in range(draw(st.integers(0, 4))):
        start = draw(dates)
        end = start + timedelta(days=draw(st.integers(0, 10)))
        suspensions.append(Suspension(start, end, **draw(st.sampled_from(scopes))))
    return Calendar(
        municipality_code=draw(st.just("") | st.from_regex(r"[0-9]{6}", fullmatch=True)),
        areas=tuple(areas),
        categories=categories,
        centers=centers,
        suspensions=tuple(suspensions),
        notes=tuple(draw(st.lists(texts, max_size=2))),
        fallback=draw(texts),
        remarks=remarks,
    )


@settings(max_examples=300, deadline=None)
@given(calendars(), st.booleans())
def test_round_trip(calendar: Calendar, bom: bool) -> None:
    files = export_5374(calendar, bom=bom)
    assert parse_5374(files) == calendar


@settings(max_examples=100, deadline=None)
@given(calendars(), st.sampled_from(["utf-8-sig", "cp932"]))
def test_round_trip_through_another_encoding(calendar: Calendar, encoding: str) -> None:
    # Shift_JIS has one byte pair for 〜 (WAVE DASH) and ～ (FULLWIDTH TILDE); cp932 reads ～.
    assume(encoding != "cp932" or "〜" not in repr(calendar))
    files = {
        name: data.decode("utf-8").encode(encoding) for name, data in export_5374(calendar).items()
    }
    assert parse_5374(files) == calendar
