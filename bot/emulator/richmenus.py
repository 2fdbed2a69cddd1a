"""Messaging API: rich menus, their images, per-user and default links, bulk links, aliases."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from linebot.v3.messaging import (
    CreateRichMenuAliasRequest,
    RichMenuBulkLinkRequest,
    RichMenuBulkUnlinkRequest,
    UpdateRichMenuAliasRequest,
)

from bot.emulator import ids, images
from bot.emulator.api import read_json
from bot.emulator.errors import ApiError, bad_request, detail
from bot.emulator.rules import MAX_RECIPIENTS, check_rich_menu, sdk_problems
from bot.emulator.state import STATE, EmulatorState, RichMenu, User

MAX_IMAGE_BYTES = 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg")
ALIAS_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
RICH_MENU_FIELDS = ("size", "selected", "name", "chatBarText", "areas")


def _menu(state: EmulatorState, rich_menu_id: str) -> RichMenu:
    menu = state.rich_menus.get(rich_menu_id)
    if menu is None:
        raise ApiError(404, "richmenu not found")
    return menu


def _menu_with_image(state: EmulatorState, rich_menu_id: str) -> RichMenu:
    menu = _menu(state, rich_menu_id)
    if menu.image is None:
        raise ApiError(400, "must upload richmenu image before applying it to user")
    return menu


def _user(state: EmulatorState, user_id: str) -> User:
    user = state.users.get(user_id)
    if user is None:
        raise ApiError(400, "The user ID is invalid")
    return user


def _validated(model: Any, body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request([detail("must be a JSON object", "")])
    problems = sdk_problems(model, body)
    if problems:
        raise bad_request(problems)
    return body


async def create(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = check_rich_menu(await read_json(request))
    menu = RichMenu(ids.rich_menu_id(), {key: body[key] for key in RICH_MENU_FIELDS})
    state.rich_menus[menu.rich_menu_id] = menu
    return web.json_response({"richMenuId": menu.rich_menu_id})


async def validate(request: web.Request) -> web.Response:
    check_rich_menu(await read_json(request))
    return web.json_response({})


async def list_menus(request: web.Request) -> web.Response:
    menus = request.app[STATE].rich_menus.values()
    return web.json_response({"richmenus": [menu.to_json() for menu in menus]})


async def get_menu(request: web.Request) -> web.Response:
    return web.json_response(_menu(request.app[STATE], request.match_info["richMenuId"]).to_json())


async def delete_menu(request: web.Request) -> web.Response:
    state = request.app[STATE]
    menu = _menu(state, request.match_info["richMenuId"])
    del state.rich_menus[menu.rich_menu_id]
    for user in state.users.values():
        if user.rich_menu_id == menu.rich_menu_id:
            user.rich_menu_id = None
    if state.default_rich_menu == menu.rich_menu_id:
        state.default_rich_menu = None
    return web.json_response({})


async def upload_image(request: web.Request) -> web.Response:
    state = request.app[STATE]
    menu = _menu(state, request.match_info["richMenuId"])
    data = await request.read()
    if request.content_type not in IMAGE_TYPES or images.content_type(data) != request.content_type:
        raise ApiError(400, "The image must be a PNG or JPEG sent with its own Content-Type")
    if len(data) > MAX_IMAGE_BYTES:
        raise ApiError(400, "The image must be at most 1 MB")
    size = menu.body["size"]
    if images.dimensions(data) != (size["width"], size["height"]):
        raise ApiError(
            400, f"The image must be {size['width']}x{size['height']} pixels like the rich menu"
        )
    if menu.image is not None:
        raise ApiError(400, "An image has already been uploaded to the richmenu")
    menu.image, menu.image_type = data, request.content_type
    return web.json_response({})


async def download_image(request: web.Request) -> web.Response:
    menu = _menu(request.app[STATE], request.match_info["richMenuId"])
    if menu.image is None:
        raise ApiError(404, "richmenu image not found")
    return web.Response(body=menu.image, content_type=menu.image_type)


async def link_user(request: web.Request) -> web.Response:
    state = request.app[STATE]
    user = _user(state, request.match_info["userId"])
    user.rich_menu_id = _menu_with_image(state, request.match_info["richMenuId"]).rich_menu_id
    return web.json_response({})


async def get_user_menu(request: web.Request) -> web.Response:
    user = _user(request.app[STATE], request.match_info["userId"])
    if user.rich_menu_id is None:
        raise ApiError(404, "the user has no richmenu")
    return web.json_response({"richMenuId": user.rich_menu_id})


async def unlink_user(request: web.Request) -> web.Response:
    _user(request.app[STATE], request.match_info["userId"]).rich_menu_id = None
    return web.json_response({})


async def set_default(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.default_rich_menu = _menu_with_image(state, request.match_info["richMenuId"]).rich_menu_id
    return web.json_response({})


async def get_default(request: web.Request) -> web.Response:
    default = request.app[STATE].default_rich_menu
    if default is None:
        raise ApiError(404, "no default richmenu")
    return web.json_response({"richMenuId": default})


async def cancel_default(request: web.Request) -> web.Response:
    request.app[STATE].default_rich_menu = None
    return web.json_response({})


def _bulk_user_ids(body: object) -> list[Any]:
    user_ids = body.get("userIds") if isinstance(body, dict) else None
    if not isinstance(user_ids, list) or not 1 <= len(user_ids) <= MAX_RECIPIENTS:
        raise bad_request([detail(f"Size must be between 1 and {MAX_RECIPIENTS}", "userIds")])
    return user_ids


async def bulk_link(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    user_ids = _bulk_user_ids(body)
    menu = _menu_with_image(state, _validated(RichMenuBulkLinkRequest, body)["richMenuId"])
    for user_id in user_ids:  # unknown users are skipped: the real bulk job runs detached
        if user_id in state.users:
            state.users[user_id].rich_menu_id = menu.rich_menu_id
    return web.json_response({}, status=202)


async def bulk_unlink(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    user_ids = _bulk_user_ids(body)
    _validated(RichMenuBulkUnlinkRequest, body)
    for user_id in user_ids:
        if user_id in state.users:
            state.users[user_id].rich_menu_id = None
    return web.json_response({}, status=202)


async def create_alias(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = _validated(CreateRichMenuAliasRequest, await read_json(request))
    alias = body["richMenuAliasId"]
    if not ALIAS_ID.fullmatch(alias):
        raise bad_request([detail("may contain only A-Z, a-z, 0-9, _ and -", "richMenuAliasId")])
    if alias in state.aliases:
        raise ApiError(400, "conflict richmenu alias id")
    state.aliases[alias] = _menu_with_image(state, body["richMenuId"]).rich_menu_id
    return web.json_response({})


def _alias(state: EmulatorState, alias: str) -> str:
    if alias not in state.aliases:
        raise ApiError(404, "richmenu alias not found")
    return alias


async def update_alias(request: web.Request) -> web.Response:
    state = request.app[STATE]
    alias = _alias(state, request.match_info["richMenuAliasId"])
    body = _validated(UpdateRichMenuAliasRequest, await read_json(request))
    state.aliases[alias] = _menu_with_image(state, body["richMenuId"]).rich_menu_id
    return web.json_response({})


async def get_alias(request: web.Request) -> web.Response:
    state = request.app[STATE]
    alias = _alias(state, request.match_info["richMenuAliasId"])
    return web.json_response({"richMenuAliasId": alias, "richMenuId": state.aliases[alias]})


async def list_aliases(request: web.Request) -> web.Response:
    aliases = request.app[STATE].aliases.items()
    return web.json_response(
        {"aliases": [{"richMenuAliasId": a, "richMenuId": m} for a, m in aliases]}
    )


async def delete_alias(request: web.Request) -> web.Response:
    state = request.app[STATE]
    del state.aliases[_alias(state, request.match_info["richMenuAliasId"])]
    return web.json_response({})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v2/bot/richmenu", create)
    router.add_post("/v2/bot/richmenu/validate", validate)
    router.add_get("/v2/bot/richmenu/list", list_menus)
    router.add_post("/v2/bot/richmenu/bulk/link", bulk_link)
    router.add_post("/v2/bot/richmenu/bulk/unlink", bulk_unlink)
    router.add_post("/v2/bot/richmenu/alias", create_alias)
    router.add_get("/v2/bot/richmenu/alias/list", list_aliases)
    router.add_get("/v2/bot/richmenu/alias/{richMenuAliasId}", get_alias)
    router.add_post("/v2/bot/richmenu/alias/{richMenuAliasId}", update_alias)
    router.add_delete("/v2/bot/richmenu/alias/{richMenuAliasId}", delete_alias)
    router.add_get("/v2/bot/richmenu/{richMenuId}", get_menu)
    router.add_delete("/v2/bot/richmenu/{richMenuId}", delete_menu)
    router.add_post("/v2/bot/richmenu/{richMenuId}/content", upload_image)
    router.add_get("/v2/bot/richmenu/{richMenuId}/content", download_image)
    router.add_post("/v2/bot/user/all/richmenu/{richMenuId}", set_default)
    router.add_get("/v2/bot/user/all/richmenu", get_default)
    router.add_delete("/v2/bot/user/all/richmenu", cancel_default)
    router.add_post("/v2/bot/user/{userId}/richmenu/{richMenuId}", link_user)
    router.add_get("/v2/bot/user/{userId}/richmenu", get_user_menu)
    router.add_delete("/v2/bot/user/{userId}/richmenu", unlink_user)
