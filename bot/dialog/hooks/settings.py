"""Hooks of 設定: the settings menu (command `settings`), お知らせの設定
(`dialogs/settings.yaml`) and データの削除 (`dialogs/delete_data.yaml`)."""

from __future__ import annotations

import logging
from typing import Any

from bot.dialog.model import Choice, EndFlow, Goto, Outcome, Skip, Step
from bot.dialog.turn import ButtonSpec, Registry, Turn
from bot.domain.places import get_place
from bot.storage.preferences import TOPICS, Topic
from bot.storage.privacy import delete_person

log = logging.getLogger(__name__)

NOTIFY_FLOW = "notification_settings"
DELETE_FLOW = "delete_data"
MAX_PLACES_SHOWN = 10

# Values of the toggle step: "<topic>:on|off", "all:on|off", and these two.
OTHER_PLACE = "other"
DONE = "done"
ALL = "all"


def _place_name(code: Any) -> str:
    place = get_place(str(code)) if code else None
    return place.display_name if place else str(code or "")


async def _place_codes(turn: Turn) -> list[str]:
    """The places the resident is registered with, oldest first (prefectures included)."""
    docs = await turn.storage.registrations.for_user(turn.user_id)
    return [str(doc["place_code"]) for doc in docs]


def _premium_flow(turn: Turn) -> str | None:
    """The Premium application flow, when one is installed (another part of the product)."""
    if "premium" in turn.flows:
        return "premium"
    return next((name for name in sorted(turn.flows) if name.startswith("premium")), None)


# --- the settings menu -------------------------------------------------------------------------


async def settings_command(turn: Turn) -> None:
    registered = bool(await turn.storage.registrations.place_codes(turn.user_id))
    premium = _premium_flow(turn) if registered else None
    buttons: list[ButtonSpec] = []
    if registered:
        buttons += [
            ButtonSpec("お知らせの設定", "start", NOTIFY_FLOW),
            ButtonSpec("登録内容の変更", "start", "change_registration"),
            ButtonSpec("登録の取り消し", "start", "unregister"),
        ]
        if premium:
            buttons.append(ButtonSpec("プレミアム登録", "start", premium))
    else:
        buttons.append(ButtonSpec("登録する", "start", "register"))
    buttons += [
        ButtonSpec("データの削除", "start", DELETE_FLOW),
        ButtonSpec("メニュー", "cmd", "menu"),
    ]
    flow = turn.flow if turn.conv else None
    turn.say(
        "settings/menu",
        buttons=buttons,
        registered=registered,
        premium=premium is not None,
        in_flow=flow is not None,
        flow_title=flow.title if flow else "",
    )


# --- お知らせの設定 ------------------------------------------------------------------------------


def _state_line(states: dict[Topic, bool]) -> str:
    if all(states.values()):
        return "すべて受け取る"
    if not any(states.values()):
        return "すべてオフ"
    return "".join(f"「{t.label}」" for t in TOPICS if not states[t]) + "はオフ"


async def notification_start(turn: Turn) -> Outcome:
    """Needs a registration; choices for places no longer registered are dropped on the way."""
    codes = await _place_codes(turn)
    if not codes:
        return EndFlow("my/none")
    await turn.storage.preferences.keep_only(turn.user_id, codes)
    return None


async def notification_places(turn: Turn, step: Step) -> list[Choice]:
    codes = await _place_codes(turn)
    states = await turn.storage.preferences.for_places(turn.user_id, codes)
    return [
        Choice(code, _place_name(code), f"{_place_name(code)}（{_state_line(states[code])}）")
        for code in codes
    ]


async def notification_only_one_place(turn: Turn) -> Outcome:
    codes = await _place_codes(turn)
    return Skip(codes[0]) if len(codes) == 1 else None


async def notification_toggles(turn: Turn, step: Step) -> list[Choice]:
    code = str(turn.answers.get("place") or "")
    states = await turn.storage.preferences.for_place(turn.user_id, code)
    choices = [
        Choice(f"{t.value}:off", f"{t.label}をオフにする")
        if states[t]
        else Choice(f"{t.value}:on", f"{t.label}をオンにする")
        for t in TOPICS
    ]
    if any(states.values()):
        choices.append(Choice(f"{ALL}:off", "すべてオフにする", aliases=("すべてオフ", "全部オフ")))
    if not all(states.values()):
        choices.append(Choice(f"{ALL}:on", "すべてオンにする", aliases=("すべてオン", "全部オン")))
    if len(await _place_codes(turn)) > 1:
        choices.append(Choice(OTHER_PLACE, "ほかの地域", aliases=("別の地域", "地域を選ぶ")))
    choices.append(
        Choice(DONE, "完了", aliases=("終了", "終わり", "おわり", "閉じる", "以上", "ok"))
    )
    return choices


def _change(value: Any) -> dict[str, Any] | None:
    """What a toggle value switched: {all, label, on}; None for anything else."""
    name, _, state = str(value or "").partition(":")
    if state not in ("on", "off"):
        return None
    if name == ALL:
        return {"all": True, "label": "", "on": state == "on"}
    try:
        return {"all": False, "label": Topic(name).label, "on": state == "on"}
    except ValueError:
        return None


async def notification_context(turn: Turn) -> dict[str, Any]:
    answers = turn.answers
    code = str(answers.get("place") or "")
    codes = await _place_codes(turn)
    states = await turn.storage.preferences.for_places(turn.user_id, codes)
    topics: list[dict[str, Any]] = []
    if code:
        chosen = states.get(code) or await turn.storage.preferences.for_place(turn.user_id, code)
        topics = [{"label": t.label, "on": chosen[t]} for t in TOPICS]
    return {
        "places": [
            {"name": _place_name(c), "summary": _state_line(states[c])}
            for c in codes[:MAX_PLACES_SHOWN]
        ],
        "more_places": max(0, len(codes) - MAX_PLACES_SHOWN),
        "place_name": _place_name(code) if code else "",
        "topics": topics,
        "change": _change(answers.get("topics")),
    }


async def apply_notification_choice(turn: Turn) -> Outcome:
    """A toggle is saved at once (and said in one line); 「ほかの地域」 and 「完了」 move on."""
    conv = turn.conv
    assert conv is not None
    value = str(turn.answers.get("topics") or "")
    code = str(turn.answers.get("place") or "")
    if value == DONE:
        return EndFlow("settings/notify_done")
    if value == OTHER_PLACE:
        conv.answers.pop("topics", None)
        conv.answers.pop("place", None)
        return Goto("place")
    if await turn.storage.registrations.find(turn.user_id, code) is None:
        return EndFlow("my/not_found", {"place_name": _place_name(code)})
    name, _, state = value.partition(":")
    enabled = state == "on"
    preferences = turn.storage.preferences
    if name == ALL:
        await preferences.set_all(turn.user_id, code, enabled, turn.now)
    else:
        await preferences.set(turn.user_id, code, Topic(name), enabled, turn.now)
    return Goto("topics")


# --- データの削除 ---------------------------------------------------------------------------------


async def delete_context(turn: Turn) -> dict[str, Any]:
    codes = await _place_codes(turn)
    applications = await turn.storage.premium_applications.for_user(turn.user_id)
    return {
        "place_names": [_place_name(c) for c in codes[:MAX_PLACES_SHOWN]],
        "more_places": max(0, len(codes) - MAX_PLACES_SHOWN),
        "registrations": len(codes),
        "applications": len(applications),
    }


async def delete_all_data(turn: Turn) -> Outcome:
    """After the second confirmation: delete everything, back to the guest menu, say goodbye."""
    removed = await delete_person(turn.storage, turn.user_id, handling=turn.incoming.event_id)
    try:
        await turn.registrations_changed()
    except Exception:  # the data is gone either way; the menu follows at the next follow
        log.exception("rich menu not reset after a data deletion")
    turn.say("settings/deleted", registrations=removed.get("registrations", 0))
    return None


def register(registry: Registry) -> None:
    add = registry.add
    add("command", "settings")(settings_command)
    add("action", "notification_start")(notification_start)
    add("choices", "notification_places")(notification_places)
    add("action", "notification_only_one_place")(notification_only_one_place)
    add("choices", "notification_toggles")(notification_toggles)
    add("context", "notification_context")(notification_context)
    add("action", "apply_notification_choice")(apply_notification_choice)
    add("context", "delete_context")(delete_context)
    add("action", "delete_all_data")(delete_all_data)
