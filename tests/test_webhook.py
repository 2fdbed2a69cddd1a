"""The webhook pipeline and the resilient LINE client, through the emulator and a real database.

The dialog layer is replaced by a recording echo handler so that what is measured here is the
pipeline: signatures, exactly-once, ordering, reply fallback, retries.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from linebot.v3.messaging import TextMessage

from bot.line.incoming import EventHandler, Incoming, Replier
from bot.line.pipeline import HANDLING_SLOTS
from bot.services import Services
from tests.stack import Stack, start_stack


@dataclass
class Recorder:
    """Echo handler that records what it handled and checks nothing runs concurrently."""

    handled: list[Incoming] = field(default_factory=list)
    active: int = 0
    overlaps: int = 0
    peak: int = 0  # the most handlers running at once
    delays: dict[str, float] = field(default_factory=dict)

    def factory(self, services: Services) -> EventHandler:
        async def handle(incoming: Incoming, reply: Replier) -> None:
            self.active += 1
            self.overlaps += self.active > 1
            self.peak = max(self.peak, self.active)
            try:
                await asyncio.sleep(self.delays.get(incoming.text, 0))
                if incoming.kind in ("follow", "unfollow"):
                    return
                self.handled.append(incoming)
                if incoming.kind in ("text", "postback"):
                    await reply([TextMessage(text=f"echo:{incoming.text or incoming.data}")])
            finally:
                self.active -= 1

        return handle


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def echo(mongo_uri: str, db_name: str, recorder: Recorder) -> AsyncIterator[Stack]:
    async for running in start_stack(mongo_uri, db_name, recorder.factory):
        yield running


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def text_event(user_id: str, text: str, ts: int, *, mode: str = "active") -> dict[str, Any]:
    return {
        "type": "message",
        "mode": mode,
        "timestamp": ts,
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
        "message": {"id": str(ts), "type": "text", "quoteToken": "q", "text": text},
    }


async def post_events(
    stack: Stack,
    events: list[dict[str, Any]],
    *,
    signature: str | None = None,
    body: bytes | None = None,
) -> int:
    raw = body if body is not None else json.dumps({"destination": "U0", "events": events}).encode()
    headers = {"Content-Type": "application/json"}
    if signature != "":
        headers["X-Line-Signature"] = signature or sign(stack.settings.line_channel_secret, raw)
    async with stack.http.post(f"{stack.bot_url}/callback", data=raw, headers=headers) as r:
        return r.status


async def emulator_user(stack: Stack) -> str:
    chat = await stack.user("署名テスト", follow=True, greeting=False)
    return chat.user_id


# Signatures ---------------------------------------------------------------------------------


async def test_valid_signature_is_handled(echo: Stack, recorder: Recorder) -> None:
    user = await emulator_user(echo)
    assert await post_events(echo, [text_event(user, "こんにちは", 1)]) == 200
    await echo.wait_idle()
    assert [i.text for i in recorder.handled] == ["こんにちは"]


@pytest.mark.parametrize("case", ["invalid", "missing", "one_byte_changed", "reserialised"])
async def test_bad_signature_is_400_and_nothing_is_handled(
    echo: Stack, recorder: Recorder, case: str
) -> None:
    event = text_event("Uabc", "偽物", 1)
    raw = json.dumps({"destination": "U0", "events": [event]}, ensure_ascii=False).encode()
    good = sign(echo.settings.line_channel_secret, raw)
    if case == "invalid":
        status = await post_events(echo, [], body=raw, signature=sign("other-secret", raw))
    elif case == "missing":
        status = await post_events(echo, [], body=raw, signature="")
    elif case == "one_byte_changed":
        changed = raw.replace("偽物".encode(), "本物".encode())
        assert len(changed) == len(raw)
        status = await post_events(echo, [], body=changed, signature=good)
    else:  # the same JSON re-serialised differently, with the original body's signature
        reserialised = json.dumps(json.loads(raw), ensure_ascii=True, indent=1).encode()
        status = await post_events(echo, [], body=reserialised, signature=good)
    assert status == 400
    await echo.wait_idle()
    assert recorder.handled == []
    assert await echo.services.storage.inbound_events.get(event["webhookEventId"]) is None


async def test_empty_events_and_malformed_bodies(echo: Stack) -> None:
    assert await post_events(echo, []) == 200
    for raw in (b"not json", b'{"events": 3}', b"{}"):
        assert await post_events(echo, [], body=raw) == 400


async def test_unknown_event_types_and_fields_are_ignored(echo: Stack, recorder: Recorder) -> None:
    user = await emulator_user(echo)
    odd = text_event(user, "x", 1)
    odd.update(type="somethingNew", futureField={"a": 1})
    extra = text_event(user, "未知のフィールド付き", 2)
    extra["message"]["brandNewField"] = [1, 2]
    no_source = text_event(user, "x", 3)
    del no_source["source"]
    assert await post_events(echo, [odd, extra, no_source, {"type": "message"}]) == 200
    await echo.wait_idle()
    assert [i.text for i in recorder.handled] == ["未知のフィールド付き"]


async def test_standby_mode_sends_nothing(echo: Stack, recorder: Recorder) -> None:
    chat = await echo.user("スタンバイ", follow=True, greeting=False)
    assert await post_events(echo, [text_event(chat.user_id, "待機中", 1, mode="standby")]) == 200
    await echo.wait_idle()
    assert recorder.handled == []
    assert await chat.inbox(wait=0.3) == []


# Exactly once and in order ------------------------------------------------------------------


async def test_redelivered_event_is_answered_once(echo: Stack, recorder: Recorder) -> None:
    await echo.emulator("POST", "/_emulator/config", {"redeliver": True})
    chat = await echo.user("再送", follow=True, greeting=False)
    sent = await chat._control("text", {"text": "一度だけ"})
    await chat.inbox()
    await echo.wait_idle()
    assert await chat.inbox(wait=0.5) == []
    deliveries = (await echo.emulator("GET", "/_emulator/webhooks"))["deliveries"]
    ours = [d for d in deliveries if d["webhookEventId"] == sent["webhookEventId"]]
    assert sorted(d["isRedelivery"] for d in ours) == [False, True]
    assert {d["status"] for d in ours} == {200}
    assert [i.text for i in recorder.handled] == ["一度だけ"]


async def test_duplicated_webhook_is_answered_once(echo: Stack, recorder: Recorder) -> None:
    chat = await echo.user("重複", follow=True, greeting=False)
    sent = await chat._control("text", {"text": "重複テスト"})
    await chat.inbox()
    redelivered = await echo.emulator(
        "POST", f"/_emulator/webhooks/{sent['webhookEventId']}/redeliver"
    )
    assert redelivered["status"] == 200
    assert await post_events(echo, []) == 200
    await echo.wait_idle()
    assert await chat.inbox(wait=0.5) == []
    assert [i.text for i in recorder.handled] == ["重複テスト"]


async def test_one_batch_is_handled_in_timestamp_order(echo: Stack, recorder: Recorder) -> None:
    user = await emulator_user(echo)
    events = [text_event(user, f"m{n:02d}", 1000 + n) for n in range(50)]
    random.Random(7).shuffle(events)
    assert await post_events(echo, events) == 200
    await echo.wait_idle()
    assert [i.text for i in recorder.handled] == [f"m{n:02d}" for n in range(50)]
    assert recorder.overlaps == 0


async def test_fifty_concurrent_webhooks_of_one_user(echo: Stack, recorder: Recorder) -> None:
    """While the user's earlier event is being handled, 50 arrive at once: one at a time, in order."""
    user = await emulator_user(echo)
    recorder.delays["slow"] = 0.5
    assert await post_events(echo, [text_event(user, "slow", 999)]) == 200
    events = [text_event(user, f"c{n:02d}", 1000 + n) for n in range(50)]
    random.Random(3).shuffle(events)
    statuses = await asyncio.gather(*(post_events(echo, [e]) for e in events))
    assert set(statuses) == {200}
    await echo.wait_idle()
    assert [i.text for i in recorder.handled] == ["slow"] + [f"c{n:02d}" for n in range(50)]
    assert recorder.overlaps == 0


async def test_many_users_at_once_are_handled_a_bounded_number_at_a_time(
    echo: Stack, recorder: Recorder
) -> None:
    """Three times as many users as there are slots write at once, each turn taking a second:
    every webhook is stored (200), every event handled once, never more than the slots at once
    (unbounded, a crowd's turns starved the stores of new webhooks into 503s)."""
    users = [await emulator_user(echo) for _ in range(3 * HANDLING_SLOTS)]
    recorder.delays["混雑"] = 1.0
    statuses = await asyncio.gather(
        *(post_events(echo, [text_event(user, "混雑", 1000)]) for user in users)
    )
    assert set(statuses) == {200}
    await echo.wait_idle()
    assert sorted(i.user_id for i in recorder.handled) == sorted(users)
    assert recorder.peak == HANDLING_SLOTS


# Replies, fallback and retries --------------------------------------------------------------


async def stats(stack: Stack, path: str) -> dict[str, int]:
    data = await stack.emulator("GET", "/_emulator/stats")
    counts: dict[str, int] = data["requests"].get(path, {})
    return counts


async def test_expired_reply_token_falls_back_to_push(
    mongo_uri: str, db_name: str, recorder: Recorder
) -> None:
    recorder.delays["遅い返事"] = 0.5
    async for stack in start_stack(mongo_uri, db_name, recorder.factory, reply_token_ttl=0.2):
        chat = await stack.user("期限切れ", follow=True, greeting=False)
        replies = await chat.send("遅い返事")
        entries = await chat.inbox(wait=0.3)
        assert replies == [{"type": "text", "text": "echo:遅い返事"}]
        assert entries == []
        assert (await stats(stack, "/v2/bot/message/reply")) == {"400": 1}
        assert (await stats(stack, "/v2/bot/message/push")) == {"200": 1}


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "times": 2},
        {"status": 429, "times": 3},
        # Slower than the client's timeout: the client gives up and tries again.
        {"latencyMs": 1500, "times": 1},
    ],
)
async def test_faults_on_reply_end_in_exactly_one_message(
    echo: Stack, fault: dict[str, int]
) -> None:
    chat = await echo.user("障害", follow=True, greeting=False)
    await echo.emulator("POST", "/_emulator/faults", {"path": "/v2/bot/message/reply", **fault})
    await chat.send("障害テスト")
    await echo.wait_idle()
    extra = await chat.inbox(wait=0.5)
    assert chat.replies == [{"type": "text", "text": "echo:障害テスト"}]
    assert extra == []
    statuses = await stats(echo, "/v2/bot/message/reply")
    assert statuses["200"] == 1
    if "status" in fault:
        assert statuses[str(fault["status"])] == fault["times"]
    assert await stats(echo, "/v2/bot/message/push") == {}


@pytest.mark.parametrize(
    "fault",
    [{"status": 500, "times": 2}, {"status": 429, "times": 2}, {"latencyMs": 1500, "times": 1}],
)
async def test_faults_on_push_end_in_exactly_one_message(
    echo: Stack, recorder: Recorder, fault: dict[str, int]
) -> None:
    chat = await echo.user("プッシュ障害", follow=True, greeting=False)
    await echo.emulator("POST", "/_emulator/faults", {"path": "/v2/bot/message/push", **fault})
    line = echo.services.line
    await line.push(chat.user_id, [TextMessage(text="お知らせ")], logical_key=f"t:{chat.user_id}")
    # Sending the same logical message again (a retry after a crash) does not deliver twice.
    await line.push(chat.user_id, [TextMessage(text="お知らせ")], logical_key=f"t:{chat.user_id}")
    entries = await chat.inbox()
    assert [e["message"]["text"] for e in entries] == ["お知らせ"]
    assert await chat.inbox(wait=0.3) == []


async def test_push_after_a_crash_reuses_the_retry_key(echo: Stack) -> None:
    """A process that sent, then died before recording it: the resend is answered 409, once."""
    chat = await echo.user("クラッシュ", follow=True, greeting=False)
    services = echo.services
    key = f"crash:{chat.user_id}"
    stored = await services.storage.sends.retry_key(key, services.clock.now())
    from linebot.v3.messaging import PushMessageRequest

    await services.api.push_message(
        PushMessageRequest(to=chat.user_id, messages=[TextMessage(text="一回だけ")]),
        x_line_retry_key=stored.retry_key,
    )
    await services.line.push(chat.user_id, [TextMessage(text="一回だけ")], logical_key=key)
    assert [e["message"]["text"] for e in await chat.inbox()] == ["一回だけ"]
    assert await chat.inbox(wait=0.3) == []
    assert await stats(echo, "/v2/bot/message/push") == {"200": 1, "409": 1}


async def test_other_4xx_is_not_retried(echo: Stack) -> None:
    from bot.line.client import SendFailed

    chat = await echo.user("不正", follow=True, greeting=False)
    too_many: Sequence[TextMessage] = [TextMessage(text=str(n)) for n in range(5)]
    await echo.emulator(
        "POST", "/_emulator/faults", {"path": "/v2/bot/message/push", "status": 400, "times": 5}
    )
    with pytest.raises(SendFailed) as failed:
        await echo.services.line.push(chat.user_id, too_many, logical_key=f"bad:{chat.user_id}")
    assert failed.value.status == 400
    assert await stats(echo, "/v2/bot/message/push") == {"400": 1}


async def test_two_web_processes_handle_one_users_events_once_and_in_order(
    echo: Stack, recorder: Recorder
) -> None:
    """A second web process on the same database: webhooks alternate between the two."""
    from aiohttp.test_utils import TestServer

    from bot.app import create_app
    from tests.stack import FAST_RETRIES

    second = create_app(
        echo.settings, echo.clock, handler_factory=recorder.factory, retry_policy=FAST_RETRIES
    )
    server = TestServer(second, host="127.0.0.1")
    await server.start_server()
    try:
        user = await emulator_user(echo)
        recorder.delays["slow"] = 0.5
        assert await post_events(echo, [text_event(user, "slow", 999)]) == 200
        events = [text_event(user, f"p{n:02d}", 1000 + n) for n in range(40)]
        urls = [echo.bot_url, str(server.make_url("")).rstrip("/")]

        async def post(n: int, event: dict[str, Any]) -> int:
            raw = json.dumps({"destination": "U0", "events": [event]}).encode()
            headers = {"X-Line-Signature": sign(echo.settings.line_channel_secret, raw)}
            async with echo.http.post(f"{urls[n % 2]}/callback", data=raw, headers=headers) as r:
                return r.status

        statuses = await asyncio.gather(*(post(n, e) for n, e in enumerate(events)))
        assert set(statuses) == {200}
        await echo.wait_idle()
        from bot.line.webhook import PIPELINE

        await second[PIPELINE].drain()
        assert [i.text for i in recorder.handled] == ["slow"] + [f"p{n:02d}" for n in range(40)]
        assert recorder.overlaps == 0
    finally:
        await server.close()


async def test_multicast_broadcast_and_narrowcast_are_sent_once(echo: Stack) -> None:
    chats = [await echo.user(f"一斉{n}", greeting=False) for n in range(3)]
    line = echo.services.line
    await echo.emulator(
        "POST",
        "/_emulator/faults",
        {"path": "/v2/bot/message/multicast", "status": 500, "times": 1},
    )
    for _ in range(2):  # the second call is a resend of the same logical message
        await line.multicast([c.user_id for c in chats], [TextMessage(text="マルチ")], "m:1")
        await line.broadcast([TextMessage(text="ブロード")], "b:1")
        await line.narrowcast([TextMessage(text="ナロー")], "n:1")
    for chat in chats:
        texts = [e["message"]["text"] for e in await chat.inbox()]
        texts += [e["message"]["text"] for e in await chat.inbox(wait=0.5)]
        assert sorted(texts) == sorted(["マルチ", "ブロード", "ナロー"])
    assert await stats(echo, "/v2/bot/message/multicast") == {"500": 1, "200": 1}
    # The request is built without the SDK's validation: our own check refuses what LINE would.
    for wrong in ([], [chats[0].user_id, ""], [f"U{n:032x}" for n in range(501)]):
        with pytest.raises(ValueError, match="1–500"):
            await line.multicast(wrong, [TextMessage(text="マルチ")], "m:2")
    assert await stats(echo, "/v2/bot/message/multicast") == {"500": 1, "200": 1}
