"""お知らせ as a resident sees it, through the emulator: a news item arrives, 「配信停止」 stops that
place's news (another place's still arrive), お知らせの設定 turns it back on, and 「お知らせ」
lists the past news per registered place."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.domain.news import Content, Schedule, Segment
from bot.news import NewsItem, NewsService, deliver_news
from bot.staff.tenancy import Tenant
from bot.storage.preferences import Topic
from bot.storage.privacy import delete_person
from bot.storage.staff import LINE_CODE_TTL, line_code_hash, new_line_code
from tests.stack import Chat, Stack, quick_labels
from tests.test_news_console import daytime
from tests.test_staff_support import Site, add_registration

UMAJI = "393061"  # 高知県馬路村
AMA = "325252"  # 島根県海士町


def service(stack: Stack) -> NewsService:
    services = stack.services
    return NewsService(services.storage, services.line, services.renderer)


async def publish(stack: Stack, place: str, title: str, text: str) -> NewsItem:
    """An item written, submitted, approved and delivered by the worker's job, in-process."""
    news, now = service(stack), stack.clock.now()
    item = await news.create(
        place, "staff@example.jp", title, Content(text=text), Segment(), Schedule(), now
    )
    await news.submit(place, item.id, "staff@example.jp", now)
    await news.approve(place, item.id, "admin@example.jp", now)
    services = stack.services
    await deliver_news(services.storage, stack.clock, services.line, services.renderer)
    return item


async def received(chat: Chat, wait: float = 2.0) -> list[dict[str, Any]]:
    messages = [entry["message"] for entry in await chat.inbox(wait=wait)]
    chat.replies = messages or chat.replies
    return messages


def said(messages: list[dict[str, Any]], text: str) -> bool:
    return text in json.dumps(messages, ensure_ascii=False)


async def test_stop_news_from_one_place_then_turn_it_back_on(stack: Stack) -> None:
    storage = stack.services.storage
    daytime(stack)
    try:
        chat = await stack.user("ゆずの里")
        for place in (UMAJI, AMA):
            await add_registration(storage, user_id=chat.user_id, place_code=place)

        await publish(stack, UMAJI, "馬路村だより 春", "ゆずの花が咲きました。")
        news = await received(chat)
        assert said(news, "ゆずの花が咲きました。"), news
        assert "配信停止" in quick_labels(chat) and "お知らせ一覧" in quick_labels(chat)

        await chat.tap("配信停止")
        assert "高知県馬路村からの「お知らせ」の配信を停止しました。" in chat.last_text
        assert "お知らせの設定" in quick_labels(chat)
        assert not await storage.preferences.allows(chat.user_id, UMAJI, Topic.NEWS)
        assert await storage.preferences.allows(chat.user_id, AMA, Topic.NEWS)

        await publish(stack, UMAJI, "馬路村だより 夏", "川遊びの季節です。")
        await publish(stack, AMA, "海士町だより", "岩牡蠣が旬です。")
        news = await received(chat)
        assert said(news, "岩牡蠣が旬です。"), news
        assert not said(news, "川遊びの季節です。")

        # Back on through お知らせの設定 (the button under the confirmation).
        await chat.tap("配信停止")  # under 海士町's news: now both are off
        await chat.tap("お知らせの設定")
        await chat.tap("馬路村")
        await chat.tap("お知らせをオンにする")
        assert "オン" in chat.last_text
        await chat.tap("完了")
        assert await storage.preferences.allows(chat.user_id, UMAJI, Topic.NEWS)
        assert not await storage.preferences.allows(chat.user_id, AMA, Topic.NEWS)
        await publish(stack, UMAJI, "馬路村だより 秋", "ゆずの収穫が始まりました。")
        assert said(await received(chat), "ゆずの収穫が始まりました。")

        # 「お知らせ」: the past news of each place, newest first; a title reads it again.
        await chat.send("お知らせ")
        carousel = chat.replies[-1]
        assert carousel["type"] == "flex" and carousel["altText"].endswith("（2地域）")
        texts = chat.texts
        assert "高知県馬路村" in texts and "島根県海士町" in texts
        titles = [t for t in texts if t.startswith("馬路村だより")]
        assert titles == ["馬路村だより 秋", "馬路村だより 夏", "馬路村だより 春"]
        data = next(
            box["action"]["data"]
            for bubble in carousel["contents"]["contents"]
            for box in bubble["body"]["contents"]
            if "action" in box and "海士町だより" in json.dumps(box, ensure_ascii=False)
        )
        await chat.postback(data)
        assert "島根県海士町からのお知らせ" in chat.last_text
        assert "岩牡蠣が旬です。" in chat.last_text
    finally:
        stack.clock.offset = timedelta()
        await storage.registrations.col.delete_many({"place_code": {"$in": [UMAJI, AMA]}})


async def test_news_for_someone_not_registered(stack: Stack) -> None:
    chat = await stack.user("まだ登録していない人")
    await chat.send("お知らせ")
    assert "まずは「登録」から" in chat.last_text
    await chat.postback(f"action=news_stop&place={UMAJI}&topic=news")
    assert "高知県馬路村への登録がないため" in chat.last_text
    # Someone else's item cannot be read by guessing its postback.
    await chat.postback(f"action=cmd&name=news_item&place={UMAJI}&n=0123456789abcdef")
    assert "このお知らせは表示できません。" in chat.last_text


async def test_deleting_ones_data_forgets_a_staff_link(stack: Stack) -> None:
    """「データを削除」 also removes the LINE user id a staff account was linked to."""
    storage = stack.services.storage
    site = Site(stack)
    try:
        _, account = await site.account(UMAJI, "editor")
        chat = await stack.user("職員の私用LINE")
        code = new_line_code()
        code_hash = line_code_hash(code)
        assert code_hash is not None
        now = stack.clock.now()
        await storage.staff_accounts.issue_line_code(account["_id"], code_hash, now + LINE_CODE_TTL)
        await chat.send("職員連携")
        await chat.send(code.replace("-", " "))
        assert "連携しました" in chat.last_text
        tenant = Tenant.of(UMAJI)
        assert tenant is not None
        linked = await storage.staff_accounts.get_for(tenant, str(account["_id"]))
        assert linked is not None and linked["line_user_id"] == chat.user_id

        removed = await delete_person(storage, chat.user_id)
        assert removed["staff_accounts"] == 1
        after = await storage.staff_accounts.get_for(tenant, str(account["_id"]))
        assert after is not None and "line_user_id" not in after
    finally:
        await site.close()
