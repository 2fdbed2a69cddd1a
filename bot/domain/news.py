"""News (お知らせ) rules: segments, content limits, schedules, the approval workflow, the daily cap.

Pure functions and values, no I/O; `bot/news.py` and `bot/storage/news.py` do the I/O.

- `Segment`: who of a place's registrants receive an item. Every field is a tuple of allowed
  values and an empty tuple allows everyone; `topic` is the preferences topic a resident must
  not have switched off for the place.
- `Content`: what residents read (text, or Flex with its altText; an optional image sent first),
  checked against LINE's limits with the same checks `bot/render.py` applies to templates.
- `Schedule`: now, at a time, or every N months from the first time (quarterly = 3) until a date.
- `Status` and `transition`: who may move an item from which status to which. Editors draft and
  submit, an admin approves or rejects; the role check itself is in the staff routes.
- `DeliveryConfig`: quiet hours, the per-person daily cap across all places, the multicast rate.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal

from bot.clock import JST
from bot.domain.registration import AgeBand, RelationshipType, Tier
from bot.domain.stays import QUIET_HOURS, defer_out_of_quiet_hours, in_quiet_hours
from bot.render import RenderError, json_messages  # Flex is checked like templates

MAX_TEXT = 4800  # LINE allows 5,000; the template adds the place and the title
MAX_ALT_TEXT = 1500  # LINE: characters of a Flex message's altText
MAX_TITLE = 100  # our own limit: the title names the item in lists and in the report
LATE_GRACE = timedelta(days=1)  # a scheduled time missed by less still runs (at once)
MULTICAST_MAX = 500  # LINE: recipients of one multicast request
DEFAULT_DAILY_CAP = 3  # news pushes per person per Japan day, across all places
DEFAULT_MULTICAST_PER_SECOND = 200.0  # LINE's multicast ceiling (200 requests/s)

# The eight traditional regions (八地方区分) by prefecture code.
REGIONS: dict[str, tuple[str, ...]] = {
    "北海道": ("01",),
    "東北": ("02", "03", "04", "05", "06", "07"),
    "関東": ("08", "09", "10", "11", "12", "13", "14"),
    "中部": ("15", "16", "17", "18", "19", "20", "21", "22", "23"),
    "近畿": ("24", "25", "26", "27", "28", "29", "30"),
    "中国": ("31", "32", "33", "34", "35"),
    "四国": ("36", "37", "38", "39"),
    "九州・沖縄": ("40", "41", "42", "43", "44", "45", "46", "47"),
}
PREFECTURE_CODES: tuple[str, ...] = tuple(f"{n:02d}" for n in range(1, 48))


def region_of(prefecture_code: str) -> str | None:
    """The region (北海道 … 九州・沖縄) of a prefecture code "01".."47"."""
    for region, codes in REGIONS.items():
        if prefecture_code in codes:
            return region
    return None


def _strings(values: Any) -> tuple[str, ...]:
    if not values:
        return ()
    if isinstance(values, str):
        return (values,)
    return tuple(sorted({str(v) for v in values}))


# --- segment -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Which registrants of the place receive an item; an empty tuple allows everyone."""

    tiers: tuple[str, ...] = ()
    types: tuple[str, ...] = ()  # RelationshipType values: any one of them is enough
    prefectures: tuple[str, ...] = ()  # residence prefecture codes "01".."47"
    regions: tuple[str, ...] = ()  # keys of REGIONS
    age_bands: tuple[str, ...] = ()
    topic: str = "news"

    def validate(self) -> None:
        """ValueError with a Japanese reason for a value no registration can have."""
        checks: tuple[tuple[tuple[str, ...], Any, str], ...] = (
            (self.tiers, Tier._value2member_map_, "登録区分"),
            (self.types, RelationshipType._value2member_map_, "関わり方"),
            (self.prefectures, PREFECTURE_CODES, "居住都道府県"),
            (self.regions, REGIONS, "居住地方"),
            (self.age_bands, AgeBand._value2member_map_, "年代"),
        )
        for values, allowed, label in checks:
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ValueError(f"{label}の指定が正しくありません（{'、'.join(unknown)}）。")

    @property
    def residence_prefectures(self) -> frozenset[str] | None:
        """Allowed residence prefecture codes (prefectures and regions together); None: any."""
        if not self.prefectures and not self.regions:
            return None
        codes = set(self.prefectures)
        for region in self.regions:
            codes.update(REGIONS.get(region, ()))
        return frozenset(codes)

    def matches(self, registration: Mapping[str, Any]) -> bool:
        """Whether an active registration (a `registrations` document) is in the segment.

        Opt-outs and blocks are not checked here: they change after planning and are checked
        when each batch is sent.
        """
        if registration.get("status", "active") != "active":
            return False
        if self.tiers and str(registration.get("tier") or Tier.BASIC.value) not in self.tiers:
            return False
        if self.types and not set(self.types) & {str(t) for t in registration.get("types") or ()}:
            return False
        if self.age_bands and str(registration.get("age_band")) not in self.age_bands:
            return False
        allowed = self.residence_prefectures
        if allowed is not None:
            residence = str(registration.get("residence_code") or "")
            if residence[:2] not in allowed:
                return False
        return True

    def to_doc(self) -> dict[str, Any]:
        return {
            "tiers": list(self.tiers),
            "types": list(self.types),
            "prefectures": list(self.prefectures),
            "regions": list(self.regions),
            "age_bands": list(self.age_bands),
            "topic": self.topic,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> Segment:
        data = doc or {}
        return cls(
            tiers=_strings(data.get("tiers")),
            types=_strings(data.get("types")),
            prefectures=_strings(data.get("prefectures")),
            regions=tuple(r for r in REGIONS if r in _strings(data.get("regions"))),
            age_bands=_strings(data.get("age_bands")),
            topic=str(data.get("topic") or "news"),
        )


# --- content -----------------------------------------------------------------------------------


ContentKind = Literal["text", "flex"]


@dataclass(frozen=True)
class Content:
    """What residents read: a text, or a Flex message (`flex` = its contents, a bubble or a
    carousel) shown as `alt_text` in notifications; `image_url` (https) is sent before it."""

    kind: ContentKind = "text"
    text: str = ""
    flex: dict[str, Any] | None = None
    alt_text: str = ""
    image_url: str | None = None

    def validate(self) -> None:
        """ValueError with a Japanese reason when LINE would refuse the message."""
        if self.kind == "text":
            body = self.text.strip()
            if not body:
                raise ValueError("本文を入力してください。")
            if len(body) > MAX_TEXT:
                raise ValueError(f"本文は{MAX_TEXT}文字以内にしてください。")
        elif self.kind == "flex":
            if not self.alt_text.strip():
                raise ValueError("通知に表示する代替テキストを入力してください。")
            if len(self.alt_text) > MAX_ALT_TEXT:
                raise ValueError(f"代替テキストは{MAX_ALT_TEXT}文字以内にしてください。")
            if not isinstance(self.flex, dict):
                raise ValueError("Flexメッセージの内容がありません。")
            try:
                json_messages(json.dumps(self.flex_message(), ensure_ascii=False), "news")
            except RenderError as exc:
                raise ValueError(f"Flexメッセージの形式が正しくありません（{exc}）。") from exc
        else:
            raise ValueError("種類は「テキスト」か「Flex」を選んでください。")
        if self.image_url is not None and not (
            self.image_url.startswith("https://") and len(self.image_url) <= 2000
        ):
            raise ValueError("画像のURLは https:// で始まる2000文字以内にしてください。")

    def flex_message(self) -> dict[str, Any]:
        return {"type": "flex", "altText": self.alt_text, "contents": self.flex or {}}

    def image_message(self) -> dict[str, Any] | None:
        if not self.image_url:
            return None
        return {
            "type": "image",
            "originalContentUrl": self.image_url,
            "previewImageUrl": self.image_url,
        }

    def to_doc(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "flex": self.flex,
            "alt_text": self.alt_text,
            "image_url": self.image_url,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> Content:
        data = doc or {}
        kind: ContentKind = "flex" if data.get("kind") == "flex" else "text"
        flex = data.get("flex")
        return cls(
            kind=kind,
            text=str(data.get("text") or ""),
            flex=dict(flex) if isinstance(flex, dict) else None,
            alt_text=str(data.get("alt_text") or ""),
            image_url=str(data["image_url"]) if data.get("image_url") else None,
        )


# --- schedule ----------------------------------------------------------------------------------


ScheduleKind = Literal["now", "at", "recurring"]


def add_months(moment: datetime, months: int) -> datetime:
    """The same Japan-time clock reading `months` later (the 31st becomes the month's last day)."""
    local = moment.astimezone(JST)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Schedule:
    """When an approved item goes out: `now` (on approval), `at` a moment, or `recurring` from
    `at` every `every_months` months (3 = quarterly) while the Japan date is not after `until`."""

    kind: ScheduleKind = "now"
    at: datetime | None = None
    every_months: int | None = None
    until: date | None = None

    def validate(self) -> None:
        if self.kind not in ("now", "at", "recurring"):
            raise ValueError("配信のタイミングを選んでください。")
        if self.kind in ("at", "recurring") and (self.at is None or self.at.tzinfo is None):
            raise ValueError("配信日時を入力してください。")
        if self.kind == "recurring":
            if self.every_months is None or not 1 <= self.every_months <= 12:
                raise ValueError("繰り返しの間隔は1〜12か月で指定してください。")
            first_day = self.at.astimezone(JST).date() if self.at is not None else None
            if self.until is not None and first_day is not None and self.until < first_day:
                raise ValueError("繰り返しの終了日は最初の配信日より後にしてください。")

    def first(self, approved_at: datetime) -> datetime | None:
        """The first run of an item approved at `approved_at`: a time passed less than a day
        ago runs at once, older occurrences of a recurring schedule are skipped."""
        if self.kind == "now" or self.at is None:
            return approved_at
        moment: datetime | None = self.at
        if self.kind == "recurring":
            while moment is not None and moment < approved_at - LATE_GRACE:
                moment = self.next_after(moment)
        return None if moment is None else max(moment, approved_at)

    def next_after(self, moment: datetime) -> datetime | None:
        """The run after the one due at `moment`; None when there is none (one-off, or past
        `until`)."""
        if self.kind != "recurring" or self.at is None or not self.every_months:
            return None
        # Count from `at`, not from `moment`, so that Jan 31 → Apr 30 → Jul 31 keeps its day.
        step = 1
        while True:
            candidate = add_months(self.at, self.every_months * step)
            if candidate > moment:
                break
            step += 1
        if self.until is not None and candidate.astimezone(JST).date() > self.until:
            return None
        return candidate

    def to_doc(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at,
            "every_months": self.every_months,
            "until": self.until.isoformat() if self.until else None,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> Schedule:
        from datetime import UTC

        data = doc or {}
        kind = data.get("kind")
        at = data.get("at")
        if isinstance(at, datetime) and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # the database gives naive UTC
        until = data.get("until")
        months = data.get("every_months")
        return cls(
            kind=kind if kind in ("now", "at", "recurring") else "now",
            at=at if isinstance(at, datetime) else None,
            every_months=int(months) if months else None,
            until=date.fromisoformat(until) if isinstance(until, str) and until else None,
        )


# --- workflow ----------------------------------------------------------------------------------


class Status(StrEnum):
    DRAFT = "draft"
    PENDING = "pending"  # submitted, waiting for an admin
    APPROVED = "approved"  # scheduled: the worker sends it at `next_run_at`
    SENDING = "sending"
    SENT = "sent"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            Status.DRAFT: "下書き",
            Status.PENDING: "承認待ち",
            Status.APPROVED: "配信予定",
            Status.SENDING: "配信中",
            Status.SENT: "配信済み",
            Status.REJECTED: "差し戻し",
            Status.CANCELLED: "取り消し",
        }[self]


Action = Literal["update", "submit", "approve", "reject", "cancel"]

# Which statuses each staff action starts from, and where it leads.
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status | None]] = {
    "update": (frozenset({Status.DRAFT, Status.REJECTED}), None),
    "submit": (frozenset({Status.DRAFT, Status.REJECTED}), Status.PENDING),
    "approve": (frozenset({Status.PENDING}), Status.APPROVED),
    "reject": (frozenset({Status.PENDING}), Status.REJECTED),
    # A running delivery is stopped too: batches not sent yet are not sent.
    "cancel": (
        frozenset({Status.DRAFT, Status.PENDING, Status.APPROVED, Status.SENDING, Status.REJECTED}),
        Status.CANCELLED,
    ),
}

_REFUSALS: dict[Action, str] = {
    "update": "下書きか差し戻しのお知らせだけ編集できます。",
    "submit": "下書きか差し戻しのお知らせだけ承認を依頼できます。",
    "approve": "承認待ちのお知らせだけ承認できます。",
    "reject": "承認待ちのお知らせだけ差し戻しできます。",
    "cancel": "配信済みか取り消し済みのお知らせは取り消せません。",
}


def transition(current: Status, action: Action) -> Status:
    """The status after `action` (unchanged for `update`); ValueError in Japanese when the
    action is not allowed from `current`."""
    allowed, target = TRANSITIONS[action]
    if current not in allowed:
        raise ValueError(_REFUSALS[action])
    return current if target is None else target


def after_run(schedule: Schedule, due: datetime) -> tuple[Status, datetime | None]:
    """Status and next run of an item whose run due at `due` has finished."""
    following = schedule.next_after(due)
    return (Status.APPROVED, following) if following is not None else (Status.SENT, None)


# --- delivery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryConfig:
    """Delivery limits (the worker reads them from `NEWS_*` environment variables)."""

    quiet_hours: tuple[time, time] = QUIET_HOURS  # equal ends: no quiet hours
    daily_cap: int = DEFAULT_DAILY_CAP
    multicast_per_second: float = DEFAULT_MULTICAST_PER_SECOND
    lease_seconds: float = 30.0
    plan_ahead: timedelta = field(default=timedelta(hours=1))

    def quiet(self, moment: datetime) -> bool:
        return in_quiet_hours(moment, self.quiet_hours)

    def not_before(self, moment: datetime) -> datetime:
        """The first moment at or after `moment` outside quiet hours."""
        return defer_out_of_quiet_hours(moment, self.quiet_hours) if self.quiet(moment) else moment

    def next_day(self, moment: datetime) -> datetime:
        """Where the daily cap defers a push: the next Japan day, out of quiet hours."""
        tomorrow = moment.astimezone(JST).date() + timedelta(days=1)
        return self.not_before(datetime.combine(tomorrow, time(0, 0), tzinfo=JST))


def japan_day(moment: datetime) -> str:
    """The Japan date of `moment` as YYYY-MM-DD (the daily cap counts per Japan day)."""
    return moment.astimezone(JST).date().isoformat()


def cap_slot_id(user_id: str, day: str, n: int) -> str:
    """The `_id` of a person's n-th daily cap slot: claiming one is one push that day."""
    return f"{user_id}:{day}:{n}"


def progress(targeted: int, done: int) -> float:
    """How far a delivery is, 0..1 (while planning, of the people planned so far)."""
    if targeted <= 0:
        return 0.0
    return min(1.0, max(0.0, done / targeted))
