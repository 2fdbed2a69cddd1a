"""Bearer activities: waiting list, attendance codes, renewal counting and reminders."""

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.activities import (
    CODE_ALPHABET,
    JST,
    Activity,
    ActivityKind,
    ApplyOutcome,
    Attendance,
    Roster,
    activity_count,
    apply,
    apply_message,
    attendance_code,
    cancel,
    check_attendance_code,
    normalize_attendance_code,
    past_year,
    reminder_at,
    reminder_due,
    renewal_activity_count,
    renewal_for,
    renewal_reminders,
    resize,
)
from bot.domain.registration import Renewal, premium_valid_until, renewal_outcome

KESENNUMA = "042056"
MINAMIUONUMA = "152269"
SECRET = b"attendance-secret-for-tests-0123"


def activity(**changes: object) -> Activity:
    values: dict[str, object] = {
        "id": "act-1",
        "municipality_code": KESENNUMA,
        "title": "海岸清掃",
        "kind": ActivityKind.VOLUNTEER,
        "starts_at": datetime(2027, 5, 15, 9, 0, tzinfo=JST),
        "ends_at": datetime(2027, 5, 15, 12, 0, tzinfo=JST),
        "place": "気仙沼港 集合",
        "capacity": 2,
    }
    values.update(changes)
    return Activity(**values)  # type: ignore[arg-type]


def test_kind_labels() -> None:
    assert [k.label for k in ActivityKind] == ["ボランティア", "副業", "災害ボランティア"]


def test_activity_validation() -> None:
    assert activity().day == date(2027, 5, 15)
    with pytest.raises(ValueError):
        activity(starts_at=datetime(2027, 5, 15, 9, 0))
    with pytest.raises(ValueError):
        activity(ends_at=datetime(2027, 5, 15, 8, 0, tzinfo=JST))
    with pytest.raises(ValueError):
        activity(capacity=0)
    with pytest.raises(ValueError):
        activity(municipality_code="000000")
    # a UTC time late in the evening is the next Japan day
    assert activity(starts_at=datetime(2027, 5, 14, 23, 0, tzinfo=UTC)).day == date(2027, 5, 15)


# --- roster -------------------------------------------------------------------------------


def test_apply_and_cancel_walkthrough() -> None:
    roster = Roster(2)
    roster, outcome = apply(roster, "a")
    assert outcome is ApplyOutcome.CONFIRMED
    roster, outcome = apply(roster, "b")
    assert outcome is ApplyOutcome.CONFIRMED and roster.is_full
    roster, outcome = apply(roster, "c")
    assert outcome is ApplyOutcome.WAITLISTED
    roster, outcome = apply(roster, "d")
    assert roster == Roster(2, ("a", "b"), ("c", "d"))
    assert apply(roster, "a") == (roster, ApplyOutcome.ALREADY)
    assert apply(roster, "d") == (roster, ApplyOutcome.ALREADY)
    assert roster.waiting_position("d") == 2 and roster.waiting_position("a") is None

    roster, promoted = cancel(roster, "d")  # a waiting person leaves: nobody moves up
    assert promoted is None and roster == Roster(2, ("a", "b"), ("c",))
    roster, promoted = cancel(roster, "a")
    assert promoted == "c" and roster == Roster(2, ("b", "c"), ())
    roster, promoted = cancel(roster, "zzz")
    assert promoted is None and roster == Roster(2, ("b", "c"), ())
    roster, promoted = cancel(roster, "b")
    assert promoted is None and roster == Roster(2, ("c",), ()) and roster.free == 1


def test_roster_rejects_broken_states() -> None:
    for bad in (
        {"capacity": 0},
        {"capacity": 1, "confirmed": ("a", "b")},
        {"capacity": 2, "confirmed": ("a", "a")},
        {"capacity": 1, "confirmed": ("a",), "waiting": ("a",)},
        {"capacity": 2, "confirmed": ("a",), "waiting": ("b",)},
    ):
        with pytest.raises(ValueError):
            Roster(**bad)  # type: ignore[arg-type]


def test_resize() -> None:
    roster = Roster(1, ("a",), ("b", "c", "d"))
    bigger, promoted = resize(roster, 3)
    assert promoted == ("b", "c") and bigger == Roster(3, ("a", "b", "c"), ("d",))
    huge, promoted = resize(roster, 10)
    assert promoted == ("b", "c", "d") and huge.waiting == ()
    with pytest.raises(ValueError):
        resize(bigger, 2)


def test_apply_messages() -> None:
    act = activity(capacity=1)
    roster, outcome = apply(Roster(1), "a")
    assert apply_message(act, roster, "a", outcome) == (
        "「海岸清掃」（5月15日）への参加を受け付けました。前日にお知らせします。"
    )
    roster, outcome = apply(roster, "b")
    assert "キャンセル待ち1番目で受け付けました" in apply_message(act, roster, "b", outcome)
    roster, outcome = apply(roster, "b")
    assert "すでにキャンセル待ち1番目" in apply_message(act, roster, "b", outcome)
    roster, outcome = apply(roster, "a")
    assert "参加はすでに受け付けています" in apply_message(act, roster, "a", outcome)


PEOPLE = st.sampled_from([f"u{i}" for i in range(8)])
OPERATIONS = st.lists(st.tuples(st.sampled_from(["apply", "cancel"]), PEOPLE), max_size=60)


@settings(max_examples=400)
@given(st.integers(min_value=1, max_value=4), OPERATIONS)
def test_roster_invariants(capacity: int, operations: list[tuple[str, str]]) -> None:
    roster = Roster(capacity)
    for operation, person in operations:
        before = roster
        if operation == "apply":
            roster, outcome = apply(roster, person)
            if outcome is ApplyOutcome.ALREADY:
                assert roster == before
            elif outcome is ApplyOutcome.CONFIRMED:
                assert roster.confirmed == (*before.confirmed, person)
                assert roster.waiting == before.waiting == ()
            else:
                assert before.is_full
                assert roster.waiting == (*before.waiting, person)
        else:
            roster, promoted = cancel(roster, person)
            assert person not in roster.confirmed and person not in roster.waiting
            if person in before.confirmed and before.waiting:
                # exactly the head moves up, and the rest keep their order
                assert promoted == before.waiting[0]
                assert roster.waiting == before.waiting[1:]
                assert roster.confirmed[-1] == promoted
            else:
                assert promoted is None
        # invariants (also checked by Roster itself)
        assert len(roster.confirmed) <= roster.capacity == capacity
        assert not set(roster.confirmed) & set(roster.waiting)
        assert len(set(roster.confirmed)) == len(roster.confirmed)
        assert not roster.waiting or roster.is_full
        # waiting-list order is preserved: survivors keep their relative order
        survivors = [p for p in before.waiting if p in roster.waiting]
        assert list(roster.waiting[: len(survivors)]) == survivors


# --- attendance codes ---------------------------------------------------------------------

DAY = date(2027, 5, 15)


def test_code_shape_and_determinism() -> None:
    code = attendance_code("act-1", SECRET, DAY)
    assert re.fullmatch(r"[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{6}", code)
    assert not set("01OI") & set(CODE_ALPHABET) and len(CODE_ALPHABET) == 32
    assert attendance_code("act-1", SECRET, DAY) == code
    assert attendance_code("act-2", SECRET, DAY) != code
    assert attendance_code("act-1", SECRET, DAY + timedelta(days=1)) != code
    assert attendance_code("act-1", b"another-secret", DAY) != code
    with pytest.raises(ValueError):
        attendance_code("act-1", b"", DAY)


def test_code_accepts_lower_case_full_width_and_spaces() -> None:
    code = attendance_code("act-1", SECRET, DAY)
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)
    for typed in (
        code,
        code.lower(),
        full_width,
        full_width.lower(),
        f" {code[:3]} {code[3:]} ",
        f"{code[:3]}-{code[3:]}",
        f"{code[:3]}ー{code[3:]}",
    ):
        assert check_attendance_code("act-1", SECRET, DAY, typed), typed
    assert normalize_attendance_code("ａｂｃ　２３４") == "ABC234"


def test_code_rejects_others() -> None:
    code = attendance_code("act-1", SECRET, DAY)
    wrong = ("Z" if code[0] != "Z" else "Y") + code[1:]
    for typed in ("", code[:5], code + "2", wrong, "日本語ですよ", "\x00" * 6):
        assert not check_attendance_code("act-1", SECRET, DAY, typed), typed
    assert not check_attendance_code("act-1", SECRET, DAY + timedelta(days=1), code)


@given(st.text(max_size=12), st.dates())
def test_check_never_crashes(typed: str, day: date) -> None:
    assert check_attendance_code("act-1", SECRET, day, typed) == (
        normalize_attendance_code(typed) == attendance_code("act-1", SECRET, day)
    )


def test_codes_spread_over_the_alphabet() -> None:
    codes = {attendance_code(f"act-{i}", SECRET, DAY) for i in range(2000)}
    assert len(codes) == 2000
    assert set("".join(codes)) == set(CODE_ALPHABET)


# --- counting and renewal -----------------------------------------------------------------

APPROVED = date(2027, 1, 10)
VALID_UNTIL = premium_valid_until(APPROVED)  # 2028-01-09


def attended(*days: date, place: str = KESENNUMA, prefix: str = "a") -> list[Attendance]:
    return [Attendance(f"{prefix}{i}", place, day) for i, day in enumerate(days)]


def test_past_year_is_the_validity_period() -> None:
    assert past_year(VALID_UNTIL) == (APPROVED, VALID_UNTIL)
    assert past_year(date(2028, 3, 1), 1) == (date(2028, 3, 1), date(2028, 3, 1))
    with pytest.raises(ValueError):
        past_year(VALID_UNTIL, 0)


def test_activity_count_window_place_and_duplicates() -> None:
    records = [
        Attendance("a1", KESENNUMA, APPROVED - timedelta(days=1)),  # before the window
        Attendance("a2", KESENNUMA, APPROVED),  # first day
        Attendance("a3", KESENNUMA, VALID_UNTIL),  # last day
        Attendance("a4", KESENNUMA, VALID_UNTIL + timedelta(days=1)),  # after
        Attendance("a5", MINAMIUONUMA, date(2027, 6, 1)),  # another place
        Attendance("a6", KESENNUMA, date(2027, 6, 1)),
        Attendance("a6", KESENNUMA, date(2027, 6, 1)),  # recorded twice: counts once
    ]
    assert activity_count(records, KESENNUMA, *past_year(VALID_UNTIL)) == 3
    assert renewal_activity_count(records, KESENNUMA, VALID_UNTIL) == 3
    assert renewal_activity_count(records, MINAMIUONUMA, VALID_UNTIL) == 1
    assert activity_count(records, KESENNUMA, date(2027, 6, 1), date(2027, 6, 1)) == 1
    assert activity_count(iter(records), KESENNUMA, date(2000, 1, 1), date(2100, 1, 1)) == 5


MID_YEAR = [date(2027, 3, 1), date(2027, 6, 1), date(2027, 9, 1), date(2027, 12, 1)]


@pytest.mark.parametrize(
    ("count", "required", "result"),
    [
        (2, 3, Renewal.DOWNGRADED),
        (3, 3, Renewal.RENEWED),
        (4, 3, Renewal.RENEWED),
        (2, 5, Renewal.DOWNGRADED),
        (3, 5, Renewal.DOWNGRADED),
        (4, 5, Renewal.DOWNGRADED),
        (5, 5, Renewal.RENEWED),
    ],
)
def test_renewal_at_the_threshold(count: int, required: int, result: Renewal) -> None:
    days = (MID_YEAR * 2)[:count]
    records = attended(*days) + attended(date(2026, 12, 1), prefix="old")  # too early
    records += attended(date(2027, 6, 1), place=MINAMIUONUMA, prefix="elsewhere")
    outcome = renewal_for(records, KESENNUMA, VALID_UNTIL, required)
    assert outcome == renewal_outcome(count, required)
    assert outcome.result is result
    assert f"{count}回" in outcome.message


def test_renewal_uses_the_default_of_three() -> None:
    assert renewal_for(attended(*MID_YEAR[:3]), KESENNUMA, VALID_UNTIL).result is Renewal.RENEWED
    assert renewal_for(attended(*MID_YEAR[:2]), KESENNUMA, VALID_UNTIL).result is Renewal.DOWNGRADED


def test_renewal_reminders() -> None:
    assert renewal_reminders(VALID_UNTIL) == [date(2027, 12, 10), date(2028, 1, 2)]
    assert renewal_reminders(date(2028, 3, 1)) == [date(2028, 1, 31), date(2028, 2, 23)]


# --- the reminder the day before ----------------------------------------------------------


def test_reminder_the_evening_before_in_japan_time() -> None:
    act = activity()
    assert reminder_at(act) == datetime(2027, 5, 14, 18, 0, tzinfo=JST)
    assert reminder_at(act).astimezone(UTC) == datetime(2027, 5, 14, 9, 0, tzinfo=UTC)
    assert reminder_at(act, time(20, 30)) == datetime(2027, 5, 14, 20, 30, tzinfo=JST)
    # an activity at 08:00 JST starts on 23:00 UTC of the previous day: still the evening before
    early = activity(
        starts_at=datetime(2027, 5, 14, 23, 0, tzinfo=UTC),
        ends_at=datetime(2027, 5, 15, 3, 0, tzinfo=UTC),
    )
    assert reminder_at(early) == datetime(2027, 5, 14, 18, 0, tzinfo=JST)
    # first of the month: the day before is in the previous month
    first = activity(
        starts_at=datetime(2027, 6, 1, 9, 0, tzinfo=JST),
        ends_at=datetime(2027, 6, 1, 12, 0, tzinfo=JST),
    )
    assert reminder_at(first) == datetime(2027, 5, 31, 18, 0, tzinfo=JST)


def test_reminder_due() -> None:
    act = activity()
    assert not reminder_due(act, datetime(2027, 5, 14, 17, 59, tzinfo=JST))
    assert reminder_due(act, datetime(2027, 5, 14, 18, 0, tzinfo=JST))
    assert reminder_due(act, datetime(2027, 5, 15, 8, 59, tzinfo=JST))
    assert not reminder_due(act, datetime(2027, 5, 15, 9, 0, tzinfo=JST))
    assert reminder_due(act, datetime(2027, 5, 14, 9, 30, tzinfo=UTC))
