"""The whole system for end-to-end tests: LINE emulator + web process + real database.

`Chat` drives the bot like a LINE user, a few lines per turn:

    chat = await stack.user("山田")
    replies = await chat.send("登録")
    replies = await chat.tap("気仙沼")
    assert "気仙沼市" in chat.last_text
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import SERVICES, create_app
from bot.clock import Clock
from bot.emulator.app import create_emulator_app
from bot.line.client import RetryPolicy
from bot.services import HandlerFactory, Services
from bot.settings import Settings
from bot.storage import Storage
from bot.storage.db import Document
from bot.storage.events import ending_id
from tests.conftest import make_env

# Fast retries so fault tests do not wait on real back-off times.
FAST_RETRIES = RetryPolicy(attempts=6, base_delay_s=0.01, max_delay_s=0.05, request_timeout_s=1.0)


def message_texts(messages: list[dict[str, Any]]) -> list[str]:
    """Every text a resident would read in these messages (text, altText, Flex texts)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "altText", "label"):
                if isinstance(node.get(key), str):
                    out.append(node[key])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(messages)
    return out


@dataclass
class Chat:
    """One LINE user talking to the bot through the emulator."""

    http: aiohttp.ClientSession
    emulator: str
    user_id: str
    seq: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)

    async def _control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with self.http.post(
            f"{self.emulator}/_emulator/users/{self.user_id}/{path}", json=body or {}
        ) as response:
            data: dict[str, Any] = await response.json()
            assert response.status == 200, data
            return data

    async def inbox(self, wait: float = 10.0) -> list[dict[str, Any]]:
        """Messages that arrived after the last read; waits up to `wait` for the first one."""
        url = f"{self.emulator}/_emulator/users/{self.user_id}/inbox"
        async with self.http.get(url, params={"after": self.seq, "wait": wait}) as response:
            entries: list[dict[str, Any]] = (await response.json())["messages"]
        if entries:
            self.seq = entries[-1]["seq"]
        return entries

    async def _turn(self, path: str, body: dict[str, Any] | None) -> list[dict[str, Any]]:
        sent = await self._control(path, body)
        assert sent["status"] == 200, sent
        entries = await self.inbox()
        self.replies = [entry["message"] for entry in entries]
        return self.replies

    async def send(self, text: str) -> list[dict[str, Any]]:
        return await self._turn("text", {"text": text})

    async def tap(self, label: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"label": label}
        if params:
            body["params"] = params
        return await self._turn("tap", body)

    async def postback(self, data: str) -> list[dict[str, Any]]:
        return await self._turn("postback", {"data": data})

    async def sticker(self) -> list[dict[str, Any]]:
        return await self._turn("sticker", {"packageId": "446", "stickerId": "1988"})

    async def image(self, base64_png: str) -> list[dict[str, Any]]:
        return await self._turn("image", {"base64": base64_png})

    async def location(
        self, title: str, address: str, lat: float, lng: float
    ) -> list[dict[str, Any]]:
        return await self._turn(
            "location", {"title": title, "address": address, "latitude": lat, "longitude": lng}
        )

    async def follow(self, *, expect_reply: bool = True) -> list[dict[str, Any]]:
        if expect_reply:
            return await self._turn("follow", None)
        await self._control("follow")
        return []

    async def unfollow(self) -> None:
        await self._control("unfollow")

    @property
    def texts(self) -> list[str]:
        return message_texts(self.replies)

    @property
    def last_text(self) -> str:
        return "\n".join(self.texts)


@dataclass
class Stack:
    http: aiohttp.ClientSession
    emulator_url: str
    bot_url: str
    settings: Settings
    clock: Clock
    bot_app: web.Application

    @property
    def services(self) -> Services:
        return self.bot_app[SERVICES]

    async def user(
        self, name: str = "テスト太郎", *, follow: bool = True, greeting: bool = True
    ) -> Chat:
        async with self.http.post(
            f"{self.emulator_url}/_emulator/users", json={"displayName": name}
        ) as response:
            user_id = (await response.json())["userId"]
        chat = Chat(self.http, self.emulator_url, user_id)
        if follow:
            await chat.follow(expect_reply=greeting)
        return chat

    async def emulator(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.emulator_url}{path}", json=body) as response:
            text = await response.text()
            return json.loads(text) if text else None

    async def wait_idle(self) -> None:
        """Wait until the bot has handled every event it accepted."""
        from bot.line.webhook import PIPELINE

        await self.bot_app[PIPELINE].drain()


def quick_labels(chat: Chat) -> list[str]:
    """The labels of the quick replies under the newest reply."""
    items = (chat.replies[-1].get("quickReply") or {}).get("items") or []
    return [item["action"]["label"] for item in items]


def quick_data(chat: Chat, label: str) -> str:
    """The postback data of the quick reply labelled `label` under the newest reply."""
    items = (chat.replies[-1].get("quickReply") or {}).get("items") or []
    data: str = next(i["action"]["data"] for i in items if i["action"]["label"] == label)
    return data


async def menu_labels(stack: Stack, chat: Chat) -> list[str]:
    """The labels of the rich menu the user sees now."""
    menu = await stack.emulator("GET", f"/_emulator/users/{chat.user_id}/richmenu")
    return [area["action"]["label"] for area in menu["areas"]]


async def unfinished_events(storage: Storage, user_keys: list[str]) -> list[Document]:
    """The events of these users still queued, whose handling failed, or that were received
    and neither queued nor ended (lost)."""
    queued = await storage.pending_events.col.find({"user_key": {"$in": user_keys}}).to_list(None)
    receipts = storage.inbound_events.col.find({"user_key": {"$in": user_keys}}, {"_id": 1})
    by_ending = {ending_id(str(receipt["_id"])): str(receipt["_id"]) async for receipt in receipts}
    ids = list(by_ending.values())
    endings = {
        by_ending[doc["_id"]]: doc
        async for doc in storage.inbound_events.col.find({"_id": {"$in": list(by_ending)}})
    }
    waiting = {doc["_id"] for doc in queued}
    failed = [doc for doc in endings.values() if doc["status"] == "failed"]
    lost = [{"_id": i, "status": "lost"} for i in ids if i not in endings and i not in waiting]
    return queued + failed + lost


async def start_stack(
    mongo_uri: str,
    db_name: str,
    handler_factory: HandlerFactory | None = None,
    reply_token_ttl: float = 60.0,
    **env: str,
) -> AsyncIterator[Stack]:
    # Hold the bot's socket from the start: a port picked and released early can be taken
    # by the emulator's own server (or another test) before the bot binds it.
    bot_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    bot_socket.bind(("127.0.0.1", 0))
    bot_port = bot_socket.getsockname()[1]
    bot_url = f"http://127.0.0.1:{bot_port}"
    base = make_env(mongo_uri, db_name, PUBLIC_BASE_URL=bot_url, **env)
    emulator_app = create_emulator_app(
        channel_secret=base["LINE_CHANNEL_SECRET"],
        access_token=base["LINE_CHANNEL_ACCESS_TOKEN"],
        webhook_url=f"{bot_url}/callback",
        reply_token_ttl=reply_token_ttl,
    )
    emulator_server = TestServer(emulator_app, host="127.0.0.1")
    await emulator_server.start_server()
    emulator_url = str(emulator_server.make_url("")).rstrip("/")
    settings = Settings.from_env({**base, "LINE_API_BASE_URL": emulator_url})
    clock = Clock()
    bot_app = create_app(
        settings, clock, handler_factory=handler_factory, retry_policy=FAST_RETRIES
    )
    bot_server = TestServer(
        bot_app, host="127.0.0.1", port=bot_port, socket_factory=lambda *_: bot_socket
    )
    await bot_server.start_server()
    # Generous: drawing and uploading the menus is slow on a loaded 2-core machine.
    await asyncio.wait_for(bot_app[SERVICES].richmenus.ready.wait(), 90)
    try:
        async with aiohttp.ClientSession() as http:
            yield Stack(http, emulator_url, bot_url, settings, clock, bot_app)
    finally:
        await bot_server.close()
        await emulator_server.close()


@pytest.fixture
async def stack(mongo_uri: str, db_name: str) -> AsyncIterator[Stack]:
    async for running in start_stack(mongo_uri, db_name):
        yield running
