"""The card verification page and QR image against the real database: statuses, forged tokens,
escaping, headers, the QR code's pixels, and the rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import segno
from aiohttp.test_utils import TestClient, TestServer
from bson import ObjectId

from bot.app import STORAGE, create_app
from bot.cards import QR_ERROR, card_token, verify_url
from bot.clock import JST, Clock
from bot.devdb import LocalFerret
from bot.domain.cards import sign_card_token
from bot.emulator.app import create_emulator_app
from bot.settings import Settings
from bot.storage import Storage
from bot.web.verify import VERIFY_LIMITS, RateLimiter, VerifyLimits
from tests.conftest import make_env
from tests.test_card_qr import decode_qr_png, png_pixels, symbol_from_pixels

Client = TestClient[Any, Any]


class FakeTime:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@asynccontextmanager
async def line_emulator(settings: Settings) -> AsyncIterator[Settings]:
    """The settings with LINE's API served by an in-process emulator: the web process talks to
    LINE when it starts (rich menus)."""
    emulator = create_emulator_app(
        channel_secret=settings.line_channel_secret,
        access_token=settings.line_channel_access_token,
        webhook_url=None,
    )
    server = TestServer(emulator, host="127.0.0.1")
    await server.start_server()
    try:
        yield replace(settings, line_api_base_url=str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()


@pytest.fixture
async def settings(settings: Settings) -> AsyncIterator[Settings]:
    async with line_emulator(settings) as wired:
        yield wired


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(settings: Settings, clock: Clock, aiohttp_client: Any) -> AsyncIterator[Client]:
    app = create_app(settings, clock)
    # Plenty of requests for the functional tests; the rate-limit tests set their own.
    app[VERIFY_LIMITS] = VerifyLimits(page=RateLimiter(1000, 60), qr=RateLimiter(1000, 60))
    yield await aiohttp_client(app)


def set_now(clock: Clock, when: datetime) -> None:
    clock.offset = when - datetime.now(UTC)


async def add_registration(storage: Storage, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "user_id": "U" + ObjectId().binary.hex() + "0" * 8,
        "place_code": "042056",
        "tier": "basic",
        "status": "active",
        "types": ["visit", "economic"],
        "connection": "birthplace",
        "residence_code": "131016",
        "age_band": "30s",
        "nickname": "けせもい",
        "number": "042056-000123-2",
        "since": now,
        "valid_until": None,
        "card_version": 1,
        "via": "chat",
        "answers": {},
        "created_at": now,
    }
    doc.update(overrides)
    await storage.registrations.col.insert_one(doc)
    return doc


def path_of(reg: dict[str, Any], settings: Settings) -> str:
    return "/verify/" + card_token(reg, settings.card_signing_secret)


def assert_page_headers(response: Any) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Type"].startswith("text/html")


async def get_page(client: Client, path: str, status: int) -> str:
    response = await client.get(path)
    assert response.status == status
    assert_page_headers(response)
    html = await response.text()
    assert '<html lang="ja">' in html
    assert 'name="viewport"' in html
    return html


# --- statuses -------------------------------------------------------------------------------------


async def test_valid_card(client: Client, storage: Storage, settings: Settings) -> None:
    reg = await add_registration(storage)
    html = await get_page(client, path_of(reg, settings), 200)
    assert 'class="status valid"' in html
    assert "<h1>有効</h1>" in html
    for shown in ("宮城県気仙沼市", "ベーシック登録", "けせもい", "期限なし"):
        assert shown in html
    # Nothing more personal: no registration number, user, residence, age or relationship.
    for private in (reg["number"], reg["user_id"], "131016", "30s", "birthplace", "visit"):
        assert private not in html


async def test_valid_premium_until_the_last_day(
    client: Client, storage: Storage, settings: Settings, clock: Clock
) -> None:
    # valid_until is the last valid day: 2028-01-08 (midnight in Japan, stored in UTC).
    last_day = datetime(2028, 1, 8, tzinfo=JST).astimezone(UTC)
    reg = await add_registration(storage, place_code="070009", tier="premium", valid_until=last_day)
    set_now(clock, datetime(2028, 1, 8, 23, 59, tzinfo=JST))
    html = await get_page(client, path_of(reg, settings), 200)
    assert "<h1>有効</h1>" in html
    assert "福島県" in html and "プレミアム登録" in html and "2028年1月8日" in html

    set_now(clock, datetime(2028, 1, 9, 0, 0, 30, tzinfo=JST))
    html = await get_page(client, path_of(reg, settings), 200)
    assert 'class="status expired"' in html
    assert "<h1>有効期限切れ</h1>" in html


async def test_expired_premium(client: Client, storage: Storage, settings: Settings) -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    reg = await add_registration(storage, tier="premium", valid_until=past)
    html = await get_page(client, path_of(reg, settings), 200)
    assert "<h1>有効期限切れ</h1>" in html
    assert "プレミアム登録" in html and "けせもい" in html


async def test_revoked_when_the_card_version_was_bumped(
    client: Client, storage: Storage, settings: Settings
) -> None:
    reg = await add_registration(storage)
    old_path = path_of(reg, settings)
    await storage.registrations.col.update_one({"_id": reg["_id"]}, {"$inc": {"card_version": 1}})
    html = await get_page(client, old_path, 200)
    assert 'class="status revoked"' in html
    assert "<h1>失効</h1>" in html
    assert "けせもい" not in html  # a superseded card shows its status alone
    # The new card is valid.
    html = await get_page(client, path_of({**reg, "card_version": 2}, settings), 200)
    assert "<h1>有効</h1>" in html


async def test_revoked_when_not_active(
    client: Client, storage: Storage, settings: Settings
) -> None:
    reg = await add_registration(storage, status="withdrawn")
    html = await get_page(client, path_of(reg, settings), 200)
    assert "<h1>失効</h1>" in html


async def test_deleted_registration_is_revoked(
    client: Client, storage: Storage, settings: Settings
) -> None:
    reg = await add_registration(storage)
    await storage.registrations.col.delete_one({"_id": reg["_id"]})
    html = await get_page(client, path_of(reg, settings), 200)
    assert "<h1>失効</h1>" in html
    assert "宮城県気仙沼市" not in html


async def test_genuine_token_for_an_id_that_is_no_object_id(
    client: Client, settings: Settings
) -> None:
    token = sign_card_token("not-an-object-id", 1, settings.card_signing_secret.encode())
    html = await get_page(client, f"/verify/{token}", 200)
    assert "<h1>失効</h1>" in html


# --- invalid tokens: one answer, 404, never a 5xx ---------------------------------------------------


def _flip(char: str) -> str:
    return "B" if char == "A" else "A"


async def test_every_invalid_token_gets_the_same_404(
    client: Client, storage: Storage, settings: Settings
) -> None:
    reg = await add_registration(storage)
    token = card_token(reg, settings.card_signing_secret)
    payload, mac = token.split(".")
    invalid = [
        "/verify/" + sign_card_token(str(reg["_id"]), 1, b"another-secret-of-enough-length!!"),
        f"/verify/{payload}.{_flip(mac[0])}{mac[1:]}",  # altered MAC
        f"/verify/{_flip(payload[0])}{payload[1:]}.{mac}",  # altered payload
        f"/verify/{token[:-1]}",  # truncated
        f"/verify/{token}x",
        f"/verify/{token.upper()}",
        "/verify/garbage",
        "/verify/" + "A" * 5000,
        "/verify/%00%ff%3Cscript%3E",
        "/verify/..%2F..%2Fetc%2Fpasswd",
        f"/verify/{token}/extra",
        f"/verify/{token}/",
        "/verify/",
        "/verify",
    ]
    bodies = set()
    for path in invalid:
        html = await get_page(client, path, 404)
        assert "無効な証明書です" in html, path
        bodies.add(html)
    assert len(bodies) == 1  # not an oracle: the same page for every kind of invalid token
    # Longer than aiohttp reads a request line: refused before any handler, still no 5xx.
    response = await client.get("/verify/" + "A" * 20_000)
    assert 400 <= response.status < 500


async def test_head_and_other_methods(client: Client, storage: Storage, settings: Settings) -> None:
    reg = await add_registration(storage)
    response = await client.head(path_of(reg, settings))
    assert response.status == 200
    response = await client.post(path_of(reg, settings))
    assert response.status == 405


@pytest.mark.slow
async def test_database_away_is_503_never_invalid_or_revoked(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    ferret = LocalFerret(tmp_path / "db")
    await ferret.start_and_wait()
    try:
        base = Settings.from_env(make_env(ferret.uri, "cards_down"))
        async with line_emulator(base) as settings:
            client = await aiohttp_client(create_app(settings))
            storage = client.app[STORAGE]
            reg = await add_registration(storage)
            assert (await client.get(path_of(reg, settings))).status == 200
            ferret.stop()
            html = await get_page(client, path_of(reg, settings), 503)
            assert "ただいま確認できません" in html
            assert "失効" not in html and "無効" not in html
            # Invalid tokens need no database: still the invalid page.
            await get_page(client, "/verify/garbage", 404)
            # Shut down with the database still away: bounded (tests/test_faults_database.py).
            await client.close()
    finally:
        ferret.stop()


# --- escaping ---------------------------------------------------------------------------------------


async def test_nickname_is_escaped(client: Client, storage: Storage, settings: Settings) -> None:
    reg = await add_registration(storage, nickname="<script>alert(1)</script>")
    html = await get_page(client, path_of(reg, settings), 200)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    reg = await add_registration(storage, nickname='"><img src=x onerror=alert(1)>')
    html = await get_page(client, path_of(reg, settings), 200)
    assert "<img" not in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


# --- the QR code ------------------------------------------------------------------------------------


async def test_qr_png_encodes_the_verify_url(
    client: Client, storage: Storage, settings: Settings
) -> None:
    reg = await add_registration(storage)
    url = verify_url(reg, settings)
    response = await client.get(path_of(reg, settings) + "/qr.png")
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/png"
    assert "noindex" in response.headers["X-Robots-Tag"]
    png = await response.read()
    # The image decodes back to the verification URL ...
    assert decode_qr_png(png) == url
    # ... and is, module for module, segno's QR code of that URL with its quiet zone.
    expected = segno.make(url, error=QR_ERROR, micro=False)
    matrix = [[bool(v) for v in row] for row in expected.matrix_iter(border=0)]
    assert symbol_from_pixels(png_pixels(png)) == matrix
    # A second request gives the same image.
    again = await client.get(path_of(reg, settings) + "/qr.png")
    assert await again.read() == png


async def test_qr_png_of_invalid_tokens_is_404(
    client: Client, storage: Storage, settings: Settings
) -> None:
    reg = await add_registration(storage)
    forged = sign_card_token(str(reg["_id"]), 1, b"another-secret-of-enough-length!!")
    for token in (forged, "garbage", "A" * 3000):
        response = await client.get(f"/verify/{token}/qr.png")
        assert response.status == 404
        assert "無効な証明書です" in await response.text()


# --- rate limit -------------------------------------------------------------------------------------


async def test_rate_limit_answers_429_after_the_limit(
    settings: Settings, aiohttp_client: Any
) -> None:
    fake = FakeTime()
    app = create_app(settings)
    app[VERIFY_LIMITS] = VerifyLimits(
        page=RateLimiter(30, 60, now=fake), qr=RateLimiter(30, 60, now=fake)
    )
    client = await aiohttp_client(app)
    for i in range(30):
        response = await client.get(f"/verify/guess{i}")
        assert response.status == 404
    response = await client.get("/verify/guess30")
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    assert '<html lang="ja">' in html and "しばらく" in html
    # A genuine token is limited too (the limit counts requests, not failures).
    token = sign_card_token(str(ObjectId()), 1, settings.card_signing_secret.encode())
    assert (await client.get(f"/verify/{token}")).status == 429
    # The QR image has a bucket of its own.
    assert (await client.get(f"/verify/{token}/qr.png")).status == 200
    # Tokens come back at 30 a minute.
    fake.t += 2.0
    assert (await client.get(f"/verify/{token}")).status == 200
    assert (await client.get(f"/verify/{token}")).status == 429


async def test_default_limit_is_thirty_a_minute(settings: Settings, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(settings))
    statuses = [(await client.get(f"/verify/guess{i}")).status for i in range(31)]
    assert statuses[:30] == [404] * 30
    assert statuses[30] == 429


def test_rate_limiter_buckets_per_client_and_bounded() -> None:
    fake = FakeTime()
    limiter = RateLimiter(2, 60, now=fake, max_clients=3)
    assert limiter.allow("a") == 0 and limiter.allow("a") == 0
    assert limiter.allow("a") == pytest.approx(30.0)
    assert limiter.allow("b") == 0  # another client has its own bucket
    fake.t += 30
    assert limiter.allow("a") == 0
    for client in ("c", "d", "e"):
        limiter.allow(client)
    assert len(limiter._buckets) == 3  # the least recently used were dropped
    with pytest.raises(ValueError):
        RateLimiter(0, 60)
