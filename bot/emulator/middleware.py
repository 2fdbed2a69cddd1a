"""What every Messaging API request goes through: request id, token, faults, rate limit, stats."""

from __future__ import annotations

import asyncio
import contextvars
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.emulator import ids
from bot.emulator.errors import ApiError
from bot.emulator.state import STATE, EmulatorState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_PREFIX = "/v2/"
AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
RATE_LIMITED = "The API rate limit has been exceeded. Try again later."
FAULT_MESSAGES = {
    429: RATE_LIMITED,
    500: "An internal server error occurred (injected by the emulator)",
    502: "Bad gateway (injected by the emulator)",
    503: "Service unavailable (injected by the emulator)",
}

# The x-line-request-id of the request being handled (handlers need it for 409 and narrowcast).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("emulator_request_id")


def route_of(request: web.Request) -> str:
    """The route template (`/v2/bot/profile/{userId}`), so stats and limits group by endpoint."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


@web.middleware
async def platform(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    rid = ids.request_id()
    request_id.set(rid)
    api = request.path.startswith(API_PREFIX)
    response: web.StreamResponse
    try:
        if api:
            await _gate(request, state)
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:  # the router's 404/405, body too large, ...
        response = web.json_response({"message": exc.reason}, status=exc.status)
    if api:
        state.count_request(route_of(request), response.status)
    response.headers["X-Line-Request-Id"] = rid
    return response


async def _gate(request: web.Request, state: EmulatorState) -> None:
    expected = f"Bearer {state.access_token}"
    if not hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), expected.encode()
    ):
        raise ApiError(401, AUTH_FAILED)
    fault = state.faults.take(request.path)
    if fault is not None:
        await asyncio.sleep(fault.latency)
        if fault.status is not None:
            raise ApiError(
                fault.status,
                FAULT_MESSAGES.get(fault.status, f"HTTP {fault.status} (injected by the emulator)"),
            )
    if not state.rate_limiter.allow(request.method, route_of(request), state.clock()):
        raise ApiError(429, RATE_LIMITED)
