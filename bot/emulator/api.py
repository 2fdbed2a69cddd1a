"""Messaging API: sending messages, profiles, bot info, loading animation, message content."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from linebot.v3.messaging import (
    BroadcastRequest,
    MulticastRequest,
    NarrowcastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
)

from bot.emulator import ids
from bot.emulator.errors import ApiError, bad_request, detail, not_found
from bot.emulator.middleware import request_id
from bot.emulator.rules import check_send, sdk_problems
from bot.emulator.state import STATE, EmulatorState, iso

BOT_BASIC_ID = "@emulator"
BOT_DISPLAY_NAME = "LINE emulator"


async def read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise bad_request([detail("The request body is not valid JSON", "")]) from None


def _retry_key(request: web.Request) -> str | None:
    key = request.headers.get("X-Line-Retry-Key")
    if key is not None and not ids.is_uuid(key):
        raise ApiError(400, "The value of the X-Line-Retry-Key header must be a UUID")
    return key


def _refuse_repeat(state: EmulatorState, key: str | None) -> None:
    accepted = state.accepted(key) if key else None
    if accepted is not None:
        raise ApiError(
            409,
            "The retry key is already accepted",
            headers={"X-Line-Accepted-Request-Id": accepted.request_id},
            extra={"sentMessages": accepted.sent_messages} if accepted.sent_messages else None,
        )


def _check_user_id(user_id: object, prop: str) -> str:
    if not isinstance(user_id, str) or not ids.USER_ID.fullmatch(user_id):
        raise ApiError(400, f"The property, '{prop}', in the request body is invalid")
    return user_id


async def reply(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = check_send(await read_json(request), ReplyMessageRequest)
    user_id = state.use_reply_token(body["replyToken"])
    if user_id is None:
        raise ApiError(400, "Invalid reply token")
    state.deliver(user_id, "reply", body["messages"])
    return web.json_response({"sentMessages": state.sent_messages(body["messages"])})


async def push(request: web.Request) -> web.Response:
    state = request.app[STATE]
    key = _retry_key(request)
    body = check_send(await read_json(request), PushMessageRequest)
    _refuse_repeat(state, key)
    to = _check_user_id(body["to"], "to")
    if to not in state.users:
        raise ApiError(400, "Failed to send messages")
    state.deliver(to, "push", body["messages"])
    sent = state.sent_messages(body["messages"])
    if key:
        state.accept(key, request_id.get(), sent)
    return web.json_response({"sentMessages": sent})


async def multicast(request: web.Request) -> web.Response:
    state = request.app[STATE]
    key = _retry_key(request)
    body = check_send(await read_json(request), MulticastRequest, has_recipients=True)
    _refuse_repeat(state, key)
    recipients = [_check_user_id(to, f"to[{i}]") for i, to in enumerate(body["to"])]
    for user_id in dict.fromkeys(recipients):  # unknown ids are dropped silently, like LINE
        state.deliver(user_id, "multicast", body["messages"])
    if key:
        state.accept(key, request_id.get(), None)
    return web.json_response({})


async def broadcast(request: web.Request) -> web.Response:
    state = request.app[STATE]
    key = _retry_key(request)
    body = check_send(await read_json(request), BroadcastRequest)
    _refuse_repeat(state, key)
    for user_id in list(state.users):
        state.deliver(user_id, "broadcast", body["messages"])
    if key:
        state.accept(key, request_id.get(), None)
    return web.json_response({})


async def narrowcast(request: web.Request) -> web.Response:
    """Audiences and demographic filters are not modelled: every friend is a target."""
    state = request.app[STATE]
    key = _retry_key(request)
    body = check_send(await read_json(request), NarrowcastRequest)
    _refuse_repeat(state, key)
    targets = [u.user_id for u in state.users.values() if u.following and not u.blocked]
    limit = body.get("limit") or {}
    if isinstance(limit.get("max"), int):
        targets = targets[: limit["max"]]
    for user_id in targets:
        state.deliver(user_id, "narrowcast", body["messages"])
    now = iso(datetime.now(UTC))
    rid = request_id.get()
    state.keep_narrowcast(
        rid,
        {
            "phase": "succeeded",
            "successCount": len(targets),
            "failureCount": 0,
            "targetCount": len(targets),
            "acceptedTime": now,
            "completedTime": now,
        },
    )
    if key:
        state.accept(key, rid, None)
    return web.json_response({}, status=202)


async def narrowcast_progress(request: web.Request) -> web.Response:
    state = request.app[STATE]
    rid = request.query.get("requestId")
    if not rid:
        raise bad_request([detail("must be specified", "requestId")])
    progress = state.narrowcasts.get(rid)
    if progress is None:
        raise not_found()
    return web.json_response(progress)


async def profile(request: web.Request) -> web.Response:
    user = request.app[STATE].users.get(request.match_info["userId"])
    if user is None or user.blocked:
        raise not_found()
    return web.json_response(
        {"userId": user.user_id, "displayName": user.display_name, "language": "ja"}
    )


async def bot_info(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "userId": request.app[STATE].bot_user_id,
            "basicId": BOT_BASIC_ID,
            "displayName": BOT_DISPLAY_NAME,
            "chatMode": "bot",
            "markAsReadMode": "auto",
        }
    )


async def loading_start(request: web.Request) -> web.Response:
    body = await read_json(request)
    problems = sdk_problems(ShowLoadingAnimationRequest, body)
    seconds = body.get("loadingSeconds") if isinstance(body, dict) else None
    if not problems and isinstance(seconds, int) and seconds % 5:
        problems = [detail("must be a multiple of 5", "loadingSeconds")]
    if problems:
        raise bad_request(problems)
    return web.json_response({}, status=202)


async def message_content(request: web.Request) -> web.Response:
    stored = request.app[STATE].contents.get(request.match_info["messageId"])
    if stored is None:
        raise not_found()
    data, content_type = stored
    return web.Response(body=data, content_type=content_type)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v2/bot/message/reply", reply)
    router.add_post("/v2/bot/message/push", push)
    router.add_post("/v2/bot/message/multicast", multicast)
    router.add_post("/v2/bot/message/broadcast", broadcast)
    router.add_post("/v2/bot/message/narrowcast", narrowcast)
    router.add_get("/v2/bot/message/progress/narrowcast", narrowcast_progress)
    router.add_get("/v2/bot/message/{messageId}/content", message_content)
    router.add_get("/v2/bot/profile/{userId}", profile)
    router.add_get("/v2/bot/info", bot_info)
    router.add_post("/v2/bot/chat/loading/start", loading_start)
