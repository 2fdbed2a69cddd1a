"""Stays meet garbage calendars: the Flex summary, the personal calendar feed and the demo calendar.

The rules are in `bot.domain.garbage` and `bot.domain.stays`; this module reads the stores and
shapes what residents see. Reminders are sent by `bot.jobs.reminders`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from math import cos, radians, sqrt
from typing import Any

from icalendar import Calendar as ICalendar
from icalendar import Event

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
    TargetItem,
    Weekday,
    Weekly,
    collection_days,
    date_label,
)
from bot.domain.places import get_place
from bot.domain.stays import DEFAULT_MATCH_DAYS, PUT_OUT_BY, DateSpan, MatchResult, Stay, match
from bot.storage import Storage

FEED_DAYS = 366  # the feed covers stays up to a year ahead
MAX_ITEMS_SHOWN = 5
MAX_AREAS_SHOWN = 5
COLOR = re.compile(r"#[0-9A-Fa-f]{6}")  # what Flex accepts


def place_name(code: str) -> str:
    place = get_place(code)
    return place.display_name if place else code


def items_text(category: Category, limit: int = MAX_ITEMS_SHOWN) -> str:
    """「生ごみ、紙くず、…」 from the category's items, else its notes."""
    names = [item.name for item in category.items]
    if names:
        more = "など" if len(names) > limit else ""
        return "、".join(names[:limit]) + more
    return category.notes


def nearest_area(calendar: Calendar, lat: float, lng: float) -> Area | None:
    """The area whose coordinates are closest to the point (None when no area has any)."""
    best: tuple[float, Area] | None = None
    for area in calendar.areas:
        if area.lat is None or area.lng is None:
            continue
        dx = (area.lng - lng) * cos(radians(lat))
        distance = sqrt(dx * dx + (area.lat - lat) ** 2)
        if best is None or distance < best[0]:
            best = (distance, area)
    return best[1] if best else None


def areas_have_coordinates(calendar: Calendar) -> bool:
    return any(area.lat is not None for area in calendar.areas)


# --- the Flex summary ----------------------------------------------------------------------------


def _center_dict(center: CollectionCenter) -> dict[str, str]:
    return {
        "name": center.name,
        "address": center.address,
        "hours": center.hours,
        "map_url": center.map_url,
    }


def match_context(result: MatchResult) -> dict[str, Any]:
    """One area's match as template data (a bubble of the summary carousel)."""
    categories = []
    for found in result.categories:
        categories.append(
            {
                "name": found.category.name,
                "covered": found.covered,
                "days": "・".join(date_label(d) for d in found.in_stay),
                "scheduled": bool(found.collection_days),
                "items": items_text(found.category),
                "color": found.category.color
                if COLOR.fullmatch(found.category.color)
                else "#555555",
            }
        )
    return {
        "area": result.area.name,
        "period": DateSpan(result.start, result.end).label,
        "stay_days": len(result.stay_days),
        "categories": categories,
        "uncovered": [c.name for c in result.uncovered],
        "fallback": result.fallback,
        "centers": [_center_dict(c) for c in result.centers],
    }


async def summary_context(
    storage: Storage,
    user_id: str,
    place_code: str,
    today: date,
    days: int = DEFAULT_MATCH_DAYS,
) -> dict[str, Any]:
    """The next `days` days at a place: per area, the collection days inside the stays."""
    calendar = await storage.garbage_calendars.get(place_code)
    stays = [s.stay for s in await storage.stays.for_user(user_id, place_code)]
    end = today + timedelta(days=days - 1)
    areas: list[dict[str, Any]] = []
    if calendar is not None:
        names = sorted({s.area for s in stays if s.area in calendar.area_names()})
        for name in names[:MAX_AREAS_SHOWN]:
            result = match(calendar, name, [s for s in stays if s.area == name], today, end)
            areas.append(match_context(result))
    return {
        "place_name": place_name(place_code),
        "has_calendar": calendar is not None,
        "has_stays": bool(stays),
        "period": DateSpan(today, end).label,
        "areas": areas,
    }


# --- the personal calendar feed (.ics) -----------------------------------------------------------


def feed_signature(secret: str, user_id: str) -> str:
    mac = hmac.new(secret.encode(), f"stays-ics:{user_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def feed_token(secret: str, user_id: str) -> str:
    """`<user id>.<signature>`: what the feed URL carries."""
    return f"{user_id}.{feed_signature(secret, user_id)}"


def user_of_feed_token(secret: str, token: str) -> str | None:
    """The user id of a genuine token, else None."""
    user_id, _, signature = token.partition(".")
    if not user_id or len(token) > 200:
        return None
    if not hmac.compare_digest(signature, feed_signature(secret, user_id)):
        return None
    return user_id


def feed_url(base_url: str, secret: str, user_id: str) -> str:
    return f"{base_url.rstrip('/')}/stays/{feed_token(secret, user_id)}.ics"


def _all_day(uid: str, summary: str, start: date, end: date, description: str = "") -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("summary", summary)
    event.add("dtstart", start)
    event.add("dtend", end + timedelta(days=1))  # DTEND of an all-day event is exclusive
    event.add("dtstamp", datetime(2026, 1, 1, tzinfo=UTC))
    if description:
        event.add("description", description)
    return event


def build_feed(
    stays: Sequence[tuple[str, Stay]],
    calendars: dict[str, Calendar],
    today: date,
    days: int = FEED_DAYS,
) -> bytes:
    """An iCalendar of the stays (one event per run of days) and the collection days in them."""
    feed = ICalendar()
    feed.add("prodid", "-//furusato-bot//stays//JA")
    feed.add("version", "2.0")
    feed.add("x-wr-calname", "ふるさと滞在とごみの日")
    end = today + timedelta(days=days - 1)
    for stay_id, stay in stays:
        name = place_name(stay.place)
        for span in stay.spans(today, end):
            feed.add_component(
                _all_day(
                    f"stay-{stay_id}-{span.start:%Y%m%d}@furusato-bot",
                    f"滞在: {name}",
                    span.start,
                    span.end,
                    stay.area,
                )
            )
        calendar = calendars.get(stay.place)
        if calendar is None or stay.area not in calendar.area_names():
            continue
        first, last = max(today, stay.start), min(end, stay.end)
        for category in calendar.categories:
            for day in collection_days(calendar, stay.area, category.id, first, last):
                if not stay.contains(day):
                    continue
                feed.add_component(
                    _all_day(
                        f"gomi-{stay_id}-{day:%Y%m%d}-{category.id}@furusato-bot",
                        f"ごみ: {category.name}（{PUT_OUT_BY:%H:%M}までに）",
                        day,
                        day,
                        items_text(category),
                    )
                )
    return bytes(feed.to_ical())


async def feed_for_user(storage: Storage, user_id: str, today: date) -> bytes:
    stored = await storage.stays.for_user(user_id)
    calendars: dict[str, Calendar] = {}
    for code in sorted({s.stay.place for s in stored}):
        calendar = await storage.garbage_calendars.get(code)
        if calendar is not None:
            calendars[code] = calendar
    return build_feed([(s.id, s.stay) for s in stored], calendars, today)


# --- the demo calendar ----------------------------------------------------------------------------


def demo_calendar(code: str = "042056") -> Calendar:
    """A demo calendar for 気仙沼市 (made up for the demonstration, not the city's real one)."""
    burnable = Category(
        "burnable",
        "燃やすごみ",
        items=(
            TargetItem("生ごみ"),
            TargetItem("紙くず"),
            TargetItem("衣類"),
            TargetItem("木くず"),
        ),
        notes="指定ごみ袋（赤）に入れて出してください。",
        holiday=HolidayPolicy(HolidayHandling.COLLECTED),
        color="#E06040",
    )
    resources = Category(
        "resources",
        "資源ごみ",
        items=(TargetItem("新聞・雑誌"), TargetItem("段ボール"), TargetItem("ペットボトル")),
        notes="種類ごとにひもで縛るか、透明な袋で出してください。",
        holiday=HolidayPolicy(HolidayHandling.SKIPPED),
        color="#3080C0",
    )
    cans = Category(
        "cans",
        "缶・びん",
        items=(TargetItem("飲料缶"), TargetItem("びん")),
        notes="中をすすいでから出してください。",
        color="#40A060",
    )
    bulky = Category(
        "bulky",
        "粗大ごみ",
        notes="収集日はありません。クリーンヒルセンターへお持ち込みください。",
        color="#888888",
    )
    center = CollectionCenter(
        "気仙沼市クリーンヒルセンター（デモ）",
        address="宮城県気仙沼市（デモ用の住所）",
        hours="平日 8:30〜16:00（年末年始を除く）",
        map_url="https://www.google.com/maps/search/?api=1&query=気仙沼市クリーンヒルセンター",
    )

    def area(name: str, days: tuple[Weekday, ...], lat: float, lng: float) -> Area:
        return Area(
            name,
            center=center.name,
            schedules=(
                Schedule("burnable", tuple(Weekly(d) for d in days)),
                Schedule("resources", (NthWeekday(Weekday.WED, 2), NthWeekday(Weekday.WED, 4))),
                Schedule("cans", (NthWeekday(Weekday.FRI, 1),)),
            ),
            lat=lat,
            lng=lng,
        )

    return Calendar(
        municipality_code=code,
        areas=(
            area("本庁地区", (Weekday.MON, Weekday.THU), 38.9081, 141.5698),
            area("唐桑地区", (Weekday.TUE, Weekday.SAT), 38.9394, 141.6639),
        ),
        categories=(burnable, resources, cans, bulky),
        centers=(center,),
        suspensions=(Suspension(date(2026, 12, 31), date(2027, 1, 3)),),
        notes=("デモ用のごみカレンダーです。実際の収集日は市のごみカレンダーをご確認ください。",),
        fallback=(
            "滞在中に収集日がないごみは、クリーンヒルセンターへ直接お持ち込みいただけます。"
            "受付でふるさと住民登録証をご提示ください（本人確認書類として使えます）。"
            "指定ごみ袋に「ふるさと住民」シールを貼れば、次の収集日まで地区の集積所に"
            "出しておくこともできます。"
        ),
    )


async def seed_demo_calendar(storage: Storage, now: datetime) -> None:
    """Put the demo calendar of 気仙沼市 in place (for `seed-demo`), unless it has one."""
    calendar = demo_calendar()
    if await storage.garbage_calendars.updated_at(calendar.municipality_code) is None:
        await storage.garbage_calendars.put(calendar, now, by="demo")
