"""Residents link their member number in the chat: format checked (any width, case or hyphen
variant), one resident per number (a unique insert, also under concurrency)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.domain.programs import Program
from bot.storage import Storage
from bot.storage.programs import LinkResult
from tests.stack import Stack
from tests.test_staff_support import add_registration

YUBARI = "012092"
BIHORO = "015431"


@pytest.fixture
async def clubs(stack: Stack) -> AsyncIterator[tuple[Program, Program]]:
    storage = stack.services.storage
    suffix = secrets.token_hex(3)
    first = Program(f"kf-{suffix}", YUBARI, "夕張ファンクラブ", "KF-NNNNN")
    second = Program(f"mc-{suffix}", YUBARI, "メロン倶楽部", "^MC[0-9]{4,6}$")
    now = datetime.now(UTC)
    for program in (first, second):
        await storage.programs.put(program, now)
    yield first, second
    for program in (first, second):
        await storage.programs.col.delete_one({"_id": program.id})
        await storage.program_links.col.delete_many({"program_id": program.id})


def number() -> str:
    return f"{secrets.randbelow(10**5):05d}"


async def test_link_in_chat(stack: Stack, clubs: tuple[Program, Program]) -> None:
    storage = stack.services.storage
    first, second = clubs
    chat = await stack.user("会員さん")
    await add_registration(storage, user_id=chat.user_id, place_code=YUBARI)
    digits = number()

    await chat.send("会員番号")
    assert "夕張ファンクラブ" in chat.last_text and "メロン倶楽部" in chat.last_text
    await chat.tap("夕張ファンクラブ")
    assert "夕張ファンクラブの会員番号を送ってください" in chat.last_text
    assert "KF-12345" in chat.last_text

    await chat.send("12345678")
    assert "形式と違うようです" in chat.last_text and "KF-12345" in chat.last_text
    await chat.sticker()
    assert "会員番号" in chat.last_text

    # Full-width, lower case, without the hyphen: accepted as KF-xxxxx.
    typed = "ｋｆ" + "".join(chr(ord("０") + int(d)) for d in digits)
    await chat.send(typed)
    assert f"「KF-{digits}」を連携しました" in chat.last_text
    assert await storage.program_links.number_of(first.id, chat.user_id) == f"KF-{digits}"

    # Changing to another number replaces the link; the same number again says so.
    other = number()
    while other == digits:
        other = number()
    await chat.send("会員番号")
    await chat.tap("夕張ファンクラブ")
    assert f"「KF-{digits}」で連携済みです" in chat.last_text
    await chat.send(f"KF-{other}")
    assert f"「KF-{other}」を連携しました" in chat.last_text
    assert f"以前の番号「KF-{digits}」" in chat.last_text
    await chat.send("会員番号")
    await chat.tap("夕張ファンクラブ")
    await chat.send(f"kf-{other}")
    assert "連携済みです" in chat.last_text

    # Someone else cannot take the number.
    rival = await stack.user("別の人")
    await add_registration(storage, user_id=rival.user_id, place_code=YUBARI)
    await rival.send("会員番号")
    await rival.tap("夕張ファンクラブ")
    await rival.send(f"KF-{other}")
    assert "ほかの方がすでに連携しています" in rival.last_text
    assert await storage.program_links.number_of(first.id, rival.user_id) is None
    # …but the one freed by the change is free again.
    await rival.send("会員番号")
    await rival.tap("夕張ファンクラブ")
    await rival.send(f"KF-{digits}")
    assert "を連携しました" in rival.last_text
    assert second.id  # the other club is untouched
    assert await storage.program_links.number_of(second.id, chat.user_id) is None


async def test_no_programs_or_no_registration(stack: Stack, clubs: tuple[Program, Program]) -> None:
    guest = await stack.user("未登録の人")
    await guest.send("会員番号")
    assert "まだ登録はありません" in guest.last_text
    elsewhere = await stack.user("美幌の人")
    await add_registration(stack.services.storage, user_id=elsewhere.user_id, place_code=BIHORO)
    await elsewhere.send("会員番号")
    assert "連携できるファンクラブがまだありません" in elsewhere.last_text


async def test_one_resident_per_number_under_concurrency(storage: Storage) -> None:
    program = Program(f"race-{secrets.token_hex(3)}", YUBARI, "競争の会", "NNNN")
    now = datetime.now(UTC)
    links = storage.program_links
    try:
        users = [f"U{secrets.token_hex(16)}" for _ in range(8)]
        results = await asyncio.gather(*(links.link(program, u, "1234", now) for u in users))
        assert sorted(r.result for r in results).count(LinkResult.LINKED) == 1
        assert [r.result for r in results].count(LinkResult.TAKEN) == 7
        assert await links.count(program.id) == 1

        # One resident racing with several numbers keeps exactly one.
        me = f"U{secrets.token_hex(16)}"
        await asyncio.gather(*(links.link(program, me, f"{n:04d}", now) for n in range(5)))
        assert await links.number_of(program.id, me) is not None
        mine = await links.col.count_documents({"program_id": program.id, "user_id": me})
        assert mine == 1
    finally:
        await links.col.delete_many({"program_id": program.id})
