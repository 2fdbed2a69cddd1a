"""Garbage calendar model and rule expansion."""

from dataclasses import replace
from datetime import date, timedelta
from itertools import pairwise

import pytest

from bot.domain.garbage import (
    COLLECTED_ON_HOLIDAYS,
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
    Schedule,
    Suspension,
    TargetItem,
    Weekday,
    Weekly,
    all_collection_days,
    collection_days,
    date_label,
    days_between,
    is_national_holiday,
    nth_of_month,
    parse_weekday,
    weekdays_label,
)

MON, TUE, WED, THU, FRI, SAT, SUN = Weekday

MOVED = HolidayPolicy(HolidayHandling.MOVED)
SKIPPED = HolidayPolicy(HolidayHandling.SKIPPED)


def calendar_with(
    *rules: Weekly | NthWeekday | EveryOtherWeek | OnDate,
    holiday: HolidayPolicy = COLLECTED_ON_HOLIDAYS,
    months: frozenset[int] | None = None,
    suspensions: tuple[Suspension, ...] = (),
    center: str = "",
) -> Calendar:
    """One area 「本町」, one category 「burnable」 (燃やすごみ) with these rules."""
    centers = (CollectionCenter("東部センター"), CollectionCenter("西部センター"))
    return Calendar(
        municipality_code="042056",
        areas=(
            Area("本町", center=center, schedules=(Schedule("burnable", rules, months),)),
            Area("港町", center="西部センター"),
        ),
        categories=(Category("burnable", "燃やすごみ", holiday=holiday),),
        centers=centers,
        suspensions=suspensions,
    )


def days(calendar: Calendar, start: date, end: date) -> list[date]:
    return collection_days(calendar, "本町", "burnable", start, end)


# ---------------------------------------------------------------------------------------------
# Helpers


def test_weekday_labels_and_parsing() -> None:
    assert [w.label for w in Weekday] == list("月火水木金土日")
    assert SUN.long_label == "日曜日"
    assert Weekday.of(date(2027, 1, 9)) is SAT
    for text, expected in [
        ("月", MON),
        ("水曜", WED),
        ("日曜日", SUN),
        (" 土 ", SAT),
        ("金曜日", FRI),
    ]:
        assert parse_weekday(text) is expected, text
    for text in ["", "月火", "曜日", "Mon", "月曜日です", "日日"]:
        assert parse_weekday(text) is None, text
    assert weekdays_label({THU, MON}) == "月・木"


def test_nth_of_month_and_labels() -> None:
    assert [nth_of_month(date(2027, 1, d)) for d in (1, 7, 8, 14, 15, 22, 29, 31)] == [
        1,
        1,
        2,
        2,
        3,
        4,
        5,
        5,
    ]
    assert date_label(date(2027, 1, 9)) == "1月9日(土)"
    assert date_label(date(2027, 1, 9), year=True) == "2027年1月9日(土)"
    assert list(days_between(date(2027, 1, 30), date(2027, 2, 1))) == [
        date(2027, 1, 30),
        date(2027, 1, 31),
        date(2027, 2, 1),
    ]
    assert list(days_between(date(2027, 2, 1), date(2027, 1, 1))) == []


def test_holidays_come_from_jpholiday() -> None:
    assert is_national_holiday(date(2027, 1, 1))
    assert is_national_holiday(date(2027, 3, 22))  # 振替休日
    assert is_national_holiday(date(2026, 9, 22))  # 国民の休日
    assert not is_national_holiday(date(2027, 1, 10))  # a plain Sunday
    assert not is_national_holiday(date(2027, 12, 31))  # year end is not a national holiday


# ---------------------------------------------------------------------------------------------
# Rules


def test_rule_occurrences() -> None:
    jan = (date(2027, 1, 1), date(2027, 1, 31))
    assert list(Weekly(MON).occurrences(*jan)) == [date(2027, 1, d) for d in (4, 11, 18, 25)]
    assert list(NthWeekday(WED, 2).occurrences(*jan)) == [date(2027, 1, 13)]
    assert list(NthWeekday(FRI, 5).occurrences(*jan)) == [date(2027, 1, 29)]
    assert list(NthWeekday(MON, 5).occurrences(*jan)) == []  # only four Mondays
    assert list(NthWeekday(SAT, 1).occurrences(date(2027, 1, 3), date(2027, 3, 31))) == [
        date(2027, 2, 6),
        date(2027, 3, 6),
    ]
    every_other = EveryOtherWeek(FRI, date(2027, 1, 4))  # the week of Monday 1/4
    assert list(every_other.occurrences(*jan)) == [date(2027, 1, 8), date(2027, 1, 22)]
    # any day of the anchor week gives the same parity
    assert list(EveryOtherWeek(FRI, date(2027, 1, 10)).occurrences(*jan)) == [
        date(2027, 1, 8),
        date(2027, 1, 22),
    ]
    # anchors after the window work too
    assert list(EveryOtherWeek(FRI, date(2027, 6, 18)).occurrences(*jan)) == [
        date(2027, 1, 1),
        date(2027, 1, 15),
        date(2027, 1, 29),
    ]
    assert list(OnDate(date(2027, 1, 9)).occurrences(*jan)) == [date(2027, 1, 9)]
    assert list(OnDate(date(2027, 2, 9)).occurrences(*jan)) == []


def test_rule_labels() -> None:
    assert Weekly(MON).label == "毎週月曜"
    assert NthWeekday(WED, 2).label == "第2水曜"
    assert EveryOtherWeek(FRI, date(2027, 1, 8)).label == "隔週金曜"
    assert OnDate(date(2027, 1, 9)).label == "2027年1月9日(土)"
    schedule = Schedule("x", (NthWeekday(FRI, 4), NthWeekday(TUE, 2)), frozenset({2, 4, 6}))
    assert schedule.label == "4・6・2月: 第2火曜・第4金曜"


def test_nth_must_be_one_to_five() -> None:
    for nth in (0, 6, -1):
        with pytest.raises(ValueError):
            NthWeekday(MON, nth)


def test_schedule_is_canonical() -> None:
    a = Schedule("x", (Weekly(THU), Weekly(MON), Weekly(MON)), remark_ids=("2", "1", "2"))
    b = Schedule("x", (Weekly(MON), Weekly(THU)), remark_ids=("2", "1"))
    assert a == b
    assert a.rules == (Weekly(MON), Weekly(THU))
    assert a.remark_ids == ("2", "1")
    assert Schedule("x", (Weekly(MON),), frozenset(range(1, 13))).months is None
    with pytest.raises(ValueError):
        Schedule("x")
    with pytest.raises(ValueError):
        Schedule("x", (Weekly(MON),), frozenset())
    with pytest.raises(ValueError):
        Schedule("x", (Weekly(MON),), frozenset({13}))
    assert Schedule("x", remark_ids=("1",)).rules == ()  # a remark alone is a cell too


def test_holiday_policy_validation_and_labels() -> None:
    assert COLLECTED_ON_HOLIDAYS.label == "祝日も収集します。"
    assert SKIPPED.label == "祝日は収集しません。"
    assert MOVED.label == "祝日の場合は、次の祝日・日曜でない日に収集します。"
    assert HolidayPolicy(HolidayHandling.MOVED, skip_sundays=False).label == (
        "祝日の場合は、次の祝日でない日に収集します。"
    )
    assert HolidayPolicy(HolidayHandling.MOVED, 1).label == "祝日の場合は、1日後に収集します。"
    assert HolidayPolicy(HolidayHandling.MOVED, -2).label == "祝日の場合は、2日前に収集します。"
    assert [h.label for h in HolidayHandling] == ["祝日も収集", "祝日は収集なし", "祝日は振替"]
    for bad in (0, 15, -15):
        with pytest.raises(ValueError):
            HolidayPolicy(HolidayHandling.MOVED, bad)
    with pytest.raises(ValueError):
        HolidayPolicy(HolidayHandling.SKIPPED, 1)


# ---------------------------------------------------------------------------------------------
# Calendar


def test_calendar_lookups() -> None:
    calendar = calendar_with(Weekly(MON), center="東部センター")
    assert calendar.area("本町").center == "東部センター"
    assert calendar.category("burnable").name == "燃やすごみ"
    assert calendar.center("西部センター").name == "西部センター"
    assert calendar.area_names() == frozenset({"本町", "港町"})
    assert calendar.centers_for("本町") == (CollectionCenter("東部センター"),)
    assert calendar.area("本町").schedule("burnable") is not None
    assert calendar.area("港町").schedule("burnable") is None
    for lookup, key in [
        (calendar.area, "北町"),
        (calendar.category, "燃やすごみ"),
        (calendar.center, "南部"),
        (calendar.remark, "1"),
    ]:
        with pytest.raises(KeyError):
            lookup(key)
    no_center = replace(calendar, areas=(Area("本町"),))
    assert no_center.centers_for("本町") == calendar.centers  # every center when none is set


def test_calendar_rejects_broken_references() -> None:
    base = calendar_with(Weekly(MON))
    bad_variants = [
        {"areas": (Area("本町"), Area("本町"))},
        {"areas": (Area("本町", center="南部"),)},
        {"areas": (Area("本町", schedules=(Schedule("plastic", (Weekly(MON),)),)),)},
        {"areas": (Area("本町", schedules=(Schedule("burnable", remark_ids=("9",)),)),)},
        {"categories": (Category("a", "同じ"), Category("b", "同じ"))},
        {"categories": (Category("a", "一"), Category("a", "二"))},
        {"centers": (CollectionCenter("東部センター"), CollectionCenter("東部センター"))},
        {"suspensions": (Suspension(date(2027, 1, 1), date(2027, 1, 2), center="南部"),)},
        {"suspensions": (Suspension(date(2027, 1, 1), date(2027, 1, 2), area="北町"),)},
        {"remarks": (Remark("1", "a"), Remark("1", "b"))},
    ]
    for changes in bad_variants:
        with pytest.raises(ValueError):
            replace(base, **changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Area("x", schedules=(Schedule("a", (Weekly(MON),)), Schedule("a", (Weekly(TUE),))))
    with pytest.raises(ValueError):
        Area("x", lat=35.0)
    with pytest.raises(ValueError):
        Area("x", lat=95.0, lng=0.0)
    with pytest.raises(ValueError):
        Area("x", lat=35.0, lng=190.0)
    with pytest.raises(ValueError):
        Remark("一", "全角のIDは使えません")
    with pytest.raises(ValueError):
        Suspension(date(2027, 1, 2), date(2027, 1, 1))
    with pytest.raises(ValueError):
        Suspension(date(2027, 1, 1), date(2027, 1, 2), center="a", area="b")


def test_suspension_order_does_not_matter() -> None:
    a = Suspension(date(2027, 12, 29), date(2028, 1, 3), center="東部センター")
    b = Suspension(date(2027, 5, 1), date(2027, 5, 5))
    first = calendar_with(Weekly(MON), suspensions=(a, b))
    second = calendar_with(Weekly(MON), suspensions=(b, a, b))
    assert first == second
    assert first.suspensions == (b, a)
    assert a.label == "12月29日(水)〜1月3日(月)"


def test_calendar_is_hashable_and_comparable() -> None:
    first = calendar_with(Weekly(MON))
    assert first == calendar_with(Weekly(MON))
    assert hash(first) == hash(calendar_with(Weekly(MON)))
    assert first != calendar_with(Weekly(TUE))


# ---------------------------------------------------------------------------------------------
# Expansion


def test_weekly_and_nth() -> None:
    calendar = calendar_with(Weekly(MON), Weekly(THU), NthWeekday(SAT, 2))
    assert days(calendar, date(2027, 2, 1), date(2027, 2, 14)) == [
        date(2027, 2, 1),
        date(2027, 2, 4),
        date(2027, 2, 8),
        date(2027, 2, 11),  # 建国記念の日: collected by default
        date(2027, 2, 13),  # 2nd Saturday
    ]
    assert days(calendar, date(2027, 2, 14), date(2027, 2, 1)) == []  # empty window


def test_holiday_policies() -> None:
    monday = Weekly(MON)
    window = (date(2027, 1, 10), date(2027, 1, 19))  # 1/11 is 成人の日
    assert days(calendar_with(monday), *window) == [date(2027, 1, 11), date(2027, 1, 18)]
    assert days(calendar_with(monday, holiday=SKIPPED), *window) == [date(2027, 1, 18)]
    assert days(calendar_with(monday, holiday=MOVED), *window) == [
        date(2027, 1, 12),
        date(2027, 1, 18),
    ]
    before = HolidayPolicy(HolidayHandling.MOVED, -2)
    assert days(calendar_with(monday, holiday=before), *window) == [date(2027, 1, 18)]
    assert days(calendar_with(monday, holiday=before), date(2027, 1, 9), date(2027, 1, 19)) == [
        date(2027, 1, 9),
        date(2027, 1, 18),
    ]


def test_moved_skips_following_holidays_and_sundays() -> None:
    # 2027-05-03..05 are holidays: Monday and Tuesday collections land on Thursday 5/6, once.
    calendar = calendar_with(Weekly(MON), Weekly(TUE), Weekly(THU), holiday=MOVED)
    assert days(calendar, date(2027, 5, 1), date(2027, 5, 9)) == [date(2027, 5, 6)]
    # 2028-04-29 (Saturday) is 昭和の日: the next day is a Sunday
    saturday = calendar_with(Weekly(SAT), holiday=MOVED)
    assert days(saturday, date(2028, 4, 28), date(2028, 5, 2)) == [date(2028, 5, 1)]
    sundays_ok = HolidayPolicy(HolidayHandling.MOVED, skip_sundays=False)
    assert days(
        calendar_with(Weekly(SAT), holiday=sundays_ok), date(2028, 4, 28), date(2028, 5, 2)
    ) == [date(2028, 4, 30)]
    # an offset move lands where it says, even on a holiday
    plus_one = calendar_with(Weekly(MON), holiday=HolidayPolicy(HolidayHandling.MOVED, 1))
    assert days(plus_one, date(2027, 5, 1), date(2027, 5, 9)) == [date(2027, 5, 4)]


def test_moves_across_the_window_edges() -> None:
    calendar = calendar_with(Weekly(MON), holiday=MOVED)
    # from just before the window into it: included
    assert days(calendar, date(2027, 1, 12), date(2027, 1, 17)) == [date(2027, 1, 12)]
    # from inside the window out of it: dropped
    assert days(calendar, date(2027, 1, 10), date(2027, 1, 11)) == []
    assert days(calendar, date(2027, 1, 11), date(2027, 1, 11)) == []
    assert days(calendar, date(2027, 1, 12), date(2027, 1, 12)) == [date(2027, 1, 12)]


def test_suspensions() -> None:
    year_end = Suspension(date(2026, 12, 29), date(2027, 1, 3), center="東部センター")
    calendar = calendar_with(
        Weekly(MON), Weekly(THU), suspensions=(year_end,), center="東部センター"
    )
    assert days(calendar, date(2026, 12, 27), date(2027, 1, 8)) == [
        date(2026, 12, 28),
        date(2027, 1, 4),
        date(2027, 1, 7),
    ]
    # another center's suspension does not apply
    other = calendar_with(Weekly(MON), Weekly(THU), suspensions=(year_end,), center="西部センター")
    assert date(2026, 12, 31) in days(other, date(2026, 12, 27), date(2027, 1, 8))
    # nor does a center suspension to an area without a center
    assert date(2026, 12, 31) in days(
        calendar_with(Weekly(THU), suspensions=(year_end,)), date(2026, 12, 27), date(2027, 1, 8)
    )
    # area and municipality-wide suspensions
    for scope in ({"area": "本町"}, {}):
        s = Suspension(date(2027, 1, 4), date(2027, 1, 4), **scope)
        assert days(
            calendar_with(Weekly(MON), suspensions=(s,)), date(2027, 1, 1), date(2027, 1, 11)
        ) == [date(2027, 1, 11)]
    elsewhere = Suspension(date(2027, 1, 4), date(2027, 1, 4), area="港町")
    assert days(
        calendar_with(Weekly(MON), suspensions=(elsewhere,)), date(2027, 1, 1), date(2027, 1, 5)
    ) == [date(2027, 1, 4)]
    assert calendar.is_suspended("本町", date(2026, 12, 31))
    assert not calendar.is_suspended("港町", date(2026, 12, 31))


def test_a_suspended_holiday_is_dropped_not_moved_and_moves_avoid_suspensions() -> None:
    new_year = Suspension(date(2027, 1, 1), date(2027, 1, 1))
    calendar = calendar_with(Weekly(FRI), holiday=MOVED, suspensions=(new_year,))
    assert days(calendar, date(2026, 12, 31), date(2027, 1, 9)) == [date(2027, 1, 8)]
    # GW: the move skips suspended days...
    gw = Suspension(date(2027, 5, 6), date(2027, 5, 7), area="本町")
    moved = calendar_with(Weekly(MON), holiday=MOVED, suspensions=(gw,))
    assert days(moved, date(2027, 5, 1), date(2027, 5, 9)) == [date(2027, 5, 8)]
    # ...and an offset move onto a suspended day is dropped
    offset = calendar_with(
        Weekly(MON), holiday=HolidayPolicy(HolidayHandling.MOVED, 3), suspensions=(gw,)
    )
    assert days(offset, date(2027, 5, 1), date(2027, 5, 9)) == []


def test_a_move_with_no_free_day_in_a_week_is_dropped() -> None:
    long_break = Suspension(date(2027, 1, 2), date(2027, 1, 31))
    calendar = calendar_with(Weekly(FRI), holiday=MOVED, suspensions=(long_break,))
    assert days(calendar, date(2026, 12, 25), date(2027, 2, 28))[:2] == [
        date(2026, 12, 25),
        date(2027, 2, 5),
    ]


def test_month_filter() -> None:
    # 火2 金4:4 6 8 10 12 2 (5374's example)
    calendar = calendar_with(
        NthWeekday(TUE, 2), NthWeekday(FRI, 4), months=frozenset({4, 6, 8, 10, 12, 2})
    )
    found = days(calendar, date(2027, 1, 1), date(2027, 6, 30))
    assert found == [
        date(2027, 2, 9),
        date(2027, 2, 26),
        date(2027, 4, 13),
        date(2027, 4, 23),
        date(2027, 6, 8),
        date(2027, 6, 25),
    ]


def test_explicit_dates_ignore_holidays_and_months_but_not_suspensions() -> None:
    calendar = calendar_with(
        OnDate(date(2027, 1, 11)),
        OnDate(date(2026, 12, 30)),
        OnDate(date(2027, 3, 1)),
        Weekly(WED),
        holiday=SKIPPED,
        months=frozenset({2}),
        suspensions=(Suspension(date(2026, 12, 29), date(2027, 1, 3)),),
    )
    assert days(calendar, date(2026, 12, 1), date(2027, 1, 31)) == [date(2027, 1, 11)]
    assert days(calendar, date(2027, 2, 26), date(2027, 3, 5)) == [date(2027, 3, 1)]


def test_every_other_week() -> None:
    calendar = calendar_with(EveryOtherWeek(FRI, date(2027, 1, 8)))
    found = days(calendar, date(2027, 1, 1), date(2027, 3, 1))
    assert found[:3] == [date(2027, 1, 8), date(2027, 1, 22), date(2027, 2, 5)]
    assert all((b - a).days == 14 for a, b in pairwise(found))


def test_unknown_area_or_category_and_no_schedule() -> None:
    calendar = calendar_with(Weekly(MON))
    with pytest.raises(KeyError):
        collection_days(calendar, "北町", "burnable", date(2027, 1, 1), date(2027, 1, 31))
    with pytest.raises(KeyError):
        collection_days(calendar, "本町", "燃やすごみ", date(2027, 1, 1), date(2027, 1, 31))
    assert collection_days(calendar, "港町", "burnable", date(2027, 1, 1), date(2027, 1, 31)) == []
    area = calendar.area("本町")
    assert collection_days(calendar, area, "burnable", date(2027, 1, 1), date(2027, 1, 7)) == [
        date(2027, 1, 4)
    ]
    assert all_collection_days(calendar, "本町", date(2027, 1, 1), date(2027, 1, 7)) == {
        "burnable": [date(2027, 1, 4)]
    }


def test_category_items() -> None:
    category = Category(
        "burnable",
        "燃やすごみ",
        items=(TargetItem("生ごみ", "水を切ってください", "なまごみ"),),
        notes="指定袋で出してください",
    )
    assert category.items[0].name == "生ごみ"
    assert category.holiday == COLLECTED_ON_HOLIDAYS


def test_long_windows_are_cheap() -> None:
    calendar = calendar_with(Weekly(MON), Weekly(THU), NthWeekday(WED, 2), holiday=MOVED)
    found = days(calendar, date(2027, 1, 1), date(2036, 12, 31))
    assert 1100 < len(found) < 1200
    assert found == sorted(set(found))
    assert found[0] >= date(2027, 1, 1) and found[-1] <= date(2036, 12, 31)
    assert date(2027, 1, 1) + timedelta(days=3) in found  # Monday 1/4
