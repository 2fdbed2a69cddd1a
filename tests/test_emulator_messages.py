"""Emulator Messaging API: token, limits, reply tokens, retry keys, rate limits, delivery rules."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import pytest

from tests.test_emulator_support import (
    ClientFactory,
    Emu,
    ServerFactory,
    png,
    start_emulator,
    text,
)


@pytest.fixture
async def emu(aiohttp_server: ServerFactory, aiohttp_client: ClientFactory) -> Emu:
    return await start_emulator(aiohttp_server, aiohttp_client)


def bubble(body_text: str = "hello") -> dict[str, Any]:
    return {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [{"type": "text", "text": body_text}],
        },
    }


def flex(contents: dict[str, Any], alt: str = "card") -> dict[str, Any]:
    return {"type": "flex", "altText": alt, "contents": contents}


def quick_reply(*labels: str) -> dict[str, Any]:
    return {
        "items": [
            {"type": "action", "action": {"type": "message", "label": label, "text": label}}
            for label in labels
        ]
    }


def buttons(*actions: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "template",
        "altText": "choose",
        "template": {"type": "buttons", "text": "choose", "actions": list(actions)},
    }


async def test_bearer_token_is_required(emu: Emu) -> None:
    user = await emu.user()
    body = {"to": user, "messages": [text("hi")]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-access-token"}):
        response = await emu.client.post("/v2/bot/message/push", json=body, headers=headers)
        assert response.status == 401
        assert (await response.json())["message"].startswith("Authentication failed")
        assert response.headers["X-Line-Request-Id"]
    status, data, _ = await emu.push(user, text("hi"))
    assert status == 200 and len(data["sentMessages"]) == 1


LIMIT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("six messages", {"messages": [text("x")] * 6}, "messages"),
    ("no messages", {"messages": []}, "messages"),
    ("text 5001", {"messages": [text("あ" * 5001)]}, "text"),
    ("text counted in UTF-16", {"messages": [text("🍎" * 2501)]}, "text"),
    ("empty text", {"messages": [text("")]}, "text"),
    (
        "14 quick replies",
        {"messages": [text("q", quickReply=quick_reply(*"abcdefghijklmn"))]},
        "quickReply.items",
    ),
    (
        "quick reply label 21",
        {"messages": [text("q", quickReply=quick_reply("x" * 21))]},
        "quickReply.items[0].action.label",
    ),
    ("altText 1501", {"messages": [flex(bubble(), alt="a" * 1501)]}, "altText"),
    ("bubble over 30 KB", {"messages": [flex(bubble("x" * 30_000))]}, "contents"),
    (
        "13 bubbles",
        {"messages": [flex({"type": "carousel", "contents": [bubble()] * 13})]},
        "contents.contents",
    ),
    (
        "carousel over 50 KB",
        {"messages": [flex({"type": "carousel", "contents": [bubble("y" * 26_000)] * 2})]},
        "contents",
    ),
    ("empty bubble", {"messages": [flex({"type": "bubble"})]}, "contents"),
    (
        "flex text without text",
        {
            "messages": [
                flex(
                    {
                        "type": "bubble",
                        "body": {
                            "type": "box",
                            "layout": "vertical",
                            "contents": [{"type": "text"}],
                        },
                    }
                )
            ]
        },
        "contents.body.contents[0].text",
    ),
    (
        "postback data 301",
        {"messages": [buttons({"type": "postback", "label": "ok", "data": "d" * 301})]},
        "template.actions[0].data",
    ),
    (
        "datetimepicker mode",
        {
            "messages": [
                buttons({"type": "datetimepicker", "label": "when", "data": "d", "mode": "week"})
            ]
        },
        "template.actions[0].mode",
    ),
    (
        "datetimepicker initial format",
        {
            "messages": [
                buttons(
                    {
                        "type": "datetimepicker",
                        "label": "when",
                        "data": "d",
                        "mode": "date",
                        "initial": "2027/01/09",
                    }
                )
            ]
        },
        "template.actions[0].initial",
    ),
    (
        "template label 21",
        {"messages": [buttons({"type": "message", "label": "l" * 21, "text": "t"})]},
        "template.actions[0].label",
    ),
    (
        "five buttons",
        {"messages": [buttons(*[{"type": "message", "label": "a", "text": "a"}] * 5)]},
        "template.actions",
    ),
]


@pytest.mark.parametrize(
    ("body", "prop"), [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES]
)
async def test_platform_limits_answer_400_in_lines_shape(
    emu: Emu, body: dict[str, Any], prop: str
) -> None:
    user = await emu.user()
    status, data, headers = await emu.api("POST", "/v2/bot/message/push", {"to": user, **body})
    assert status == 400, data
    assert isinstance(data["message"], str) and data["message"]
    assert all(set(d) == {"message", "property"} for d in data["details"])
    assert prop in [d["property"] for d in data["details"]], data
    assert headers["X-Line-Request-Id"]
    assert await emu.inbox(user) == []


async def test_limits_are_inclusive(emu: Emu) -> None:
    user = await emu.user()
    ok = [
        text("あ" * 5000, quickReply=quick_reply(*"abcdefghijklm")),
        text("🍎" * 2500),
        flex({"type": "carousel", "contents": [bubble()] * 12}, alt="a" * 1500),
        buttons({"type": "postback", "label": "l" * 20, "data": "d" * 300}),
        buttons(
            {
                "type": "datetimepicker",
                "label": "when",
                "data": "d",
                "mode": "datetime",
                "initial": "2027-01-09T09:30",
                "min": "2027-01-01T00:00",
            }
        ),
    ]
    status, data, _ = await emu.push(user, *ok)
    assert status == 200, data
    assert [m["message"] for m in await emu.inbox(user)] == ok


async def test_multicast_allows_500_recipients_not_501(emu: Emu) -> None:
    user = await emu.user()
    for count, expected in ((501, 400), (500, 200)):
        to = [user] + [f"U{uuid.uuid4().hex}" for _ in range(count - 1)]
        status, data, _ = await emu.api(
            "POST", "/v2/bot/message/multicast", {"to": to, "messages": [text("hi")]}
        )
        assert status == expected, data
    assert len(await emu.inbox(user)) == 1


@pytest.mark.parametrize(
    "contents",
    [
        {},
        {"type": "bubblex"},
        {
            "type": "bubble",
            "body": {"type": "box", "layout": "vertical", "contents": [{"type": "nope"}]},
        },
        {"type": "bubble", "body": {"type": "box", "contents": []}},
    ],
    ids=["no type", "unknown container", "unknown component", "box without layout"],
)
async def test_unparsable_flex_contents_are_rejected(emu: Emu, contents: dict[str, Any]) -> None:
    user = await emu.user()
    status, data, _ = await emu.push(user, flex(contents))
    assert status == 400
    assert data["message"] == "A message (messages[0]) in the request body is invalid"
    assert data["details"]


async def test_unknown_message_type_and_bad_json(emu: Emu) -> None:
    user = await emu.user()
    status, data, _ = await emu.push(user, {"type": "hologram", "text": "x"})
    assert status == 400 and data["details"]
    response = await emu.client.post(
        "/v2/bot/message/push",
        data=b"{not json",
        headers={"Authorization": "Bearer test-access-token"},
    )
    assert response.status == 400


async def test_reply_token_is_single_use(emu: Emu) -> None:
    user = await emu.user()
    await emu.control("POST", f"/users/{user}/text", {"text": "こんにちは"})
    token = emu.receiver.last()["replyToken"]
    body = {"replyToken": token, "messages": [text("どうも")]}
    status, data, _ = await emu.api("POST", "/v2/bot/message/reply", body)
    assert status == 200 and data["sentMessages"][0]["quoteToken"]
    status, data, _ = await emu.api("POST", "/v2/bot/message/reply", body)
    assert (status, data) == (400, {"message": "Invalid reply token"})
    status, data, _ = await emu.api(
        "POST", "/v2/bot/message/reply", {"replyToken": "nope", "messages": [text("x")]}
    )
    assert (status, data) == (400, {"message": "Invalid reply token"})
    assert [m["via"] for m in await emu.inbox(user)] == ["reply"]


async def test_invalid_reply_body_does_not_spend_the_token(emu: Emu) -> None:
    user = await emu.user()
    token = emu.receiver.last()["replyToken"]  # of the follow event
    status, _, _ = await emu.api(
        "POST", "/v2/bot/message/reply", {"replyToken": token, "messages": [text("")]}
    )
    assert status == 400
    status, _, _ = await emu.api(
        "POST", "/v2/bot/message/reply", {"replyToken": token, "messages": [text("ok")]}
    )
    assert status == 200
    assert len(await emu.inbox(user)) == 1


async def test_reply_token_expires(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
) -> None:
    emu = await start_emulator(aiohttp_server, aiohttp_client, reply_token_ttl=0.2)
    await emu.user()
    token = emu.receiver.last()["replyToken"]
    await asyncio.sleep(0.3)
    status, data, _ = await emu.api(
        "POST", "/v2/bot/message/reply", {"replyToken": token, "messages": [text("late")]}
    )
    assert (status, data) == (400, {"message": "Invalid reply token"})


async def test_retry_key_repeat_is_409_with_the_first_request_id(emu: Emu) -> None:
    user = await emu.user()
    key = str(uuid.uuid4())
    body = {"to": user, "messages": [text("once")]}
    retry = {"X-Line-Retry-Key": key}
    status, first, headers = await emu.api("POST", "/v2/bot/message/push", body, retry)
    assert status == 200
    status, again, again_headers = await emu.api("POST", "/v2/bot/message/push", body, retry)
    assert status == 409
    assert again == {
        "message": "The retry key is already accepted",
        "sentMessages": first["sentMessages"],
    }
    assert again_headers["X-Line-Accepted-Request-Id"] == headers["X-Line-Request-Id"]
    assert again_headers["X-Line-Request-Id"] != headers["X-Line-Request-Id"]
    assert len(await emu.inbox(user)) == 1

    multicast = {"to": [user], "messages": [text("m")]}
    other = {"X-Line-Retry-Key": str(uuid.uuid4())}
    assert (await emu.api("POST", "/v2/bot/message/multicast", multicast, other))[0] == 200
    assert (await emu.api("POST", "/v2/bot/message/multicast", multicast, other))[0] == 409

    status, data, _ = await emu.api(
        "POST", "/v2/bot/message/push", body, {"X-Line-Retry-Key": "not-a-uuid"}
    )
    assert status == 400 and "UUID" in data["message"]


async def test_failed_requests_do_not_consume_the_retry_key(emu: Emu) -> None:
    user = await emu.user()
    retry = {"X-Line-Retry-Key": str(uuid.uuid4())}
    await emu.control("POST", "/faults", {"path": "/v2/bot/message/push", "status": 500})
    status, _, _ = await emu.api(
        "POST", "/v2/bot/message/push", {"to": user, "messages": [text("x")]}, retry
    )
    assert status == 500
    status, _, _ = await emu.api(
        "POST", "/v2/bot/message/push", {"to": user, "messages": [text("")]}, retry
    )
    assert status == 400
    status, _, _ = await emu.api(
        "POST", "/v2/bot/message/push", {"to": user, "messages": [text("x")]}, retry
    )
    assert status == 200
    assert len(await emu.inbox(user)) == 1


async def test_retry_keys_are_forgotten_after_their_ttl(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
) -> None:
    emu = await start_emulator(aiohttp_server, aiohttp_client, retry_key_ttl=0.2)
    user = await emu.user()
    retry = {"X-Line-Retry-Key": str(uuid.uuid4())}
    body = {"to": user, "messages": [text("x")]}
    assert (await emu.api("POST", "/v2/bot/message/push", body, retry))[0] == 200
    assert (await emu.api("POST", "/v2/bot/message/push", body, retry))[0] == 409
    await asyncio.sleep(0.3)
    assert (await emu.api("POST", "/v2/bot/message/push", body, retry))[0] == 200


async def test_rate_limit_answers_429(emu: Emu) -> None:
    user = await emu.user()
    status, _ = await emu.control("POST", "/config", {"rateLimits": {"/v2/bot/message/push": 2}})
    assert status == 200
    statuses = [(await emu.push(user, text(str(i))))[0] for i in range(3)]
    assert statuses == [200, 200, 429]
    status, data, _ = await emu.push(user, text("again"))
    assert (status, data) == (
        429,
        {"message": "The API rate limit has been exceeded. Try again later."},
    )
    # Other paths have their own buckets.
    assert (await emu.api("GET", f"/v2/bot/profile/{user}"))[0] == 200
    _, stats = await emu.control("GET", "/stats")
    assert stats["requests"]["/v2/bot/message/push"] == {"200": 2, "429": 2}


async def test_broadcast_default_limit_is_60_per_hour(emu: Emu) -> None:
    body = {"messages": [text("news")]}
    statuses = [(await emu.api("POST", "/v2/bot/message/broadcast", body))[0] for _ in range(61)]
    assert statuses == [200] * 60 + [429]


async def test_rate_limits_from_the_factory(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
) -> None:
    emu = await start_emulator(
        aiohttp_server, aiohttp_client, rate_limits={"/v2/bot/profile/{userId}": 1}
    )
    user = await emu.user()
    first = await emu.api("GET", f"/v2/bot/profile/{user}")
    second = await emu.api("GET", f"/v2/bot/profile/{user}")
    assert (first[0], second[0]) == (200, 429)


async def test_blocked_users_are_dropped_silently(emu: Emu) -> None:
    friend = await emu.user("Friend")
    blocker = await emu.user("Blocker")
    await emu.control("POST", f"/users/{blocker}/unfollow")
    status, data, _ = await emu.push(blocker, text("are you there?"))
    assert status == 200 and data["sentMessages"]
    status, _, _ = await emu.api(
        "POST", "/v2/bot/message/multicast", {"to": [friend, blocker], "messages": [text("hi")]}
    )
    assert status == 200
    assert await emu.inbox(blocker) == []
    assert [m["via"] for m in await emu.inbox(friend)] == ["multicast"]
    assert (await emu.api("GET", f"/v2/bot/profile/{blocker}"))[0] == 404
    _, stats = await emu.control("GET", "/stats")
    assert stats["messagesDelivered"] == 1


async def test_unknown_recipients(emu: Emu) -> None:
    friend = await emu.user()
    stranger = f"U{uuid.uuid4().hex}"
    status, data, _ = await emu.push(stranger, text("hi"))
    assert (status, data["message"]) == (400, "Failed to send messages")
    status, _, _ = await emu.push("alice", text("hi"))
    assert status == 400
    status, _, _ = await emu.api(
        "POST", "/v2/bot/message/multicast", {"to": [stranger, friend], "messages": [text("hi")]}
    )
    assert status == 200
    assert len(await emu.inbox(friend)) == 1


async def test_broadcast_and_narrowcast_reach_friends_only(emu: Emu) -> None:
    friends = [await emu.user("A"), await emu.user("B")]
    outsider = await emu.user("C", follow=False)
    assert (await emu.api("POST", "/v2/bot/message/broadcast", {"messages": [text("b")]}))[0] == 200
    status, data, headers = await emu.api(
        "POST", "/v2/bot/message/narrowcast", {"messages": [text("n")], "limit": {"max": 1}}
    )
    assert (status, data) == (202, {})
    status, progress, _ = await emu.api(
        "GET", f"/v2/bot/message/progress/narrowcast?requestId={headers['X-Line-Request-Id']}"
    )
    assert status == 200
    assert (progress["phase"], progress["successCount"]) == ("succeeded", 1)
    assert [m["via"] for m in await emu.inbox(friends[0])] == ["broadcast", "narrowcast"]
    assert [m["via"] for m in await emu.inbox(friends[1])] == ["broadcast"]
    assert await emu.inbox(outsider) == []
    assert (await emu.api("GET", "/v2/bot/message/progress/narrowcast?requestId=x"))[0] == 404


async def test_profile_info_loading_and_content(emu: Emu) -> None:
    user = await emu.user("山田")
    status, profile, _ = await emu.api("GET", f"/v2/bot/profile/{user}")
    assert (status, profile["displayName"], profile["userId"]) == (200, "山田", user)
    status, info, _ = await emu.api("GET", "/v2/bot/info")
    assert status == 200 and info["userId"] == emu.receiver.received[0].destination
    body = {"chatId": user, "loadingSeconds": 7}
    assert (await emu.api("POST", "/v2/bot/chat/loading/start", body))[0] == 400
    body["loadingSeconds"] = 10
    assert (await emu.api("POST", "/v2/bot/chat/loading/start", body))[0] == 202

    image = png(3, 2)
    await emu.control("POST", f"/users/{user}/image", {"base64": base64.b64encode(image).decode()})
    message_id = emu.receiver.last()["message"]["id"]
    response = await emu.client.get(
        f"/v2/bot/message/{message_id}/content",
        headers={"Authorization": "Bearer test-access-token"},
    )
    assert response.status == 200
    assert response.content_type == "image/png"
    assert await response.read() == image
    assert (await emu.api("GET", "/v2/bot/message/123/content"))[0] == 404


async def test_inbox_keeps_what_was_sent(emu: Emu) -> None:
    user = await emu.user()
    message = flex(bubble("カード"))
    await emu.push(user, text("one"), message)
    inbox = await emu.inbox(user)
    assert [(m["seq"], m["via"]) for m in inbox] == [(1, "push"), (2, "push")]
    assert inbox[1]["message"] == message
    assert inbox[0]["at"].endswith("Z")
    assert [m["seq"] for m in await emu.inbox(user, after=1)] == [2]


async def test_unknown_api_path_answers_json_404(emu: Emu) -> None:
    status, data, _ = await emu.api("GET", "/v2/bot/nothing/here")
    assert status == 404 and "message" in data
