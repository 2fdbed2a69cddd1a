"""Follow, unfollow and the per-user rich menu, driven through the emulator."""

from __future__ import annotations

from linebot.v3.messaging import TextMessage

from bot.line.richmenu import GUEST, MEMBER, menu_image, tiles
from tests.stack import Stack


def area_labels(menu: dict[str, object]) -> list[str]:
    areas = menu["areas"]
    assert isinstance(areas, list)
    return [area["action"]["label"] for area in areas]


async def test_follow_greets_and_shows_the_guest_menu(stack: Stack) -> None:
    chat = await stack.user("はじめて", follow=False)
    await chat.follow()
    assert "友だち追加ありがとうございます" in chat.last_text
    menu = await stack.emulator("GET", f"/_emulator/users/{chat.user_id}/richmenu")
    assert area_labels(menu) == ["登録する", "使い方"]


async def test_unfollow_blocks_and_follow_again_welcomes_back(stack: Stack) -> None:
    chat = await stack.user("ブロック")
    users = stack.services.storage.users
    await chat.unfollow()
    await stack.wait_idle()
    assert await users.is_blocked(chat.user_id)
    # Nothing reaches a user who blocked the account, even when something tries to send.
    sent = await stack.services.line.push(
        chat.user_id, [TextMessage(text="届かない")], logical_key=f"blocked:{chat.user_id}"
    )
    assert sent is False
    assert await chat.inbox(wait=0.3) == []
    await chat.follow()
    assert "おかえりなさい" in chat.last_text
    assert not await users.is_blocked(chat.user_id)


async def test_rich_menus_are_created_once_across_restarts(stack: Stack) -> None:
    services = stack.services
    first = dict(services.richmenus.ids)
    await services.richmenus.ensure()
    assert services.richmenus.ids == first
    listed = await stack.services.api.get_rich_menu_list()
    names = sorted(menu.name for menu in listed.richmenus)
    assert names == sorted([GUEST.name, MEMBER.name])


async def test_member_menu_follows_registration_state(stack: Stack) -> None:
    chat = await stack.user("会員")
    await stack.services.richmenus.sync_user(chat.user_id, registered=True)
    menu = await stack.emulator("GET", f"/_emulator/users/{chat.user_id}/richmenu")
    assert area_labels(menu) == list(MEMBER.labels)
    await stack.services.richmenus.sync_user(chat.user_id, registered=False)
    menu = await stack.emulator("GET", f"/_emulator/users/{chat.user_id}/richmenu")
    assert area_labels(menu) == list(GUEST.labels)


def test_menu_tiles_cover_the_image_without_overlap() -> None:
    for spec in (GUEST, MEMBER):
        cells = tiles(spec)
        assert sum(w * h for _, _, _, w, h in cells) == 2500 * spec.height
        assert menu_image(spec)[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(menu_image(spec)) < 1024 * 1024
