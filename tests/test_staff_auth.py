"""Staff login, throttling, sessions (fixation, idle and absolute expiry), logout, password
change and CSRF, against the running web process and the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from yarl import URL

from bot.settings import Settings
from bot.staff import sessions
from bot.staff.context import secure_cookies
from bot.staff.sessions import session_id
from tests.conftest import make_env
from tests.test_staff_support import PASSWORD, Site, open_site, unique_email


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        yield s


async def audit_actions(site: Site, **query: str) -> list[str]:
    return [doc["action"] for doc in await site.storage.audit.find(query)]


# --- login ----------------------------------------------------------------------------------------


async def test_login_with_the_right_password(site: Site) -> None:
    email, _account = await site.account("042056", "editor")
    browser = site.browser()
    status, html = await browser.page("/admin/")
    assert status == 200 and "ログイン" in html  # redirected to the login page
    status, _, response = await browser.login(email, PASSWORD)
    assert status == 303
    assert response.headers["Location"] == "/admin/"
    cookie = response.cookies["fb_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"]  # PUBLIC_BASE_URL is http in tests
    status, html = await browser.page("/admin/")
    assert status == 200 and "宮城県気仙沼市" in html and email in html
    assert "login" in await audit_actions(site, actor=email)
    stored = await site.storage.staff_accounts.by_email_for_login(email)
    assert stored is not None and stored["last_login_at"] is not None


async def test_login_keeps_the_next_page_but_never_another_site(site: Site) -> None:
    email, _ = await site.account()
    browser = site.browser()
    response = await browser.get_raw("/admin/staff")
    assert response.status == 303
    location = URL(response.headers["Location"])
    assert location.path == "/admin/login" and location.query["next"] == "/admin/staff"
    await browser.page("/admin/login")
    status, _, response = await browser.post(
        "/admin/login", {"email": email, "password": PASSWORD, "next": "/admin/staff"}
    )
    assert status == 303 and response.headers["Location"] == "/admin/staff"
    other = site.browser()
    await other.page("/admin/login")
    _, _, response = await other.post(
        "/admin/login", {"email": email, "password": PASSWORD, "next": "//evil.example/admin/"}
    )
    assert response.headers["Location"] == "/admin/"


async def test_login_with_a_wrong_password_or_unknown_email(site: Site) -> None:
    email, _ = await site.account()
    browser = site.browser()
    status, html, response = await browser.login(email, "wrong password!")
    assert status == 401
    assert "メールアドレスまたはパスワードが正しくありません" in html
    assert "fb_session" not in response.cookies
    status, html, _ = await browser.login(unique_email("nobody"), PASSWORD)
    assert status == 401 and "メールアドレスまたはパスワードが正しくありません" in html
    assert (await browser.api("GET", "/me"))[0] == 401
    failed = await site.storage.audit.find({"action": "login_failed", "target": email})
    assert failed and failed[0]["tenant"] == "042056" and failed[0]["ip"] == "127.0.0.1"


async def test_five_failures_lock_the_account_for_15_minutes(site: Site) -> None:
    email, _ = await site.account()
    browser = site.browser()
    for attempt in range(5):
        status, html, _ = await browser.login(email.upper(), f"wrong password {attempt}")
    assert status == 429 and "一時的にログインできなくしています" in html
    # Locked: even the right password is refused, and says why.
    status, html, _ = await browser.login(email, PASSWORD)
    assert status == 429 and "15分後" in html
    assert "login_locked" in await audit_actions(site, target=email)
    # Another account from the same address still gets in (5 < the per-address limit).
    other_email, _ = await site.account()
    assert (await site.browser().login(other_email, PASSWORD))[0] == 303
    # The lock is in the database, so every web process sees it; after 15 minutes it ends.
    site.stack.clock.offset = timedelta(minutes=16)
    status, _, _ = await browser.login(email, PASSWORD)
    assert status == 303


async def test_failures_from_one_address_lock_that_address(site: Site) -> None:
    email, _ = await site.account()
    browser = site.browser()
    for attempt in range(20):  # many accounts tried from one address
        await browser.login(unique_email(f"guess{attempt}"), "wrong password")
    status, html, _ = await browser.login(email, PASSWORD)
    assert status == 429 and "一時的に" in html
    site.stack.clock.offset = timedelta(minutes=16)
    assert (await browser.login(email, PASSWORD))[0] == 303


async def test_a_success_resets_the_account_counter(site: Site) -> None:
    email, _ = await site.account()
    browser = site.browser()
    for _ in range(4):
        await browser.login(email, "wrong password")
    assert (await browser.login(email, PASSWORD))[0] == 303
    other = site.browser()
    for _ in range(4):
        await other.login(email, "wrong password")
    assert (await other.login(email, PASSWORD))[0] == 303


async def test_the_login_form_needs_its_csrf_token(site: Site) -> None:
    email, _ = await site.account()
    browser = site.browser()
    await browser.page("/admin/login")
    status, _html, response = await browser.post(
        "/admin/login", {"email": email, "password": PASSWORD}, csrf=None
    )
    assert status == 403 and "fb_session" not in response.cookies
    status, _, _ = await browser.post(
        "/admin/login", {"email": email, "password": PASSWORD}, csrf="forged"
    )
    assert status == 403
    # A token made for another browser's login cookie does not fit this one.
    other = site.browser()
    await other.page("/admin/login")
    status, _, _ = await browser.post(
        "/admin/login", {"email": email, "password": PASSWORD}, csrf=other.csrf
    )
    assert status == 403


# --- sessions -------------------------------------------------------------------------------------


async def test_login_makes_a_new_session_id_and_never_adopts_a_planted_one(site: Site) -> None:
    email, account = await site.account()
    browser = site.browser()
    browser.set_session_cookie("attacker-chosen-session-id")
    await browser.login(email, PASSWORD)
    first = browser.session_cookie
    assert first and first != "attacker-chosen-session-id"
    # The database keeps only a hash of the cookie.
    stored = await site.storage.staff_sessions.col.find_one({"account_id": str(account["_id"])})
    assert stored is not None and stored["_id"] == session_id(first) != first


async def test_a_planted_live_session_is_replaced_at_login(site: Site) -> None:
    attacker = await site.staff()
    planted = attacker.session_cookie
    assert planted
    victim_email, _ = await site.account()
    victim = site.browser()
    await victim.page("/admin/login")
    victim.set_session_cookie(planted)  # e.g. set through a sibling domain
    status, _, _ = await victim.post("/admin/login", {"email": victim_email, "password": PASSWORD})
    assert status == 303
    assert victim.session_cookie not in (None, planted)
    # The planted session is gone: the attacker cannot ride the victim's login.
    assert await site.storage.staff_sessions.col.find_one({"_id": session_id(planted)}) is None
    assert (await attacker.api("GET", "/me"))[0] == 401
    status, me = await victim.api("GET", "/me")
    assert status == 200 and me["label"] == victim_email


async def test_idle_sessions_end_after_30_minutes(site: Site) -> None:
    browser = await site.staff()
    assert (await browser.api("GET", "/me"))[0] == 200
    site.stack.clock.offset = timedelta(minutes=29)
    assert (await browser.api("GET", "/me"))[0] == 200  # activity moves the idle deadline
    site.stack.clock.offset = timedelta(minutes=29 + 29)
    assert (await browser.api("GET", "/me"))[0] == 200
    site.stack.clock.offset = timedelta(minutes=29 + 29 + 31)
    status, body = await browser.api("GET", "/me")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    response = await browser.get_raw("/admin/")
    assert response.status == 303 and response.headers["Location"].startswith("/admin/login")


async def test_sessions_end_12_hours_after_login_even_when_active(site: Site) -> None:
    browser = await site.staff()
    minutes = 0
    while minutes + 25 < 12 * 60:
        minutes += 25
        site.stack.clock.offset = timedelta(minutes=minutes)
        status, _ = await browser.api("GET", "/me")
        assert status == 200, minutes
    site.stack.clock.offset = timedelta(hours=12, minutes=1)
    assert (await browser.api("GET", "/me"))[0] == 401


async def test_logout_ends_the_session(site: Site) -> None:
    browser = await site.staff()
    token = browser.session_cookie
    assert token
    status, _, response = await browser.post("/admin/logout")
    assert status == 303 and response.headers["Location"] == "/admin/login?notice=logged_out"
    assert await site.storage.staff_sessions.col.find_one({"_id": session_id(token)}) is None
    # Replaying the old cookie does not work either.
    replay = site.browser()
    replay.set_session_cookie(token)
    assert (await replay.api("GET", "/me"))[0] == 401
    assert "logout" in await audit_actions(site, actor=browser.email)
    status, html = await browser.page("/admin/login", notice="logged_out")
    assert "ログアウトしました" in html


async def test_logout_needs_the_csrf_token(site: Site) -> None:
    browser = await site.staff()
    status, _, _ = await browser.post("/admin/logout", csrf=None)
    assert status == 403
    assert (await browser.api("GET", "/me"))[0] == 200


def test_cookies_are_secure_when_the_site_is_https(mongo_uri: str, db_name: str) -> None:
    https = Settings.from_env(
        make_env(mongo_uri, db_name, PUBLIC_BASE_URL="https://furusato.example.jp")
    )
    http = Settings.from_env(make_env(mongo_uri, db_name))
    assert secure_cookies(https) and not secure_cookies(http)
    response = web.Response()
    sessions.set_cookie(response, "token", secure=secure_cookies(https))
    header = response.cookies["fb_session"].OutputString()
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


# --- password change ------------------------------------------------------------------------------


async def test_password_change_needs_the_current_password_and_ends_other_sessions(
    site: Site,
) -> None:
    email, _ = await site.account("042056", "viewer")
    laptop = site.browser()
    await laptop.login(email, PASSWORD)
    tablet = site.browser()
    await tablet.login(email, PASSWORD)
    await laptop.page("/admin/password")
    new = "a brand new passphrase"

    status, html, _ = await laptop.post(
        "/admin/password", {"current": "not it at all", "new": new, "confirm": new}
    )
    assert status == 422 and "現在のパスワードが正しくありません" in html
    status, html, _ = await laptop.post(
        "/admin/password", {"current": PASSWORD, "new": "short", "confirm": "short"}
    )
    assert status == 422 and "12文字以上" in html
    status, html, _ = await laptop.post(
        "/admin/password", {"current": PASSWORD, "new": new, "confirm": new + "x"}
    )
    assert status == 422 and "一致しません" in html
    assert (await tablet.api("GET", "/me"))[0] == 200  # nothing changed yet

    before = laptop.session_cookie
    status, _, response = await laptop.post(
        "/admin/password", {"current": PASSWORD, "new": new, "confirm": new}
    )
    assert status == 303 and response.headers["Location"] == "/admin/?notice=password_changed"
    assert laptop.session_cookie != before  # the current session got a new id
    assert (await laptop.api("GET", "/me"))[0] == 200
    assert (await tablet.api("GET", "/me"))[0] == 401  # the other session ended
    assert (await site.browser().login(email, PASSWORD))[0] == 401
    assert (await site.browser().login(email, new))[0] == 303
    assert "password_changed" in await audit_actions(site, actor=email)


async def test_password_change_needs_the_csrf_token(site: Site) -> None:
    email, _ = await site.account()
    browser = site.browser()
    await browser.login(email, PASSWORD)
    new = "another long passphrase"
    status, _, _ = await browser.post(
        "/admin/password", {"current": PASSWORD, "new": new, "confirm": new}, csrf="wrong"
    )
    assert status == 403
    assert (await site.browser().login(email, PASSWORD))[0] == 303  # unchanged


async def test_an_initial_password_must_be_changed_first(site: Site) -> None:
    email, _ = await site.account("042056", "admin", must_change=True)
    browser = site.browser()
    await browser.login(email, PASSWORD)
    response = await browser.get_raw("/admin/registrants")
    assert response.status == 303
    assert response.headers["Location"].startswith("/admin/password")
    status, body = await browser.api("GET", "/me")
    assert status == 403 and body["error"]["code"] == "password_change_required"
    await browser.page("/admin/password")
    new = "my own long password"
    status, _, _ = await browser.post(
        "/admin/password", {"current": PASSWORD, "new": new, "confirm": new}
    )
    assert status == 303
    status, _ = await browser.page("/admin/registrants")
    assert status == 200
    assert (await browser.api("GET", "/me"))[0] == 200
