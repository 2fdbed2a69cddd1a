"""Hooks of 特典: the benefits browser (command `benefits`, paged Flex carousels), one benefit in
detail (command `benefit`) and the card shortcut of a detail (command `benefit_card`).

The carousel's and the detail's buttons are postbacks of commands with an argument after the
command's name (`action=cmd&name=benefits&p=1`, `…&name=benefit&b=<key>`, `…&name=benefit_card&
place=<code>`); the engine runs the command and the hook reads its argument here.
"""

from __future__ import annotations

from typing import Any

from bot.benefits import Offer, closed_count, detail_data, offer, open_offers
from bot.dialog.hooks.registration import card_messages, show_cards
from bot.dialog.turn import ButtonSpec, Registry, Turn
from bot.domain.benefits import Benefit, benefit_pages
from bot.domain.places import get_place

SUMMARY_LENGTH = 60
MAX_SHOPS = 10


def _place_name(code: str) -> str:
    place = get_place(code)
    return place.display_name if place else code


def _jdate(day: Any) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def valid_label(benefit: Benefit) -> str:
    start, end = benefit.valid_from, benefit.valid_until
    if start and end:
        return f"期間: {_jdate(start)}〜{_jdate(end)}"
    if end:
        return f"期間: {_jdate(end)}まで"
    if start:
        return f"期間: {_jdate(start)}から"
    return "期間: 定めなし"


def _summary(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SUMMARY_LENGTH else flat[: SUMMARY_LENGTH - 1] + "…"


def _menu_buttons() -> list[ButtonSpec]:
    return [
        ButtonSpec("登録証", "cmd", "show_cards"),
        ButtonSpec("会員番号の連携", "start", "member_link"),
        ButtonSpec("メニュー", "cmd", "menu"),
    ]


def carousel_item(item: Offer) -> dict[str, str]:
    benefit = item.benefit
    return {
        "key": item.stored.key,
        "title": benefit.title,
        "kind_label": benefit.kind.label,
        "place_name": _place_name(benefit.municipality_code),
        "summary": _summary(benefit.description) or benefit.title,
        "valid_label": valid_label(benefit),
        "detail_data": detail_data(item.stored.key),
    }


async def benefits_command(turn: Turn) -> None:
    """The benefits open to the resident, 11 a carousel plus 「次の特典を見る」 (12 on the last)."""
    registered = bool(await turn.storage.registrations.place_codes(turn.user_id))
    offers = await open_offers(turn.storage, turn.user_id, turn.today) if registered else []
    if not offers:
        closed = await closed_count(turn.storage, turn.user_id, turn.today) if registered else 0
        buttons = (
            _menu_buttons()
            if registered
            else [
                ButtonSpec("登録する", "start", "register"),
                ButtonSpec("メニュー", "cmd", "menu"),
            ]
        )
        turn.say("benefits/none", buttons=buttons, registered=registered, closed=closed)
        return
    pages = benefit_pages(offers)
    try:
        index = min(max(int(turn.argument("p") or 0), 0), len(pages) - 1)
    except ValueError:
        index = 0
    page = pages[index]
    turn.say("benefits/intro", page=page.index, total=page.total, start=page.start + 1)
    turn.say(
        "benefits/carousel",
        buttons=_menu_buttons(),
        items=[carousel_item(item) for item in page.items],
        total=page.total,
        remaining=page.remaining,
        next_data=f"action=cmd&name=benefits&p={page.next_index}" if page.has_next else "",
    )


def detail_context(item: Offer) -> dict[str, Any]:
    benefit = item.benefit
    shops = [{"name": s.name, "address": s.address} for s in benefit.partner_shops]
    return {
        "key": item.stored.key,
        "title": benefit.title,
        "kind_label": benefit.kind.label,
        "place_name": _place_name(benefit.municipality_code),
        "description": benefit.description or benefit.title,
        "valid_label": valid_label(benefit),
        "how_to_use": benefit.how_to_use or "登録証を提示してください",
        "shops": shops[:MAX_SHOPS],
        "more_shops": max(0, len(shops) - MAX_SHOPS),
        "open": item.result.ok,
        "reasons": list(item.result.reasons),
        "card_data": (
            f"action=cmd&name=benefit_card&place={benefit.municipality_code}"
            if item.registration is not None
            else ""
        ),
    }


async def benefit_command(turn: Turn) -> None:
    """One benefit in detail, with why it is not open (if so) and a shortcut to the card."""
    key = turn.argument("b")
    item = await offer(turn.storage, turn.user_id, key, turn.today) if key else None
    if item is None:
        turn.say("benefits/gone", buttons=_menu_buttons())
        return
    turn.say("benefits/detail", buttons=_menu_buttons(), b=detail_context(item))


async def benefit_card_command(turn: Turn) -> None:
    """The resident's card of the benefit's place (all their cards when that is not known)."""
    code = turn.argument("place")
    registration = await turn.storage.registrations.find(turn.user_id, code) if code else None
    if registration is None or registration.get("status") != "active":
        await show_cards(turn)
        return
    messages = card_messages(turn, registration)
    if not messages:
        await show_cards(turn)
        return
    turn.say_messages(
        messages,
        buttons=[ButtonSpec("特典一覧", "cmd", "benefits"), ButtonSpec("メニュー", "cmd", "menu")],
    )


def register(registry: Registry) -> None:
    registry.add("command", "benefits")(benefits_command)
    registry.add("command", "benefit")(benefit_command)
    registry.add("command", "benefit_card")(benefit_card_command)
