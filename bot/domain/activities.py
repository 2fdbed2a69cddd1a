"""Bearer activities (担い手活動): capacity and waiting list, attendance codes, renewal counts.

Premium registration is renewed when the registrant attended enough activities designated by the
municipality in the past year (`renewal_outcome` in `registration`).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum

from bot.domain.places import get_place
from bot.domain.registration import RENEWAL_MIN_ACTIVITIES, RenewalOutcome, renewal_outcome

JST = timezone(timedelta(hours=9), "JST")
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: 32 symbols, 5 bits each
CODE_LENGTH = 6
RENEWAL_WINDOW_DAYS = 365
RENEWAL_REMINDER_DAYS = (30, 7)
DEFAULT_REMINDER_TIME = time(18, 0)  # the evening before, Japan time
_CODE_NOISE = str.maketrans("", "", "-‐‑‒–—―−ー")


class ActivityKind(StrEnum):
    """Kind of bearer activity."""

    VOLUNTEER = "volunteer"
    SIDE_JOB = "side_job"
    DISASTER_VOLUNTEER = "disaster_volunteer"

    @property
    def label(self) -> str:
        """Japanese label."""
        return {
            ActivityKind.VOLUNTEER: "ボランティア",
            ActivityKind.SIDE_JOB: "副業",
            ActivityKind.DISASTER_VOLUNTEER: "災害ボランティア",
        }[self]


@dataclass(frozen=True)
class Activity:
    """An activity designated by a municipality; times are aware datetimes (shown in JST)."""

    id: str
    municipality_code: str
    title: str
    kind: ActivityKind
    starts_at: datetime
    ends_at: datetime
    place: str  # where to gather
    capacity: int
    description: str = ""

    def __post_init__(self) -> None:
        if self.starts_at.utcoffset() is None or self.ends_at.utcoffset() is None:
            raise ValueError("starts_at and ends_at must be timezone-aware")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        if get_place(self.municipality_code) is None:
            raise ValueError(f"unknown place code {self.municipality_code!r}")

    @property
    def day(self) -> date:
        """The Japan date the activity starts on."""
        return self.starts_at.astimezone(JST).date()


# --- capacity and waiting list ------------------------------------------------------------


@dataclass(frozen=True)
class Roster:
    """Who takes part (`confirmed`, in order of confirmation) and who waits, first first.

    Invariants: at most `capacity` confirmed; nobody twice, nobody in both lists; someone waits
    only when the confirmed list is full.
    """

    capacity: int
    confirmed: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        if len(self.confirmed) > self.capacity:
            raise ValueError("more confirmed than capacity")
        everyone = self.confirmed + self.waiting
        if len(set(everyone)) != len(everyone):
            raise ValueError("a person appears twice")
        if self.waiting and len(self.confirmed) < self.capacity:
            raise ValueError("people wait while places are free")

    @property
    def is_full(self) -> bool:
        """True when every place is taken."""
        return len(self.confirmed) >= self.capacity

    @property
    def free(self) -> int:
        """Free places."""
        return self.capacity - len(self.confirmed)

    def waiting_position(self, person: str) -> int | None:
        """1 for the head of the waiting list; None if the person does not wait."""
        return self.waiting.index(person) + 1 if person in self.waiting else None


class ApplyOutcome(StrEnum):
    """Result of applying for an activity."""

    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    ALREADY = "already"


def apply(roster: Roster, person: str) -> tuple[Roster, ApplyOutcome]:
    """Take a free place, else join the end of the waiting list; applying twice changes nothing."""
    if person in roster.confirmed or person in roster.waiting:
        return roster, ApplyOutcome.ALREADY
    if not roster.is_full:
        return Roster(roster.capacity, (*roster.confirmed, person), roster.waiting), (
            ApplyOutcome.CONFIRMED
        )
    return Roster(roster.capacity, roster.confirmed, (*roster.waiting, person)), (
        ApplyOutcome.WAITLISTED
    )


def cancel(roster: Roster, person: str) -> tuple[Roster, str | None]:
    """Withdraw a person; when a confirmed person leaves, the head of the waiting list moves up.

    Returns the new roster and the person promoted, if any. Unknown people change nothing.
    """
    if person in roster.waiting:
        waiting = tuple(p for p in roster.waiting if p != person)
        return Roster(roster.capacity, roster.confirmed, waiting), None
    if person not in roster.confirmed:
        return roster, None
    confirmed = tuple(p for p in roster.confirmed if p != person)
    if not roster.waiting:
        return Roster(roster.capacity, confirmed, ()), None
    head, *rest = roster.waiting
    return Roster(roster.capacity, (*confirmed, head), tuple(rest)), head


def resize(roster: Roster, capacity: int) -> tuple[Roster, tuple[str, ...]]:
    """Change the capacity; raising it promotes people from the head of the waiting list.

    Lowering it below the number of confirmed people is refused (nobody is bumped).
    """
    if capacity < len(roster.confirmed):
        raise ValueError("capacity below the number of confirmed people")
    moving = roster.waiting[: capacity - len(roster.confirmed)]
    new = Roster(capacity, roster.confirmed + moving, roster.waiting[len(moving) :])
    return new, moving


def apply_message(activity: Activity, roster: Roster, person: str, outcome: ApplyOutcome) -> str:
    """What to tell the person after `apply` (roster is the one `apply` returned)."""
    when = activity.starts_at.astimezone(JST)
    title = f"「{activity.title}」（{when.month}月{when.day}日）"
    if outcome is ApplyOutcome.CONFIRMED:
        return f"{title}への参加を受け付けました。前日にお知らせします。"
    position = roster.waiting_position(person)
    if position is not None:
        if outcome is ApplyOutcome.WAITLISTED:
            return (
                f"{title}は定員に達したため、キャンセル待ち{position}番目で受け付けました。"
                "空きが出たらお知らせします。"
            )
        return f"{title}はすでにキャンセル待ち{position}番目で受け付けています。"
    return f"{title}への参加はすでに受け付けています。"


# --- attendance codes ---------------------------------------------------------------------


def attendance_code(activity_id: str, secret: bytes, day: date) -> str:
    """The code staff show on the day; 6 characters without 0/O/1/I (30 bits of an HMAC)."""
    if not secret:
        raise ValueError("secret must not be empty")
    message = f"attendance\0{activity_id}\0{day.isoformat()}".encode()
    value = int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:4], "big") >> 2
    chars = []
    for _ in range(CODE_LENGTH):
        value, index = divmod(value, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[index])
    return "".join(reversed(chars))


def normalize_attendance_code(text: str) -> str:
    """Full width to half width, upper case; spaces and hyphens dropped."""
    folded = unicodedata.normalize("NFKC", text).translate(_CODE_NOISE).upper()
    return "".join(folded.split())


def check_attendance_code(activity_id: str, secret: bytes, day: date, text: str) -> bool:
    """True when the typed code is the day's code; compared in constant time."""
    typed = normalize_attendance_code(text).encode()
    return hmac.compare_digest(typed, attendance_code(activity_id, secret, day).encode())


# --- counting for renewal -----------------------------------------------------------------


@dataclass(frozen=True)
class Attendance:
    """A confirmed attendance at an activity of a place, on a Japan date."""

    activity_id: str
    place_code: str
    on: date


def past_year(last: date, days: int = RENEWAL_WINDOW_DAYS) -> tuple[date, date]:
    """The `days` days ending with `last`, both ends inclusive."""
    if days < 1:
        raise ValueError("days must be >= 1")
    return last - timedelta(days=days - 1), last


def activity_count(
    attendances: Iterable[Attendance], place_code: str, first: date, last: date
) -> int:
    """Distinct activities of a place attended from `first` to `last` (inclusive)."""
    return len(
        {a.activity_id for a in attendances if a.place_code == place_code and first <= a.on <= last}
    )


def renewal_activity_count(
    attendances: Iterable[Attendance], place_code: str, valid_until: date
) -> int:
    """Activities that count for renewal: the 365 days ending with the last valid day.

    With `premium_valid_until(approved_at)` this is exactly the validity period.
    """
    return activity_count(attendances, place_code, *past_year(valid_until))


def renewal_for(
    attendances: Iterable[Attendance],
    place_code: str,
    valid_until: date,
    required: int = RENEWAL_MIN_ACTIVITIES,
) -> RenewalOutcome:
    """Renew or downgrade a Premium registration at `place_code` that ends on `valid_until`."""
    count = renewal_activity_count(attendances, place_code, valid_until)
    return renewal_outcome(count, required)


def renewal_reminders(valid_until: date) -> list[date]:
    """Days to remind about renewal: 30 and 7 days before the last valid day."""
    return [valid_until - timedelta(days=days) for days in RENEWAL_REMINDER_DAYS]


def reminder_at(activity: Activity, at: time = DEFAULT_REMINDER_TIME) -> datetime:
    """When to remind participants: the day before the activity, at `at` Japan time."""
    return datetime.combine(activity.day - timedelta(days=1), at, tzinfo=JST)


def reminder_due(activity: Activity, now: datetime, at: time = DEFAULT_REMINDER_TIME) -> bool:
    """True from the reminder moment until the activity starts (late applicants included)."""
    return reminder_at(activity, at) <= now < activity.starts_at
