"""Hooks of the bearer-activities flow (`dialogs/activities.yaml`).

活動を探す → an activity → its details → 申し込む (a seat, else the waiting list);
申し込みの確認 → an application → 取り消す (the head of the waiting list moves up and is told);
出席を記録 → the code shown on site → attendance at today's activity.
"""

from __future__ import annotations

from typing import Any

from bot.activities import ActivityService, CheckIn, activity_context, place_name
from bot.dialog.model import Choice, EndFlow, Outcome, ParseError, Skip, Step
from bot.dialog.text import normalize
from bot.dialog.turn import ButtonSpec, Registry, Turn
from bot.domain.activities import JST, Activity, ApplyOutcome, activity_count, past_year

ATTEND_WORDS = ("出席", "しゅっせき")


def _service(turn: Turn) -> ActivityService:
    services = turn.services
    return ActivityService.of(
        turn.storage, services.clock, turn.settings, services.premium, services.renderer
    )


def _after_buttons() -> list[ButtonSpec]:
    return [
        ButtonSpec("担い手活動", "start", "activities"),
        ButtonSpec("メニュー", "cmd", "menu"),
    ]


def _short(activity: Activity) -> str:
    starts = activity.starts_at.astimezone(JST)
    return f"{starts.month}/{starts.day} {activity.title}"


def _long(activity: Activity, note: str = "") -> str:
    ctx = activity_context(activity)
    extra = f"・{note}" if note else ""
    return f"{ctx['when']} {activity.title}（{ctx['place_name']}{extra}）"


async def _selected(turn: Turn) -> Activity | None:
    activity_id = turn.answers.get("pick") or turn.answers.get("mine")
    if not activity_id:
        return None
    return await turn.storage.activities.get(str(activity_id))


# --- providers, parsers, context ------------------------------------------------------------------


async def upcoming_activities(turn: Turn, step: Step) -> list[Choice]:
    found = await _service(turn).upcoming_for(turn.user_id)
    return [Choice(a.id, _short(a), _long(a), (a.title,)) for a in found]


async def my_activities(turn: Turn, step: Step) -> list[Choice]:
    return await _my_choices(turn)


async def _my_choices(turn: Turn) -> list[Choice]:
    mine = await turn.storage.rosters.mine(turn.user_id)
    found = await turn.storage.activities.by_ids(sorted(mine))
    now = turn.now
    choices = []
    for activity in sorted(found.values(), key=lambda a: (a.starts_at, a.id)):
        if activity.ends_at <= now:
            continue
        state, position = mine[activity.id]
        note = "参加確定" if state == "confirmed" else f"キャンセル待ち{position}番目"
        choices.append(Choice(activity.id, _short(activity), _long(activity, note)))
    return choices


async def attendance_code(raw: Any, turn: Turn, step: Step) -> str:
    """The code typed: the id of today's activity it belongs to, else the retry."""
    result = await _service(turn).check_in(turn.user_id, str(raw))
    if result.result is CheckIn.WRONG or result.activity is None:
        raise ParseError("activities/code_retry", reason="wrong_code")
    return result.activity.id + ("#already" if result.result is CheckIn.ALREADY else "")


async def _year_counts(turn: Turn) -> list[dict[str, Any]]:
    """The person's activities in the past 365 days, per place (for the mode prompt)."""
    first, last = past_year(turn.today)
    attendances = await turn.storage.attendance.for_user(turn.user_id)
    places = sorted({a.place_code for a in attendances})
    return [
        {"place_name": place_name(code), "count": count}
        for code in places
        if (count := activity_count(attendances, code, first, last))
    ]


async def activities_context(turn: Turn) -> dict[str, Any]:
    activity = await _selected(turn)
    if activity is None:
        counts = await _year_counts(turn) if turn.step and turn.step.name == "mode" else []
        return {"activity": None, "state": None, "position": None, "free": 0, "counts": counts}
    view = await turn.storage.rosters.view(activity.id, activity.capacity)
    state, position = await turn.storage.rosters.status(activity.id, turn.user_id)
    return {
        "activity": activity_context(activity),
        "state": state,
        "position": position,
        "free": max(0, activity.capacity - len(view.confirmed)),
        "waiting": len(view.waiting),
        "counts": [],
    }


# --- actions ---------------------------------------------------------------------------------------


async def activities_mode_from_keyword(turn: Turn) -> Outcome:
    """「出席」 goes straight to the code."""
    text = normalize(turn.incoming.text or "")
    if any(word in text for word in ATTEND_WORDS):
        return Skip("attend")
    return None


async def activities_any_upcoming(turn: Turn) -> Outcome:
    if not await turn.storage.registrations.place_codes(turn.user_id):
        return EndFlow("activities/not_registered")
    if not await _service(turn).upcoming_for(turn.user_id):
        return EndFlow("activities/none")
    return None


async def activities_any_mine(turn: Turn) -> Outcome:
    if not await _my_choices(turn):
        return EndFlow("activities/none_mine")
    return None


async def activities_any_today(turn: Turn) -> Outcome:
    if not await _service(turn).today_for(turn.user_id):
        return EndFlow("activities/code_none")
    return None


async def activities_complete(turn: Turn) -> Outcome:
    answers = turn.answers
    service = _service(turn)
    if answers.get("code"):
        activity_id, _, already = str(answers["code"]).partition("#")
        activity = await turn.storage.activities.get(activity_id)
        turn.say(
            "activities/attended",
            buttons=_after_buttons(),
            activity=activity_context(activity) if activity else None,
            already=bool(already),
        )
        return None
    activity = await _selected(turn)
    if activity is None or activity.ends_at <= turn.now:
        return EndFlow("activities/gone")
    if answers.get("mine"):
        cancelled = await service.cancel(activity, turn.user_id, again=turn.again)
        turn.say(
            "activities/withdrawn",
            buttons=_after_buttons(),
            activity=activity_context(activity),
            was=cancelled.was or turn.again,  # run again: the first run withdrew
        )
        return None
    if activity.starts_at <= turn.now:
        return EndFlow("activities/gone")
    applied = await service.apply(activity, turn.user_id)
    state, position = await turn.storage.rosters.status(activity.id, turn.user_id)
    turn.say(
        "activities/applied",
        buttons=_after_buttons(),
        activity=activity_context(activity),
        outcome=applied.outcome.value,
        confirmed=state == "confirmed",
        position=position,
        already=applied.outcome is ApplyOutcome.ALREADY and not turn.again,
    )
    return None


def register(registry: Registry) -> None:
    add = registry.add
    add("choices", "upcoming_activities")(upcoming_activities)
    add("choices", "my_activities")(my_activities)
    add("parser", "attendance_code")(attendance_code)
    add("context", "activities_context")(activities_context)
    add("action", "activities_mode_from_keyword")(activities_mode_from_keyword)
    add("action", "activities_any_upcoming")(activities_any_upcoming)
    add("action", "activities_any_mine")(activities_any_mine)
    add("action", "activities_any_today")(activities_any_today)
    add("action", "activities_complete")(activities_complete)
