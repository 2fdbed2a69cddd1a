"""Stays in a furusato and how they meet garbage collection days (MIC slide 4).

A dual resident tells the bot when they stay: a one-off range (「1/9〜1/11」) or a weekly
pattern between two dates (「毎週土日」, 「第2・第4金曜〜日曜」). `match` says, per garbage
category, which collection days fall inside the stays; a category with none gets the
municipality's fallback (special bags or stickers, the collection center and its hours).

Reminders: `reminder_moments` gives the moment to remind of a collection (by default 20:00 the
evening before, Japan time) and `defer_out_of_quiet_hours` keeps it out of quiet hours
(21:00–08:00 by default): a reminder in quiet hours moves to the end of the quiet window,
unless that is no longer before the collection (garbage must be out by `put_out_by`, 08:00 by
default, on the collection day); then it moves back to the last minute before the quiet window
started (20:59). So a reminder chosen for 22:00 the evening before is sent at 20:59, and one
chosen for 06:00 on the morning itself at 20:59 the evening before. A moment that is already
past when the caller schedules it is the caller's business (send now or skip).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum

from bot.domain.garbage import (
    MAX_NTH,
    Area,
    Calendar,
    Category,
    CollectionCenter,
    Weekday,
    collection_days,
    date_label,
    days_between,
    nth_of_month,
    parse_weekday,
)

JST = timezone(timedelta(hours=9), "JST")  # Japan has no daylight saving time
DEFAULT_MATCH_DAYS = 28  # the next four weeks
DEFAULT_REMIND_TIME = time(20, 0)
QUIET_HOURS = (time(21, 0), time(8, 0))
PUT_OUT_BY = time(8, 0)  # garbage goes out on the collection morning by this time


# ---------------------------------------------------------------------------------------------
# Date spans and stays


@dataclass(frozen=True)
class DateSpan:
    """Consecutive days, start to end inclusive."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a span cannot end before it starts")

    def days(self) -> Iterator[date]:
        """Every day of the span."""
        return days_between(self.start, self.end)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @property
    def length(self) -> int:
        """Number of days."""
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        """「1月9日(土)〜1月11日(月)」, or one date for a single day."""
        if self.start == self.end:
            return date_label(self.start)
        return f"{date_label(self.start)}〜{date_label(self.end)}"


def spans_of(days: Iterable[date]) -> list[DateSpan]:
    """Maximal runs of consecutive days, in order."""
    spans: list[DateSpan] = []
    for day in sorted(set(days)):
        if spans and spans[-1].end + timedelta(days=1) == day:
            spans[-1] = DateSpan(spans[-1].start, day)
        else:
            spans.append(DateSpan(day, day))
    return spans


@dataclass(frozen=True)
class StayPattern:
    """Weekly stay days, optionally only in some weeks of the month.

    Consecutive weekdays (in the cyclic week: 金・土・日 is one run) form one stay span. With
    `nth_weeks` (第2・第4) a span is kept when the weekday it starts on is the 2nd or 4th such
    weekday of its month: 第2・第4金曜〜日曜 is the Friday–Sunday spans starting on the 2nd and
    4th Friday, even when the Sunday is in the next month. A pattern of all seven days starts
    its spans on Monday.
    """

    weekdays: frozenset[Weekday]
    nth_weeks: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "weekdays", frozenset(Weekday(w) for w in self.weekdays))
        object.__setattr__(self, "nth_weeks", frozenset(self.nth_weeks))
        if not self.weekdays:
            raise ValueError("a stay pattern needs at least one weekday")
        if not self.nth_weeks <= frozenset(range(1, MAX_NTH + 1)):
            raise ValueError(f"nth weeks must be 1..{MAX_NTH}")

    def runs(self) -> list[tuple[Weekday, ...]]:
        """The spans of consecutive weekdays, each from its first day: [(金, 土, 日)]."""
        if len(self.weekdays) == 7:
            return [tuple(Weekday)]
        starts = [w for w in sorted(self.weekdays) if Weekday((w - 1) % 7) not in self.weekdays]
        runs = []
        for first in starts:
            run = [first]
            while Weekday((run[-1] + 1) % 7) in self.weekdays:
                run.append(Weekday((run[-1] + 1) % 7))
            runs.append(tuple(run))
        return runs

    def _run_start(self, day: date) -> date:
        if len(self.weekdays) == 7:
            return day - timedelta(days=day.weekday())
        start = day
        while Weekday.of(start - timedelta(days=1)) in self.weekdays:
            start -= timedelta(days=1)
        return start

    def contains(self, day: date) -> bool:
        """True when the pattern has the resident here on that day."""
        if Weekday.of(day) not in self.weekdays:
            return False
        return not self.nth_weeks or nth_of_month(self._run_start(day)) in self.nth_weeks

    @property
    def label(self) -> str:
        """「毎週土・日曜」「第2・第4金〜日曜」「毎週月・水曜」."""
        parts = []
        for run in self.runs():
            if len(run) >= 3:
                parts.append(f"{run[0].label}〜{run[-1].label}")
            else:
                parts.append("・".join(w.label for w in run))
        days = "・".join(parts) + "曜"
        if not self.nth_weeks:
            return f"毎週{days}"
        return "・".join(f"第{n}" for n in sorted(self.nth_weeks)) + days


@dataclass(frozen=True)
class Stay:
    """A stay at a place (municipality code) and garbage area.

    Without a pattern the resident stays every day from start to end; with one, on the
    pattern's days between start and end (both inclusive).
    """

    place: str
    start: date
    end: date
    pattern: StayPattern | None = None
    area: str = ""

    def contains(self, day: date) -> bool:
        """True when the resident is there that day."""
        if not self.start <= day <= self.end:
            return False
        return self.pattern is None or self.pattern.contains(day)

    def days(self, start: date, end: date) -> list[StayDay]:
        """The stay days within the window [start, end]."""
        first, last = max(start, self.start), min(end, self.end)
        return [StayDay(day, self) for day in days_between(first, last) if self.contains(day)]

    def spans(self, start: date, end: date) -> list[DateSpan]:
        """The stay days within the window as runs of consecutive days (cut at the window)."""
        return spans_of(d.day for d in self.days(start, end))

    @property
    def label(self) -> str:
        """「1月9日(土)〜1月11日(月)」 or 「毎週土・日曜（1月9日(土)〜3月31日(水)）」."""
        period = DateSpan(self.start, self.end).label if self.start <= self.end else ""
        return period if self.pattern is None else f"{self.pattern.label}（{period}）"


@dataclass(frozen=True)
class StayDay:
    """One day of a stay."""

    day: date
    stay: Stay


def stay_days(stays: Iterable[Stay], start: date, end: date) -> list[date]:
    """The days within [start, end] on which the resident is at any of the stays, sorted."""
    return sorted({d.day for stay in stays for d in stay.days(start, end)})


def overlaps(a: Stay, b: Stay) -> bool:
    """True when two stays at the same place share a day."""
    if a.place != b.place:
        return False
    first, last = max(a.start, b.start), min(a.end, b.end)
    return any(a.contains(day) and b.contains(day) for day in days_between(first, last))


# ---------------------------------------------------------------------------------------------
# Validation


class StayProblem(StrEnum):
    """Why a stay cannot be saved."""

    END_BEFORE_START = "end_before_start"
    IN_PAST = "in_past"
    TOO_LONG = "too_long"
    UNKNOWN_AREA = "unknown_area"
    NO_DAYS = "no_days"
    OVERLAP = "overlap"


@dataclass(frozen=True)
class StayCheck:
    """Allowed, or refused with a reason and a message ready to show the resident."""

    problem: StayProblem | None = None
    message: str = ""
    conflict: Stay | None = None

    @property
    def ok(self) -> bool:
        """True when the stay can be saved."""
        return self.problem is None


STAY_OK = StayCheck()


def one_year_after(day: date) -> date:
    """The same date a year later (29 February → 1 March)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 3, 1)


def validate_stay(
    stay: Stay,
    today: date,
    existing: Iterable[Stay] = (),
    known_areas: Collection[str] | None = None,
) -> StayCheck:
    """Check a new stay; the first problem found wins.

    In order: end before start, start before today, a period of a year or more, an area not in
    `known_areas` (skipped when None or when the stay has no area), a pattern with no day in
    the period, overlap with an existing stay at the same place (when editing, leave the stay
    being edited out of `existing`).
    """
    if stay.end < stay.start:
        return StayCheck(
            StayProblem.END_BEFORE_START,
            "終了日が開始日より前になっています。日付をご確認ください。",
        )
    if stay.start < today:
        return StayCheck(
            StayProblem.IN_PAST, "開始日が過去の日付です。今日以降の日付をお選びください。"
        )
    if stay.end >= one_year_after(stay.start):
        return StayCheck(StayProblem.TOO_LONG, "期間が長すぎます。1年以内でご登録ください。")
    if known_areas is not None and stay.area and stay.area not in known_areas:
        return StayCheck(
            StayProblem.UNKNOWN_AREA,
            f"地区「{stay.area}」が見つかりませんでした。一覧からお選びください。",
        )
    if not stay.days(stay.start, stay.end):
        return StayCheck(
            StayProblem.NO_DAYS,
            "この期間には滞在日がありません。期間か曜日をご確認ください。",
        )
    for other in existing:
        if overlaps(stay, other):
            return StayCheck(
                StayProblem.OVERLAP,
                f"登録済みの滞在（{other.label}）と重なっています。日程をご確認ください。",
                conflict=other,
            )
    return STAY_OK


# ---------------------------------------------------------------------------------------------
# Parsing what residents type


@dataclass(frozen=True)
class ParseFailure:
    """What the resident typed could not be read; `message` says how to write it."""

    message: str


PATTERN_HELP = "「毎週土日」「毎週金曜から日曜」「第2・第4金曜〜日曜」のようにご入力ください。"
DATE_RANGE_HELP = "「1/9〜1/11」や「2027-01-09から2027-01-11」のようにご入力ください。"

_RANGE_MARKS = re.compile(r"から|[〜~～ー―−–—]")
_LIST_MARKS = re.compile(r"および|及び|[・、,，/&＆と]")
_NTH = re.compile(r"第(\d+)((?:・第?\d+)*)(?:週目?|週)?の?")


def _normalize(text: str) -> str:
    norm = unicodedata.normalize("NFKC", text)
    return "".join(norm.split())


def _weekday_tokens(text: str) -> list[Weekday] | None:
    """「土日」「土曜・日曜」「土曜日曜日」 → weekdays in order; None unless all of it reads.

    After 「曜」, a 「日」 is the 曜日 suffix unless 「曜」 follows it (土曜日曜 is 土曜 + 日曜).
    """
    found: list[Weekday] = []
    i = 0
    while i < len(text):
        if text[i] == "・" and found:
            i += 1
            continue
        weekday = parse_weekday(text[i])
        if weekday is None:
            return None
        found.append(weekday)
        i += 1
        if text.startswith("曜", i):
            i += 1
            if text.startswith("日", i) and not text.startswith("曜", i + 1):
                i += 1
    return found or None


def parse_stay_pattern(text: str) -> StayPattern | ParseFailure:
    """「毎週土日」「毎週金曜から日曜」「第2・第4金曜〜日曜」「土曜日」「週末」「平日」「毎日」 → pattern.

    On failure the message says what could not be read and shows the accepted forms.
    """
    norm = _normalize(text).removesuffix("まで").removesuffix("に滞在")
    norm = _RANGE_MARKS.sub("〜", norm)
    norm = _LIST_MARKS.sub("・", norm)
    if norm == "毎日":
        return StayPattern(frozenset(Weekday))
    for prefix in ("毎週", "毎月", "毎"):
        norm = norm.removeprefix(prefix)
    nth: set[int] = set()
    found = _NTH.match(norm)
    if found:
        nth = {int(n) for n in re.findall(r"\d+", found.group(0))}
        if not nth <= set(range(1, MAX_NTH + 1)):
            return ParseFailure(f"第何週かは第1〜第{MAX_NTH}でご指定ください。{PATTERN_HELP}")
        norm = norm[found.end() :]
    weekdays: set[Weekday] = set()
    if norm == "週末":
        weekdays = {Weekday.SAT, Weekday.SUN}
    elif norm == "平日":
        weekdays = {Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI}
    elif norm.count("〜") == 1:
        first, last = (_weekday_tokens(side) for side in norm.split("〜"))
        if first is not None and last is not None and len(first) == len(last) == 1:
            a, b = first[0], last[0]
            weekdays = {Weekday((a + k) % 7) for k in range((b - a) % 7 + 1)}
    else:
        weekdays = set(_weekday_tokens(norm) or ())
    if not weekdays:
        return ParseFailure(f"「{text.strip()}」を読み取れませんでした。{PATTERN_HELP}")
    return StayPattern(frozenset(weekdays), frozenset(nth))


_FULL_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")
_MONTH_DAY = re.compile(r"(\d{1,2})[/月](\d{1,2})日?")
_DAY_ONLY = re.compile(r"(\d{1,2})日?")
_DASHED_RANGE = re.compile(r"(\d{1,2}/\d{1,2})-(\d{1,2}(?:/\d{1,2})?)")
_WEEKDAY_NOTE = re.compile(r"\(?[月火水木金土日](?:曜日?)?\)")


def _next_valid(year: int, month: int, day: int, on_or_after: date) -> date | None:
    for candidate_year in range(year, year + 9):
        try:
            candidate = date(candidate_year, month, day)
        except ValueError:
            continue
        if candidate >= on_or_after:
            return candidate
    return None


def _parse_side(text: str, after: date, base: date | None) -> date | ParseFailure | None:
    """One side of a range; a missing year means the next occurrence on or after `after`."""
    if found := _FULL_DATE.fullmatch(text):
        year, month, day = (int(g) for g in found.groups())
        try:
            return date(year, month, day)
        except ValueError:
            return ParseFailure(f"{year}年{month}月{day}日という日付はありません。")
    if found := _MONTH_DAY.fullmatch(text):
        month, day = int(found.group(1)), int(found.group(2))
    elif base is not None and (found := _DAY_ONLY.fullmatch(text)):
        month, day = base.month, int(found.group(1))
    else:
        return None
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return ParseFailure(f"{month}月{day}日という日付はありません。")
    resolved = _next_valid(after.year, month, day, after)
    return resolved or ParseFailure(f"{month}月{day}日という日付はありません。")


def parse_date_range(text: str, today: date) -> DateSpan | ParseFailure:
    """「1/9〜1/11」「2027-01-09から2027-01-11」「1月9日〜11日」「1/9-1/11」「1/9」 → a span.

    A date without a year is the next occurrence from today (the start) or from the start
    (the end); 「1/9〜11」 ends in the start's month.
    """
    norm = _WEEKDAY_NOTE.sub("", _normalize(text)).removesuffix("まで")
    parts = re.split(r"から|[〜~～―–—]", norm)
    if len(parts) == 1 and (dashed := _DASHED_RANGE.fullmatch(norm)):
        parts = [dashed.group(1), dashed.group(2)]  # 「1/9-1/11」
    failure = ParseFailure(f"日付を読み取れませんでした。{DATE_RANGE_HELP}")
    if not 1 <= len(parts) <= 2 or not all(parts):
        return failure
    start = _parse_side(parts[0], today, None)
    if not isinstance(start, date):
        return start or failure
    if len(parts) == 1:
        return DateSpan(start, start)
    end = _parse_side(parts[1], start, start)
    if not isinstance(end, date):
        return end or failure
    if end < start:
        return ParseFailure("終了日が開始日より前になっています。日付をご確認ください。")
    return DateSpan(start, end)


# ---------------------------------------------------------------------------------------------
# Matching collection days with stays


@dataclass(frozen=True)
class CategoryMatch:
    """One category in the window: all its collection days, and those inside a stay."""

    category: Category
    collection_days: tuple[date, ...]
    in_stay: tuple[date, ...]

    @property
    def covered(self) -> bool:
        """True when at least one collection day falls inside a stay."""
        return bool(self.in_stay)


@dataclass(frozen=True)
class MatchResult:
    """Which collection days the stays meet, and where the fallback applies."""

    area: Area
    start: date
    end: date
    stay_days: tuple[date, ...]
    categories: tuple[CategoryMatch, ...]
    centers: tuple[CollectionCenter, ...]
    fallback: str

    @property
    def uncovered(self) -> tuple[Category, ...]:
        """Categories with no collection day inside any stay: the fallback applies to them."""
        return tuple(m.category for m in self.categories if not m.covered)

    @property
    def needs_fallback(self) -> bool:
        """True when some category can never be put out during a stay in the window."""
        return bool(self.uncovered)

    def reminders(self) -> list[tuple[date, Category]]:
        """(collection day, category) pairs to remind of, by date then calendar order."""
        pairs = [(day, m.category) for m in self.categories for day in m.in_stay]
        order = {m.category.id: i for i, m in enumerate(self.categories)}
        return sorted(pairs, key=lambda p: (p[0], order[p[1].id]))


def match(
    calendar: Calendar,
    area: Area | str,
    stays: Iterable[Stay],
    start: date,
    end: date | None = None,
) -> MatchResult:
    """Meet the stays with the area's collection days within [start, end].

    `end` defaults to four weeks (28 days, inclusive) from `start`. Pass this place's stays;
    every stay given counts. Categories not collected in the area at all are uncovered too.
    """
    found = calendar.area(area) if isinstance(area, str) else area
    last = end if end is not None else start + timedelta(days=DEFAULT_MATCH_DAYS - 1)
    present = set(stay_days(stays, start, last))
    results = []
    for category in calendar.categories:
        days = collection_days(calendar, found, category.id, start, last)
        results.append(CategoryMatch(category, tuple(days), tuple(d for d in days if d in present)))
    return MatchResult(
        area=found,
        start=start,
        end=last,
        stay_days=tuple(sorted(present)),
        categories=tuple(results),
        centers=calendar.centers_for(found),
        fallback=calendar.fallback,
    )


# ---------------------------------------------------------------------------------------------
# Reminder moments


def reminder_moments(
    collection_date: date,
    remind_time: time = DEFAULT_REMIND_TIME,
    evening_before: bool = True,
) -> datetime:
    """When to remind of a collection: the evening before (or the day itself) at remind_time, JST."""
    day = collection_date - timedelta(days=1) if evening_before else collection_date
    return datetime.combine(day, remind_time.replace(tzinfo=None), tzinfo=JST)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("pass a timezone-aware datetime")


def in_quiet_hours(moment: datetime, quiet: tuple[time, time] = QUIET_HOURS) -> bool:
    """True when the Japan-time clock reading of `moment` (aware) is in [quiet start, quiet end)."""
    _require_aware(moment)
    begin, finish = quiet
    now = moment.astimezone(JST).time().replace(tzinfo=None)
    if begin == finish:
        return False
    if begin < finish:
        return begin <= now < finish
    return now >= begin or now < finish


def defer_out_of_quiet_hours(
    moment: datetime,
    quiet: tuple[time, time] = QUIET_HOURS,
    *,
    collection_date: date | None = None,
    put_out_by: time = PUT_OUT_BY,
) -> datetime:
    """Move a reminder out of quiet hours (see the module docstring for the rule).

    Outside quiet hours the moment is returned unchanged (in JST). Inside, it moves to the
    end of the quiet window; when `collection_date` is given and that end is not before
    `put_out_by` on the collection day, it moves instead to one minute before the quiet
    window began (20:59 for 21:00–08:00).
    """
    _require_aware(moment)
    local = moment.astimezone(JST)
    if not in_quiet_hours(local, quiet):
        return local
    begin, finish = quiet
    begin_day = local.date()
    if begin > finish and local.time().replace(tzinfo=None) < finish:
        begin_day -= timedelta(days=1)  # after midnight: the window began the evening before
    window_start = datetime.combine(begin_day, begin.replace(tzinfo=None), tzinfo=JST)
    end_day = begin_day + timedelta(days=1) if begin > finish else begin_day
    window_end = datetime.combine(end_day, finish.replace(tzinfo=None), tzinfo=JST)
    if collection_date is None:
        return window_end
    deadline = datetime.combine(collection_date, put_out_by.replace(tzinfo=None), tzinfo=JST)
    if window_end < deadline:
        return window_end
    return window_start - timedelta(minutes=1)


def reminder_at(
    collection_date: date,
    remind_time: time = DEFAULT_REMIND_TIME,
    evening_before: bool = True,
    quiet: tuple[time, time] = QUIET_HOURS,
    put_out_by: time = PUT_OUT_BY,
) -> datetime:
    """`reminder_moments` kept out of quiet hours and before the collection: what to schedule."""
    moment = reminder_moments(collection_date, remind_time, evening_before)
    return defer_out_of_quiet_hours(
        moment, quiet, collection_date=collection_date, put_out_by=put_out_by
    )
