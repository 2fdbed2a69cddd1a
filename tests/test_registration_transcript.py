"""Basic registration end to end: LINE emulator → webhook → pipeline → dialog engine → database.

Driven like a resident in the LINE app (`tests/stack.py`): every reply went through the emulator,
which validates it as the LINE platform would (≤ 5 messages, quick-reply and size limits).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.dialog.engine import build_engine
from bot.line.incoming import EventHandler
from bot.services import Services
from tests.stack import Stack, menu_labels, quick_data, quick_labels, start_stack


def handler(services: Services) -> EventHandler:
    """The application's handler when it is wired (bot.router), else the dialog engine alone."""
    try:
        from bot.router import build_handler
    except ImportError:
        return build_engine(
            services.storage, services.settings, services.clock, renderer=services.renderer
        )
    built: EventHandler = build_handler(services)
    return built


@pytest.fixture
async def stack(mongo_uri: str, db_name: str) -> AsyncIterator[Stack]:
    async for running in start_stack(mongo_uri, db_name, handler_factory=handler):
        yield running


async def test_the_whole_basic_registration_through_line(stack: Stack) -> None:
    chat = await stack.user("山田")
    assert await menu_labels(stack, chat) == ["登録する", "使い方"]
    await chat.send("登録")
    assert "ふるさと住民登録をはじめます" in chat.last_text
    await chat.send("気仙沼")
    assert "「宮城県気仙沼市」でよろしいですか？" in chat.last_text
    await chat.tap("はい")
    await chat.tap("①経済")
    await chat.tap("②訪問")
    assert quick_labels(chat)[:2] == ["✓①経済", "✓②訪問"]
    await chat.tap("決定")
    await chat.tap("応援・ファン")
    await chat.send("世田谷区")
    await chat.tap("はい")
    await chat.tap("30代")
    await chat.send("やまちゃん")
    await chat.tap("同意する")
    assert "この内容で登録しますか" in chat.last_text
    assert any(m["type"] == "flex" for m in chat.replies)  # the summary
    await chat.tap("登録する")
    assert "登録が完了しました" in chat.last_text
    card: dict[str, Any] = chat.replies[-1]
    assert card["type"] == "flex" and "宮城県気仙沼市" in card["altText"]

    docs = await stack.services.storage.registrations.for_user(chat.user_id)
    assert sorted(d["place_code"] for d in docs) == ["040002", "042056"]
    await chat.send("登録一覧")
    assert "登録一覧（2件）" in chat.last_text
    assert await menu_labels(stack, chat) == [
        "登録証",
        "滞在予定",
        "特典",
        "お知らせ",
        "設定",
        "使い方",
    ]


async def test_bad_input_and_old_buttons_through_line(stack: Stack) -> None:
    chat = await stack.user("佐藤")
    await chat.send("登録")
    await chat.sticker()
    assert "地域名を文字で入力してください" in chat.last_text
    await chat.send("府中")
    assert quick_labels(chat) == ["東京都府中市", "広島県府中市", "広島県府中町"]
    old = quick_data(chat, "東京都府中市")
    await chat.tap("広島県府中市")
    assert "広島県府中市との関わり方" in chat.last_text
    await chat.image(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    assert "ボタンから選んでください" in chat.last_text
    await chat.postback(old)  # a button of an earlier message
    assert "このボタンは前のご案内のものです" in chat.last_text
    conv = await stack.services.storage.conversations.get(chat.user_id)
    assert conv is not None and conv.answers == {"place": "342084"} and conv.step == "types"
    await chat.send("こんにちは")
    assert "①〜④のボタンから選んでください" in chat.last_text
    await chat.tap("③担い手")
    await chat.tap("決定")
    await chat.send("2027-01-09")  # a date where a choice is expected
    assert "選択肢から選んでください" in chat.last_text
    await chat.send("ヘルプ")
    assert "きっかけ" in chat.last_text
    await chat.send("キャンセル")
    assert "手続きを中止しました" in chat.last_text
    assert await stack.services.storage.conversations.get(chat.user_id) is None
    assert await stack.services.storage.registrations.for_user(chat.user_id) == []


async def test_a_long_text_gets_a_retry_not_an_error(stack: Stack) -> None:
    chat = await stack.user("鈴木")
    await chat.send("登録")
    await chat.send("福島県")
    await chat.tap("はい")
    await chat.tap("①経済")
    await chat.tap("決定")
    await chat.tap("その他")
    await chat.send("仙台市")
    await chat.tap("はい")
    await chat.tap("60代")
    await chat.send("あ" * 5000)
    assert "20文字以内" in chat.last_text
    await chat.send("ふくしまファン")
    assert "福島県のふるさと住民登録の規約" in chat.last_text
