"""A municipality's own texts reach its residents without a restart, and only them: staff save
through the API, residents register through the LINE emulator (real web process and database)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import SERVICES, create_app
from bot.clock import Clock
from bot.dialog.engine import build_engine
from bot.render import Renderer
from bot.settings import Settings
from bot.staff.tenancy import Tenant
from bot.storage import Storage
from bot.templates_overrides import REFRESH_INTERVAL_S, StoredOverrides
from tests.dialog_chat import DirectChat
from tests.stack import Chat, Stack, start_stack
from tests.test_registration_flow import register as register_directly
from tests.test_staff_support import Browser, Site

DONE = "/templates/register/done"
TERMS = "/templates/register/terms"
WELCOME = "{{ place_name }}の新しい仲間です。ようこそ！\n登録番号：{{ number }}"
WELCOME_2 = "{{ place_name }}へようこそ（第2版）。\n登録番号：{{ number }}"
OWN_TERMS = "気仙沼市の独自規約です（{{ place_name }}）。\n同意いただけますか？"
DEFAULT_DONE = "登録が完了しました！"


@pytest.fixture
async def stack(mongo_uri: str, db_name: str) -> AsyncIterator[Stack]:
    async for running in start_stack(mongo_uri, db_name):  # the real bot behind the emulator
        storage = running.services.storage
        await storage.login_throttle.col.delete_many({})
        try:
            yield running
        finally:
            await storage.template_versions.col.delete_many({})
            await storage.login_throttle.col.delete_many({})


async def staff(site: Site, tenant: str) -> Browser:
    return await site.staff(tenant, "editor")


async def register(stack: Stack, name: str, place: str) -> Chat:
    """A resident registers through LINE; returns the chat (replies of the last turn: done)."""
    chat = await stack.user(name)
    await chat.send("登録")
    await chat.send(place)
    if "でよろしいですか" in chat.last_text:
        await chat.tap("はい")
    await chat.tap("①経済")
    await chat.tap("決定")
    await chat.tap("出身")
    await chat.send("世田谷区")
    await chat.tap("はい")
    await chat.tap("30代")
    await chat.send("テスト")
    while "からの質問です" in chat.last_text:  # a municipality's own questions, if any
        labels = [i["action"]["label"] for i in chat.replies[-1]["quickReply"]["items"]]
        await chat.tap(labels[0])
    chat.terms = chat.last_text  # type: ignore[attr-defined]
    await chat.tap("同意する")
    await chat.tap("登録する")
    return chat


def terms_of(chat: Chat) -> str:
    text: str = chat.terms  # type: ignore[attr-defined]
    return text


async def test_residents_of_the_place_read_its_texts_others_the_default(stack: Stack) -> None:
    site = Site(stack)
    try:
        kesennuma = await staff(site, "042056")
        status, body = await kesennuma.api("PUT", DONE, {"source": WELCOME})
        assert status == 200, body
        status, body = await kesennuma.api("PUT", TERMS, {"source": OWN_TERMS})
        assert status == 200, body

        # Registering with 気仙沼市: the texts of 気仙沼市, at once (no restart).
        first = await register(stack, "気仙沼の人", "気仙沼")
        assert "気仙沼市の独自規約です（宮城県気仙沼市）" in terms_of(first)
        assert "宮城県気仙沼市の新しい仲間です。ようこそ！" in first.last_text
        assert DEFAULT_DONE not in first.last_text

        # Registering elsewhere: the default texts.
        other = await register(stack, "山県の人", "山県市")
        assert "岐阜県山県市のふるさと住民登録の規約" in terms_of(other)
        assert DEFAULT_DONE in other.last_text and "新しい仲間" not in other.last_text

        # A newer version, then one click back to the previous one, then back to the default.
        status, body = await kesennuma.api("PUT", DONE, {"source": WELCOME_2})
        assert status == 200 and body["version"] == 2
        second = await register(stack, "二人目", "気仙沼")
        assert "宮城県気仙沼市へようこそ（第2版）" in second.last_text
        status, body = await kesennuma.api("POST", f"{DONE}/rollback", {"version": 1})
        assert status == 200 and body["version"] == 3
        third = await register(stack, "三人目", "気仙沼")
        assert "宮城県気仙沼市の新しい仲間です。ようこそ！" in third.last_text
        status, _ = await kesennuma.api("DELETE", DONE)
        assert status == 204
        fourth = await register(stack, "四人目", "気仙沼")
        assert DEFAULT_DONE in fourth.last_text and "ようこそ" not in fourth.last_text
    finally:
        await site.close()


async def test_a_second_web_process_uses_a_saved_text_within_the_refresh_interval(
    stack: Stack,
) -> None:
    """Two web processes on one database: a save in the first reaches the second in ≤ ~2 s."""
    second_app = create_app(stack.settings, Clock())
    server = TestServer(second_app, host="127.0.0.1")
    await server.start_server()
    site = Site(stack)
    try:
        context: dict[str, Any] = {
            "place_name": "宮城県気仙沼市",
            "number": "042056-000001-0",
            "prefecture_name": "",
            "prefecture_number": "",
            "has_card": False,
        }
        second_renderer = second_app[SERVICES].renderer

        def text_in(renderer: Renderer) -> str:
            [message] = renderer.render("register/done", context, municipality="042056")
            return str(message.to_dict()["text"])

        assert DEFAULT_DONE in text_in(second_renderer)
        kesennuma = await staff(site, "042056")
        status, _ = await kesennuma.api("PUT", DONE, {"source": WELCOME})
        assert status == 200
        saved_at = time.monotonic()
        # The process that saved uses it at once.
        assert "新しい仲間" in text_in(stack.services.renderer)
        while "新しい仲間" not in text_in(second_renderer):
            assert time.monotonic() - saved_at < REFRESH_INTERVAL_S + 2.0, "not refreshed"
            await asyncio.sleep(0.05)
        took = time.monotonic() - saved_at
        assert took <= REFRESH_INTERVAL_S + 1.0, took
        # Other municipalities are untouched in both processes.
        assert (
            DEFAULT_DONE
            in second_renderer.render("register/done", context, municipality="212156")[0].to_dict()[
                "text"
            ]
        )

        status, _ = await kesennuma.api("DELETE", DONE)
        assert status == 204
        reset_at = time.monotonic()
        while "新しい仲間" in text_in(second_renderer):
            assert time.monotonic() - reset_at < REFRESH_INTERVAL_S + 2.0, "reset not seen"
            await asyncio.sleep(0.05)
        assert DEFAULT_DONE in text_in(second_renderer)
    finally:
        await site.close()
        await server.close()


async def test_unregistering_uses_the_registrations_place_texts(
    storage: Storage, settings: Settings
) -> None:
    """The self-service flows name the place too (`municipality: pick`)."""
    tenant = Tenant.of("042056")
    assert tenant is not None
    overrides = StoredOverrides(storage.template_versions)
    try:
        await storage.template_versions.add(
            tenant,
            "my/unregistered",
            "{{ place_names | join('・') }}の登録を解除しました。気仙沼はいつでもお待ちしています。",
            action="save",
            now=Clock().now(),
            actor_kind="cli",
            actor_id=None,
            actor="test",
        )
        await overrides.load()
        clock = Clock()
        engine = build_engine(storage, settings, clock, renderer=Renderer(overrides=overrides))
        chat = DirectChat(engine, clock)
        await register_directly(chat, "気仙沼")
        await chat.send("登録解除")
        await chat.tap("解除する")
        assert "気仙沼はいつでもお待ちしています" in chat.text
        other = DirectChat(engine, clock)
        await register_directly(other, "山県市")
        await other.send("登録解除")
        await other.tap("解除する")
        assert "これまでのご登録、ありがとうございました" in other.text
        assert "気仙沼はいつでも" not in other.text
    finally:
        await storage.template_versions.col.delete_many({})
