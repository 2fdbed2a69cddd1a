"""Fuzzing the webhook: hypothesis-generated bodies, correctly signed, against the real app, the
dialog engine, the emulator and the database.

The bodies mix well-formed events of real emulator users (odd unicode, empty and huge texts,
postbacks with junk data, stickers, images, locations) with unknown event and message types,
unknown fields, and values of the wrong type. Whatever arrives:

- the webhook never answers 5xx (a 400 only for a body that is not a JSON object with a list);
- every text message of a resident gets a reply;
- no event is left pending or failed, and the stored conversation still loads.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.stack import Chat, Stack, start_stack, unfinished_events
from tests.test_webhook import sign

EXAMPLES = 40
T = TypeVar("T")

# Text a phone can send, and text no phone should: surrogates are not encodable, so left out.
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
    st.sampled_from(
        [
            "",
            " ",
            "\u200b",
            "ヘルプ",
            "メニュー",
            "キャンセル",
            "登録",
            "😀" * 50,
            "\x00\x01\x7f",
            "{{ 7*7 }}",
            "<script>alert(1)</script>",
            '=HYPERLINK("http://x")',
            "ｱｲｳｴｵ" * 100,
            "あ" * 5000,
            "\u202e\u0301\ufeff",
        ]
    ),
)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@dataclass
class Users:
    chats: list[Chat]

    @property
    def ids(self) -> list[str]:
        return [c.user_id for c in self.chats]


def _base(user_id: str, kind: str, ts: int) -> dict[str, Any]:
    return {
        "type": kind,
        "mode": "active",
        "timestamp": ts,
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": "F" + uuid.uuid4().hex.upper()[:25],
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
    }


@st.composite
def good_event(draw: st.DrawFn, user_ids: list[str]) -> dict[str, Any]:
    """An event a resident's phone could send (odd content, right shape)."""
    user = draw(st.sampled_from(user_ids))
    ts = draw(st.integers(min_value=1_600_000_000_000, max_value=1_900_000_000_000))
    kind = draw(st.sampled_from(["text", "text", "text", "postback", "sticker", "image", "loc"]))
    if kind == "postback":
        event = _base(user, "postback", ts)
        event["postback"] = {"data": draw(odd_text)[:300]}
        if draw(st.booleans()):
            event["postback"]["params"] = {"date": draw(st.text(max_size=12))}
        return event
    event = _base(user, "message", ts)
    message: dict[str, Any] = {"id": str(ts), "quoteToken": "q"}
    if kind == "text":
        message.update(type="text", text=draw(odd_text))
    elif kind == "sticker":
        message.update(
            type="sticker", packageId="446", stickerId="1988", stickerResourceType="STATIC"
        )
    elif kind == "image":
        message.update(type="image", contentProvider={"type": "line"})
    else:
        message.update(
            type="location",
            title=draw(odd_text),
            address=draw(odd_text),
            latitude=draw(st.floats(min_value=-90, max_value=90)),
            longitude=draw(st.floats(min_value=-180, max_value=180)),
        )
    event["message"] = message
    return event


@st.composite
def strange_event(draw: st.DrawFn, user_ids: list[str]) -> Any:
    """Unknown types, unknown fields, wrong types, missing parts."""
    # LINE sends events of its users only (a made-up one would make every push a 400).
    user = draw(st.sampled_from([*user_ids, ""]))
    event: dict[str, Any] = _base(user, draw(st.sampled_from(["message", "postback", "follow"])), 1)
    event["timestamp"] = draw(st.one_of(junk, st.integers()))
    choice = draw(st.integers(min_value=0, max_value=7))
    if choice == 0:
        event["type"] = draw(
            st.sampled_from(["membership", "beacon", "accountLink", "videoPlayComplete", "x"])
        )
    elif choice == 1:
        event["message"] = {
            "type": draw(st.sampled_from(["video", "audio", "file", "?"])),
            "id": "1",
        }
    elif choice == 2:
        event["message"] = draw(junk)
    elif choice == 3:
        event["postback"] = draw(junk)
    elif choice == 4:
        event["source"] = draw(junk)
    elif choice == 5:
        event[draw(st.text(min_size=1, max_size=8))] = draw(junk)
        event["message"] = {"type": "text", "id": "1", "text": draw(junk), "emojis": draw(junk)}
    elif choice == 6:
        event["webhookEventId"] = draw(junk)
    else:
        return draw(junk)
    return event


@st.composite
def body(draw: st.DrawFn, user_ids: list[str]) -> tuple[bytes, list[dict[str, Any]]]:
    """A webhook body and the well-formed text events in it (each owes a reply)."""
    good = draw(st.lists(good_event(user_ids), max_size=4))
    strange = draw(st.lists(strange_event(user_ids), max_size=3))
    events = draw(st.permutations([*good, *strange]))
    payload: Any = {"destination": "U0", "events": events}
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        payload = draw(st.one_of(junk, st.just({"events": draw(junk)})))
    elif draw(st.booleans()):
        payload[draw(st.text(min_size=1, max_size=6))] = draw(junk)
    raw = json.dumps(payload, ensure_ascii=draw(st.booleans())).encode()
    texts = [
        e
        for e in good
        if e["type"] == "message"
        and e["message"]["type"] == "text"
        and isinstance(payload, dict)
        and payload.get("events") is events
    ]
    return raw, texts


@pytest.fixture
async def fuzz_stack(mongo_uri: str, db_name: str) -> AsyncIterator[tuple[Stack, Users]]:
    async for stack in start_stack(mongo_uri, db_name):
        chats = [await stack.user(f"ふざ{n}", greeting=True) for n in range(3)]
        yield stack, Users(chats)


@dataclass
class Count:
    cases: int = 0
    texts: int = 0


async def answers(stack: Stack) -> int:
    """Replies and pushes LINE accepted so far."""
    stats = await stack.emulator("GET", "/_emulator/stats")
    return sum(
        int(stats["requests"].get(path, {}).get("200", 0))
        for path in ("/v2/bot/message/reply", "/v2/bot/message/push")
    )


def drive(
    loop: asyncio.AbstractEventLoop,
    strategy: st.SearchStrategy[T],
    example: Callable[[T], Awaitable[None]],
    n: int,
) -> None:
    """Run hypothesis in this thread (it draws here); each example runs in the test's event
    loop, where the stack lives."""

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: T) -> None:
        asyncio.run_coroutine_threadsafe(example(case), loop).result()

    run()


async def test_signed_fuzzed_webhooks_never_fail(fuzz_stack: tuple[Stack, Users]) -> None:
    stack, users = fuzz_stack
    storage = stack.services.storage
    count = Count()

    async def example(case: tuple[bytes, list[dict[str, Any]]]) -> None:
        raw, texts = case
        headers = {
            "Content-Type": "application/json",
            "X-Line-Signature": sign(stack.settings.line_channel_secret, raw),
        }
        before = await answers(stack)
        async with stack.http.post(f"{stack.bot_url}/callback", data=raw, headers=headers) as r:
            status = r.status
        assert status < 500, status
        await stack.wait_idle()
        count.cases += 1
        count.texts += len(texts)
        if status != 200:
            assert not texts
            return
        # Each text got its own answer (other events may get one too), each resident saw it.
        assert await answers(stack) - before >= len(texts)
        for chat in users.chats:
            owed = sum(1 for e in texts if e["source"]["userId"] == chat.user_id)
            got = await chat.inbox(wait=5.0 if owed else 0.0)
            assert len(got) >= (1 if owed else 0), (owed, got)
        assert await unfinished_events(storage, users.ids) == []
        for user_id in users.ids:
            await storage.conversations.load(user_id)  # raises if a stored state is unreadable

    await asyncio.to_thread(drive, asyncio.get_running_loop(), body(users.ids), example, EXAMPLES)
    print(f"webhook fuzz: {count.cases} signed bodies, {count.texts} text events answered")
    assert count.cases == EXAMPLES
