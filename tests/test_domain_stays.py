"""Stays: patterns, validation, parsing, matching with collection days, reminder moments."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.domain.garbage import (
    Area,
    Calendar,
    Category,
    CollectionCenter,
    HolidayHandling,
    HolidayPolicy,
    NthWeekday,
    Schedule,
    Suspension,
    Weekday,
    Weekly,
)
from bot.domain.stays import (
    DEFAULT_MATCH_DAYS,
    JST,
    STAY_OK,
    DateSpan,
    ParseFailure,
    Stay,
    StayPattern,
    StayProblem,
    defer_out_of_quiet_hours,
    in_quiet_hours,
    match,
    one_year_after,
    overlaps,
    parse_date_range,
    parse_stay_pattern,
    reminder_at,
    reminder_moments,
    spans_of,
    stay_days,
    validate_stay,
)

MON, TUE, WED, THU, FRI, SAT, SUN = Weekday
PLACE = "042056"
WEEKENDS = StayPattern(frozenset({SAT, SUN}))
FRI_TO_SUN_2_4 = StayPattern(frozenset({FRI, SAT, SUN}), frozenset({2, 4}))
TODAY = date(2026, 12, 20)


def d(month: int, day: int, year: int = 2027) -> date:
    return date(year, month, day)


# ---------------------------------------------------------------------------------------------
# Spans and patterns


def test_date_span() -> None:
    span = DateSpan(d(1, 9), d(1, 11))
    assert list(span.days()) == [d(1, 9), d(1, 10), d(1, 11)]
    assert d(1, 10) in span and d(1, 12) not in span and "x" not in span
    assert span.length == 3
    assert span.label == "1月9日(土)〜1月11日(月)"
    assert DateSpan(d(1, 9), d(1, 9)).label == "1月9日(土)"
    with pytest.raises(ValueError):
        DateSpan(d(1, 11), d(1, 9))
    assert spans_of([d(1, 3), d(1, 1), d(1, 2), d(1, 5), d(1, 5)]) == [
        DateSpan(d(1, 1), d(1, 3)),
        DateSpan(d(1, 5), d(1, 5)),
    ]


def test_pattern_runs_and_labels() -> None:
    assert WEEKENDS.runs() == [(SAT, SUN)]
    assert WEEKENDS.label == "毎週土・日曜"
    assert FRI_TO_SUN_2_4.runs() == [(FRI, SAT, SUN)]
    assert FRI_TO_SUN_2_4.label == "第2・第4金〜日曜"
    assert StayPattern(frozenset({SUN, MON})).runs() == [(SUN, MON)]
    assert StayPattern(frozenset({MON, WED})).label == "毎週月・水曜"
    assert StayPattern(frozenset({SAT})).label == "毎週土曜"
    assert StayPattern(frozenset(Weekday)).runs() == [tuple(Weekday)]
    with pytest.raises(ValueError):
        StayPattern(frozenset())
    with pytest.raises(ValueError):
        StayPattern(frozenset({SAT}), frozenset({6}))


def test_nth_weeks_follow_the_start_of_the_span() -> None:
    stay = Stay(PLACE, d(1, 1), d(5, 31), FRI_TO_SUN_2_4)
    jan = [s.day for s in stay.days(d(1, 1), d(1, 31))]
    assert jan == [d(1, 8), d(1, 9), d(1, 10), d(1, 22), d(1, 23), d(1, 24)]
    assert stay.spans(d(1, 1), d(1, 31)) == [
        DateSpan(d(1, 8), d(1, 10)),
        DateSpan(d(1, 22), d(1, 24)),
    ]
    # the 5th Friday of April 2027 is 4/30: its Saturday and Sunday are in May
    fifth = Stay(PLACE, d(4, 1), d(5, 31), StayPattern(frozenset({FRI, SAT, SUN}), frozenset({5})))
    assert [s.day for s in fifth.days(d(4, 1), d(5, 31))] == [d(4, 30), d(5, 1), d(5, 2)]
    # 5/1 is the 1st Saturday, but it belongs to the span of the 5th Friday
    first_weekend = Stay(
        PLACE, d(5, 1), d(5, 31), StayPattern(frozenset({SAT, SUN}), frozenset({1}))
    )
    assert [s.day for s in first_weekend.days(d(5, 1), d(5, 31))] == [d(5, 1), d(5, 2)]


def test_stay_days_are_clipped_to_the_stay_and_window() -> None:
    stay = Stay(PLACE, d(1, 9), d(1, 17), WEEKENDS)
    assert [s.day for s in stay.days(d(1, 1), d(1, 31))] == [d(1, 9), d(1, 10), d(1, 16), d(1, 17)]
    assert [s.day for s in stay.days(d(1, 10), d(1, 16))] == [d(1, 10), d(1, 16)]
    assert stay.days(d(2, 1), d(2, 28)) == []
    assert stay.days(d(1, 9), d(1, 9))[0].stay is stay
    one_off = Stay(PLACE, d(1, 9), d(1, 11))
    assert one_off.spans(d(1, 1), d(1, 10)) == [DateSpan(d(1, 9), d(1, 10))]
    assert stay_days([stay, one_off], d(1, 1), d(1, 31)) == [
        d(1, 9),
        d(1, 10),
        d(1, 11),
        d(1, 16),
        d(1, 17),
    ]
    assert one_off.label == "1月9日(土)〜1月11日(月)"
    assert stay.label == "毎週土・日曜（1月9日(土)〜1月17日(日)）"


def test_overlaps() -> None:
    weekends = Stay(PLACE, d(1, 1), d(3, 31), WEEKENDS)
    weekdays = Stay(PLACE, d(1, 1), d(3, 31), StayPattern(frozenset({MON, TUE, WED})))
    trip = Stay(PLACE, d(1, 11), d(1, 15))  # Monday to Friday
    long_weekend = Stay(PLACE, d(1, 15), d(1, 17))  # Friday to Sunday
    assert not overlaps(weekends, weekdays)
    assert not overlaps(weekends, trip)
    assert overlaps(weekdays, trip)
    assert overlaps(weekends, long_weekend)
    assert overlaps(trip, long_weekend)  # Friday 1/15
    assert not overlaps(Stay("070009", d(1, 11), d(1, 15)), trip)  # another place
    assert not overlaps(Stay(PLACE, d(4, 1), d(4, 30), WEEKENDS), weekends)  # other months


# ---------------------------------------------------------------------------------------------
# Validation


def test_validate_stay() -> None:
    good = Stay(PLACE, d(1, 9), d(3, 31), WEEKENDS, area="本町")
    assert validate_stay(good, TODAY, [], {"本町"}) == STAY_OK
    assert STAY_OK.ok
    cases = [
        (Stay(PLACE, d(1, 11), d(1, 9)), StayProblem.END_BEFORE_START, "終了日が開始日より前"),
        (Stay(PLACE, d(12, 19, 2026), d(1, 9)), StayProblem.IN_PAST, "過去の日付"),
        (Stay(PLACE, d(1, 9), d(1, 9, 2028)), StayProblem.TOO_LONG, "1年以内"),
        (Stay(PLACE, d(1, 9), d(1, 10), area="北町"), StayProblem.UNKNOWN_AREA, "地区「北町」"),
        (
            Stay(PLACE, d(1, 11), d(1, 15), WEEKENDS),
            StayProblem.NO_DAYS,
            "この期間には滞在日がありません",
        ),
    ]
    for stay, problem, text in cases:
        check = validate_stay(stay, TODAY, [], {"本町"})
        assert check.problem is problem, stay
        assert text in check.message
        assert not check.ok
    assert validate_stay(Stay(PLACE, TODAY, TODAY), TODAY).ok  # today is fine
    assert validate_stay(Stay(PLACE, d(1, 9), d(1, 8, 2028)), TODAY).ok  # one year exactly
    assert validate_stay(Stay(PLACE, d(1, 9), d(1, 10), area="北町"), TODAY).ok  # no area list


def test_validate_overlap_names_the_conflict() -> None:
    existing = Stay(PLACE, d(1, 1), d(3, 31), WEEKENDS)
    new = Stay(PLACE, d(1, 15), d(1, 17))
    check = validate_stay(new, TODAY, [existing])
    assert check.problem is StayProblem.OVERLAP
    assert check.conflict == existing
    assert check.message == (
        "登録済みの滞在（毎週土・日曜（1月1日(金)〜3月31日(水)））と重なっています。"
        "日程をご確認ください。"
    )
    assert validate_stay(Stay("070009", d(1, 15), d(1, 17)), TODAY, [existing]).ok


def test_one_year_after() -> None:
    assert one_year_after(d(1, 9)) == d(1, 9, 2028)
    assert one_year_after(date(2028, 2, 29)) == date(2029, 3, 1)


# ---------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("text", "weekdays", "nth"),
    [
        ("毎週土日", {SAT, SUN}, set()),
        ("毎週金曜から日曜", {FRI, SAT, SUN}, set()),
        ("第2・第4金曜〜日曜", {FRI, SAT, SUN}, {2, 4}),
        ("土曜日", {SAT}, set()),
        ("日曜", {SUN}, set()),
        ("土曜日曜", {SAT, SUN}, set()),
        ("土曜日・日曜日", {SAT, SUN}, set()),
        ("毎週火曜日と木曜日", {TUE, THU}, set()),
        ("毎週 月・水", {MON, WED}, set()),
        ("金〜月", {FRI, SAT, SUN, MON}, set()),
        ("毎週金曜日～日曜日まで", {FRI, SAT, SUN}, set()),
        ("第２、第４土曜日", {SAT}, {2, 4}),
        ("第1・3週の土日", {SAT, SUN}, {1, 3}),
        ("毎月第3土曜", {SAT}, {3}),
        ("週末", {SAT, SUN}, set()),
        ("平日", {MON, TUE, WED, THU, FRI}, set()),
        ("毎日", set(Weekday), set()),
        ("ＳＡＴ", None, None),
        ("隔週土曜", None, None),
        ("第6土曜", None, None),
        ("第2土曜・第4日曜", None, None),
        ("", None, None),
        ("土〜", None, None),
        ("月火〜金", None, None),
    ],
)
def test_parse_stay_pattern(text: str, weekdays: set[Weekday] | None, nth: set[int] | None) -> None:
    parsed = parse_stay_pattern(text)
    if weekdays is None:
        assert isinstance(parsed, ParseFailure)
        assert "「毎週土日」「毎週金曜から日曜」「第2・第4金曜〜日曜」のようにご入力ください。" in (
            parsed.message
        )
    else:
        assert parsed == StayPattern(frozenset(weekdays), frozenset(nth or ()))


def test_parse_stay_pattern_messages() -> None:
    failure = parse_stay_pattern("第6土曜")
    assert isinstance(failure, ParseFailure)
    assert failure.message.startswith("第何週かは第1〜第5でご指定ください。")
    failure = parse_stay_pattern("  隔週土曜 ")
    assert isinstance(failure, ParseFailure)
    assert failure.message.startswith("「隔週土曜」を読み取れませんでした。")


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("1/9〜1/11", TODAY, (d(1, 9), d(1, 11))),
        ("2027-01-09から2027-01-11", TODAY, (d(1, 9), d(1, 11))),
        ("2027/1/9~2027/1/11", TODAY, (d(1, 9), d(1, 11))),
        ("１／９〜１／１１", TODAY, (d(1, 9), d(1, 11))),
        ("1月9日〜11日", TODAY, (d(1, 9), d(1, 11))),
        ("1月9日から1月11日まで", TODAY, (d(1, 9), d(1, 11))),
        ("1/9(土)〜1/11(月)", TODAY, (d(1, 9), d(1, 11))),
        ("12/30〜1/3", TODAY, (d(12, 30, 2026), d(1, 3))),
        ("12/20〜12/21", TODAY, (d(12, 20, 2026), d(12, 21, 2026))),  # today counts
        ("12/19〜12/21", TODAY, (d(12, 19), d(12, 21))),  # yesterday: next year
        ("1/9", TODAY, (d(1, 9), d(1, 9))),
        ("2/29", TODAY, (date(2028, 2, 29), date(2028, 2, 29))),
        ("2027年1月9日〜2027年1月11日", TODAY, (d(1, 9), d(1, 11))),
        ("1/9-1/11", TODAY, (d(1, 9), d(1, 11))),
        ("1/9-11", TODAY, (d(1, 9), d(1, 11))),
        ("2027-01-09", TODAY, (d(1, 9), d(1, 9))),
    ],
)
def test_parse_date_range(text: str, today: date, expected: tuple[date, date]) -> None:
    assert parse_date_range(text, today) == DateSpan(*expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("あした", "日付を読み取れませんでした。「1/9〜1/11」や「2027-01-09から2027-01-11」"),
        ("1/9〜", "日付を読み取れませんでした。"),
        ("1/9〜1/10〜1/11", "日付を読み取れませんでした。"),
        ("2/30〜3/1", "2月30日という日付はありません。"),
        ("13/1", "13月1日という日付はありません。"),
        ("2027-02-29", "2027年2月29日という日付はありません。"),
        ("2027-01-11から2027-01-09", "終了日が開始日より前になっています。"),
        ("11日", "日付を読み取れませんでした。"),
    ],
)
def test_parse_date_range_failures(text: str, message: str) -> None:
    parsed = parse_date_range(text, TODAY)
    assert isinstance(parsed, ParseFailure)
    assert parsed.message.startswith(message)


# ---------------------------------------------------------------------------------------------
# Matching


def sample_calendar() -> Calendar:
    return Calendar(
        municipality_code=PLACE,
        areas=(
            Area(
                "本町",
                center="東部センター",
                schedules=(
                    Schedule("burnable", (Weekly(MON), Weekly(THU))),
                    Schedule("plastic", (Weekly(SAT),)),
                    Schedule("cans", (NthWeekday(SUN, 2),)),
                ),
            ),
        ),
        categories=(
            Category("burnable", "燃やすごみ"),
            Category("plastic", "プラスチック", holiday=HolidayPolicy(HolidayHandling.SKIPPED)),
            Category("cans", "缶・びん"),
            Category("bulky", "粗大ごみ"),
        ),
        centers=(CollectionCenter("東部センター", "気仙沼市東1-1", "平日 9:00〜16:00"),),
        suspensions=(Suspension(d(1, 1), d(1, 3), center="東部センター"),),
        fallback="指定ごみ袋をお渡しします。",
    )


def test_match_weekend_stays() -> None:
    calendar = sample_calendar()
    stays = [Stay(PLACE, d(1, 1), d(3, 31), WEEKENDS)]
    result = match(calendar, "本町", stays, d(1, 1))
    assert (result.start, result.end) == (d(1, 1), d(1, 28))
    assert (result.end - result.start).days + 1 == DEFAULT_MATCH_DAYS
    by_id = {m.category.id: m for m in result.categories}
    assert by_id["burnable"].in_stay == ()
    assert by_id["burnable"].collection_days[0] == d(1, 4)  # 1/1–1/3 suspended
    assert by_id["plastic"].in_stay == (d(1, 9), d(1, 16), d(1, 23))  # 1/2 is suspended
    assert by_id["cans"].in_stay == (d(1, 10),)
    assert by_id["bulky"].collection_days == ()
    assert [c.id for c in result.uncovered] == ["burnable", "bulky"]
    assert result.needs_fallback
    assert result.fallback == "指定ごみ袋をお渡しします。"
    assert result.centers == (calendar.center("東部センター"),)
    assert result.stay_days[:2] == (d(1, 2), d(1, 3))
    assert [(day, c.id) for day, c in result.reminders()] == [
        (d(1, 9), "plastic"),
        (d(1, 10), "cans"),
        (d(1, 16), "plastic"),
        (d(1, 23), "plastic"),
    ]


def test_match_with_several_stays_and_explicit_window() -> None:
    calendar = sample_calendar()
    stays = [Stay(PLACE, d(1, 11), d(1, 11)), Stay(PLACE, d(1, 14), d(1, 14))]
    result = match(calendar, calendar.area("本町"), stays, d(1, 5), d(1, 20))
    by_id = {m.category.id: m for m in result.categories}
    # 1/11 is a holiday but burnable garbage is collected on holidays
    assert by_id["burnable"].in_stay == (d(1, 11), d(1, 14))
    assert by_id["burnable"].covered
    assert [c.id for c in result.uncovered] == ["plastic", "cans", "bulky"]
    nothing = match(calendar, "本町", [], d(1, 5))
    assert len(nothing.uncovered) == 4
    assert nothing.reminders() == []


# ---------------------------------------------------------------------------------------------
# Reminder moments


def jst(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=JST)


def test_reminder_moments() -> None:
    moment = reminder_moments(d(1, 11))
    assert moment == jst(1, 10, 20)
    assert moment.utcoffset() == timedelta(hours=9)
    assert reminder_moments(d(1, 11), time(6, 30), evening_before=False) == jst(1, 11, 6, 30)
    assert reminder_moments(d(1, 1), time(19)) == datetime(2026, 12, 31, 19, tzinfo=JST)


def test_quiet_hours() -> None:
    assert not in_quiet_hours(jst(1, 10, 20, 59))
    assert in_quiet_hours(jst(1, 10, 21))
    assert in_quiet_hours(jst(1, 11, 3))
    assert in_quiet_hours(jst(1, 11, 7, 59))
    assert not in_quiet_hours(jst(1, 11, 8))
    assert in_quiet_hours(jst(1, 11, 12, 30), (time(12), time(13)))
    assert not in_quiet_hours(jst(1, 11, 13), (time(12), time(13)))
    assert not in_quiet_hours(jst(1, 11, 3), (time(8), time(8)))
    # the clock reading is Japan time whatever the input zone
    assert in_quiet_hours(datetime(2027, 1, 10, 13, tzinfo=UTC))  # 22:00 JST


def test_defer_out_of_quiet_hours() -> None:
    collection = d(1, 11)
    # outside quiet hours: unchanged
    assert defer_out_of_quiet_hours(jst(1, 10, 20), collection_date=collection) == jst(1, 10, 20)
    # 22:00 the evening before: 08:00 would be too late, so 20:59
    assert defer_out_of_quiet_hours(jst(1, 10, 22), collection_date=collection) == jst(
        1, 10, 20, 59
    )
    # 06:00 on the morning itself: back to 20:59 the evening before
    assert defer_out_of_quiet_hours(jst(1, 11, 6), collection_date=collection) == jst(1, 10, 20, 59)
    # 22:00 two evenings before: 08:00 the next morning is still in time
    assert defer_out_of_quiet_hours(jst(1, 9, 22), collection_date=collection) == jst(1, 10, 8)
    # a later deadline lets 08:00 on the day stand
    assert defer_out_of_quiet_hours(
        jst(1, 11, 6), collection_date=collection, put_out_by=time(8, 30)
    ) == jst(1, 11, 8)
    # without a collection date: simply the end of the quiet window
    assert defer_out_of_quiet_hours(jst(1, 10, 22)) == jst(1, 11, 8)
    assert defer_out_of_quiet_hours(jst(1, 11, 2)) == jst(1, 11, 8)
    # a quiet window within one day
    assert defer_out_of_quiet_hours(jst(1, 10, 12, 30), (time(12), time(13))) == jst(1, 10, 13)
    assert defer_out_of_quiet_hours(
        jst(1, 11, 7, 30), (time(7), time(9)), collection_date=collection
    ) == jst(1, 11, 6, 59)
    # UTC in, JST out
    out = defer_out_of_quiet_hours(
        datetime(2027, 1, 10, 13, tzinfo=UTC), collection_date=collection
    )
    assert out == jst(1, 10, 20, 59) and out.utcoffset() == timedelta(hours=9)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        in_quiet_hours(datetime(2027, 1, 10, 22))
    with pytest.raises(ValueError):
        defer_out_of_quiet_hours(datetime(2027, 1, 10, 22))


def test_reminder_at() -> None:
    assert reminder_at(d(1, 11)) == jst(1, 10, 20)
    assert reminder_at(d(1, 11), time(22)) == jst(1, 10, 20, 59)
    assert reminder_at(d(1, 11), time(6), evening_before=False) == jst(1, 10, 20, 59)
    assert reminder_at(d(1, 11), time(7), evening_before=False, quiet=(time(22), time(6))) == jst(
        1, 11, 7
    )
