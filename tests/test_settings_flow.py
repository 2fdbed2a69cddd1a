"""設定 and お知らせの設定 end to end through the LINE emulator (`tests/stack.py`).

The settings menu offers what a registered resident can change; お知らせの設定 lists the places with
their switches (everything on by default), each toggle is saved at once and confirmed in one
line, the choices persist, and `Preferences.allows` / `recipients_allowing` follow them.
"""

from __future__ import annotations

from bot.dialog.flows import load_flows
from bot.dialog.hooks import default_registry
from bot.render import Renderer
from bot.storage.preferences import TOPICS, Topic
from tests.stack import Stack
from tests.test_privacy_transcript import quick_data, quick_labels, register


def premium_installed() -> bool:
    flows = load_flows(registry=default_registry(), renderer=Renderer())
    return any(name.startswith("premium") for name in flows)


async def recipients(stack: Stack, place: str, topic: Topic) -> set[str]:
    prefs = stack.services.storage.preferences
    return {user async for user in prefs.recipients_allowing(place, topic)}


async def test_the_settings_menu(stack: Stack) -> None:
    chat = await stack.user("設定さん")
    await register(chat)
    await chat.send("設定")
    assert "設定です" in chat.last_text
    expected = ["お知らせの設定", "登録内容の変更", "登録の取り消し"]
    if premium_installed():
        expected.append("プレミアム登録")
    assert quick_labels(chat) == [*expected, "データの削除", "メニュー"]
    await chat.tap("登録内容の変更")
    assert "関わり方" in chat.last_text  # the existing change flow (two registrations: pick)
    await chat.send("設定")  # a rich-menu tile works inside a flow, and the flow can go on
    assert "変更の手続きの途中です" in chat.last_text
    assert quick_labels(chat)[-1] == "手続きを続ける"
    await chat.tap("登録の取り消し")
    assert "中断しました" in chat.last_text and "解除" in chat.last_text
    await chat.send("やめる")
    registrations = await stack.services.storage.registrations.for_user(chat.user_id)
    assert len(registrations) == 2


async def test_notification_settings_toggle_persist_and_steer_delivery(stack: Stack) -> None:
    storage = stack.services.storage
    prefs = storage.preferences
    chat = await stack.user("お知らせさん")
    await register(chat)
    user = chat.user_id
    for topic in TOPICS:  # everything on by default
        assert await prefs.allows(user, "042056", topic)
        assert await prefs.allows(user, "040002", topic)
        assert user in await recipients(stack, "042056", topic)

    await chat.send("設定")
    await chat.tap("お知らせの設定")
    assert "・宮城県気仙沼市：すべて受け取る" in chat.last_text
    assert "・宮城県：すべて受け取る" in chat.last_text
    assert quick_labels(chat) == ["宮城県気仙沼市", "宮城県"]
    await chat.tap("宮城県気仙沼市")
    assert "宮城県気仙沼市から受け取るもの" in chat.last_text
    assert "・お知らせ：オン" in chat.last_text and "・特典：オン" in chat.last_text
    assert quick_labels(chat) == [
        "お知らせをオフにする",
        "特典をオフにする",
        "ごみ・滞在をオフにする",
        "すべてオフにする",
        "ほかの地域",
        "完了",
    ]

    await chat.tap("特典をオフにする")
    assert chat.texts[0] == "宮城県気仙沼市の「特典」をオフにしました。"
    assert len(chat.replies) == 1  # one short line, with the switches
    assert "特典をオンにする" in quick_labels(chat) and "すべてオンにする" in quick_labels(chat)
    assert not await prefs.allows(user, "042056", Topic.BENEFITS)
    assert await prefs.allows(user, "042056", Topic.NEWS)
    assert await prefs.allows(user, "040002", Topic.BENEFITS)  # the prefecture is its own
    assert user not in await recipients(stack, "042056", Topic.BENEFITS)
    assert user in await recipients(stack, "042056", Topic.NEWS)

    await chat.send("ごみ")  # typed: the only switch whose label holds it
    assert chat.texts[0] == "宮城県気仙沼市の「ごみ・滞在」をオフにしました。"
    assert not await prefs.allows(user, "042056", Topic.GARBAGE)
    await chat.tap("特典をオンにする")
    assert chat.texts[0] == "宮城県気仙沼市の「特典」をオンにしました。"
    assert await prefs.allows(user, "042056", Topic.BENEFITS)

    await chat.tap("ほかの地域")
    assert "・宮城県気仙沼市：「ごみ・滞在」はオフ" in chat.last_text
    await chat.tap("宮城県")
    await chat.tap("すべてオフにする")
    assert chat.texts[0] == "宮城県から受け取るものを、すべてオフにしました。"
    assert quick_labels(chat)[:4] == [
        "お知らせをオンにする",
        "特典をオンにする",
        "ごみ・滞在をオンにする",
        "すべてオンにする",
    ]
    await chat.tap("完了")
    assert "お知らせの設定を保存しました" in chat.last_text
    assert await storage.conversations.get(user) is None

    # Persisted: the next visit shows the choices, and delivery follows them.
    assert await prefs.for_place(user, "040002") == dict.fromkeys(TOPICS, False)
    assert await prefs.for_place(user, "042056") == {
        Topic.NEWS: True,
        Topic.BENEFITS: True,
        Topic.GARBAGE: False,
    }
    await chat.send("お知らせの設定")
    assert "・宮城県気仙沼市：「ごみ・滞在」はオフ" in chat.last_text
    assert "・宮城県：すべてオフ" in chat.last_text
    for topic in TOPICS:
        assert user not in await recipients(stack, "040002", topic)
    assert user in await recipients(stack, "042056", Topic.NEWS)
    assert user not in await recipients(stack, "042056", Topic.GARBAGE)


async def test_bad_input_and_old_buttons_keep_the_state(stack: Stack) -> None:
    storage = stack.services.storage
    chat = await stack.user("まちがいさん")
    await register(chat)

    async def where() -> tuple[str, str, dict[str, object]] | None:
        conv = await storage.conversations.get(chat.user_id)
        return (conv.flow, conv.step, conv.answers) if conv else None

    await chat.send("お知らせの設定")
    for bad in (chat.sticker, lambda: chat.send("こんにちは"), lambda: chat.send("3")):
        await bad()
        assert "設定する地域をボタンから選んでください" in chat.last_text
        assert quick_labels(chat) == ["宮城県気仙沼市", "宮城県"]
        assert await where() == ("notification_settings", "place", {})
    await chat.send("ヘルプ")
    assert "はじめはすべて「オン」です" in chat.last_text
    await chat.send("2")  # by number
    assert "宮城県から受け取るもの" in chat.last_text
    old_switch = quick_data(chat, "お知らせをオフにする")

    for bad in (chat.sticker, lambda: chat.send("こんにちは"), lambda: chat.send("オフ")):
        await bad()
        assert "ボタンから選んでください" in chat.last_text
        assert "・お知らせ：オン" in chat.last_text
        assert await where() == ("notification_settings", "topics", {"place": "040002"})
    assert await storage.preferences.col.count_documents({"user_id": chat.user_id}) == 0

    await chat.tap("お知らせをオフにする")
    assert not await storage.preferences.allows(chat.user_id, "040002", Topic.NEWS)
    await chat.tap("お知らせをオンにする")
    # The first 「お知らせをオフにする」 again: an earlier message's button changes nothing.
    await chat.postback(old_switch)
    assert "前のご案内のもの" in chat.last_text
    assert await storage.preferences.allows(chat.user_id, "040002", Topic.NEWS)
    await chat.send("やめる")
    assert "中止しました" in chat.last_text
    assert await storage.preferences.allows(chat.user_id, "040002", Topic.NEWS)


async def test_without_a_registration_there_is_nothing_to_set(stack: Stack) -> None:
    chat = await stack.user("未登録さん")
    await chat.send("お知らせの設定")
    assert "まだ登録はありません" in chat.last_text
    assert await stack.services.storage.conversations.get(chat.user_id) is None
