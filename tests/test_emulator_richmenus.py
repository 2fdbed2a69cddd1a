"""Emulator rich menus: validation, images, user/default/bulk links, aliases."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest

from bot.emulator import images
from tests.test_emulator_support import (
    AUTH,
    ClientFactory,
    Emu,
    ServerFactory,
    png,
    rich_menu,
    start_emulator,
)


@pytest.fixture
async def emu(aiohttp_server: ServerFactory, aiohttp_client: ClientFactory) -> Emu:
    return await start_emulator(aiohttp_server, aiohttp_client)


def area(x: int = 0, **action: Any) -> dict[str, Any]:
    return {
        "bounds": {"x": x, "y": 0, "width": 100, "height": 100},
        "action": {"type": "postback", "data": "d", **action},
    }


async def upload(emu: Emu, menu_id: str, data: bytes, content_type: str = "image/png") -> int:
    response = await emu.client.post(
        f"/v2/bot/richmenu/{menu_id}/content",
        data=data,
        headers={**AUTH, "Content-Type": content_type},
    )
    return response.status


INVALID_MENUS: list[tuple[str, dict[str, Any], str]] = [
    ("21 areas", rich_menu([area(x=i * 100) for i in range(21)]), "areas"),
    ("chat bar text 15", rich_menu(chatBarText="あ" * 15), "chatBarText"),
    ("too narrow", {**rich_menu(), "size": {"width": 700, "height": 500}}, "size"),
    ("area outside", rich_menu([area(x=2450)]), "areas[0].bounds"),
    ("postback data 301", rich_menu([area(data="d" * 301)]), "areas[0].action.data"),
    ("label 21", rich_menu([area(label="l" * 21)]), "areas[0].action.label"),
    ("missing name", {k: v for k, v in rich_menu().items() if k != "name"}, "name"),
    (
        "unknown action",
        rich_menu([{"bounds": area()["bounds"], "action": {"type": "teleport"}}]),
        "",
    ),
]


@pytest.mark.parametrize(
    ("body", "prop"), [c[1:] for c in INVALID_MENUS], ids=[c[0] for c in INVALID_MENUS]
)
async def test_invalid_rich_menus_are_400(emu: Emu, body: dict[str, Any], prop: str) -> None:
    status, data, _ = await emu.api("POST", "/v2/bot/richmenu", body)
    assert status == 400, data
    assert prop in [d["property"] for d in data["details"]], data
    assert (await emu.api("POST", "/v2/bot/richmenu/validate", body))[0] == 400
    _, listing, _ = await emu.api("GET", "/v2/bot/richmenu/list")
    assert listing == {"richmenus": []}


async def test_twenty_areas_are_fine(emu: Emu) -> None:
    body = rich_menu([area(x=i * 100, label="l" * 20) for i in range(20)], chatBarText="あ" * 14)
    status, created, _ = await emu.api("POST", "/v2/bot/richmenu", body)
    assert status == 200 and created["richMenuId"].startswith("richmenu-")
    status, fetched, _ = await emu.api("GET", f"/v2/bot/richmenu/{created['richMenuId']}")
    assert status == 200 and fetched == {"richMenuId": created["richMenuId"], **body}


async def test_images_must_match_the_menu(emu: Emu) -> None:
    _, created, _ = await emu.api("POST", "/v2/bot/richmenu", rich_menu())
    menu_id = created["richMenuId"]
    assert (await emu.api("GET", f"/v2/bot/richmenu/{menu_id}/content"))[0] == 404
    assert await upload(emu, menu_id, png(1200, 405)) == 400  # wrong size
    assert await upload(emu, menu_id, png(2500, 843), "image/jpeg") == 400  # wrong type
    assert await upload(emu, menu_id, b"GIF89a....", "image/png") == 400
    image = png(2500, 843)
    assert await upload(emu, menu_id, image) == 200
    assert await upload(emu, menu_id, image) == 400  # LINE does not replace images
    response = await emu.client.get(f"/v2/bot/richmenu/{menu_id}/content", headers=AUTH)
    assert response.status == 200 and await response.read() == image
    assert await upload(emu, "richmenu-none", image) == 404


async def test_links_defaults_bulk_and_delete(emu: Emu) -> None:
    alice, bob = await emu.user("Alice"), await emu.user("Bob")
    _, created, _ = await emu.api("POST", "/v2/bot/richmenu", rich_menu())
    menu_id = created["richMenuId"]
    status, data, _ = await emu.api("POST", f"/v2/bot/user/{alice}/richmenu/{menu_id}")
    assert status == 400 and "image" in data["message"]  # no image yet
    assert await upload(emu, menu_id, png(2500, 843)) == 200

    assert (await emu.api("POST", f"/v2/bot/user/{alice}/richmenu/{menu_id}"))[0] == 200
    assert (await emu.api("GET", f"/v2/bot/user/{alice}/richmenu"))[1] == {"richMenuId": menu_id}
    assert (await emu.api("GET", f"/v2/bot/user/{bob}/richmenu"))[0] == 404
    assert (await emu.api("DELETE", f"/v2/bot/user/{alice}/richmenu"))[0] == 200
    assert (await emu.api("GET", f"/v2/bot/user/{alice}/richmenu"))[0] == 404
    unknown = f"U{uuid.uuid4().hex}"
    assert (await emu.api("POST", f"/v2/bot/user/{unknown}/richmenu/{menu_id}"))[0] == 400

    assert (await emu.api("GET", "/v2/bot/user/all/richmenu"))[0] == 404
    assert (await emu.api("POST", f"/v2/bot/user/all/richmenu/{menu_id}"))[0] == 200
    assert (await emu.api("GET", "/v2/bot/user/all/richmenu"))[1] == {"richMenuId": menu_id}

    too_many = [alice] + [f"U{uuid.uuid4().hex}" for _ in range(500)]
    body = {"richMenuId": menu_id, "userIds": too_many}
    status, data, _ = await emu.api("POST", "/v2/bot/richmenu/bulk/link", body)
    assert status == 400 and data["details"][0]["property"] == "userIds"
    body["userIds"] = [alice, bob]
    assert (await emu.api("POST", "/v2/bot/richmenu/bulk/link", body))[0] == 202
    assert (await emu.api("GET", f"/v2/bot/user/{bob}/richmenu"))[1] == {"richMenuId": menu_id}
    unlink = {"userIds": [bob]}
    assert (await emu.api("POST", "/v2/bot/richmenu/bulk/unlink", unlink))[0] == 202
    assert (await emu.api("GET", f"/v2/bot/user/{bob}/richmenu"))[0] == 404

    assert (await emu.api("DELETE", f"/v2/bot/richmenu/{menu_id}"))[0] == 200
    assert (await emu.api("GET", f"/v2/bot/richmenu/{menu_id}"))[0] == 404
    assert (await emu.api("GET", f"/v2/bot/user/{alice}/richmenu"))[0] == 404
    assert (await emu.api("GET", "/v2/bot/user/all/richmenu"))[0] == 404
    assert (await emu.control("GET", f"/users/{alice}/richmenu"))[0] == 404


async def test_aliases(emu: Emu) -> None:
    menus = []
    for _ in range(2):
        _, created, _ = await emu.api("POST", "/v2/bot/richmenu", rich_menu())
        assert await upload(emu, created["richMenuId"], png(2500, 843)) == 200
        menus.append(created["richMenuId"])
    first, second = menus
    alias = {"richMenuAliasId": "tab-a", "richMenuId": first}
    assert (await emu.api("POST", "/v2/bot/richmenu/alias", alias))[0] == 200
    assert (await emu.api("POST", "/v2/bot/richmenu/alias", alias))[0] == 400  # taken
    bad = {"richMenuAliasId": "タブ", "richMenuId": first}
    assert (await emu.api("POST", "/v2/bot/richmenu/alias", bad))[0] == 400
    assert (await emu.api("POST", "/v2/bot/richmenu/alias/tab-a", {"richMenuId": second}))[0] == 200
    assert (await emu.api("GET", "/v2/bot/richmenu/alias/tab-a"))[1] == {
        "richMenuAliasId": "tab-a",
        "richMenuId": second,
    }
    _, listing, _ = await emu.api("GET", "/v2/bot/richmenu/alias/list")
    assert listing == {"aliases": [{"richMenuAliasId": "tab-a", "richMenuId": second}]}
    assert (await emu.api("DELETE", "/v2/bot/richmenu/alias/tab-a"))[0] == 200
    assert (await emu.api("GET", "/v2/bot/richmenu/alias/tab-a"))[0] == 404


async def test_rich_menu_create_is_limited_to_100_an_hour(emu: Emu) -> None:
    statuses = [(await emu.api("POST", "/v2/bot/richmenu", rich_menu()))[0] for _ in range(101)]
    assert statuses == [200] * 100 + [429]
    assert (await emu.api("GET", "/v2/bot/richmenu/list"))[0] == 200


def test_image_sniffing() -> None:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 843, 2500, 1) + b"\x01\x11\x00"
    jpeg = b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"JF" + sof + b"\xff\xd9"
    assert images.content_type(jpeg) == "image/jpeg"
    assert images.dimensions(jpeg) == (2500, 843)
    assert images.dimensions(png(7, 3)) == (7, 3)
    assert images.content_type(b"GIF89a") == "image/gif"
    assert images.content_type(b"hello") is None
    assert images.dimensions(b"\xff\xd8\x00") is None
