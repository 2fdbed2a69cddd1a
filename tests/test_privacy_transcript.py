"""「データを削除」 end to end, like a resident in the LINE app: LINE emulator → webhook → pipeline
→ dialog engine → real database (`tests/stack.py`).

Register, then delete everything: the database holds nothing of the person in any collection,
the old card's verification page shows 失効, the rich menu is the guest menu, and a later follow
knows nothing of them. Cancelling at either confirmation deletes nothing; bad input at each step
gets a retry and keeps the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from linebot.v3.messaging import Message

from bot.line.incoming import Incoming
from bot.line.webhook import PIPELINE
from bot.storage.preferences import Topic
from tests.stack import Chat, Stack, menu_labels, quick_data, quick_labels
from tests.test_privacy_coverage import where_user_appears

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def verify_uri(card: dict[str, Any]) -> str:
    """The card's 「確認ページを開く」 link (what its QR code encodes)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            action = node.get("action")
            if isinstance(action, dict) and action.get("type") == "uri":
                found.append(str(action["uri"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    assert found, "the card has no verification link"
    return found[0]


async def verify_page(stack: Stack, uri: str) -> str:
    async with stack.http.get(uri) as response:
        assert response.status == 200
        return await response.text()


async def register(
    chat: Chat, place: str = "気仙沼", nickname: str = "やまちゃん"
) -> dict[str, Any]:
    """Basic registration as in tests/test_registration_transcript.py; returns the card."""
    await chat.send("登録")
    await chat.send(place)
    await chat.tap("はい")
    await chat.tap("①経済")
    await chat.tap("決定")
    await chat.tap("応援・ファン")
    await chat.send("世田谷区")
    await chat.tap("はい")
    await chat.tap("30代")
    await chat.send(nickname)
    await chat.tap("同意する")
    await chat.tap("登録する")
    assert "登録が完了しました" in chat.last_text
    card: dict[str, Any] = chat.replies[-1]
    assert card["type"] == "flex"
    return card


async def snapshot(stack: Stack, user_id: str) -> dict[str, int]:
    """How many documents of the person each collection of personal data holds."""
    storage = stack.services.storage
    return {
        "registrations": len(await storage.registrations.for_user(user_id)),
        "users": await storage.users.col.count_documents({"_id": user_id}),
        "preferences": await storage.preferences.col.count_documents({"user_id": user_id}),
        "premium_applications": len(await storage.premium_applications.for_user(user_id)),
        "identity_documents": await storage.identity_documents.col.count_documents(
            {"user_id": user_id}
        ),
    }


async def test_delete_all_data_leaves_nothing_and_the_card_shows_revoked(stack: Stack) -> None:
    storage = stack.services.storage
    chat = await stack.user("山田")
    card = await register(chat)
    uri = verify_uri(card)
    assert "<h1>有効</h1>" in await verify_page(stack, uri)
    # What the resident has besides registrations: a setting and a Premium application.
    await chat.send("お知らせの設定")
    await chat.tap("宮城県気仙沼市")
    await chat.tap("特典をオフにする")
    await chat.tap("完了")
    registration = await storage.registrations.find(chat.user_id, "042056")
    assert registration is not None
    now = stack.clock.now()
    applied = await storage.premium_applications.submit(
        chat.user_id, "042056", registration["_id"], "staff_review", now
    )
    assert applied.application is not None
    await storage.identity_documents.put(
        applied.application["_id"], chat.user_id, b"\x89PNG...", "image/png", now
    )
    assert await menu_labels(stack, chat) == [
        "登録証",
        "滞在予定",
        "特典",
        "お知らせ",
        "設定",
        "使い方",
    ]
    await stack.wait_idle()
    before = await where_user_appears(storage, chat.user_id)
    for name in ("users", "registrations", "preferences", "premium_applications"):
        assert name in before
    assert "identity_documents" in before and "inbound_events" in before

    await chat.send("設定")  # the rich menu's tile
    assert "データの削除" in quick_labels(chat)
    await chat.tap("データの削除")
    text = chat.last_text
    assert "ふるさと住民登録 2件（宮城県気仙沼市、宮城県）" in text
    assert "登録証（使えなくなります）" in text
    assert "プレミアム登録の申請（1件）と、提出した書類" in text
    assert "お知らせの設定" in text and "ご回答" in text
    assert quick_labels(chat) == ["削除する", "削除しない"]
    await chat.tap("削除する")
    assert "最後の確認です" in chat.last_text
    assert quick_labels(chat) == ["すべて削除する", "削除しない"]
    assert await snapshot(stack, chat.user_id) == {
        "registrations": 2,
        "users": 1,
        "preferences": 1,
        "premium_applications": 1,
        "identity_documents": 1,
    }
    await chat.tap("すべて削除する")
    assert "すべてのデータを削除しました。ご利用ありがとうございました。" in chat.last_text
    assert "登録証は使えなくなりました" in chat.last_text
    await stack.wait_idle()

    # Collection by collection: nothing of the person, in any field.
    assert await where_user_appears(storage, chat.user_id) == {}
    for store in storage.stores():
        async for doc in store.col.find({}):
            assert chat.user_id not in repr(doc), store.collection_name
    # The card: revoked, showing nothing of the person.
    page = await verify_page(stack, uri)
    assert "<h1>失効</h1>" in page and "やまちゃん" not in page
    # The rich menu: back to the guest menu.
    assert await menu_labels(stack, chat) == ["登録する", "使い方"]
    # The bot knows nothing of them: registrations are gone, and so is the state.
    await chat.send("登録一覧")
    assert "まだ登録はありません" in chat.last_text

    # A follow that reaches the bot now is a new person's (the router, as LINE would call it).
    replies: list[Sequence[Message]] = []

    async def reply(messages: Sequence[Message]) -> None:
        replies.append(messages)

    handler = stack.bot_app[PIPELINE].handler
    await handler(
        Incoming(
            user_id=chat.user_id,
            kind="follow",
            timestamp=datetime.now(UTC),
            event_id="follow-after-deletion",
        ),
        reply,
    )
    assert len(replies) == 1
    greeting = " ".join(str(m.to_dict().get("text", "")) for m in replies[0])
    assert "友だち追加ありがとうございます" in greeting
    # Through LINE, following again means unblocking: the bot still remembers no registration.
    await chat.unfollow()
    await chat.follow()
    assert "登録はそのまま残っています" not in chat.last_text
    assert "登録する" in chat.last_text
    assert await menu_labels(stack, chat) == ["登録する", "使い方"]


async def test_cancelling_at_either_confirmation_deletes_nothing(stack: Stack) -> None:
    storage = stack.services.storage
    chat = await stack.user("佐藤")
    card = await register(chat, place="福島県", nickname="ふくしまファン")
    await storage.preferences.set(chat.user_id, "070009", Topic.NEWS, False, stack.clock.now())
    kept = await snapshot(stack, chat.user_id)
    assert kept["registrations"] == 1 and kept["preferences"] == 1

    await chat.send("データ削除")
    await chat.tap("削除しない")
    assert "データの削除をやめました" in chat.last_text
    assert await snapshot(stack, chat.user_id) == kept

    await chat.send("データを削除")
    await chat.tap("削除する")
    await chat.tap("削除しない")  # at the final confirmation
    assert "データの削除をやめました" in chat.last_text
    assert await snapshot(stack, chat.user_id) == kept

    await chat.send("データの削除")
    await chat.tap("削除する")
    await chat.send("やめる")  # the cancel word works as everywhere
    assert "中止しました" in chat.last_text
    assert await snapshot(stack, chat.user_id) == kept
    assert await storage.conversations.get(chat.user_id) is None

    assert "<h1>有効</h1>" in await verify_page(stack, verify_uri(card))
    assert await menu_labels(stack, chat) == [
        "登録証",
        "滞在予定",
        "特典",
        "お知らせ",
        "設定",
        "使い方",
    ]


async def test_bad_input_at_each_step_gets_a_retry_and_keeps_the_state(stack: Stack) -> None:
    storage = stack.services.storage
    chat = await stack.user("鈴木")
    await register(chat)
    kept = await snapshot(stack, chat.user_id)

    await chat.send("データ削除")
    assert "削除するもの" in chat.last_text
    explain = quick_data(chat, "削除する")
    for bad in (chat.sticker, lambda: chat.send("こんにちは"), lambda: chat.image(PNG_1PX)):
        await bad()
        assert "「削除する」、しないときは「削除しない」" in chat.last_text
        assert quick_labels(chat) == ["削除する", "削除しない"]
        conv = await storage.conversations.get(chat.user_id)
        assert conv is not None and (conv.flow, conv.step) == ("delete_data", "explain")
    await chat.send("ヘルプ")
    assert "元に戻せません" in chat.last_text and quick_labels(chat) == ["削除する", "削除しない"]

    await chat.tap("削除する")
    assert "最後の確認です" in chat.last_text
    for bad in (
        chat.sticker,
        lambda: chat.send("こんにちは"),
        lambda: chat.location("駅", "東京", 35.0, 139.0),
    ):
        await bad()
        assert "「すべて削除する」か「削除しない」でお答えください" in chat.last_text
        conv = await storage.conversations.get(chat.user_id)
        assert conv is not None and (conv.flow, conv.step) == ("delete_data", "final")
    # A second tap on the first 「削除する」 (an earlier message) deletes nothing.
    await chat.postback(explain)
    assert "前のご案内のもの" in chat.last_text and "最後の確認です" in chat.last_text
    assert await snapshot(stack, chat.user_id) == kept

    await chat.send("すべて削除する")  # typed, as the button says
    assert "すべてのデータを削除しました" in chat.last_text
    await stack.wait_idle()
    assert await where_user_appears(storage, chat.user_id) == {}


async def test_deleting_without_any_registration(stack: Stack) -> None:
    storage = stack.services.storage
    chat = await stack.user("高橋")
    await chat.send("設定")
    assert quick_labels(chat) == ["登録する", "データの削除", "メニュー"]
    await chat.tap("データの削除")
    assert "ふるさと住民登録（いまはありません）" in chat.last_text
    await chat.tap("削除する")
    await chat.tap("すべて削除する")
    assert "すべてのデータを削除しました" in chat.last_text
    assert "登録証は使えなくなりました" not in chat.last_text
    await stack.wait_idle()
    assert await where_user_appears(storage, chat.user_id) == {}
