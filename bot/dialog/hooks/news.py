"""Hooks of お知らせ on the resident's side, and of a staff member linking their LINE account.

- `news_stop`: the 「配信停止」 quick reply under a news item (`action=news_stop&place=…&topic=…`,
  routed here by the engine) switches that topic off for that place (`bot/storage/preferences.py`;
  an empty topic is お知らせ) and says how to turn it back on (お知らせの設定).
- `news`: past news per registered place, one carousel bubble per place; a title reads the item
  again (command `news_item`, `action=cmd&name=news_item&place=<code>&n=<news id>`).
- `staff_link` flow (`dialogs/staff_link.yaml`): a staff member sends the one-time code the
  console showed them; their staff account then keeps this LINE user id for test sends.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from bot.dialog import postback
from bot.dialog.hooks.registration import place_name
from bot.dialog.model import EndFlow, Outcome, ParseError, Step
from bot.dialog.turn import ButtonSpec, Registry, Turn
from bot.domain.places import get_place
from bot.news import NewsItem, news_messages
from bot.staff.audit import Action, Actor, record
from bot.staff.tenancy import Tenant
from bot.storage.preferences import Topic, topic_of
from bot.storage.staff import LINE_CODE_TTL, line_code_hash

log = logging.getLogger(__name__)

NOTIFY_FLOW = "notification_settings"
MAX_PLACES = 12  # bubbles of a carousel
PER_PLACE = 5  # titles per bubble
LINK_LEASE = "staff-line-link:"  # + the code's hash: the one claim of a code


def _buttons() -> list[ButtonSpec]:
    return [
        ButtonSpec("お知らせの設定", "start", NOTIFY_FLOW),
        ButtonSpec("お知らせ一覧", "cmd", "news"),
        ButtonSpec("メニュー", "cmd", "menu"),
    ]


# --- 配信停止 ----------------------------------------------------------------------------------


async def news_stop_command(turn: Turn) -> None:
    data = postback.parse(turn.incoming.data) if turn.incoming.kind == "postback" else None
    code = data.value if data is not None and data.action == "news_stop" else ""
    if not code or get_place(code) is None:
        await news_command(turn)
        return
    try:
        topic = topic_of(data.name) if data and data.name else Topic.NEWS
    except ValueError:
        topic = Topic.NEWS  # a topic retired since: stop the news, which is what was seen
    if await turn.storage.registrations.find(turn.user_id, code) is None:
        turn.say("news/stop_not_registered", buttons=_buttons(), place_name=place_name(code))
        return
    await turn.storage.preferences.set(turn.user_id, code, topic, False, turn.now)
    turn.say(
        "news/stopped", buttons=_buttons(), place_name=place_name(code), topic_label=topic.label
    )


# --- お知らせ一覧 ------------------------------------------------------------------------------


def _item_data(item: NewsItem) -> str:
    return urlencode(
        [
            ("action", "cmd"),
            ("name", "news_item"),
            ("place", item.municipality_code),
            ("n", item.id),
        ]
    )


def _sent_on(item: NewsItem) -> datetime:
    return item.last_sent_at or item.updated_at


async def news_command(turn: Turn) -> None:
    """Past news of every place the resident is registered with (newest first per place)."""
    docs = await turn.storage.registrations.for_user(turn.user_id)
    codes = list(dict.fromkeys(str(doc["place_code"]) for doc in docs))
    service = turn.services.news
    places: list[dict[str, Any]] = []
    for code in codes[:MAX_PLACES]:
        items = await service.past_for_place(code, PER_PLACE + 1) if service else []
        places.append(
            {
                "name": place_name(code),
                "items": [
                    {"title": i.title, "sent_on": _sent_on(i), "data": _item_data(i)}
                    for i in items[:PER_PLACE]
                ],
                "more": len(items) > PER_PLACE,
            }
        )
    if not any(place["items"] for place in places):
        buttons = _buttons() if codes else [ButtonSpec("登録する", "start", "register")]
        turn.say("news/none", buttons=buttons, registered=bool(codes))
        return
    turn.say("news/list", buttons=_buttons(), places=places)


async def news_item_command(turn: Turn) -> None:
    """One past item again, as it was sent (for residents registered with its place)."""
    code, news_id = turn.argument("place"), turn.argument("n")
    service = turn.services.news
    item = None
    registered = (
        bool(code) and await turn.storage.registrations.find(turn.user_id, code) is not None
    )
    if service and news_id and registered:
        item = await service.get(code, news_id)
    if item is None or item.runs == 0:
        turn.say("news/gone", buttons=_buttons())
        return
    turn.say(
        "news/heading",
        place_name=place_name(code),
        sent_on=_sent_on(item),
        title=item.title,
    )
    turn.say_messages(news_messages(turn.services.renderer, item), buttons=_buttons())


# --- 職員のLINE連携 ------------------------------------------------------------------------------


async def staff_link_code(raw: Any, turn: Turn, step: Step) -> str:
    """The code typed, as its stored hash; the retry when the text cannot be a code."""
    code_hash = line_code_hash(str(raw))
    if code_hash is None:
        raise ParseError("news/staff_link_retry", reason="bad_format")
    return code_hash


async def link_staff_line(turn: Turn) -> Outcome:
    """Claim the code once (a lease on its hash: only an insert is exclusive), then keep this
    LINE user id on the staff account and spend the code."""
    code_hash = str(turn.answers.get("code") or "")
    staff = turn.storage.staff_accounts
    account = await staff.by_line_code_for_link(code_hash, turn.now)
    if account is None:
        return EndFlow("news/staff_link_failed")
    claimed = await turn.storage.leases.acquire(
        LINK_LEASE + code_hash, turn.incoming.event_id, turn.now, LINE_CODE_TTL
    )
    if not claimed:
        return EndFlow("news/staff_link_failed")
    await staff.link_line(account["_id"], code_hash, turn.user_id, turn.now)
    linked = await staff.by_id_for_session(str(account["_id"]))
    if linked is None or linked.get("line_user_id") != turn.user_id:
        return EndFlow("news/staff_link_failed")  # a new code was issued meanwhile
    email = str(account.get("email") or "")
    await record(
        turn.storage,
        turn.now,
        Action.STAFF_LINE_LINKED,
        tenant=str(account.get("tenant") or ""),
        actor=Actor("staff", str(account["_id"]), email),
        target=email,
    )
    tenant = Tenant.of(str(account.get("tenant") or ""))
    return EndFlow(
        "news/staff_linked", {"tenant_name": tenant.name if tenant else "", "email": email}
    )


def register(registry: Registry) -> None:
    add = registry.add
    add("command", "news")(news_command)
    add("command", "news_item")(news_item_command)
    add("command", "news_stop")(news_stop_command)
    add("parser", "staff_link_code")(staff_link_code)
    add("action", "link_staff_line")(link_staff_line)
