"""The card verification page: `GET /verify/{token}` and the card's QR code `/verify/{token}/qr.png`.

Shop or collection-center staff scan the card's QR code and see, large, whether the card is valid
(有効), expired (有効期限切れ) or revoked (失効), with the municipality, tier and nickname: nothing
else personal. Every token that is not genuine (forged, altered, garbage, too long, a wrong path)
gets the same 404 page, so the answer tells nothing about why. Both endpoints are rate limited per
client IP against token enumeration.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pymongo.errors import PyMongoError

from bot.app import CLOCK, SETTINGS, STORAGE
from bot.cards import CardCheck, check_card, qr_png, verify_url_for_token
from bot.clock import JST
from bot.domain.cards import CardStatus, verify_card_token

log = logging.getLogger(__name__)

PAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"

# The page: never cached or indexed, never leaks the token through a Referer, never framed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}
# The QR image depends only on the (genuine) token: caches, including LINE's image proxy, may keep it.
QR_HEADERS = {
    "Cache-Control": "public, max-age=86400",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


# --- rate limiting --------------------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client: `capacity` requests at once, refilled over `per_seconds`.

    In memory, per process: with N web processes a client gets N times the rate, which still
    makes enumeration hopeless (tokens carry a 128-bit MAC). At most `max_clients` buckets are
    kept; the least recently used go first.
    """

    def __init__(
        self,
        capacity: int,
        per_seconds: float,
        *,
        now: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        if capacity < 1 or per_seconds <= 0:
            raise ValueError("capacity must be >= 1 and per_seconds > 0")
        self.capacity = float(capacity)
        self.rate = capacity / per_seconds
        self._now = now
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, client: str) -> float:
        """Take a token: 0.0 when allowed, else the seconds until the next one."""
        now = self._now()
        bucket = self._buckets.pop(client, None)
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[client] = bucket  # most recently used last
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


@dataclass
class VerifyLimits:
    """The page allows 30 requests a minute per IP; the QR image (also fetched by LINE's image
    servers for every card shown) 300."""

    page: RateLimiter
    qr: RateLimiter

    @classmethod
    def default(cls) -> VerifyLimits:
        return cls(page=RateLimiter(30, 60.0), qr=RateLimiter(300, 60.0))


VERIFY_LIMITS = web.AppKey("verify_limits", VerifyLimits)


def client_ip(request: web.Request) -> str:
    """The peer address. Behind a proxy, run aiohttp with a trusted forwarded-header setup."""
    return request.remote or "unknown"


# --- pages ----------------------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(PAGE_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
    )


def _page(
    status: int, context: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    html = _environment().get_template("verify.html").render(context)
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**PAGE_HEADERS, **(headers or {})},
    )


def _checked_at(now: datetime) -> str:
    local = now.astimezone(JST)
    return f"{local.year}年{local.month}月{local.day}日 {local.hour}:{local.minute:02d}"


_HEADLINES = {
    CardStatus.VALID: ("valid", "有効", "この登録証は有効です。"),
    CardStatus.EXPIRED: ("expired", "有効期限切れ", "この登録証は有効期限が切れています。"),
    CardStatus.REVOKED: (
        "revoked",
        "失効",
        "この登録証は失効しています。最新の登録証をLINEで表示してもらってください。",
    ),
}


def card_page(check: CardCheck, now: datetime) -> web.Response:
    state, label, message = _HEADLINES[check.status]
    return _page(
        200,
        {
            "state": state,
            "label": label,
            "message": message,
            "card": check,
            "checked_at": _checked_at(now),
        },
    )


def invalid_page() -> web.Response:
    """The one answer for every token that is not genuine."""
    return _page(
        404,
        {
            "state": "invalid",
            "label": "無効な証明書です",
            "message": "このQRコードはふるさと住民登録証として確認できませんでした。",
            "card": None,
            "checked_at": None,
        },
    )


def too_many_page(retry_after: float) -> web.Response:
    return _page(
        429,
        {
            "state": "busy",
            "label": "しばらくお待ちください",
            "message": "短い時間にたくさんの確認がありました。少し時間をおいてから、もう一度お試しください。",
            "card": None,
            "checked_at": None,
        },
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


def unavailable_page() -> web.Response:
    return _page(
        503,
        {
            "state": "unavailable",
            "label": "ただいま確認できません",
            "message": "システムが混み合っています。少し時間をおいてから、もう一度お試しください。",
            "card": None,
            "checked_at": None,
        },
        headers={"Retry-After": "30"},
    )


# --- handlers -------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _limited(kind: str) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        async def limited(request: web.Request) -> web.StreamResponse:
            limits = request.app[VERIFY_LIMITS]
            limiter = limits.qr if kind == "qr" else limits.page
            wait = limiter.allow(client_ip(request))
            if wait > 0:
                return too_many_page(wait)
            return await handler(request)

        return limited

    return wrap


@_limited("page")
async def verify_page(request: web.Request) -> web.StreamResponse:
    token = request.match_info.get("token", "")
    now = request.app[CLOCK].now()
    try:
        check = await check_card(
            token, storage=request.app[STORAGE], settings=request.app[SETTINGS], now=now
        )
    except PyMongoError:
        log.exception("card verification: database error")
        return unavailable_page()
    if check is None:
        return invalid_page()
    return card_page(check, now)


@_limited("qr")
async def verify_qr(request: web.Request) -> web.StreamResponse:
    """The QR code of a genuine token's verification URL (whatever the card's status)."""
    token = request.match_info.get("token", "")
    settings = request.app[SETTINGS]
    if verify_card_token(token, settings.card_signing_secret.encode()) is None:
        return invalid_page()
    return web.Response(
        body=qr_png(verify_url_for_token(token, settings)),
        content_type="image/png",
        headers=QR_HEADERS,
    )


@_limited("page")
async def not_a_card(request: web.Request) -> web.StreamResponse:
    """Any other path under /verify: the same answer as an invalid token."""
    return invalid_page()


def add_verify_routes(app: web.Application, limits: VerifyLimits | None = None) -> None:
    """Register `/verify/…` (call from `create_app`)."""
    app[VERIFY_LIMITS] = limits or VerifyLimits.default()
    app.router.add_get("/verify/{token}/qr.png", verify_qr)
    app.router.add_get("/verify/{token}", verify_page)
    app.router.add_get("/verify/{tail:.*}", not_a_card)
    app.router.add_get("/verify", not_a_card)
