"""`POST /callback`: verify the signature on the raw body, store the events, answer at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import pymongo
from aiohttp import web
from pymongo.errors import PyMongoError

from bot.line.pipeline import Pipeline

log = logging.getLogger("bot.webhook")

PIPELINE = web.AppKey("pipeline", Pipeline)
CHANNEL_SECRET = web.AppKey("channel_secret", bytes)
# Time the webhook may spend storing events before it answers 503 (LINE waits about 2 s).
STORE_TIMEOUT_S = 1.5


def signature_ok(secret: bytes, body: bytes, signature: str) -> bool:
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.encode("ascii", "replace"))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def callback(request: web.Request) -> web.Response:
    body = await request.read()
    signature = request.headers.get("X-Line-Signature", "")
    if not signature or not signature_ok(request.app[CHANNEL_SECRET], body, signature):
        # Never log the body: it holds what residents wrote.
        log.warning("webhook rejected: bad signature", extra={"bytes": len(body)})
        return _error(400, "invalid signature")
    try:
        payload = json.loads(body)
        events = payload["events"]
        if not isinstance(events, list):
            raise TypeError("events is not a list")
    except (ValueError, KeyError, TypeError):
        log.warning("webhook rejected: malformed body", extra={"bytes": len(body)})
        return _error(400, "malformed webhook body")
    pipeline = request.app[PIPELINE]
    users: list[str] = []
    try:
        # Answer LINE within its ~2 s even when the database is away, so the answer is ours.
        with pymongo.timeout(STORE_TIMEOUT_S):
            await pipeline.accept(events, users)
    except PyMongoError as exc:
        # Not stored means not handled: a 5xx makes LINE redeliver the events later; events
        # stored before the error are handled now and their redeliveries skipped.
        log.warning("webhook not stored: database unavailable", extra={"error": type(exc).__name__})
        return _error(503, "temporarily unavailable")
    finally:
        # Outside the timeout block: the handling tasks must not inherit its deadline.
        pipeline.schedule(users)
    return web.json_response({})
