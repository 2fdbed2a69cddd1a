"""The browser chat simulator (GET / of the emulator), driven in Debian's Chromium.

The real emulator runs in-process with an echo bot behind its webhook: the bot verifies the
signature with line-bot-sdk's WebhookParser and answers with AsyncMessagingApi, exactly as a
real bot answers LINE.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    CreateRichMenuAliasRequest,
    FlexContainer,
    FlexMessage,
    Message,
    MessageAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    RichMenuRequest,
    TextMessage,
)
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
)
from playwright.async_api import Page, async_playwright, expect

from bot.emulator.app import create_emulator_app
from tests.browser import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "var" / "screenshots"
SECRET = "simulator-test-channel-secret"
TOKEN = "simulator-test-access-token"
NO_IMAGE = "https://furusato.invalid/hero.png"  # never loads: the page draws a placeholder

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is missing: apt-get install -y chromium fonts-noto-cjk",
    ),
]

STATUS_BUBBLE: dict[str, Any] = {
    "type": "bubble",
    "header": {
        "type": "box",
        "layout": "vertical",
        "backgroundColor": "#06C755",
        "paddingAll": "14px",
        "contents": [
            {"type": "text", "text": "ふるさと住民登録", "color": "#FFFFFF", "weight": "bold"}
        ],
    },
    "body": {
        "type": "box",
        "layout": "vertical",
        "spacing": "md",
        "contents": [
            {"type": "text", "text": "気仙沼市", "size": "xl", "weight": "bold"},
            {
                "type": "box",
                "layout": "baseline",
                "spacing": "sm",
                "contents": [
                    {"type": "text", "text": "状態", "size": "sm", "color": "#AAAAAA", "flex": 2},
                    {"type": "text", "text": "登録済み", "size": "sm", "flex": 5, "wrap": True},
                ],
            },
            {"type": "separator"},
            {
                "type": "text",
                "text": "ふるさと住民として登録されています。\n下のボタンで詳細を確認できます。",
                "size": "sm",
                "color": "#666666",
                "wrap": True,
            },
        ],
    },
    "footer": {
        "type": "box",
        "layout": "vertical",
        "contents": [
            {
                "type": "button",
                "style": "primary",
                "action": {
                    "type": "postback",
                    "label": "登録状況を確認",
                    "data": "action=status",
                    "displayText": "登録状況を確認",
                },
            }
        ],
    },
}


def _png(width: int, height: int, colours: list[tuple[int, int, int]]) -> bytes:
    """A PNG of vertical stripes, one per colour (standard library only)."""
    stripe = width // len(colours)
    row = b"".join(
        bytes(c) * (stripe if i < len(colours) - 1 else width - stripe * i)
        for i, c in enumerate(colours)
    )
    raw = b"".join(b"\x00" + row for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


# --- the echo bot --------------------------------------------------------------------------


@dataclass
class EchoBot:
    """An aiohttp LINE bot: verifies signatures and replies through the Messaging API."""

    parser: WebhookParser = field(default_factory=lambda: WebhookParser(SECRET))
    api_host: str = ""
    client: AsyncApiClient | None = None
    events: list[Any] = field(default_factory=list)

    def api(self) -> AsyncMessagingApi:
        if self.client is None:  # built lazily: the emulator's URL is known only later
            self.client = AsyncApiClient(Configuration(host=self.api_host, access_token=TOKEN))
        return AsyncMessagingApi(self.client)

    def blob(self) -> AsyncMessagingApiBlob:
        self.api()
        assert self.client is not None
        return AsyncMessagingApiBlob(self.client)

    async def callback(self, request: web.Request) -> web.Response:
        body = await request.text()
        try:
            events = self.parser.parse(body, request.headers.get("X-Line-Signature", ""))
        except InvalidSignatureError:
            return web.Response(status=400, text="invalid signature")
        for event in events:
            self.events.append(event)
            if (
                isinstance(event, MessageEvent)
                and isinstance(event.message, TextMessageContent)
                and event.message.text == "エラー"
            ):
                return web.Response(status=500, text="the bot failed on purpose")
            messages = self.answer(event)
            if messages and getattr(event, "reply_token", None):
                await self.api().reply_message(
                    ReplyMessageRequest(reply_token=event.reply_token, messages=messages),
                    _request_timeout=10,
                )
        return web.Response(text="OK")

    def answer(self, event: Any) -> list[Message]:
        if isinstance(event, FollowEvent):
            return [TextMessage(text="友だち追加ありがとうございます！\n何か話しかけてください。")]
        if isinstance(event, PostbackEvent):
            params = event.postback.params or {}
            extra = "".join(f" {k}={v}" for k, v in sorted(params.items()))
            return [TextMessage(text=f"ポストバックを受け取りました：{event.postback.data}{extra}")]
        if not isinstance(event, MessageEvent):
            return []
        content = event.message
        if isinstance(content, TextMessageContent):
            quick_reply = QuickReply(
                items=[QuickReplyItem(action=MessageAction(label="ありがとう", text="ありがとう"))]
            )
            return [
                TextMessage(text=f"「{content.text}」を受け取りました。"),
                FlexMessage(
                    alt_text="登録状況",
                    contents=FlexContainer.from_dict(STATUS_BUBBLE),
                    quick_reply=quick_reply,
                ),
            ]
        if isinstance(content, StickerMessageContent):
            return [TextMessage(text=f"スタンプを受け取りました（{content.sticker_id}）")]
        if isinstance(content, LocationMessageContent):
            return [TextMessage(text=f"位置情報を受け取りました：{content.title}")]
        if isinstance(content, ImageMessageContent):
            return [TextMessage(text="画像を受け取りました")]
        return []

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


@dataclass
class Platform:
    emulator: TestServer
    bot: EchoBot

    def url(self, path: str = "/") -> str:
        return str(self.emulator.make_url(path))


@pytest.fixture
async def platform(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> AsyncIterator[Platform]:
    bot = EchoBot()
    bot_app = web.Application()
    bot_app.router.add_post("/callback", bot.callback)
    bot_server = await aiohttp_server(bot_app)
    emulator = await aiohttp_server(
        create_emulator_app(
            channel_secret=SECRET,
            access_token=TOKEN,
            webhook_url=str(bot_server.make_url("/callback")),
        )
    )
    bot.api_host = str(emulator.make_url("")).rstrip("/")
    yield Platform(emulator, bot)
    await bot.close()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo"
        )
        page = await context.new_page()
        page.set_default_timeout(15000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            await browser.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def _bot_text(page: Page, text: str) -> Any:
    return page.locator("#chat .row.bot .bubble.text").filter(has_text=text).last


async def _screenshot(page: Page, name: str) -> Path:
    # Let informational toasts fade so they do not cover the phone.
    await expect(page.locator(".toast.info")).to_have_count(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    await page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    return path


async def _rich_menu(bot: EchoBot, chat_bar_text: str, actions: list[dict[str, Any]]) -> str:
    """A 2500x843 rich menu with one column per action and a striped image; its ID."""
    width = 2500 // len(actions)
    areas = [
        {
            "bounds": {"x": i * width, "y": 0, "width": width, "height": 843},
            "action": action,
        }
        for i, action in enumerate(actions)
    ]
    request = RichMenuRequest.from_dict(
        {
            "size": {"width": 2500, "height": 843},
            "selected": True,
            "name": chat_bar_text,
            "chatBarText": chat_bar_text,
            "areas": areas,
        }
    )
    rich_menu_id: str = (
        await bot.api().create_rich_menu(request, _request_timeout=10)
    ).rich_menu_id
    shades = [(6, 199, 85), (40, 170, 90), (20, 140, 75), (10, 120, 60)]
    await bot.blob().set_rich_menu_image(
        rich_menu_id,
        bytearray(_png(2500, 843, shades[: len(actions)])),
        _headers={"Content-Type": "image/png"},
        _request_timeout=10,
    )
    return rich_menu_id


# --- tests ---------------------------------------------------------------------------------


async def test_chat_with_echo_bot(platform: Platform, page: Page) -> None:
    await page.goto(platform.url("/"))
    await expect(page.locator("#account-name")).to_have_text("ふるさと住民登録")
    await expect(page.locator("#user-empty")).to_be_visible()

    # Create a user by display name; the page selects it.
    await page.get_by_label("表示名").fill("山田 花子")
    await page.get_by_role("button", name="ユーザーを作成").click()
    await expect(page.locator("#current-name")).to_have_text("山田 花子")
    await expect(page.locator(".user-item[aria-current=true]")).to_contain_text("山田 花子")

    # Follow: the bot's welcome arrives through the inbox long-poll.
    await page.locator("#follow-toggle").click()
    await expect(_bot_text(page, "友だち追加ありがとうございます")).to_be_visible()
    await expect(page.locator("#follow-toggle")).to_have_text("ブロック")

    # Type and send; the user's own bubble is drawn locally, the echo comes from the bot.
    await page.get_by_label("メッセージを入力").fill("こんにちは")
    await page.get_by_role("button", name="送信", exact=True).click()
    await expect(page.locator("#chat .row.user .bubble.text").last).to_have_text("こんにちは")
    await expect(_bot_text(page, "「こんにちは」を受け取りました。")).to_be_visible()
    await expect(page.locator(".fx-bubble")).to_have_count(1)
    await expect(page.locator("#chat .row.user .meta").last).to_contain_text("既読")

    # The quick reply under the newest message sends its text.
    chips = page.locator("#quick-replies .chip")
    await expect(chips).to_have_count(1)
    await chips.filter(has_text="ありがとう").click()
    await expect(_bot_text(page, "「ありがとう」を受け取りました。")).to_be_visible()
    await expect(page.locator(".fx-bubble")).to_have_count(2)

    # The Flex button posts back; its displayText shows as the user's message.
    await page.locator(".fx-bubble .fx-button").filter(has_text="登録状況を確認").last.click()
    await expect(_bot_text(page, "ポストバックを受け取りました：action=status")).to_be_visible()
    await expect(page.locator("#chat .row.user .bubble.text").last).to_have_text("登録状況を確認")
    await expect(page.locator("#quick-replies")).to_be_hidden()
    await expect(page.locator("#event-log li")).to_have_count(4)

    # The bot really got the events, signed and complete.
    kinds = [type(e).__name__ for e in platform.bot.events]
    assert kinds == ["FollowEvent", "MessageEvent", "MessageEvent", "PostbackEvent"]
    assert platform.bot.events[-1].postback.data == "action=status"

    await _screenshot(page, "simulator.png")

    # The conversation survives a reload (the selected user is kept in localStorage).
    await page.reload()
    await expect(page.locator("#current-name")).to_have_text("山田 花子")
    await expect(_bot_text(page, "ポストバックを受け取りました：action=status")).to_be_visible()
    mine = page.locator("#chat .row.user .bubble.text")
    await expect(mine.filter(has_text="こんにちは")).to_have_count(1)

    # Another user has a conversation of their own; switching back restores the first.
    await page.get_by_label("表示名").fill("鈴木 次郎")
    await page.get_by_role("button", name="ユーザーを作成").click()
    await expect(page.locator("#current-name")).to_have_text("鈴木 次郎")
    await expect(page.locator("#chat .row")).to_have_count(0)
    await expect(page.locator("#follow-toggle")).to_have_text("友だち追加")
    await page.locator(".user-item").filter(has_text="山田 花子").click()
    await expect(page.locator("#current-name")).to_have_text("山田 花子")
    await expect(mine.filter(has_text="こんにちは")).to_have_count(1)
    await expect(_bot_text(page, "ポストバックを受け取りました：action=status")).to_be_visible()

    # 「表示をクリア」 empties the conversation on this page, also after a reload.
    await page.get_by_role("button", name="表示をクリア").click()
    await expect(page.locator("#chat .row")).to_have_count(0)
    await page.reload()
    await expect(page.locator("#current-name")).to_have_text("山田 花子")
    await expect(page.locator("#follow-toggle")).to_have_text("ブロック")
    await page.wait_for_function("window.simulator.state.lastSeq > 0")  # the inbox was read
    await expect(page.locator("#chat .row")).to_have_count(0)


async def test_rich_menu_templates_and_other_inputs(platform: Platform, page: Page) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            platform.url("/_emulator/users"), json={"displayName": "佐藤 一郎"}
        ) as r:
            user_id = (await r.json())["userId"]
        async with http.post(platform.url(f"/_emulator/users/{user_id}/follow")) as r:
            assert (await r.json())["status"] == 200

    # The bot gives the user a rich menu and pushes every kind of message.
    api = platform.bot.api()
    rich_menu_id = await _rich_menu(
        platform.bot,
        "メニュー",
        [
            {"type": "message", "label": "使い方", "text": "使い方"},
            {
                "type": "postback",
                "label": "登録状況",
                "data": "menu=status",
                "displayText": "登録状況",
            },
            {"type": "datetimepicker", "label": "日付を選ぶ", "data": "menu=date", "mode": "date"},
            {
                "type": "richmenuswitch",
                "label": "その他",
                "richMenuAliasId": "more",
                "data": "menu=more",
            },
        ],
    )
    more_id = await _rich_menu(
        platform.bot,
        "その他のメニュー",
        [{"type": "message", "label": "よくある質問", "text": "FAQ"}],
    )
    await api.create_rich_menu_alias(
        CreateRichMenuAliasRequest(rich_menu_alias_id="more", rich_menu_id=more_id),
        _request_timeout=10,
    )
    await api.link_rich_menu_id_to_user(user_id, rich_menu_id, _request_timeout=10)
    confirm = {
        "type": "template",
        "altText": "確認",
        "template": {
            "type": "confirm",
            "text": "この内容で登録しますか？",
            "actions": [
                {"type": "message", "label": "はい", "text": "はい"},
                {"type": "message", "label": "いいえ", "text": "いいえ"},
            ],
        },
    }
    buttons = {
        "type": "template",
        "altText": "手続き",
        "template": {
            "type": "buttons",
            "thumbnailImageUrl": NO_IMAGE,
            "title": "手続き",
            "text": "選んでください",
            "actions": [
                {"type": "uri", "label": "ウェブサイト", "uri": platform.url("/_emulator/stats")},
                {"type": "postback", "label": "申請", "data": "apply"},
            ],
        },
    }
    carousel = {
        "type": "template",
        "altText": "プログラム",
        "template": {
            "type": "carousel",
            "columns": [
                {
                    "title": name,
                    "text": "ふるさと住民プログラム",
                    "actions": [
                        {"type": "message", "label": "申し込む", "text": f"{name}に申し込む"}
                    ],
                }
                for name in ("気仙沼市", "南魚沼市", "山県市")
            ],
        },
    }
    flex_carousel = {
        "type": "flex",
        "altText": "自治体",
        "contents": {
            "type": "carousel",
            "contents": [
                {
                    "type": "bubble",
                    "size": "micro",
                    "hero": {
                        "type": "image",
                        "url": NO_IMAGE,
                        "size": "full",
                        "aspectRatio": "20:13",
                        "aspectMode": "cover",
                    },
                    "body": {
                        "type": "box",
                        "layout": "vertical",
                        "contents": [
                            {"type": "text", "text": name, "weight": "bold", "wrap": True}
                        ],
                    },
                }
                for name in ("福島県", "山県市")
            ],
        },
    }
    for messages in (
        [buttons, carousel, flex_carousel],
        [
            {"type": "sticker", "packageId": "446", "stickerId": "1988"},
            {
                "type": "location",
                "title": "気仙沼市役所",
                "address": "宮城県気仙沼市八日町一丁目1番1号",
                "latitude": 38.9081,
                "longitude": 141.5697,
            },
            {"type": "image", "originalContentUrl": NO_IMAGE, "previewImageUrl": NO_IMAGE},
            {"type": "text", "text": "詳しくは https://example.com/furusato をご覧ください"},
            confirm,
        ],
    ):
        request = PushMessageRequest(to=user_id, messages=[Message.from_dict(m) for m in messages])
        await api.push_message(request, _request_timeout=10)

    # First as if the menu image could not be loaded: the page draws the areas' labels.
    await page.route("**/_emulator/richmenus/*/image", lambda route: route.fulfill(status=404))
    await page.goto(platform.url("/"))
    await expect(page.locator("#current-name")).to_have_text("佐藤 一郎")
    chat = page.locator("#chat")
    await expect(chat.locator(".tpl-confirm")).to_be_visible()
    await expect(chat.locator(".tpl-card")).to_have_count(1 + 3 + 1)
    await expect(chat.locator(".flex-carousel .fx-bubble")).to_have_count(2)
    await expect(chat.locator(".sticker svg")).to_have_count(1)
    await expect(chat.locator(".location")).to_contain_text("気仙沼市役所")
    await expect(chat.locator(".row.bot .bubble.text a")).to_have_attribute(
        "href", "https://example.com/furusato"
    )
    await expect(chat.locator('.row.bot[data-via="push"]').first).to_be_visible()
    await _screenshot(page, "simulator-messages.png")

    # Template actions; a URI action opens a new tab.
    async with page.context.expect_page() as new_tab:
        await chat.locator(".tpl-action").filter(has_text="ウェブサイト").click()
    tab = await new_tab.value
    await tab.wait_for_load_state()
    assert tab.url == platform.url("/_emulator/stats")
    await tab.close()
    await chat.locator(".tpl-confirm .tpl-action").filter(has_text="はい").click()
    await expect(_bot_text(page, "「はい」を受け取りました。")).to_be_visible()
    await chat.locator(".tpl-card .tpl-action").filter(has_text="申し込む").first.click()
    await expect(_bot_text(page, "「気仙沼市に申し込む」を受け取りました。")).to_be_visible()

    # Rich menu: drawn from the areas (labels only), open because selected=true.
    await expect(page.locator("#chat-bar")).to_contain_text("メニュー")
    areas = page.locator("#rich-menu .rm-area")
    await expect(areas).to_have_count(4)
    await areas.filter(has_text="使い方").click()
    await expect(_bot_text(page, "「使い方」を受け取りました。")).to_be_visible()
    await areas.filter(has_text="登録状況").click()
    await expect(_bot_text(page, "ポストバックを受け取りました：menu=status")).to_be_visible()

    # A datetime picker opens a date input and sends params.
    await areas.filter(has_text="日付を選ぶ").click()
    dialog = page.locator("#datetime-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator("input[type=date]").fill("2027-01-09")
    await dialog.get_by_role("button", name="決定").click()
    await expect(_bot_text(page, "menu=date date=2027-01-09")).to_be_visible()

    # Sticker, location and image inputs.
    await page.get_by_role("button", name="スタンプを送信").click()
    await page.locator(".sticker-choice").nth(1).click()
    await expect(_bot_text(page, "スタンプを受け取りました（1989）")).to_be_visible()
    await page.get_by_role("button", name="位置情報を送信").click()
    await page.locator("#location-dialog").get_by_role("button", name="送信").click()
    await expect(_bot_text(page, "位置情報を受け取りました：気仙沼市役所")).to_be_visible()
    await page.locator("#image-file").set_input_files(
        {
            "name": "photo.png",
            "mimeType": "image/png",
            "buffer": _png(64, 48, [(240, 120, 60), (60, 160, 220)]),
        }
    )
    await expect(_bot_text(page, "画像を受け取りました")).to_be_visible()
    await expect(chat.locator(".row.user .bubble.media img")).to_have_count(1)

    # A bot error (HTTP 500) shows a Japanese toast.
    await page.get_by_label("メッセージを入力").fill("エラー")
    await page.get_by_label("メッセージを入力").press("Enter")
    await expect(page.locator(".toast.error")).to_contain_text(
        "ボットがエラーを返しました（HTTP 500）"
    )

    # Block, then unblock (follow again): input is disabled while blocked.
    await page.locator("#follow-toggle").click()
    await expect(page.locator("#follow-toggle")).to_have_text("ブロック解除")
    await expect(page.get_by_label("メッセージを入力")).to_be_disabled()
    await page.locator("#follow-toggle").click()
    await expect(page.locator("#follow-toggle")).to_have_text("ブロック")
    await expect(_bot_text(page, "友だち追加ありがとうございます")).to_be_visible()

    # The chat bar toggles the menu (opening the sticker picker closed it).
    await expect(page.locator("#rich-menu .rm-canvas")).not_to_have_class("has-image")
    chat_bar = page.locator("#chat-bar")
    await expect(chat_bar).to_have_attribute("aria-expanded", "false")
    await chat_bar.click()
    await expect(page.locator("#rich-menu")).to_be_visible()
    await chat_bar.click()
    await expect(page.locator("#rich-menu")).to_be_hidden()

    # When the menu image loads, the page shows it; the areas stay tappable.
    await page.unroute("**/_emulator/richmenus/*/image")
    await page.reload()
    await expect(page.locator("#rich-menu .rm-canvas.has-image")).to_be_visible()
    await page.locator("#rich-menu .rm-area").filter(has_text="使い方").click()
    await expect(
        page.locator("#chat .row.bot .bubble.text").filter(has_text="「使い方」を受け取りました。")
    ).to_have_count(2)

    await _screenshot(page, "simulator-richmenu.png")

    # A rich menu switch action: the emulator swaps the menu and posts back.
    await page.locator("#rich-menu .rm-area").filter(has_text="その他").click()
    await expect(
        _bot_text(page, "menu=more newRichMenuAliasId=more status=SUCCESS")
    ).to_be_visible()
    await expect(page.locator("#chat-bar")).to_contain_text("その他のメニュー")
    await expect(page.locator("#rich-menu .rm-area")).to_have_count(1)
