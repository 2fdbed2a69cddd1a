"""Helpers for the emulator tests: a running emulator plus a webhook receiver that checks
signatures and parses every body with the SDK's WebhookParser. (No tests in this module.)"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.webhooks import Event

from bot.emulator import create_emulator_app

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "test-access-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Client = TestClient[web.Request, web.Application]
ServerFactory = Callable[..., Awaitable[TestServer]]
ClientFactory = Callable[..., Awaitable[Client]]


@dataclass
class Received:
    payload: dict[str, Any]
    events: list[Event]
    destination: str


@dataclass
class Receiver:
    """The bot side: verifies and parses each webhook, answers `status`, runs `on_event`."""

    secret: str = SECRET
    status: int = 200
    on_event: Callable[[Event], Awaitable[None]] | None = None
    received: list[Received] = field(default_factory=list)

    async def callback(self, request: web.Request) -> web.Response:
        body = await request.text()
        try:
            parsed = WebhookParser(self.secret).parse(
                body, request.headers["X-Line-Signature"], as_payload=True
            )
        except InvalidSignatureError:
            return web.Response(status=400, text="bad signature")
        self.received.append(Received(json.loads(body), parsed.events, parsed.destination))
        if self.on_event is not None:
            for event in parsed.events:
                await self.on_event(event)
        return web.Response(status=self.status)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The raw JSON of every event received, in order."""
        return [event for r in self.received for event in r.payload["events"]]

    def last(self) -> dict[str, Any]:
        return self.events[-1]


@dataclass
class Emu:
    client: Client
    server: TestServer
    receiver: Receiver
    callback_url: str  # the receiver's URL, whether or not the emulator was given it

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def api(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        """Call the Messaging API with the bearer token: (status, JSON body, headers)."""
        response = await self.client.request(
            method, path, json=body, headers={**AUTH, **(headers or {})}
        )
        data = await response.json() if response.content_type == "application/json" else None
        return response.status, data, dict(response.headers)

    async def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = await self.client.request(method, "/_emulator" + path, json=body)
        return response.status, await response.json()

    async def user(self, name: str = "Alice", *, follow: bool = True) -> str:
        status, data = await self.control("POST", "/users", {"displayName": name})
        assert status == 200, data
        if follow:
            status, _ = await self.control("POST", f"/users/{data['userId']}/follow")
            assert status == 200
        return str(data["userId"])

    async def inbox(self, user_id: str, after: int = 0) -> list[dict[str, Any]]:
        status, data = await self.control("GET", f"/users/{user_id}/inbox?after={after}")
        assert status == 200
        return list(data["messages"])

    async def push(self, user_id: str, *messages: dict[str, Any]) -> tuple[int, Any, Any]:
        return await self.api("POST", "/v2/bot/message/push", {"to": user_id, "messages": messages})


async def start_emulator(
    aiohttp_server: ServerFactory,
    aiohttp_client: ClientFactory,
    receiver: Receiver | None = None,
    **options: Any,
) -> Emu:
    receiver = receiver or Receiver()
    bot = web.Application()
    bot.router.add_post("/callback", receiver.callback)
    callback_url = str((await aiohttp_server(bot)).make_url("/callback"))
    options.setdefault("webhook_url", callback_url)
    app = create_emulator_app(channel_secret=SECRET, access_token=TOKEN, **options)
    server = await aiohttp_server(app)
    return Emu(await aiohttp_client(server), server, receiver, callback_url)


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


def png(width: int, height: int) -> bytes:
    """A valid black PNG of the given size (compresses to a few kilobytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = (b"\x00" + b"\x00" * width * 3) * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def rich_menu(areas: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "size": {"width": 2500, "height": 843},
        "selected": True,
        "name": "main",
        "chatBarText": "メニュー",
        "areas": areas
        if areas is not None
        else [
            {
                "bounds": {"x": 0, "y": 0, "width": 1250, "height": 843},
                "action": {"type": "postback", "label": "登録する", "data": "menu=register"},
            },
            {
                "bounds": {"x": 1250, "y": 0, "width": 1250, "height": 843},
                "action": {"type": "message", "label": "ヘルプ", "text": "ヘルプ"},
            },
        ],
        **extra,
    }
