"""Helpers of the Premium tests (no tests here): photos, the whole stack with the real dialog
engine and staff browsers, and a resident who applies in the chat."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.storage.db import Document
from tests.stack import Chat, start_stack
from tests.test_staff_support import Site, add_registration

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
# Starts like a JPEG for LINE (FF D8) but is not one.
NOT_A_JPEG = b"\xff\xd8 this is not a photo of anything"


def png(width: int = 2, height: int = 2) -> bytes:
    """A small valid PNG (grey pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


@asynccontextmanager
async def open_premium_site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    """The stack with the production event handler (dialogs) and browsers for staff."""
    async for stack in start_stack(mongo_uri, db_name):
        await stack.services.storage.login_throttle.col.delete_many({})
        site = Site(stack)
        try:
            yield site
        finally:
            await site.close()
            await stack.services.storage.login_throttle.col.delete_many({})


async def resident(site: Site, name: str = "山田", **registration: Any) -> tuple[Chat, Document]:
    """A LINE user with one registration (by default a 担い手 of 和歌山市, living in 千代田区)."""
    chat = await site.stack.user(name)
    fields: dict[str, Any] = {"place_code": "302015", "types": ["bearer"]}
    fields.update(registration)
    doc = await add_registration(site.storage, user_id=chat.user_id, **fields)
    return chat, doc


async def apply(chat: Chat, photo: bytes | None = None, *, pick: str | None = None) -> None:
    """The whole application in the chat, up to 「申請しました」."""
    await chat.send("プレミアム登録")
    if pick is not None:
        await chat.tap(pick)
    assert "申請に進みますか" in chat.last_text, chat.last_text
    await chat.tap("申請に進む")
    assert "書類の写真を送ってください" in chat.last_text, chat.last_text
    await chat.image(b64(photo or png()))
    assert "この写真で申請しますか" in chat.last_text, chat.last_text
    await chat.tap("申請する")
    assert "審査結果はこのトークでお知らせします" in chat.last_text, chat.last_text


async def pending_id(site: Site, user_id: str) -> str:
    docs = await site.storage.premium_applications.pending_for_user(user_id)
    assert len(docs) == 1, docs
    return str(docs[0]["_id"])


def texts(entries: list[dict[str, Any]]) -> str:
    """The texts of inbox entries (pushes), joined."""
    out: list[str] = []
    for entry in entries:
        message = entry["message"]
        out.append(str(message.get("text") or message.get("altText") or ""))
    return "\n".join(out)
