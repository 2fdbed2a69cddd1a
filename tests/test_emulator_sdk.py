"""The SDK's own async client (line-bot-sdk v3) against the emulator, as the bot will use it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    FlexContainer,
    FlexMessage,
    MulticastRequest,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    RichMenuRequest,
    TextMessage,
)
from linebot.v3.webhooks import Event, MessageEvent, TextMessageContent

from tests.test_emulator_support import (
    TOKEN,
    ClientFactory,
    Emu,
    Receiver,
    ServerFactory,
    png,
    rich_menu,
    start_emulator,
)

TIMEOUT = 5


@pytest.fixture
async def emu(aiohttp_server: ServerFactory, aiohttp_client: ClientFactory) -> Emu:
    return await start_emulator(aiohttp_server, aiohttp_client)


@pytest.fixture
async def sdk(emu: Emu) -> AsyncIterator[AsyncApiClient]:
    async with AsyncApiClient(Configuration(host=emu.url, access_token=TOKEN)) as client:
        yield client


async def test_push_and_multicast(emu: Emu, sdk: AsyncApiClient) -> None:
    api = AsyncMessagingApi(sdk)
    alice, bob = await emu.user("Alice"), await emu.user("Bob")
    message = TextMessage(
        text="ようこそ",
        quick_reply=QuickReply(
            items=[
                QuickReplyItem.from_dict(
                    {
                        "type": "action",
                        "action": {"type": "message", "label": "登録", "text": "登録"},
                    }
                )
            ]
        ),
    )
    response = await api.push_message_with_http_info(
        PushMessageRequest(to=alice, messages=[message]),
        x_line_retry_key=str(uuid.uuid4()),
        _request_timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.data.sent_messages[0].id
    assert response.headers["X-Line-Request-Id"]
    await api.multicast(
        MulticastRequest(to=[alice, bob], messages=[TextMessage(text="お知らせ")]),
        _request_timeout=TIMEOUT,
    )
    alice_inbox = await emu.inbox(alice)
    assert [(m["via"], m["message"]["text"]) for m in alice_inbox] == [
        ("push", "ようこそ"),
        ("multicast", "お知らせ"),
    ]
    assert alice_inbox[0]["message"]["quickReply"]["items"][0]["action"]["label"] == "登録"
    assert [m["via"] for m in await emu.inbox(bob)] == ["multicast"]


async def test_retry_key_conflict_reaches_the_sdk(emu: Emu, sdk: AsyncApiClient) -> None:
    api = AsyncMessagingApi(sdk)
    user = await emu.user()
    request = PushMessageRequest(to=user, messages=[TextMessage(text="一度だけ")])
    key = str(uuid.uuid4())
    first = await api.push_message_with_http_info(
        request, x_line_retry_key=key, _request_timeout=TIMEOUT
    )
    with pytest.raises(ApiException) as caught:
        await api.push_message(request, x_line_retry_key=key, _request_timeout=TIMEOUT)
    assert caught.value.status == 409
    assert caught.value.headers["X-Line-Accepted-Request-Id"] == first.headers["X-Line-Request-Id"]


async def test_flex_with_a_plain_dict_is_refused(emu: Emu, sdk: AsyncApiClient) -> None:
    """The SDK turns dict contents into an empty bubble; LINE refuses it, so must we."""
    api = AsyncMessagingApi(sdk)
    user = await emu.user()
    contents = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "hi"}]},
    }
    broken = FlexMessage(alt_text="card", contents=contents)  # type: ignore[arg-type]
    with pytest.raises(ApiException) as caught:
        await api.push_message(
            PushMessageRequest(to=user, messages=[broken]), _request_timeout=TIMEOUT
        )
    assert caught.value.status == 400
    good = FlexMessage(alt_text="card", contents=FlexContainer.from_dict(contents))
    await api.push_message(PushMessageRequest(to=user, messages=[good]), _request_timeout=TIMEOUT)
    assert [m["message"]["contents"] for m in await emu.inbox(user)] == [contents]


async def test_reply_from_inside_the_webhook(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
) -> None:
    receiver = Receiver()
    emu = await start_emulator(aiohttp_server, aiohttp_client, receiver)
    async with AsyncApiClient(Configuration(host=emu.url, access_token=TOKEN)) as client:
        api = AsyncMessagingApi(client)

        async def echo(event: Event) -> None:
            if isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
                profile = await api.get_profile(event.source.user_id, _request_timeout=TIMEOUT)
                reply = f"{profile.display_name}さん、「{event.message.text}」ですね"
                await api.reply_message(
                    ReplyMessageRequest(
                        reply_token=event.reply_token, messages=[TextMessage(text=reply)]
                    ),
                    _request_timeout=TIMEOUT,
                )

        receiver.on_event = echo
        user = await emu.user("花子")
        status, answer = await emu.control("POST", f"/users/{user}/text", {"text": "登録したい"})
        assert status == 200 and answer["status"] == 200
        inbox = await emu.inbox(user)
        assert [(m["via"], m["message"]["text"]) for m in inbox] == [
            ("reply", "花子さん、「登録したい」ですね")
        ]
        with pytest.raises(ApiException) as caught:
            await api.get_profile(f"U{uuid.uuid4().hex}", _request_timeout=TIMEOUT)
        assert caught.value.status == 404


async def test_rich_menu_create_upload_and_link(emu: Emu, sdk: AsyncApiClient) -> None:
    api, blob = AsyncMessagingApi(sdk), AsyncMessagingApiBlob(sdk)
    user = await emu.user()
    created = await api.create_rich_menu(
        RichMenuRequest.from_dict(rich_menu()), _request_timeout=TIMEOUT
    )
    await blob.set_rich_menu_image(
        created.rich_menu_id,
        png(2500, 843),
        _headers={"Content-Type": "image/png"},
        _request_timeout=TIMEOUT,
    )
    await api.link_rich_menu_id_to_user(user, created.rich_menu_id, _request_timeout=TIMEOUT)
    linked = await api.get_rich_menu_id_of_user(user, _request_timeout=TIMEOUT)
    assert linked.rich_menu_id == created.rich_menu_id
    menus = await api.get_rich_menu_list(_request_timeout=TIMEOUT)
    assert [m.chat_bar_text for m in menus.richmenus] == ["メニュー"]
    status, shown = await emu.control("GET", f"/users/{user}/richmenu")
    assert status == 200 and shown["richMenuId"] == created.rich_menu_id
    assert [a["action"]["label"] for a in shown["areas"]] == ["登録する", "ヘルプ"]
