"""Garbage calendars: categories, collection rules, holidays, suspensions and rule expansion.

A `Calendar` is what a municipality publishes: its areas (地区), the garbage categories
(分別), the collection centers with their opening hours, suspension periods (年末年始) and the
fallback benefit for dual residents whose stays miss a collection day. Each area has one
`Schedule` per category: a set of `Rule`s (毎週月曜, 第2水曜, 隔週金曜, explicit dates), an
optional month filter and remark references, exactly as a 5374.jp `area_days.csv` cell plus our
every-other-week extension.

`collection_days` turns a schedule into dates. The order of decisions for a date produced by a
recurring rule is: month filter → suspension (a suspended day is dropped, never moved) →
national holiday per the category's `HolidayPolicy`. Explicit dates (`OnDate`) name a day on
purpose: the month filter and the holiday policy do not apply to them, suspensions do.

Staff edit a calendar one part at a time (`put_category`, `put_area`, `put_schedule`, …): each
returns a new calendar or raises `CalendarEditError` with the reason in Japanese. Rules come
from form fields (`RuleFields`, `make_rule`), never from a second text syntax.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import IntEnum, StrEnum
from functools import lru_cache

import jpholiday

WEEKDAY_CHARS = "月火水木金土日"
MAX_NTH = 5
MAX_MOVE_DAYS = 7  # how far "the next non-holiday day" may be searched
MAX_OFFSET_DAYS = 14
FISCAL_MONTHS = (4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3)  # 5374 lists months in this order


class Weekday(IntEnum):
    """Day of the week, numbered like `date.weekday()` (Monday is 0)."""

    MON = 0
    TUE = 1
    WED = 2
    THU = 3
    FRI = 4
    SAT = 5
    SUN = 6

    @property
    def label(self) -> str:
        """One kanji: 月, 火, … 日."""
        return WEEKDAY_CHARS[self.value]

    @property
    def long_label(self) -> str:
        """「月曜日」."""
        return f"{self.label}曜日"

    @classmethod
    def of(cls, day: date) -> Weekday:
        """The weekday of a date."""
        return cls(day.weekday())


def parse_weekday(text: str) -> Weekday | None:
    """「月」「月曜」「月曜日」 (any width, surrounding spaces ignored) → Weekday, else None."""
    norm = unicodedata.normalize("NFKC", text).strip()
    for suffix in ("曜日", "曜"):
        if norm.endswith(suffix) and len(norm) == 1 + len(suffix):
            norm = norm[0]
    if len(norm) == 1 and norm in WEEKDAY_CHARS:
        return Weekday(WEEKDAY_CHARS.index(norm))
    return None


def weekdays_label(weekdays: frozenset[Weekday] | set[Weekday]) -> str:
    """「月・木」 in week order."""
    return "・".join(w.label for w in sorted(weekdays))


def nth_of_month(day: date) -> int:
    """Which occurrence of its weekday in its month a date is: day 1–7 → 1, 8–14 → 2, …"""
    return (day.day - 1) // 7 + 1


def date_label(day: date, *, year: bool = False) -> str:
    """「1月9日(土)」, with the year when asked: 「2027年1月9日(土)」."""
    text = f"{day.month}月{day.day}日({Weekday.of(day).label})"
    return f"{day.year}年{text}" if year else text


def days_between(start: date, end: date) -> Iterator[date]:
    """Every date from start to end inclusive (nothing when end < start)."""
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


@lru_cache(maxsize=8192)
def is_national_holiday(day: date) -> bool:
    """国民の祝日, 振替休日 and 国民の休日 (jpholiday); plain Sundays are not holidays."""
    return bool(jpholiday.is_holiday(day))


def _first_on_or_after(day: date, weekday: Weekday) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Weekly:
    """Every week on one weekday (5374: `月`)."""

    weekday: Weekday

    @property
    def label(self) -> str:
        """「毎週月曜」."""
        return f"毎週{self.weekday.label}曜"

    def occurrences(self, start: date, end: date) -> Iterator[date]:
        """The dates in [start, end] on this weekday."""
        day = _first_on_or_after(start, self.weekday)
        while day <= end:
            yield day
            day += timedelta(days=7)


@dataclass(frozen=True)
class NthWeekday:
    """The nth (1–5) given weekday of each month (5374: `水2` is the 2nd Wednesday)."""

    weekday: Weekday
    nth: int

    def __post_init__(self) -> None:
        if not 1 <= self.nth <= MAX_NTH:
            raise ValueError(f"nth must be 1..{MAX_NTH}, got {self.nth}")

    @property
    def label(self) -> str:
        """「第2水曜」."""
        return f"第{self.nth}{self.weekday.label}曜"

    def occurrences(self, start: date, end: date) -> Iterator[date]:
        """The dates in [start, end] that are the nth weekday of their month."""
        year, month = start.year, start.month
        while date(year, month, 1) <= end:
            first = _first_on_or_after(date(year, month, 1), self.weekday)
            day = first + timedelta(days=7 * (self.nth - 1))
            if day.month == month and start <= day <= end:
                yield day
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True)
class EveryOtherWeek:
    """隔週: a weekday in the weeks (Monday to Sunday) an even number of weeks from the anchor's."""

    weekday: Weekday
    anchor: date

    @property
    def label(self) -> str:
        """「隔週金曜」."""
        return f"隔週{self.weekday.label}曜"

    def occurrences(self, start: date, end: date) -> Iterator[date]:
        """The dates in [start, end] on this weekday in weeks of the anchor's parity."""
        anchor_monday = self.anchor - timedelta(days=self.anchor.weekday())
        day = _first_on_or_after(start, self.weekday)
        monday = day - timedelta(days=day.weekday())
        if ((monday - anchor_monday).days // 7) % 2:
            day += timedelta(days=7)
        while day <= end:
            yield day
            day += timedelta(days=14)


@dataclass(frozen=True)
class OnDate:
    """One explicit date (5374: `20270109`)."""

    day: date

    @property
    def label(self) -> str:
        """「2027年1月9日(土)」."""
        return date_label(self.day, year=True)

    def occurrences(self, start: date, end: date) -> Iterator[date]:
        """The date itself when it lies in [start, end]."""
        if start <= self.day <= end:
            yield self.day


Rule = Weekly | NthWeekday | EveryOtherWeek | OnDate


def _rule_key(rule: Rule) -> tuple[int, int, int]:
    if isinstance(rule, Weekly):
        return (0, rule.weekday, 0)
    if isinstance(rule, NthWeekday):
        return (1, rule.weekday, rule.nth)
    if isinstance(rule, EveryOtherWeek):
        return (2, rule.weekday, rule.anchor.toordinal())
    return (3, rule.day.toordinal(), 0)


@dataclass(frozen=True)
class Schedule:
    """When one category is collected in one area: the cell of a 5374 `area_days.csv`.

    `rules` are kept sorted and without duplicates, so two schedules that mean the same rules
    compare equal. `months` limits the recurring rules to those months (None: every month;
    all twelve months are stored as None). `remark_ids` refer to the calendar's remarks.
    """

    category_id: str
    rules: tuple[Rule, ...] = ()
    months: frozenset[int] | None = None
    remark_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(sorted(set(self.rules), key=_rule_key)))
        object.__setattr__(self, "remark_ids", tuple(dict.fromkeys(self.remark_ids)))
        if self.months is not None:
            months = frozenset(self.months)
            if not months or not months <= frozenset(range(1, 13)):
                raise ValueError(f"months must be a non-empty subset of 1..12, got {self.months}")
            object.__setattr__(self, "months", None if len(months) == 12 else months)
        if not self.rules and not self.remark_ids:
            raise ValueError("a schedule needs at least one rule or remark")

    @property
    def label(self) -> str:
        """「毎週月曜・毎週木曜」, with the months when filtered: 「4・6月: 第2火曜」."""
        text = "・".join(rule.label for rule in self.rules) or "収集日の指定なし"
        if self.months is None:
            return text
        months = "・".join(str(m) for m in FISCAL_MONTHS if m in self.months)
        return f"{months}月: {text}"


# ---------------------------------------------------------------------------------------------
# Holidays, categories, places


class HolidayHandling(StrEnum):
    """What happens to a collection that falls on a national holiday."""

    COLLECTED = "collected"
    SKIPPED = "skipped"
    MOVED = "moved"

    @property
    def label(self) -> str:
        """Japanese label."""
        return {
            HolidayHandling.COLLECTED: "祝日も収集",
            HolidayHandling.SKIPPED: "祝日は収集なし",
            HolidayHandling.MOVED: "祝日は振替",
        }[self]


@dataclass(frozen=True)
class HolidayPolicy:
    """A category's holiday rule.

    MOVED with `offset_days` None moves the collection to the next day (within
    `MAX_MOVE_DAYS`) that is not a holiday, not suspended and, when `skip_sundays`, not a
    Sunday; if there is none the collection is dropped. MOVED with an offset (e.g. +1, -1)
    moves it by that many days, onto a holiday too if that is where it lands (the
    municipality chose that day); a target on a suspension is dropped.
    """

    handling: HolidayHandling = HolidayHandling.COLLECTED
    offset_days: int | None = None
    skip_sundays: bool = True

    def __post_init__(self) -> None:
        if self.offset_days is not None:
            if self.handling is not HolidayHandling.MOVED:
                raise ValueError("offset_days is only for MOVED")
            if self.offset_days == 0 or abs(self.offset_days) > MAX_OFFSET_DAYS:
                raise ValueError(f"offset_days must be ±1..{MAX_OFFSET_DAYS}")

    @property
    def max_shift(self) -> int:
        """The largest number of days a collection can move."""
        if self.handling is not HolidayHandling.MOVED:
            return 0
        return MAX_MOVE_DAYS if self.offset_days is None else abs(self.offset_days)

    @property
    def label(self) -> str:
        """「祝日も収集します。」 and so on, for residents."""
        if self.handling is HolidayHandling.COLLECTED:
            return "祝日も収集します。"
        if self.handling is HolidayHandling.SKIPPED:
            return "祝日は収集しません。"
        if self.offset_days is None:
            sunday = "・日曜" if self.skip_sundays else ""
            return f"祝日の場合は、次の祝日{sunday}でない日に収集します。"
        if self.offset_days > 0:
            return f"祝日の場合は、{self.offset_days}日後に収集します。"
        return f"祝日の場合は、{-self.offset_days}日前に収集します。"


COLLECTED_ON_HOLIDAYS = HolidayPolicy()


@dataclass(frozen=True)
class TargetItem:
    """One kind of item and its category (a 5374 `target.csv` row)."""

    name: str
    notice: str = ""
    furigana: str = ""


@dataclass(frozen=True)
class Category:
    """A garbage category (分別) such as 燃やすごみ.

    `notes`, `sublabel`, `style` and `color` are the 5374 `description.csv` columns
    description, sublabel, styles and bgcolor.
    """

    id: str
    name: str
    items: tuple[TargetItem, ...] = ()
    notes: str = ""
    holiday: HolidayPolicy = COLLECTED_ON_HOLIDAYS
    sublabel: str = ""
    style: str = ""
    color: str = ""


@dataclass(frozen=True)
class Suspension:
    """No collection from start to end inclusive (年末年始).

    Scoped to one center's areas (`center`), one area (`area`), or, with neither, the whole
    municipality.
    """

    start: date
    end: date
    center: str | None = None
    area: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a suspension cannot end before it starts")
        if self.center is not None and self.area is not None:
            raise ValueError("a suspension is per center or per area, not both")

    def covers(self, day: date) -> bool:
        """True on the suspended days."""
        return self.start <= day <= self.end

    def applies_to(self, area: Area) -> bool:
        """True when this suspension concerns the area."""
        if self.area is not None:
            return self.area == area.name
        if self.center is not None:
            return bool(area.center) and self.center == area.center
        return True

    @property
    def label(self) -> str:
        """「12月29日(水)〜1月3日(月)」."""
        return f"{date_label(self.start)}〜{date_label(self.end)}"


def _suspension_key(s: Suspension) -> tuple[date, date, str, str]:
    return (s.start, s.end, s.center or "", s.area or "")


@dataclass(frozen=True)
class CollectionCenter:
    """ゴミ収集センター: where garbage can be brought, with the card as ID."""

    name: str
    address: str = ""
    hours: str = ""
    map_url: str = ""


@dataclass(frozen=True)
class Remark:
    """A note on collection days (5374 `remarks.csv`), referenced as `*ID` in a cell."""

    id: str
    text: str

    def __post_init__(self) -> None:
        if not self.id or not all(c.isascii() and (c.isalnum() or c in "_-") for c in self.id):
            raise ValueError(f"remark ids are ASCII letters, digits, _ or -: {self.id!r}")


@dataclass(frozen=True)
class Area:
    """A collection area (地区) with its center and one schedule per collected category.

    Schedules are kept sorted by category id (show them in the calendar's category order).
    """

    name: str
    center: str = ""
    schedules: tuple[Schedule, ...] = ()
    lat: float | None = None
    lng: float | None = None

    def __post_init__(self) -> None:
        schedules = tuple(sorted(self.schedules, key=lambda s: s.category_id))
        object.__setattr__(self, "schedules", schedules)
        ids = [s.category_id for s in self.schedules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"area {self.name!r} has two schedules for one category")
        if (self.lat is None) != (self.lng is None):
            raise ValueError("give both lat and lng, or neither")
        if self.lat is not None and not -90 <= self.lat <= 90:
            raise ValueError("lat must be within ±90")
        if self.lng is not None and not -180 <= self.lng <= 180:
            raise ValueError("lng must be within ±180")

    def schedule(self, category_id: str) -> Schedule | None:
        """This area's schedule for a category, or None when it is not collected here."""
        return next((s for s in self.schedules if s.category_id == category_id), None)


@dataclass(frozen=True)
class Calendar:
    """A municipality's garbage calendar.

    Suspensions are kept sorted, so their order never matters. Construction checks that
    names are unique and that every reference (center, category, remark, suspension scope)
    resolves; a broken calendar raises ValueError.
    """

    municipality_code: str = ""
    areas: tuple[Area, ...] = ()
    categories: tuple[Category, ...] = ()
    centers: tuple[CollectionCenter, ...] = ()
    suspensions: tuple[Suspension, ...] = ()
    notes: tuple[str, ...] = ()
    fallback: str = ""
    remarks: tuple[Remark, ...] = ()
    _areas: dict[str, Area] = field(default_factory=dict, init=False, repr=False, compare=False)
    _categories: dict[str, Category] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _centers: dict[str, CollectionCenter] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "suspensions", tuple(sorted(set(self.suspensions), key=_suspension_key))
        )
        for what, names in (
            ("area", [a.name for a in self.areas]),
            ("category id", [c.id for c in self.categories]),
            ("category name", [c.name for c in self.categories]),
            ("center", [c.name for c in self.centers]),
            ("remark", [r.id for r in self.remarks]),
        ):
            if len(names) != len(set(names)):
                raise ValueError(f"duplicate {what} in calendar")
        self._areas.update((a.name, a) for a in self.areas)
        self._categories.update((c.id, c) for c in self.categories)
        self._centers.update((c.name, c) for c in self.centers)
        remark_ids = {r.id for r in self.remarks}
        for area in self.areas:
            if area.center and area.center not in self._centers:
                raise ValueError(f"area {area.name!r}: unknown center {area.center!r}")
            for schedule in area.schedules:
                if schedule.category_id not in self._categories:
                    raise ValueError(f"area {area.name!r}: unknown category")
                if not set(schedule.remark_ids) <= remark_ids:
                    raise ValueError(f"area {area.name!r}: unknown remark")
        for suspension in self.suspensions:
            if suspension.center is not None and suspension.center not in self._centers:
                raise ValueError(f"suspension for unknown center {suspension.center!r}")
            if suspension.area is not None and suspension.area not in self._areas:
                raise ValueError(f"suspension for unknown area {suspension.area!r}")

    def area(self, name: str) -> Area:
        """The area of this name; KeyError if there is none."""
        return self._areas[name]

    def category(self, category_id: str) -> Category:
        """The category of this id; KeyError if there is none."""
        return self._categories[category_id]

    def center(self, name: str) -> CollectionCenter:
        """The center of this name; KeyError if there is none."""
        return self._centers[name]

    def remark(self, remark_id: str) -> Remark:
        """The remark of this id; KeyError if there is none."""
        for remark in self.remarks:
            if remark.id == remark_id:
                return remark
        raise KeyError(remark_id)

    def area_names(self) -> frozenset[str]:
        """All area names, for validating what a resident typed."""
        return frozenset(a.name for a in self.areas)

    def suspensions_for(self, area: Area | str) -> tuple[Suspension, ...]:
        """The suspensions that apply to an area."""
        found = self.area(area) if isinstance(area, str) else area
        return tuple(s for s in self.suspensions if s.applies_to(found))

    def is_suspended(self, area: Area | str, day: date) -> bool:
        """True when collection is suspended in the area on that day."""
        return any(s.covers(day) for s in self.suspensions_for(area))

    def centers_for(self, area: Area | str) -> tuple[CollectionCenter, ...]:
        """The area's own center, or every center of the calendar when it has none."""
        found = self.area(area) if isinstance(area, str) else area
        return (self.center(found.center),) if found.center else self.centers


# ---------------------------------------------------------------------------------------------
# Expansion


def _final_day(day: date, policy: HolidayPolicy, suspended: Callable[[date], bool]) -> date | None:
    """Where a recurring collection on `day` really happens, or None when it does not."""
    if suspended(day):
        return None
    if policy.handling is HolidayHandling.COLLECTED or not is_national_holiday(day):
        return day
    if policy.handling is HolidayHandling.SKIPPED:
        return None
    if policy.offset_days is not None:
        target = day + timedelta(days=policy.offset_days)
        return None if suspended(target) else target
    for step in range(1, MAX_MOVE_DAYS + 1):
        target = day + timedelta(days=step)
        if is_national_holiday(target) or suspended(target):
            continue
        if policy.skip_sundays and target.weekday() == Weekday.SUN:
            continue
        return target
    return None


def collection_days(
    calendar: Calendar, area: Area | str, category_id: str, start: date, end: date
) -> list[date]:
    """The collection dates of a category in an area within [start, end], sorted and unique.

    A collection moved off a holiday counts where it lands: a move from just before the
    window into it is included, a move out of the window is not. Raises KeyError for an
    unknown area or category.
    """
    found = calendar.area(area) if isinstance(area, str) else area
    category = calendar.category(category_id)
    schedule = found.schedule(category_id)
    if schedule is None or end < start:
        return []
    periods = calendar.suspensions_for(found)

    def suspended(day: date) -> bool:
        return any(p.covers(day) for p in periods)

    policy = category.holiday
    margin = timedelta(days=policy.max_shift)
    days: set[date] = set()
    for rule in schedule.rules:
        if isinstance(rule, OnDate):
            if start <= rule.day <= end and not suspended(rule.day):
                days.add(rule.day)
            continue
        for day in rule.occurrences(start - margin, end + margin):
            if schedule.months is not None and day.month not in schedule.months:
                continue
            final = _final_day(day, policy, suspended)
            if final is not None and start <= final <= end:
                days.add(final)
    return sorted(days)


def all_collection_days(
    calendar: Calendar, area: Area | str, start: date, end: date
) -> dict[str, list[date]]:
    """`collection_days` for every category of the calendar, by category id, in calendar order."""
    found = calendar.area(area) if isinstance(area, str) else area
    return {c.id: collection_days(calendar, found, c.id, start, end) for c in calendar.categories}


# ---------------------------------------------------------------------------------------------
# Editing by staff (one part at a time, without a CSV)

CATEGORY_ID = re.compile(r"[a-z0-9_-]{1,40}")
MAX_NAME = 100
NEXT_DAYS_SHOWN = 3
NEXT_DAYS_HORIZON = 366


class CalendarEditError(ValueError):
    """A change staff asked for that cannot be made; the message says why, in Japanese."""


class RuleKind(StrEnum):
    """The kinds of rule staff choose from."""

    WEEKLY = "weekly"
    NTH = "nth"
    EVERY_OTHER_WEEK = "every_other_week"
    DATE = "date"

    @property
    def label(self) -> str:
        """Japanese label for the rule form."""
        return {
            RuleKind.WEEKLY: "毎週 曜日",
            RuleKind.NTH: "第n 曜日",
            RuleKind.EVERY_OTHER_WEEK: "隔週（起点日）",
            RuleKind.DATE: "特定の日付",
        }[self]


@dataclass(frozen=True)
class RuleFields:
    """One rule as the form shows it: the kind and the fields that kind uses."""

    kind: RuleKind
    weekday: Weekday | None = None
    nth: int | None = None
    day: date | None = None


def make_rule(fields: RuleFields) -> Rule:
    """The rule the fields describe; `CalendarEditError` naming what is missing or wrong."""
    if fields.kind is RuleKind.DATE:
        if fields.day is None:
            raise CalendarEditError("特定の日付の収集には、日付を指定してください。")
        return OnDate(fields.day)
    if fields.weekday is None:
        raise CalendarEditError(f"{fields.kind.label}の収集には、曜日を選んでください。")
    if fields.kind is RuleKind.WEEKLY:
        return Weekly(fields.weekday)
    if fields.kind is RuleKind.NTH:
        if fields.nth is None or not 1 <= fields.nth <= MAX_NTH:
            raise CalendarEditError(f"第n 曜日の「n」は1〜{MAX_NTH}から選んでください。")
        return NthWeekday(fields.weekday, fields.nth)
    if fields.day is None:
        raise CalendarEditError("隔週の収集には、起点日（収集がある週の日付）を指定してください。")
    return EveryOtherWeek(fields.weekday, fields.day)


def rule_fields(rule: Rule) -> RuleFields:
    """The form's fields of a stored rule (the inverse of `make_rule`)."""
    if isinstance(rule, Weekly):
        return RuleFields(RuleKind.WEEKLY, rule.weekday)
    if isinstance(rule, NthWeekday):
        return RuleFields(RuleKind.NTH, rule.weekday, rule.nth)
    if isinstance(rule, EveryOtherWeek):
        return RuleFields(RuleKind.EVERY_OTHER_WEEK, rule.weekday, day=rule.anchor)
    return RuleFields(RuleKind.DATE, day=rule.day)


def _name(text: str, what: str) -> str:
    name = unicodedata.normalize("NFC", text).strip()
    if not name:
        raise CalendarEditError(f"{what}を入力してください。")
    if len(name) > MAX_NAME:
        raise CalendarEditError(f"{what}は{MAX_NAME}文字までにしてください。")
    if any(c in name for c in "\r\n"):
        raise CalendarEditError(f"{what}に改行は使えません。")
    return name


def put_category(
    calendar: Calendar,
    category_id: str,
    name: str,
    items: Sequence[str],
    holiday: HolidayPolicy,
    notes: str | None = None,
) -> Calendar:
    """Add the category, or change the one of this id (its schedules stay as they are).

    Items already listed keep their notice and furigana; `notes` None keeps the notes.
    """
    if not CATEGORY_ID.fullmatch(category_id):
        raise CalendarEditError("分別IDは半角の英小文字・数字・_・- で40文字までにしてください。")
    name = _name(name, "分別の名前")
    if name in {"地名", "センター"}:
        raise CalendarEditError(f"「{name}」は分別の名前には使えません。")
    if any(c.name == name and c.id != category_id for c in calendar.categories):
        raise CalendarEditError(f"分別「{name}」はすでにあります。別の名前にしてください。")
    old = next((c for c in calendar.categories if c.id == category_id), None)
    known = {item.name: item for item in old.items} if old else {}
    names = [_name(item, "品目") for item in items if item.strip()]
    if len(names) != len(set(names)):
        raise CalendarEditError("同じ品目が2回あります。")
    category = Category(
        category_id,
        name,
        items=tuple(known.get(n, TargetItem(n)) for n in names),
        notes=(old.notes if old else "") if notes is None else notes.strip(),
        holiday=holiday,
        sublabel=old.sublabel if old else "",
        style=old.style if old else "",
        color=old.color if old else "",
    )
    if old is None:
        categories = (*calendar.categories, category)
    else:
        categories = tuple(category if c.id == category_id else c for c in calendar.categories)
    return replace(calendar, categories=categories)


def remove_category(calendar: Calendar, category_id: str) -> Calendar:
    """The calendar without the category and the areas' schedules for it."""
    calendar.category(category_id)  # KeyError when there is no such category
    if len(calendar.categories) == 1:
        raise CalendarEditError(
            "最後の分別は削除できません。カレンダーをやめるときは「カレンダーを削除」を使ってください。"
        )
    areas = tuple(
        replace(a, schedules=tuple(s for s in a.schedules if s.category_id != category_id))
        for a in calendar.areas
    )
    categories = tuple(c for c in calendar.categories if c.id != category_id)
    return replace(calendar, areas=areas, categories=categories)


def put_area(
    calendar: Calendar,
    current: str | None,
    name: str,
    center: str = "",
    lat: float | None = None,
    lng: float | None = None,
) -> Calendar:
    """Add an area (`current` None) or change the area now called `current`: its name (the
    suspensions of the area follow it), center and coordinates; its schedules stay."""
    name = _name(name, "地区の名前")
    names = calendar.area_names()
    if current is not None and current not in names:
        raise KeyError(current)
    if name != current and name in names:
        raise CalendarEditError(f"地区「{name}」はすでにあります。別の名前にしてください。")
    center = center.strip()
    if center and center not in {c.name for c in calendar.centers}:
        raise CalendarEditError(f"収集センター「{center}」はありません。")
    if (lat is None) != (lng is None):
        raise CalendarEditError("緯度と経度は両方入力するか、両方空けてください。")
    if lat is not None and not -90 <= lat <= 90:
        raise CalendarEditError("緯度は -90〜90 の数で入力してください（例: 38.9081）。")
    if lng is not None and not -180 <= lng <= 180:
        raise CalendarEditError("経度は -180〜180 の数で入力してください（例: 141.5698）。")
    if current is None:
        area = Area(name, center, lat=lat, lng=lng)
        return replace(calendar, areas=(*calendar.areas, area))
    old = calendar.area(current)
    area = Area(name, center, old.schedules, lat=lat, lng=lng)
    suspensions = tuple(
        replace(s, area=name) if s.area == current else s for s in calendar.suspensions
    )
    areas = tuple(area if a.name == current else a for a in calendar.areas)
    return replace(calendar, areas=areas, suspensions=suspensions)


def remove_area(calendar: Calendar, name: str) -> Calendar:
    """The calendar without the area and its own suspensions."""
    calendar.area(name)  # KeyError when there is no such area
    return replace(
        calendar,
        areas=tuple(a for a in calendar.areas if a.name != name),
        suspensions=tuple(s for s in calendar.suspensions if s.area != name),
    )


def put_schedule(
    calendar: Calendar,
    area: str,
    category_id: str,
    rules: Sequence[Rule],
    months: Collection[int] | None = None,
) -> Calendar:
    """Set when a category is collected in an area; its remark references stay.

    `months` empty or None: every month. KeyError for an unknown area or category.
    """
    found = calendar.area(area)
    calendar.category(category_id)
    if not rules:
        raise CalendarEditError("収集日を1つ以上指定してください。")
    chosen = frozenset(months or ())
    if not chosen <= frozenset(range(1, 13)):
        raise CalendarEditError("月は1〜12から選んでください。")
    if chosen and all(isinstance(r, OnDate) for r in rules):
        raise CalendarEditError("月の指定は、曜日で決まる収集（毎週・第n・隔週）にだけ使えます。")
    old = found.schedule(category_id)
    schedule = Schedule(category_id, tuple(rules), chosen or None, old.remark_ids if old else ())
    schedules = tuple(s for s in found.schedules if s.category_id != category_id)
    return _with_area(calendar, replace(found, schedules=(*schedules, schedule)))


def remove_schedule(calendar: Calendar, area: str, category_id: str) -> Calendar:
    """The category is no longer collected in the area. KeyError when it was not."""
    found = calendar.area(area)
    if found.schedule(category_id) is None:
        raise KeyError(category_id)
    schedules = tuple(s for s in found.schedules if s.category_id != category_id)
    return _with_area(calendar, replace(found, schedules=schedules))


def _with_area(calendar: Calendar, area: Area) -> Calendar:
    return replace(
        calendar, areas=tuple(area if a.name == area.name else a for a in calendar.areas)
    )


def next_collection_days(
    calendar: Calendar,
    area: Area | str,
    category_id: str,
    today: date,
    count: int = NEXT_DAYS_SHOWN,
) -> list[date]:
    """The next `count` collection days from today (within a year), for staff to check."""
    end = today + timedelta(days=NEXT_DAYS_HORIZON - 1)
    return collection_days(calendar, area, category_id, today, end)[:count]
