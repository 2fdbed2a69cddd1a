"""Hooks of 滞在予定 (`dialogs/stays.yaml`): stays per registered place, the garbage days inside
them (Flex summary with the fallback), reminder time and the personal calendar feed."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from bot.dialog.model import Choice, EndFlow, Goto, Outcome, ParseError, Skip, Step
from bot.dialog.text import parse_date
from bot.dialog.turn import Registry, Turn
from bot.domain.garbage import Weekday
from bot.domain.places import get_place
from bot.domain.stays import (
    ParseFailure,
    Stay,
    StayPattern,
    StayProblem,
    one_year_after,
    parse_date_range,
    parse_stay_pattern,
    validate_stay,
)
from bot.garbage import (
    areas_have_coordinates,
    feed_url,
    nearest_area,
    place_name,
    summary_context,
)
from bot.storage.stays import ReminderSettings, stay_id_for

FLOW = "stays"
BY_LOCATION = "__location"
MAX_STAYS_SHOWN = 12
DATE_ANSWERS = ("kind", "range", "pattern", "until", "area", "area_location")
REMIND_CHOICES = {
    "17:00": time(17, 0),
    "18:00": time(18, 0),
    "19:00": time(19, 0),
    "20:00": time(20, 0),
}


def _place(turn: Turn) -> str:
    return str(turn.answers.get("place") or "")


async def _places(turn: Turn) -> list[str]:
    """The municipalities the resident is registered with (prefectures have no calendars)."""
    docs = await turn.storage.registrations.for_user(turn.user_id)
    codes: list[str] = []
    for doc in docs:
        code = str(doc["place_code"])
        place = get_place(code)
        if place is not None and not place.is_prefecture and code not in codes:
            codes.append(code)
    return codes


def stay_from_answers(answers: dict[str, Any], today: date) -> Stay | None:
    """The stay the answers describe (None until the dates are known)."""
    place = str(answers.get("place") or "")
    area = str(answers.get("area") or "")
    if area == BY_LOCATION:
        area = str(answers.get("area_location") or "")
    if answers.get("kind") == "once" and isinstance(answers.get("range"), dict):
        span = answers["range"]
        return Stay(
            place, date.fromisoformat(span["start"]), date.fromisoformat(span["end"]), area=area
        )
    if answers.get("kind") == "weekly" and answers.get("pattern") and answers.get("until"):
        raw = answers["pattern"]
        pattern = StayPattern(
            frozenset(Weekday(int(w)) for w in raw["weekdays"]),
            frozenset(int(n) for n in raw.get("nth") or ()),
        )
        return Stay(place, today, date.fromisoformat(str(answers["until"])), pattern, area)
    return None


def _stay_dict(stay_id: str, stay: Stay) -> dict[str, Any]:
    return {"id": stay_id, "label": stay.label, "area": stay.area}


# --- start, place, menu ---------------------------------------------------------------------------


async def stays_start(turn: Turn) -> Outcome:
    if not await _places(turn):
        return EndFlow("stays/no_places")
    return None


async def stay_places(turn: Turn, step: Step) -> list[Choice]:
    return [Choice(code, place_name(code)[:20], place_name(code)) for code in await _places(turn)]


async def stay_place_only_one(turn: Turn) -> Outcome:
    codes = await _places(turn)
    return Skip(codes[0]) if len(codes) == 1 else None


async def stays_context(turn: Turn) -> dict[str, Any]:
    code = _place(turn)
    target = str(turn.answers.get("target") or "")
    stored = await turn.storage.stays.get(turn.user_id, target) if target else None
    settings = await turn.storage.stays.reminder_settings(turn.user_id)
    return {
        "place_name": place_name(code) if code else "",
        "target_label": stored.stay.label if stored else "",
        "remind_label": settings.label,
        "today": turn.today.isoformat(),
    }


async def stay_menu_action(turn: Turn) -> Outcome:
    what = turn.answers.get("what")
    code = _place(turn)
    if what == "list":
        stored = await turn.storage.stays.for_user(turn.user_id, code)
        if not stored:
            return EndFlow("stays/none", {"place_name": place_name(code)})
        return EndFlow(
            "stays/list",
            {
                "place_name": place_name(code),
                "stays": [_stay_dict(s.id, s.stay) for s in stored[:MAX_STAYS_SHOWN]],
                "more": max(0, len(stored) - MAX_STAYS_SHOWN),
            },
        )
    if what == "summary":
        context = await summary_context(turn.storage, turn.user_id, code, turn.today)
        return EndFlow("stays/summary", context)
    if what == "feed":
        url = feed_url(
            turn.settings.public_base_url, turn.settings.card_signing_secret, turn.user_id
        )
        return EndFlow("stays/feed", {"url": url})
    return None


# --- edit / delete ----------------------------------------------------------------------------


async def my_stays(turn: Turn, step: Step) -> list[Choice]:
    stored = await turn.storage.stays.for_user(turn.user_id, _place(turn))
    return [
        Choice(s.id, f"{i}. {s.stay.label}"[:20], s.stay.label)
        for i, s in enumerate(stored, start=1)
    ]


async def require_stays(turn: Turn) -> Outcome:
    if not await turn.storage.stays.for_user(turn.user_id, _place(turn)):
        return EndFlow("stays/none", {"place_name": place_name(_place(turn))})
    return None


# --- dates ----------------------------------------------------------------------------------------


def _refuse(message: str) -> ParseError:
    return ParseError(None, reason="invalid", message=message)


async def parse_stay_range(raw: Any, turn: Turn, step: Step) -> dict[str, str]:
    today = turn.today
    if isinstance(raw, dict):
        try:
            start = date.fromisoformat(str(raw.get("start")))
            end = date.fromisoformat(str(raw.get("end")))
        except ValueError:
            raise _refuse("日付を読み取れませんでした。") from None
    else:
        span = parse_date_range(str(raw), today)
        if isinstance(span, ParseFailure):
            raise _refuse(span.message)
        start, end = span.start, span.end
    check = validate_stay(Stay(_place(turn), start, end), today)
    if check.problem in (StayProblem.END_BEFORE_START, StayProblem.IN_PAST, StayProblem.TOO_LONG):
        raise _refuse(check.message)
    return {"start": start.isoformat(), "end": end.isoformat()}


async def parse_pattern(raw: Any, turn: Turn, step: Step) -> dict[str, list[int]]:
    found = parse_stay_pattern(str(raw))
    if isinstance(found, ParseFailure):
        raise _refuse(found.message)
    return {
        "weekdays": sorted(int(w) for w in found.weekdays),
        "nth": sorted(found.nth_weeks),
    }


async def parse_until(raw: Any, turn: Turn, step: Step) -> str:
    today = turn.today
    found = parse_date(str(raw), today)
    if found is None:
        raise _refuse("日付を読み取れませんでした。「3/31」のようにご入力ください。")
    if found < today:
        raise _refuse("過去の日付です。今日以降の日付をお選びください。")
    if found >= one_year_after(today):
        raise _refuse("期間が長すぎます。1年以内でご登録ください。")
    return found.isoformat()


# --- area ----------------------------------------------------------------------------------------


async def stay_areas(turn: Turn, step: Step) -> list[Choice]:
    calendar = await turn.storage.garbage_calendars.get(_place(turn))
    if calendar is None:
        return []
    choices = [Choice(a.name, a.name[:20], a.name) for a in calendar.areas]
    if areas_have_coordinates(calendar):
        choices.append(Choice(BY_LOCATION, "位置情報で選ぶ", aliases=("位置情報", "現在地")))
    return choices


async def stay_area_auto(turn: Turn) -> Outcome:
    """No calendar: no area to choose. One area: that one."""
    calendar = await turn.storage.garbage_calendars.get(_place(turn))
    if calendar is None:
        return Skip("")
    if len(calendar.areas) == 1:
        return Skip(calendar.areas[0].name)
    return None


async def parse_area_location(raw: Any, turn: Turn, step: Step) -> str:
    calendar = await turn.storage.garbage_calendars.get(_place(turn))
    if calendar is None or not isinstance(raw, dict):
        raise ParseError(None, reason="unknown")
    area = nearest_area(calendar, float(raw["latitude"]), float(raw["longitude"]))
    if area is None:
        raise ParseError(None, reason="unknown")
    return area.name


async def check_stay(turn: Turn) -> Outcome:
    """Before saving: unknown area, no stay day, overlap with another stay at the place."""
    conv = turn.conv
    assert conv is not None
    if conv.answers.get("area") == BY_LOCATION and "area_location" not in conv.answers:
        return Goto("area_location")
    stay = stay_from_answers(conv.answers, turn.today)
    if stay is None:
        return None
    calendar = await turn.storage.garbage_calendars.get(stay.place)
    known = calendar.area_names() if calendar else None
    target = str(conv.answers.get("target") or "")
    existing = [
        s.stay
        for s in await turn.storage.stays.for_user(turn.user_id, stay.place)
        if s.id != target
    ]
    check = validate_stay(stay, turn.today, existing, known)
    if check.ok:
        return None
    turn.say("stays/problem", message=check.message)
    if check.problem is StayProblem.UNKNOWN_AREA:
        conv.answers.pop("area", None)
        conv.answers.pop("area_location", None)
        return Goto("area")
    for name in DATE_ANSWERS:
        conv.answers.pop(name, None)
    return Goto("kind")


async def use_location_area(turn: Turn) -> Outcome:
    conv = turn.conv
    assert conv is not None
    conv.answers["area"] = conv.answers.pop("area_location", "")
    return await check_stay(turn)


# --- reminder time --------------------------------------------------------------------------------


async def save_remind_time(turn: Turn) -> Outcome:
    value = str(turn.answers.get("remind") or "")
    chosen = REMIND_CHOICES.get(value)
    if chosen is None:
        raise ParseError(None, reason="unknown")
    settings = ReminderSettings(chosen, evening_before=True)
    await turn.storage.stays.set_reminder_settings(turn.user_id, settings, turn.now)
    return EndFlow("stays/remind_saved", {"remind_label": settings.label})


# --- the end --------------------------------------------------------------------------------------


async def save_stay(turn: Turn) -> Outcome:
    answers = turn.answers
    code = _place(turn)
    target = str(answers.get("target") or "")
    stays = turn.storage.stays
    if answers.get("what") == "delete":
        removed = await stays.get(turn.user_id, target)
        if removed is None or not await stays.remove(turn.user_id, target):
            return EndFlow("stays/none", {"place_name": place_name(code)})
        return EndFlow("stays/deleted", {"label": removed.stay.label})
    stay = stay_from_answers(dict(answers), turn.today)
    if stay is None:
        return EndFlow("common/error")
    calendar = await turn.storage.garbage_calendars.get(code)
    adding = stay_id_for(turn.user_id, turn.run)  # found here if added before a crash
    existing = [
        s.stay for s in await stays.for_user(turn.user_id, code) if s.id not in (target, adding)
    ]
    check = validate_stay(stay, turn.today, existing, calendar.area_names() if calendar else None)
    if not check.ok:  # a stay saved meanwhile from another phone
        return EndFlow("stays/problem", {"message": check.message})
    if target and answers.get("what") == "edit":
        if not await stays.replace(turn.user_id, target, stay, turn.now):
            return EndFlow("stays/none", {"place_name": place_name(code)})
    else:
        await stays.add(turn.user_id, stay, turn.now, origin=turn.run)
    turn.say("stays/saved", label=stay.label, area=stay.area, edited=bool(target))
    context = await summary_context(turn.storage, turn.user_id, code, turn.today)
    return EndFlow("stays/summary", context)


def register(registry: Registry) -> None:
    add = registry.add
    add("action", "stays_start")(stays_start)
    add("choices", "stay_places")(stay_places)
    add("action", "stay_place_only_one")(stay_place_only_one)
    add("context", "stays_context")(stays_context)
    add("action", "stay_menu_action")(stay_menu_action)
    add("choices", "my_stays")(my_stays)
    add("action", "require_stays")(require_stays)
    add("parser", "stay_range")(parse_stay_range)
    add("parser", "stay_pattern")(parse_pattern)
    add("parser", "stay_until")(parse_until)
    add("choices", "stay_areas")(stay_areas)
    add("action", "stay_area_auto")(stay_area_auto)
    add("parser", "stay_area_from_location")(parse_area_location)
    add("action", "check_stay")(check_stay)
    add("action", "use_location_area")(use_location_area)
    add("action", "save_remind_time")(save_remind_time)
    add("action", "save_stay")(save_stay)
