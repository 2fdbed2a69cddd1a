"""Driving the dialog engine directly, like a resident would: send, tap, read the replies.

Used by the engine and registration tests (`tests/test_dialog_*.py`, `tests/test_registration_*`).
Every event must get exactly one reply call with 1–5 messages that LINE would accept. As a pytest
plugin (`tests/conftest.py`) it gives the fixtures `clock`, `engine` (the flows of `dialogs/`) and
`chat`; a module defines its own to change them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from linebot.v3.messaging import Message, ReplyMessageRequest

from bot.clock import Clock
from bot.dialog.engine import DialogEngine, build_engine
from bot.line.incoming import Incoming, Kind, Location
from bot.settings import Settings
from bot.storage import Storage


def texts_of(messages: list[dict[str, Any]]) -> list[str]:
    """Every text a resident reads: text, altText and the texts inside Flex messages."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name in ("text", "altText"):
                if isinstance(node.get(name), str):
                    out.append(node[name])
            for name, value in node.items():
                if name != "quickReply" and isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(messages)
    return out


@dataclass
class DirectChat:
    engine: DialogEngine
    clock: Clock
    user_id: str = field(default_factory=lambda: "U" + uuid.uuid4().hex)
    replies: list[dict[str, Any]] = field(default_factory=list)
    history: list[list[dict[str, Any]]] = field(default_factory=list)
    last: Incoming | None = None

    async def event(self, kind: Kind, **fields: Any) -> list[dict[str, Any]]:
        incoming = Incoming(
            user_id=self.user_id,
            kind=kind,
            timestamp=self.clock.now(),
            event_id=uuid.uuid4().hex,
            **fields,
        )
        return await self.deliver(incoming)

    async def again(self) -> list[dict[str, Any]]:
        """The last event handled once more, as a process does that takes over the event from
        one that died before finishing it."""
        assert self.last is not None
        return await self.deliver(self.last)

    async def deliver(self, incoming: Incoming) -> list[dict[str, Any]]:
        self.last = incoming
        kind = incoming.kind
        calls: list[Sequence[Message]] = []

        async def reply(messages: Sequence[Message]) -> None:
            calls.append(messages)

        await self.engine(incoming, reply)
        if kind == "unfollow":
            assert calls == []
            return []
        assert len(calls) == 1, f"expected exactly one reply call, got {len(calls)}"
        messages = list(calls[0])
        assert 1 <= len(messages) <= 5
        ReplyMessageRequest(replyToken="x" * 32, messages=messages, notificationDisabled=None)
        self.replies = [m.to_dict() for m in messages]
        self.history.append(self.replies)
        return self.replies

    async def send(self, text: str) -> list[dict[str, Any]]:
        return await self.event("text", text=text)

    async def postback(
        self, data: str, params: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        return await self.event("postback", data=data, params=params or {})

    async def sticker(self) -> list[dict[str, Any]]:
        return await self.event("sticker")

    async def image(self) -> list[dict[str, Any]]:
        return await self.event("image", message_id=uuid.uuid4().hex[:12])

    async def location(self) -> list[dict[str, Any]]:
        loc = Location("気仙沼市役所", "宮城県気仙沼市八日町1-1-1", 38.9082, 141.5699)
        return await self.event("location", location=loc)

    @property
    def quick_replies(self) -> list[dict[str, Any]]:
        """The actions of the quick replies on the last message."""
        if not self.replies:
            return []
        items = (self.replies[-1].get("quickReply") or {}).get("items") or []
        return [item["action"] for item in items]

    @property
    def labels(self) -> list[str]:
        return [action["label"] for action in self.quick_replies]

    def action(self, label: str, replies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The quick-reply action whose label contains `label` (exact match preferred)."""
        source = replies if replies is not None else self.replies
        items = (source[-1].get("quickReply") or {}).get("items") or [] if source else []
        actions: list[dict[str, Any]] = [item["action"] for item in items]
        for action in actions:
            if action["label"] == label:
                return action
        for action in actions:
            if label in action["label"]:
                return action
        raise AssertionError(f"no button {label!r} in {[a['label'] for a in actions]}")

    async def tap(
        self,
        label: str,
        params: dict[str, str] | None = None,
        *,
        on: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Tap a quick reply of the last replies (or of `on`, an older reply)."""
        action = self.action(label, on)
        if action["type"] == "message":
            return await self.send(action["text"])
        if action["type"] in ("postback", "datetimepicker"):
            return await self.postback(action["data"], params)
        raise AssertionError(f"cannot tap a {action['type']} action in tests")

    @property
    def texts(self) -> list[str]:
        return texts_of(self.replies)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(storage: Storage, settings: Settings, clock: Clock) -> DialogEngine:
    return build_engine(storage, settings, clock)


@pytest.fixture
def chat(engine: DialogEngine, clock: Clock) -> DirectChat:
    return DirectChat(engine, clock)
