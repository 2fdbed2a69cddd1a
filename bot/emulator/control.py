"""The control API (/_emulator/...): play the users, look into the platform, shape its behaviour."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from aiohttp import web

from bot.emulator import actions, ids, images
from bot.emulator.api import read_json
from bot.emulator.errors import ApiError, not_found
from bot.emulator.faults import Fault
from bot.emulator.state import STATE, EmulatorState, User
from bot.emulator.webhooks import WEBHOOKS, message_event, new_event

MAX_WAIT_S = 300.0


def _body(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return value


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"'{key}' must be a non-empty string")
    return value


def _optional_string(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _string(body, key)


def _number(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"'{key}' must be a number")
    return float(value)


def _user(request: web.Request) -> User:
    user_id = request.match_info["userId"]
    user = request.app[STATE].users.get(user_id)
    if user is None:
        raise not_found(f"No user {user_id}; create one with POST /_emulator/users")
    return user


def _active_user(request: web.Request) -> User:
    """A user who can talk to the account: one who blocked it must follow it again first."""
    user = _user(request)
    if user.blocked:
        raise ApiError(409, f"{user.user_id} has blocked the account; POST .../follow first")
    return user


async def _deliver(request: web.Request, event: dict[str, Any]) -> dict[str, Any]:
    status = await request.app[WEBHOOKS].dispatch(event)
    return {"webhookEventId": event["webhookEventId"], "status": status}


async def _user_says(request: web.Request, user: User, event: dict[str, Any]) -> web.Response:
    user.acted()
    return web.json_response(await _deliver(request, event))


# --- state


async def reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({})


async def create_user(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = _body(await read_json(request))
    display_name = _string(body, "displayName")
    user_id = _optional_string(body, "userId") or ids.user_id()
    if not ids.USER_ID.fullmatch(user_id):
        raise ApiError(400, "'userId' must be U followed by 32 lowercase hex digits")
    if user_id in state.users:
        raise ApiError(409, f"User {user_id} already exists")
    state.add_user(user_id, display_name)
    return web.json_response({"userId": user_id})


async def list_users(request: web.Request) -> web.Response:
    users = request.app[STATE].users.values()
    return web.json_response({"users": [user.to_json() for user in users]})


# --- what users do


async def follow(request: web.Request) -> web.Response:
    state = request.app[STATE]
    user = _user(request)
    if user.following:
        raise ApiError(409, f"{user.user_id} already follows the account")
    unblocked = user.blocked
    user.following, user.blocked = True, False
    event = new_event(state, "follow", user, follow={"isUnblocked": unblocked})
    return web.json_response(await _deliver(request, event))


async def unfollow(request: web.Request) -> web.Response:
    state = request.app[STATE]
    user = _user(request)
    if not user.following:
        raise ApiError(409, f"{user.user_id} does not follow the account")
    user.following, user.blocked = False, True
    event = new_event(state, "unfollow", user, reply=False)
    return web.json_response(await _deliver(request, event))


async def text(request: web.Request) -> web.Response:
    user = _active_user(request)
    said = _string(_body(await read_json(request)), "text")
    event = message_event(request.app[STATE], user, {"type": "text", "text": said})
    return await _user_says(request, user, event)


def _postback_event(
    state: EmulatorState, user: User, data: str, params: dict[str, str] | None
) -> dict[str, Any]:
    postback: dict[str, Any] = {"data": data}
    if params:
        postback["params"] = params
    return new_event(state, "postback", user, postback=postback)


async def postback(request: web.Request) -> web.Response:
    user = _active_user(request)
    body = _body(await read_json(request))
    data = body.get("data")
    params = body.get("params")
    if not isinstance(data, str):
        raise ApiError(400, "'data' must be a string")
    if params is not None and not (
        isinstance(params, dict) and all(isinstance(v, str) for v in params.values())
    ):
        raise ApiError(400, "'params' must be an object of strings")
    event = _postback_event(request.app[STATE], user, data, params)
    return await _user_says(request, user, event)


async def image(request: web.Request) -> web.Response:
    state = request.app[STATE]
    user = _active_user(request)
    encoded = _string(_body(await read_json(request)), "base64")
    try:
        data = base64.b64decode(encoded.split(",")[-1], validate=True)  # accepts data: URLs too
    except (binascii.Error, ValueError):
        raise ApiError(400, "'base64' is not valid base64") from None
    content_type = images.content_type(data)
    if content_type is None:
        raise ApiError(400, "'base64' must hold a PNG, JPEG, GIF or WebP image")
    event = message_event(state, user, {"type": "image", "contentProvider": {"type": "line"}})
    state.keep_content(event["message"]["id"], data, content_type)
    return await _user_says(request, user, event)


async def location(request: web.Request) -> web.Response:
    user = _active_user(request)
    body = _body(await read_json(request))
    content: dict[str, Any] = {"type": "location"}
    for key in ("title", "address"):
        value = _optional_string(body, key)
        if value is not None:
            content[key] = value
    content["latitude"] = _number(body, "latitude")
    content["longitude"] = _number(body, "longitude")
    if not (-90 <= content["latitude"] <= 90 and -180 <= content["longitude"] <= 180):
        raise ApiError(400, "latitude must be within ±90 and longitude within ±180")
    event = message_event(request.app[STATE], user, content)
    return await _user_says(request, user, event)


async def sticker(request: web.Request) -> web.Response:
    user = _active_user(request)
    body = _body(await read_json(request))
    content = {"type": "sticker", "stickerResourceType": "STATIC"}
    for key in ("packageId", "stickerId"):
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise ApiError(400, f"'{key}' must be a string or number")
        content[key] = str(value)
    event = message_event(request.app[STATE], user, content)
    return await _user_says(request, user, event)


async def tap(request: web.Request) -> web.Response:
    state = request.app[STATE]
    user = _active_user(request)
    body = _body(await read_json(request))
    label = _string(body, "label")
    groups = actions.tappables(state, user)
    found = actions.find(groups, label)
    if found is None:
        labels = list(dict.fromkeys(t.label for group in groups for t in group))
        raise ApiError(
            404,
            f"No action with a label containing {label!r}; available: {labels or 'none'}",
            extra={"labels": labels},
        )
    action = found.action
    kind = action.get("type")
    performed = {"action": action, "where": found.where}
    event: dict[str, Any]
    if kind == "uri":
        return web.json_response({"uri": action.get("uri"), **performed})
    if kind == "message":
        event = message_event(state, user, {"type": "text", "text": action.get("text", "")})
    elif kind == "postback":
        event = _postback_event(state, user, action.get("data", ""), None)
    elif kind == "datetimepicker":
        params = actions.picker_params(action, body.get("params"))
        event = _postback_event(state, user, action.get("data", ""), params)
    elif kind == "richmenuswitch":
        alias = action.get("richMenuAliasId", "")
        target = state.aliases.get(alias)
        switched = target in state.rich_menus
        if switched:
            user.rich_menu_id = target
        params = {
            "newRichMenuAliasId": alias,
            "status": "SUCCESS" if switched else "RICHMENU_ALIAS_ID_NOTFOUND",
        }
        event = _postback_event(state, user, action.get("data", ""), params)
    else:
        raise ApiError(400, f"The emulator cannot perform a {kind} action ({found.label!r})")
    user.acted()
    return web.json_response({**await _deliver(request, event), **performed})


# --- what users see


async def inbox(request: web.Request) -> web.Response:
    user = _user(request)
    try:
        after = int(request.query.get("after", "0"))
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        raise ApiError(400, "'after' must be an integer and 'wait' a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT_S:
        raise ApiError(400, f"'wait' must be between 0 and {MAX_WAIT_S:g} seconds")
    entries = await user.wait_after(after, wait) if wait else user.after(after)
    return web.json_response({"messages": [entry.to_json() for entry in entries]})


async def user_rich_menu(request: web.Request) -> web.Response:
    state = request.app[STATE]
    user = _user(request)
    shown = state.rich_menu_for(user)
    if shown is None:
        raise not_found(f"{user.user_id} has no rich menu (none linked, no default)")
    menu, source = shown
    image_url = f"/_emulator/richmenus/{menu.rich_menu_id}/image" if menu.image else None
    return web.json_response({**menu.to_json(), "source": source, "imageUrl": image_url})


async def rich_menu_image(request: web.Request) -> web.Response:
    menu = request.app[STATE].rich_menus.get(request.match_info["richMenuId"])
    if menu is None or menu.image is None:
        raise not_found("No such rich menu image")
    return web.Response(body=menu.image, content_type=menu.image_type)


# --- platform behaviour


async def add_fault(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = _body(await read_json(request))
    path = _string(body, "path")
    status = body.get("status", 500 if "latencyMs" not in body else None)
    times = body.get("times", 1)
    latency_ms = body.get("latencyMs", 0)
    if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
        raise ApiError(400, "'status' must be an HTTP error status (400-599)")
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ApiError(400, "'times' must be a positive integer")
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int | float) or latency_ms < 0:
        raise ApiError(400, "'latencyMs' must be a non-negative number")
    state.faults.add(Fault(path, status, times, latency_ms / 1000))
    return web.json_response({"faults": state.faults.pending()})


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": request.app[STATE].faults.pending()})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return web.json_response({"faults": []})


async def configure(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = _body(await read_json(request))
    rate_limits = body.get("rateLimits", {})
    if not isinstance(rate_limits, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        for v in rate_limits.values()
    ):
        raise ApiError(400, "'rateLimits' must map paths to positive requests per second")
    redeliver = body.get("redeliver", state.redeliver)
    if not isinstance(redeliver, bool):
        raise ApiError(400, "'redeliver' must be true or false")
    webhook_url = body.get("webhookUrl", state.webhook_url)
    if webhook_url is not None and not (
        isinstance(webhook_url, str) and webhook_url.startswith(("http://", "https://"))
    ):
        raise ApiError(400, "'webhookUrl' must be an http(s) URL or null")
    state.rate_limiter.configure({path: float(rate) for path, rate in rate_limits.items()})
    state.redeliver = redeliver
    state.webhook_url = webhook_url
    return web.json_response({"redeliver": redeliver, "webhookUrl": webhook_url})


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "requests": {route: dict(counts) for route, counts in state.requests.items()},
            "messagesDelivered": state.messages_delivered,
        }
    )


async def webhooks(request: web.Request) -> web.Response:
    user_id = request.query.get("userId")
    deliveries = [
        d.to_json()
        for d in request.app[STATE].deliveries
        if user_id is None or d.user_id == user_id
    ]
    return web.json_response({"deliveries": deliveries})


async def redeliver(request: web.Request) -> web.Response:
    event = request.app[STATE].events.get(request.match_info["webhookEventId"])
    if event is None:
        raise not_found("No such webhook event (only recent events are kept)")
    status = await request.app[WEBHOOKS].send(event, is_redelivery=True)
    return web.json_response({"webhookEventId": event["webhookEventId"], "status": status})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/_emulator/reset", reset)
    router.add_post("/_emulator/users", create_user)
    router.add_get("/_emulator/users", list_users)
    router.add_post("/_emulator/users/{userId}/follow", follow)
    router.add_post("/_emulator/users/{userId}/unfollow", unfollow)
    router.add_post("/_emulator/users/{userId}/text", text)
    router.add_post("/_emulator/users/{userId}/postback", postback)
    router.add_post("/_emulator/users/{userId}/image", image)
    router.add_post("/_emulator/users/{userId}/location", location)
    router.add_post("/_emulator/users/{userId}/sticker", sticker)
    router.add_post("/_emulator/users/{userId}/tap", tap)
    router.add_get("/_emulator/users/{userId}/inbox", inbox)
    router.add_get("/_emulator/users/{userId}/richmenu", user_rich_menu)
    router.add_get("/_emulator/richmenus/{richMenuId}/image", rich_menu_image)
    router.add_post("/_emulator/faults", add_fault)
    router.add_get("/_emulator/faults", list_faults)
    router.add_delete("/_emulator/faults", clear_faults)
    router.add_post("/_emulator/config", configure)
    router.add_get("/_emulator/stats", stats)
    router.add_get("/_emulator/webhooks", webhooks)
    router.add_post("/_emulator/webhooks/{webhookEventId}/redeliver", redeliver)
