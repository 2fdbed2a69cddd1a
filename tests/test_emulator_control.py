"""Emulator control API: users, taps, inbox waiting, faults, stats, reset, the simulator page."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.test_emulator_support import (
    AUTH,
    ClientFactory,
    Emu,
    ServerFactory,
    png,
    rich_menu,
    start_emulator,
    text,
)


@pytest.fixture
async def emu(aiohttp_server: ServerFactory, aiohttp_client: ClientFactory) -> Emu:
    return await start_emulator(aiohttp_server, aiohttp_client)


def with_quick_reply(body: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return text(body, quickReply={"items": [{"type": "action", "action": a} for a in actions]})


def buttons(*actions: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "template",
        "altText": "選択",
        "template": {"type": "buttons", "text": "選んでください", "actions": list(actions)},
    }


async def tap(emu: Emu, user: str, label: str, **extra: Any) -> tuple[int, Any]:
    return await emu.control("POST", f"/users/{user}/tap", {"label": label, **extra})


async def test_users_are_created_listed_and_checked(emu: Emu) -> None:
    given = "U" + "a" * 32
    status, data = await emu.control("POST", "/users", {"displayName": "A", "userId": given})
    assert (status, data) == (200, {"userId": given})
    status, data = await emu.control("POST", "/users", {"displayName": "B"})
    assert status == 200 and len(data["userId"]) == 33 and data["userId"].startswith("U")
    assert (await emu.control("POST", "/users", {"displayName": "A", "userId": given}))[0] == 409
    assert (await emu.control("POST", "/users", {"displayName": "X", "userId": "bob"}))[0] == 400
    assert (await emu.control("POST", "/users", {}))[0] == 400
    await emu.control("POST", f"/users/{given}/follow")
    await emu.control("POST", f"/users/{given}/unfollow")
    _, listing = await emu.control("GET", "/users")
    assert listing["users"][0] == {
        "userId": given,
        "displayName": "A",
        "following": False,
        "blocked": True,
    }
    assert listing["users"][1]["following"] is False and listing["users"][1]["blocked"] is False
    status, data = await emu.control("POST", f"/users/{given}/text", {"text": "hi"})
    assert status == 409  # a user who blocked the account cannot talk to it
    assert (await emu.control("POST", "/users/U0/text", {"text": "hi"}))[0] == 404


async def test_tap_quick_reply_sends_its_text_and_hides_it(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(
        user,
        with_quick_reply(
            "登録しますか？",
            {"type": "message", "label": "はい", "text": "はい、登録します"},
            {"type": "message", "label": "いいえ", "text": "いいえ"},
        ),
    )
    status, answer = await tap(emu, user, "はい")
    assert status == 200 and answer["status"] == 200
    event = emu.receiver.last()
    assert answer["webhookEventId"] == event["webhookEventId"]
    assert event["message"] == {**event["message"], "type": "text", "text": "はい、登録します"}
    # LINE hides a quick reply once the user has acted.
    status, answer = await tap(emu, user, "いいえ")
    assert status == 404 and answer["labels"] == []


async def test_quick_reply_only_under_the_newest_message(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(user, with_quick_reply("q", {"type": "message", "label": "A", "text": "a"}))
    await emu.push(user, text("later"))
    status, answer = await tap(emu, user, "A")
    assert status == 404
    assert "available" in answer["message"]


async def test_tap_buttons_postback(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(
        user,
        buttons(
            {
                "type": "postback",
                "label": "気仙沼市に登録",
                "data": "register=042056",
                "displayText": "気仙沼市",
            },
            {"type": "uri", "label": "詳しく", "uri": "https://example.jp/"},
        ),
    )
    status, answer = await tap(emu, user, "気仙沼")
    assert status == 200
    assert answer["action"]["data"] == "register=042056"
    event = emu.receiver.last()
    assert event["type"] == "postback"
    assert event["postback"] == {"data": "register=042056"}


async def test_tap_uri_answers_the_uri_without_an_event(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(user, buttons({"type": "uri", "label": "詳しく", "uri": "https://example.jp/"}))
    before = len(emu.receiver.events)
    status, answer = await tap(emu, user, "詳しく")
    assert status == 200 and answer["uri"] == "https://example.jp/"
    assert len(emu.receiver.events) == before


async def test_tap_a_flex_button_deep_in_the_tree(emu: Emu) -> None:
    user = await emu.user()
    card = {
        "type": "flex",
        "altText": "カード",
        "contents": {
            "type": "carousel",
            "contents": [
                {
                    "type": "bubble",
                    "body": {
                        "type": "box",
                        "layout": "vertical",
                        "contents": [{"type": "text", "text": "1枚目"}],
                    },
                },
                {
                    "type": "bubble",
                    "footer": {
                        "type": "box",
                        "layout": "vertical",
                        "contents": [
                            {
                                "type": "box",
                                "layout": "horizontal",
                                "contents": [
                                    {
                                        "type": "button",
                                        "action": {
                                            "type": "message",
                                            "label": "登録証を見る",
                                            "text": "登録証",
                                        },
                                    }
                                ],
                            }
                        ],
                    },
                },
            ],
        },
    }
    await emu.push(user, card)
    status, answer = await tap(emu, user, "登録証を")
    assert status == 200 and answer["where"] == "flex"
    assert emu.receiver.last()["message"]["text"] == "登録証"


async def test_tap_datetime_picker_needs_params(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(
        user,
        buttons(
            {
                "type": "datetimepicker",
                "label": "滞在日を選ぶ",
                "data": "stay",
                "mode": "date",
                "min": "2027-01-01",
                "max": "2027-12-31",
            }
        ),
    )
    status, answer = await tap(emu, user, "滞在日")
    assert status == 400 and '"date"' in answer["message"] and "params" in answer["message"]
    status, _ = await tap(emu, user, "滞在日", params={"date": "2028-01-01"})
    assert status == 400
    status, _ = await tap(emu, user, "滞在日", params={"time": "10:00"})
    assert status == 400
    status, _ = await tap(emu, user, "滞在日", params={"date": "2027-01-09"})
    assert status == 200
    assert emu.receiver.last()["postback"] == {"data": "stay", "params": {"date": "2027-01-09"}}


async def test_tap_prefers_the_newest_message_and_exact_labels(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(user, buttons({"type": "postback", "label": "はい", "data": "old"}))
    await emu.push(
        user,
        buttons(
            {"type": "postback", "label": "はい、すべて", "data": "new-partial"},
            {"type": "postback", "label": "はい", "data": "new-exact"},
        ),
    )
    await tap(emu, user, "はい")
    assert emu.receiver.last()["postback"]["data"] == "new-exact"
    await tap(emu, user, "すべて")
    assert emu.receiver.last()["postback"]["data"] == "new-partial"


async def test_tap_with_no_match_lists_the_labels(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(user, buttons({"type": "postback", "label": "登録", "data": "r"}))
    status, answer = await tap(emu, user, "解除")
    assert status == 404
    assert answer["labels"] == ["登録"]
    assert "登録" in answer["message"]


async def _menu_with_image(emu: Emu, body: dict[str, Any]) -> str:
    status, created, _ = await emu.api("POST", "/v2/bot/richmenu", body)
    assert status == 200, created
    menu_id = str(created["richMenuId"])
    response = await emu.client.post(
        f"/v2/bot/richmenu/{menu_id}/content",
        data=png(2500, 843),
        headers={**AUTH, "Content-Type": "image/png"},
    )
    assert response.status == 200, await response.text()
    return menu_id


async def test_tap_rich_menu_areas_and_switch(emu: Emu) -> None:
    user = await emu.user()
    main = await _menu_with_image(emu, rich_menu())
    second = await _menu_with_image(
        emu,
        rich_menu(
            [
                {
                    "bounds": {"x": 0, "y": 0, "width": 2500, "height": 843},
                    "action": {
                        "type": "richmenuswitch",
                        "label": "戻る",
                        "richMenuAliasId": "main",
                        "data": "back",
                    },
                }
            ],
            name="second",
        ),
    )
    assert (
        await emu.api(
            "POST", "/v2/bot/richmenu/alias", {"richMenuAliasId": "main", "richMenuId": main}
        )
    )[0] == 200
    status, _ = await emu.control("GET", f"/users/{user}/richmenu")
    assert status == 404
    assert (await emu.api("POST", f"/v2/bot/user/all/richmenu/{main}"))[0] == 200

    status, shown = await emu.control("GET", f"/users/{user}/richmenu")
    assert status == 200 and (shown["richMenuId"], shown["source"]) == (main, "default")
    assert len(shown["areas"]) == 2
    image = await emu.client.get(shown["imageUrl"])
    assert image.status == 200 and image.content_type == "image/png"

    status, _ = await tap(emu, user, "登録する")
    assert status == 200
    assert emu.receiver.last()["postback"] == {"data": "menu=register"}

    assert (await emu.api("POST", f"/v2/bot/user/{user}/richmenu/{second}"))[0] == 200
    status, _ = await tap(emu, user, "戻る")
    assert status == 200
    assert emu.receiver.last()["postback"] == {
        "data": "back",
        "params": {"newRichMenuAliasId": "main", "status": "SUCCESS"},
    }
    _, shown = await emu.control("GET", f"/users/{user}/richmenu")
    assert (shown["richMenuId"], shown["source"]) == (main, "user")


async def test_inbox_wait_returns_as_soon_as_a_message_arrives(emu: Emu) -> None:
    user = await emu.user()

    async def push_soon() -> None:
        await asyncio.sleep(0.05)
        await emu.push(user, text("届いた"))

    started = time.monotonic()
    pusher = asyncio.create_task(push_soon())
    status, data = await emu.control("GET", f"/users/{user}/inbox?after=0&wait=10")
    elapsed = time.monotonic() - started
    await pusher
    assert status == 200
    assert [m["message"]["text"] for m in data["messages"]] == ["届いた"]
    assert elapsed < 2


async def test_inbox_wait_times_out_empty(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(user, text("old"))
    started = time.monotonic()
    status, data = await emu.control("GET", f"/users/{user}/inbox?after=1&wait=0.2")
    assert (status, data) == (200, {"messages": []})
    assert 0.2 <= time.monotonic() - started < 2
    assert (await emu.control("GET", f"/users/{user}/inbox?wait=-1"))[0] == 400
    assert (await emu.control("GET", f"/users/{user}/inbox?after=x"))[0] == 400


async def test_faults_status_times_and_latency(emu: Emu) -> None:
    user = await emu.user()
    status, data = await emu.control(
        "POST", "/faults", {"path": "/v2/bot/message/", "status": 503, "times": 2}
    )
    assert status == 200 and data["faults"][0]["times"] == 2
    statuses = [(await emu.push(user, text("x")))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]

    await emu.control("POST", "/faults", {"path": "/v2/bot/message/push", "latencyMs": 200})
    started = time.monotonic()
    status, _, _ = await emu.push(user, text("slow"))
    assert status == 200 and time.monotonic() - started >= 0.2

    await emu.control("POST", "/faults", {"path": "/v2/bot/profile/", "times": 5})
    assert (await emu.api("GET", f"/v2/bot/profile/{user}"))[0] == 500
    assert (await emu.control("DELETE", "/faults"))[0] == 200
    assert (await emu.api("GET", f"/v2/bot/profile/{user}"))[0] == 200
    assert (await emu.control("POST", "/faults", {"path": "/x", "status": 200}))[0] == 400
    assert [m["message"]["text"] for m in await emu.inbox(user)] == ["x", "slow"]


async def test_stats_count_requests_by_path_and_status(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(user, text("a"), text("b"))
    await emu.push(user, text(""))
    await emu.api("GET", f"/v2/bot/profile/{user}")
    await emu.client.get(f"/v2/bot/profile/{user}")  # no token
    _, stats = await emu.control("GET", "/stats")
    assert stats["requests"]["/v2/bot/message/push"] == {"200": 1, "400": 1}
    assert stats["requests"]["/v2/bot/profile/{userId}"] == {"200": 1, "401": 1}
    assert stats["messagesDelivered"] == 2


async def test_reset_forgets_everything(emu: Emu) -> None:
    user = await emu.user()
    await emu.push(user, text("a"))
    await emu.control("POST", "/config", {"redeliver": True})
    assert (await emu.control("POST", "/reset"))[0] == 200
    _, listing = await emu.control("GET", "/users")
    _, stats = await emu.control("GET", "/stats")
    assert listing == {"users": []}
    assert stats == {"requests": {}, "messagesDelivered": 0}
    again = await emu.user()
    assert len(emu.receiver.events) == 2  # a follow on each side; the reset ended redelivery
    assert (await emu.push(again, text("b")))[0] == 200


async def test_config_validates_its_input(emu: Emu) -> None:
    assert (await emu.control("POST", "/config", {"rateLimits": {"/x": 0}}))[0] == 400
    assert (await emu.control("POST", "/config", {"redeliver": "yes"}))[0] == 400
    assert (await emu.control("POST", "/config", {"webhookUrl": "ftp://x"}))[0] == 400


async def test_webhook_url_can_be_set_later(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
) -> None:
    emu = await start_emulator(aiohttp_server, aiohttp_client, webhook_url=None)
    user = await emu.user(follow=False)
    _, answer = await emu.control("POST", f"/users/{user}/follow")
    assert answer["status"] == 0
    status, config = await emu.control("POST", "/config", {"webhookUrl": emu.callback_url})
    assert status == 200 and config["webhookUrl"] == emu.callback_url
    _, answer = await emu.control("POST", f"/users/{user}/text", {"text": "届く?"})
    assert answer["status"] == 200
    assert emu.receiver.last()["message"]["text"] == "届く?"


async def test_simulator_page_and_static_files(emu: Emu) -> None:
    response = await emu.client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "<html" in (await response.text()).lower()
    assert (await emu.client.get("/static/..%2F..%2Fapp.py")).status == 404
    assert (await emu.client.get("/static/missing.js")).status == 404
