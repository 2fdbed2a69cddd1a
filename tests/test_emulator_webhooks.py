"""Emulator webhooks: complete per LINE's schema, signed, parsed by the SDK, redelivered."""

from __future__ import annotations

import base64
import re
import socket

import pytest
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
)

from tests.test_emulator_support import (
    ClientFactory,
    Emu,
    Receiver,
    ServerFactory,
    png,
    start_emulator,
)

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


@pytest.fixture
async def emu(aiohttp_server: ServerFactory, aiohttp_client: ClientFactory) -> Emu:
    return await start_emulator(aiohttp_server, aiohttp_client)


async def test_every_event_parses_with_the_sdk(emu: Emu) -> None:
    user = await emu.user("佐藤")
    steps = [
        ("text", {"text": "こんにちは"}),
        ("image", {"base64": base64.b64encode(png(2, 2)).decode()}),
        (
            "location",
            {
                "title": "気仙沼市役所",
                "address": "宮城県気仙沼市八日町1-1-1",
                "latitude": 38.908,
                "longitude": 141.569,
            },
        ),
        ("sticker", {"packageId": "446", "stickerId": 1988}),
        ("postback", {"data": "action=stay", "params": {"date": "2027-01-09"}}),
        ("unfollow", None),
        ("follow", None),
    ]
    answers = []
    for step, body in steps:
        status, answer = await emu.control("POST", f"/users/{user}/{step}", body)
        assert status == 200, answer
        answers.append(answer)

    events = [event for received in emu.receiver.received for event in received.events]
    assert [type(e) for e in events] == [
        FollowEvent,
        MessageEvent,
        MessageEvent,
        MessageEvent,
        MessageEvent,
        PostbackEvent,
        UnfollowEvent,
        FollowEvent,
    ]
    follow, said, image, place, sticker, postback, unfollow, refollow = events
    assert follow.follow.is_unblocked is False and refollow.follow.is_unblocked is True
    assert isinstance(said.message, TextMessageContent)
    assert said.message.text == "こんにちは" and said.message.quote_token
    assert isinstance(image.message, ImageMessageContent)
    assert image.message.content_provider.type == "line"
    assert isinstance(place.message, LocationMessageContent)
    assert (place.message.title, place.message.latitude) == ("気仙沼市役所", 38.908)
    assert isinstance(sticker.message, StickerMessageContent)
    assert (sticker.message.package_id, sticker.message.sticker_id) == ("446", "1988")
    assert postback.postback.data == "action=stay"
    assert postback.postback.params == {"date": "2027-01-09"}
    assert unfollow.to_dict().get("replyToken") is None

    for event in events:
        assert event.source.user_id == user
        assert event.mode.value == "active"
        assert ULID.fullmatch(event.webhook_event_id)
        assert event.delivery_context.is_redelivery is False
        assert event.timestamp > 1_700_000_000_000
    assert all(event.reply_token for event in events if not isinstance(event, UnfollowEvent))
    assert len({event.webhook_event_id for event in events}) == len(events)
    ids = [answer["webhookEventId"] for answer in answers]
    assert ids == [event.webhook_event_id for event in events[1:]]
    assert all(answer["status"] == 200 for answer in answers)

    _, info, _ = await emu.api("GET", "/v2/bot/info")
    assert {received.destination for received in emu.receiver.received} == {info["userId"]}


async def test_wrong_secret_fails_verification_and_status_is_the_bots(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
) -> None:
    receiver = Receiver(secret="another-channel-secret")
    emu = await start_emulator(aiohttp_server, aiohttp_client, receiver)
    user = await emu.user(follow=False)
    status, answer = await emu.control("POST", f"/users/{user}/follow")
    assert status == 200
    assert answer["status"] == 400  # the receiver rejected the signature
    assert receiver.received == []


async def test_bot_status_is_reported(emu: Emu) -> None:
    emu.receiver.status = 503
    user = await emu.user(follow=False)
    _, answer = await emu.control("POST", f"/users/{user}/follow")
    assert answer["status"] == 503
    _, listing = await emu.control("GET", "/webhooks")
    assert listing["deliveries"][-1]["status"] == 503


async def test_unreachable_bot_gives_status_0(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emu = await start_emulator(
        aiohttp_server, aiohttp_client, webhook_url=f"http://127.0.0.1:{port}/callback"
    )
    user = await emu.user(follow=False)
    _, answer = await emu.control("POST", f"/users/{user}/follow")
    assert answer["status"] == 0
    _, listing = await emu.control("GET", "/webhooks")
    assert listing["deliveries"][0]["error"]


async def test_redeliver_sends_every_event_twice(emu: Emu) -> None:
    user = await emu.user()
    status, config = await emu.control("POST", "/config", {"redeliver": True})
    assert status == 200 and config["redeliver"] is True
    _, answer = await emu.control("POST", f"/users/{user}/text", {"text": "二回"})
    first, second = emu.receiver.events[-2:]
    assert first["webhookEventId"] == second["webhookEventId"] == answer["webhookEventId"]
    assert first["deliveryContext"] == {"isRedelivery": False}
    assert second["deliveryContext"] == {"isRedelivery": True}
    assert first["replyToken"] == second["replyToken"]
    parsed = emu.receiver.received[-1].events[0]
    assert parsed.delivery_context.is_redelivery is True


async def test_redeliver_one_event_on_demand(emu: Emu) -> None:
    user = await emu.user()
    _, answer = await emu.control("POST", f"/users/{user}/text", {"text": "もう一度"})
    event_id = answer["webhookEventId"]
    status, again = await emu.control("POST", f"/webhooks/{event_id}/redeliver")
    assert (status, again) == (200, {"webhookEventId": event_id, "status": 200})
    last = emu.receiver.last()
    assert last["webhookEventId"] == event_id
    assert last["deliveryContext"]["isRedelivery"] is True
    assert last["message"]["text"] == "もう一度"
    assert (await emu.control("POST", "/webhooks/01UNKNOWN/redeliver"))[0] == 404


async def test_deliveries_are_listed(emu: Emu) -> None:
    user = await emu.user()
    other = await emu.user("Bob")
    await emu.control("POST", f"/users/{user}/text", {"text": "記録"})
    _, listing = await emu.control("GET", "/webhooks")
    kinds = [
        (d["type"], d["userId"], d["status"], d["isRedelivery"]) for d in listing["deliveries"]
    ]
    assert kinds == [
        ("follow", user, 200, False),
        ("follow", other, 200, False),
        ("message", user, 200, False),
    ]
    last = listing["deliveries"][-1]
    assert last["body"]["events"][0]["message"]["text"] == "記録"
    _, mine = await emu.control("GET", f"/webhooks?userId={other}")
    assert [d["userId"] for d in mine["deliveries"]] == [other]
