"""Hooks of the Basic registration flow (`dialogs/register.yaml`) and of self-service
(`dialogs/unregister.yaml`, `dialogs/change_registration.yaml`, 登録一覧, 登録証)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from linebot.v3.messaging import Message

from bot.dialog.kinds import YES_WORDS
from bot.dialog.model import Choice, EndFlow, Outcome, ParseError, Prefill, Skip, Step
from bot.dialog.text import has_control, has_url, key, normalize
from bot.dialog.turn import ButtonSpec, Registry, Turn
from bot.domain.places import get_place
from bot.domain.registration import (
    AgeBand,
    Connection,
    RelationshipType,
    Tier,
    check_basic,
    check_guardian_consent,
)
from bot.storage.db import Document
from bot.storage.registrations import BasicApplication

log = logging.getLogger(__name__)

NICKNAME_MAX = 20
_CIRCLED = "①②③④⑤⑥⑦⑧⑨"
_RESERVED = YES_WORDS  # 「はい」 as a nickname is almost surely a slip


def place_name(code: Any) -> str:
    place = get_place(str(code)) if code else None
    return place.display_name if place else ""


def _label(enum: Callable[[str], Any], value: Any) -> str:
    try:
        return str(enum(str(value)).label)
    except ValueError:
        return ""


# --- choices -----------------------------------------------------------------------------------


async def relationship_types(turn: Turn, step: Step) -> list[Choice]:
    return [
        Choice(
            kind.value,
            f"{_CIRCLED[i]}{kind.short_label}",
            f"{_CIRCLED[i]} {kind.label}",
            (str(i + 1), kind.short_label),
        )
        for i, kind in enumerate(RelationshipType)
    ]


async def connections(turn: Turn, step: Step) -> list[Choice]:
    return [Choice(item.value, item.label) for item in Connection]


async def age_bands(turn: Turn, step: Step) -> list[Choice]:
    return [Choice(band.value, band.label) for band in AgeBand]


async def my_registrations(turn: Turn, step: Step) -> list[Choice]:
    """The registrations the resident made themselves (not the prefectures made with them)."""
    docs = await turn.storage.registrations.for_user(turn.user_id)
    return [
        Choice(
            str(doc["place_code"]),
            place_name(doc["place_code"]),
            f"{place_name(doc['place_code'])}（{_label(Tier, doc.get('tier'))}・{doc.get('number', '')}）",
        )
        for doc in docs
        if not doc.get("via")
    ]


# --- parsers -----------------------------------------------------------------------------------


async def furusato_place(raw: Any, turn: Turn, step: Step) -> str:
    """The place to register with: not already registered, not the residence."""
    code = str(raw)
    existing = await turn.storage.registrations.place_codes(turn.user_id)
    residence = turn.answers.get("residence")
    decision = check_basic(code, str(residence) if residence else None, existing)
    if not decision.ok:
        raise ParseError(
            "register/place_refused",
            reason=str(decision.reason),
            message=decision.message,
            place_name=place_name(code),
        )
    return code


async def residence_place(raw: Any, turn: Turn, step: Step) -> str:
    """Where the resident lives (a municipality); it must differ from the furusato."""
    code = str(raw)
    furusato = turn.answers.get("place")
    if furusato:
        decision = check_basic(str(furusato), code, set())
        if not decision.ok:
            raise ParseError(
                "register/residence_same", message=decision.message, place_name=place_name(code)
            )
    return code


async def nickname(raw: Any, turn: Turn, step: Step) -> str:
    """1–20 characters, one line, no control characters, no URLs."""
    text = normalize(str(raw))
    if not text:
        raise ParseError(None, reason="empty")
    if has_control(text):
        raise ParseError(None, reason="control")
    text = " ".join(text.split())
    if len(text) > NICKNAME_MAX:
        raise ParseError(None, reason="too_long", max_length=NICKNAME_MAX, length=len(text))
    if has_url(text):
        raise ParseError(None, reason="url")
    if key(text) in _RESERVED:
        raise ParseError(None, reason="reserved", nickname=text)
    return text


# --- context -----------------------------------------------------------------------------------


async def register_context(turn: Turn) -> dict[str, Any]:
    """Display values of the answers so far, for every template of the registration flow."""
    answers = turn.answers
    place = get_place(str(answers.get("place") or ""))
    prefecture = get_place(place.prefecture_code) if place and not place.is_prefecture else None
    types = [str(t) for t in answers.get("types") or []]
    labels = {kind.value: f"{_CIRCLED[i]} {kind.label}" for i, kind in enumerate(RelationshipType)}
    prefecture_new = False
    if prefecture is not None:
        existing = await turn.storage.registrations.place_codes(turn.user_id)
        prefecture_new = prefecture.code not in existing
    question_answers: list[dict[str, str]] = []
    given = answers.get("questions")
    if place and isinstance(given, dict) and given:
        for question in await turn.storage.questions.for_place(place.code):
            if question.question_id in given:
                question_answers.append(
                    {"prompt": question.prompt, "answer": str(given[question.question_id])}
                )
    return {
        "place_name": place.display_name if place else "",
        "prefecture_name": prefecture.display_name if prefecture else "",
        "prefecture_new": prefecture_new,  # registered together (not registered there yet)
        "types_labels": [labels[t] for t in types if t in labels],
        "connection_label": _label(Connection, answers.get("connection")),
        "residence_name": place_name(answers.get("residence")),
        "age_label": _label(AgeBand, answers.get("age_band")),
        "is_minor": answers.get("age_band") == AgeBand.UNDER_18.value,
        "guardian": bool(answers.get("guardian")),
        "nickname": str(answers.get("nickname") or ""),
        "question_answers": question_answers,
    }


async def my_context(turn: Turn) -> dict[str, Any]:
    """The registration picked in a self-service flow."""
    code = turn.answers.get("pick")
    doc = await turn.storage.registrations.find(turn.user_id, str(code)) if code else None
    place = get_place(str(code or ""))
    prefecture: Document | None = None
    if place and not place.is_prefecture:
        found = await turn.storage.registrations.find(turn.user_id, place.prefecture_code)
        prefecture = found if found and found.get("via") == place.code else None
    return {
        "place_name": place.display_name if place else "",
        "number": str(doc.get("number", "")) if doc else "",
        "tier_label": _label(Tier, doc.get("tier")) if doc else "",
        "current_nickname": str(doc.get("nickname", "")) if doc else "",
        "current_types": [_label(RelationshipType, t) for t in (doc.get("types") or [])]
        if doc
        else [],
        "prefecture_name": place_name(prefecture["place_code"]) if prefecture else "",
    }


# --- the card ----------------------------------------------------------------------------------


def _cards() -> Any:
    """`bot.cards` when the card module is installed (it renders the Flex card), else None."""
    try:
        return importlib.import_module("bot.cards")
    except ImportError:
        return None


def card_messages(turn: Turn, registration: Document) -> list[Message]:
    cards = _cards()
    render = getattr(cards, "card_messages", None)
    if render is None:
        return []
    try:
        return list(render(registration, settings=turn.settings))
    except Exception:
        log.exception("the registration card could not be rendered")
        return []


def cards_of(turn: Turn, registrations: list[Document]) -> list[Message]:
    cards = _cards()
    render = getattr(cards, "cards_carousel", None)
    if render is None:
        return []
    try:
        return list(render(registrations, turn.settings))
    except Exception:
        log.exception("the registration cards could not be rendered")
        return []


# --- actions -----------------------------------------------------------------------------------


def _after_registration_buttons() -> list[ButtonSpec]:
    return [
        ButtonSpec("登録一覧", "cmd", "list_registrations"),
        ButtonSpec("ほかの地域も登録", "start", "register"),
        ButtonSpec("メニュー", "cmd", "menu"),
    ]


async def create_basic_registration(turn: Turn) -> Outcome:
    """After the confirmation: check once more, create the registrations, show the card."""
    answers = turn.answers
    place = get_place(str(answers.get("place")))
    if place is None:
        return EndFlow("register/refused", {"message": "登録先が見つかりませんでした。"})
    residence = str(answers.get("residence") or "")
    # Not those this flow made: it is run again after a crash and finishes its own work.
    existing = await turn.storage.registrations.place_codes(turn.user_id, but_origin=turn.run)
    decision = check_basic(place.code, residence or None, existing)
    if decision.ok:
        band = AgeBand(str(answers.get("age_band")))
        decision = check_guardian_consent(band, bool(answers.get("guardian")))
    if not decision.ok:
        return EndFlow("register/refused", {"message": decision.message})
    created = await turn.storage.registrations.create_basic(
        BasicApplication(
            user_id=turn.user_id,
            place_code=place.code,
            types=[str(t) for t in answers.get("types") or []],
            connection=str(answers.get("connection")),
            residence_code=residence,
            age_band=str(answers.get("age_band")),
            nickname=str(answers.get("nickname") or ""),
            answers=dict(answers.get("questions") or {}),
            origin=turn.run,
        ),
        turn.now,
    )
    if created.registration is None:  # a second confirmation lost the race
        return EndFlow(
            "register/refused",
            {
                "message": f"{place.display_name}にはすでにご登録いただいています。ありがとうございます。"
            },
        )
    registration = created.registration
    prefecture = created.prefecture
    await turn.registrations_changed()
    card = card_messages(turn, registration)
    turn.say(
        "register/done",
        buttons=[] if card else _after_registration_buttons(),
        place_name=place.display_name,
        number=registration["number"],
        prefecture_name=place_name(prefecture["place_code"]) if prefecture else "",
        prefecture_number=prefecture["number"] if prefecture else "",
        has_card=bool(card),
    )
    if card:
        turn.say_messages(card[:4], buttons=_after_registration_buttons())
    return None


async def require_registrations(turn: Turn) -> Outcome:
    """Self-service needs a registration to work on."""
    if not await my_registrations(turn, _NO_STEP):
        return EndFlow("my/none")
    return None


async def pick_only_one(turn: Turn) -> Outcome:
    """With a single registration there is nothing to pick."""
    choices = await my_registrations(turn, _NO_STEP)
    return Skip(choices[0].value) if len(choices) == 1 else None


async def unregister_registration(turn: Turn) -> Outcome:
    code = str(turn.answers.get("pick"))
    removed = await turn.storage.registrations.remove(turn.user_id, code)
    if not removed.removed and not turn.again:
        return EndFlow("my/not_found", {"place_name": place_name(code)})
    await turn.registrations_changed()
    turn.say(
        "my/unregistered",
        buttons=turn.menu,
        place_names=[place_name(c) for c in removed.place_codes or (code,)],
    )
    return None


async def prefill_types(turn: Turn) -> Outcome:
    doc = await turn.storage.registrations.find(turn.user_id, str(turn.answers.get("pick")))
    return Prefill(list(doc.get("types") or [])) if doc else None


async def prefill_nickname(turn: Turn) -> Outcome:
    doc = await turn.storage.registrations.find(turn.user_id, str(turn.answers.get("pick")))
    return Prefill(str(doc.get("nickname") or "")) if doc else None


async def apply_registration_change(turn: Turn) -> Outcome:
    answers = turn.answers
    code = str(answers.get("pick"))
    what = answers.get("what")
    types = [str(t) for t in answers["types"]] if what == "types" and "types" in answers else None
    nick = str(answers["nickname"]) if what == "nickname" and "nickname" in answers else None
    changed = await turn.storage.registrations.update_details(
        turn.user_id, code, turn.now, types=types, nickname=nick
    )
    doc = await turn.storage.registrations.find(turn.user_id, code)
    if doc is None:
        return EndFlow("my/not_found", {"place_name": place_name(code)})
    turn.say(
        "my/changed",
        buttons=turn.menu,
        place_name=place_name(code),
        what=what,
        changed=changed > 0 or turn.again,  # run again: the first run made the change
        types_labels=[_label(RelationshipType, t) for t in doc.get("types") or []],
        nickname=str(doc.get("nickname") or ""),
    )
    return None


# --- commands ----------------------------------------------------------------------------------


def _list_buttons() -> list[ButtonSpec]:
    return [
        ButtonSpec("登録証を表示", "cmd", "show_cards"),
        ButtonSpec("登録内容を変更", "start", "change_registration"),
        ButtonSpec("登録を解除", "start", "unregister"),
        ButtonSpec("ほかの地域も登録", "start", "register"),
        ButtonSpec("メニュー", "cmd", "menu"),
    ]


def _none_buttons() -> list[ButtonSpec]:
    return [ButtonSpec("登録する", "start", "register"), ButtonSpec("メニュー", "cmd", "menu")]


MAX_LISTED = 50


async def list_registrations(turn: Turn) -> None:
    docs = await turn.storage.registrations.for_user(turn.user_id)
    if not docs:
        turn.say("my/none", buttons=_none_buttons())
        return
    items = [
        {
            "place_name": place_name(doc["place_code"]),
            "tier_label": _label(Tier, doc.get("tier")),
            "number": str(doc.get("number", "")),
            "via_name": place_name(doc.get("via")) if doc.get("via") else "",
        }
        for doc in docs
    ]
    turn.say(
        "my/list",
        buttons=_list_buttons(),
        registrations=items[:MAX_LISTED],
        more=max(0, len(items) - MAX_LISTED),
        total=len(items),
    )


async def show_cards(turn: Turn) -> None:
    docs = [
        doc
        for doc in await turn.storage.registrations.for_user(turn.user_id)
        if doc.get("status") == "active"
    ]
    if not docs:
        turn.say("my/none", buttons=_none_buttons())
        return
    cards = cards_of(turn, docs)
    if not cards:
        await list_registrations(turn)
        return
    if len(cards) < 5:
        turn.say("my/cards_intro", count=len(docs))
    turn.say_messages(
        cards[:5],
        buttons=[
            ButtonSpec("登録一覧", "cmd", "list_registrations"),
            ButtonSpec("メニュー", "cmd", "menu"),
        ],
    )


_NO_STEP = Step(name="", prompt="", input="choice", parser="choice", retry="", help="")


def register(registry: Registry) -> None:
    add = registry.add
    add("choices", "relationship_types")(relationship_types)
    add("choices", "connections")(connections)
    add("choices", "age_bands")(age_bands)
    add("choices", "my_registrations")(my_registrations)
    add("parser", "furusato_place")(furusato_place)
    add("parser", "residence_place")(residence_place)
    add("parser", "nickname")(nickname)
    add("context", "register_context")(register_context)
    add("context", "my_context")(my_context)
    add("action", "create_basic_registration")(create_basic_registration)
    add("action", "require_registrations")(require_registrations)
    add("action", "pick_only_one")(pick_only_one)
    add("action", "unregister_registration")(unregister_registration)
    add("action", "prefill_types")(prefill_types)
    add("action", "prefill_nickname")(prefill_nickname)
    add("action", "apply_registration_change")(apply_registration_change)
    add("command", "list_registrations")(list_registrations)
    add("command", "show_cards")(show_cards)

    async def municipality_questions(turn: Turn, step: Step) -> list[Any]:
        place = turn.answers.get("place")
        return await turn.storage.questions.for_place(str(place)) if place else []

    add("questions", "municipality_questions")(municipality_questions)
