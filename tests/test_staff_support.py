"""Helpers of the staff tests (no tests here): a browser-like client per staff member over the
running stack (emulator + web process + real database), and registrations to look at."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from bson import ObjectId
from yarl import URL

from bot.line.incoming import Incoming, Replier
from bot.staff.accounts import add_staff
from bot.staff.audit import CLI
from bot.storage import Storage
from tests.stack import Stack, start_stack

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def unique_email(prefix: str = "staff") -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.jp"


@dataclass
class Browser:
    """One browser (its own cookie jar) talking to the web process."""

    http: aiohttp.ClientSession
    base: str
    email: str = ""
    csrf: str = ""
    last_html: str = ""

    @property
    def session_cookie(self) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == "fb_session":
                return cookie.value
        return None

    def set_session_cookie(self, value: str) -> None:
        self.http.cookie_jar.update_cookies({"fb_session": value}, URL(self.base))

    async def page(self, path: str, **params: str) -> tuple[int, str]:
        """GET a console page (following redirects); remembers the page's CSRF token."""
        async with self.http.get(self.base + path, params=params) as response:
            html = await response.text()
            self.last_html = html
            if match := _CSRF.search(html):
                self.csrf = match.group(1)
            return response.status, html

    async def get_raw(self, path: str, **params: str) -> aiohttp.ClientResponse:
        response = await self.http.get(self.base + path, params=params, allow_redirects=False)
        await response.read()
        return response

    async def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        csrf: str | bool | None = True,
        follow: bool = False,
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        """POST a console form; `csrf=True` adds the token of the last page, a str that token,
        None/False none."""
        form = dict(data or {})
        if csrf is True:
            form["csrf_token"] = self.csrf
        elif isinstance(csrf, str):
            form["csrf_token"] = csrf
        async with self.http.post(self.base + path, data=form, allow_redirects=follow) as response:
            html = await response.text()
            self.last_html = html
            return response.status, html, response

    async def login(self, email: str, password: str) -> tuple[int, str, aiohttp.ClientResponse]:
        await self.page("/admin/login")
        status, html, response = await self.post(
            "/admin/login", {"email": email, "password": password}
        )
        if status == 303:
            self.email = email
            await self.page("/admin/")  # fetch a page to learn the session's CSRF token
        return status, html, response

    async def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        csrf: bool = True,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers: dict[str, str] = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        elif csrf and self.csrf and method not in ("GET", "HEAD"):
            headers["X-CSRF-Token"] = self.csrf
        async with self.http.request(
            method, self.base + "/api/v1" + path, json=body, headers=headers, params=params
        ) as response:
            text = await response.text()
            if response.content_type == "application/json" and text:
                return response.status, await response.json()
            return response.status, text


@dataclass
class Site:
    stack: Stack
    browsers: list[Browser] = field(default_factory=list)

    @property
    def storage(self) -> Storage:
        return self.stack.services.storage

    @property
    def base(self) -> str:
        return self.stack.bot_url

    def browser(self) -> Browser:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        browser = Browser(http, self.base)
        self.browsers.append(browser)
        return browser

    async def account(
        self,
        tenant: str = "042056",
        role: str = "admin",
        *,
        email: str | None = None,
        password: str = PASSWORD,
        must_change: bool = False,
    ) -> tuple[str, dict[str, Any]]:
        email = email or unique_email(f"{role}-{tenant}")
        doc, _ = await add_staff(
            self.storage,
            datetime.now(UTC),
            tenant_code=tenant,
            email=email,
            role=role,
            actor=CLI,
            password=password,
            must_change_password=must_change,
        )
        return email, doc

    async def staff(self, tenant: str = "042056", role: str = "admin") -> Browser:
        """A browser with a staff member of `tenant` logged in."""
        email, _ = await self.account(tenant, role)
        browser = self.browser()
        status, html, _ = await browser.login(email, PASSWORD)
        assert status == 303, html
        return browser

    async def api_key(self, browser: Browser, role: str = "viewer") -> tuple[str, str]:
        """A new API key made by an admin's browser: (key, key id)."""
        status, body = await browser.api(
            "POST", "/api-keys", {"name": f"key {secrets.token_hex(3)}", "role": role}
        )
        assert status == 201, body
        return body["key"], body["api_key"]["id"]

    async def close(self) -> None:
        for browser in self.browsers:
            await browser.http.close()


async def ignore_events(incoming: Incoming, reply: Replier) -> None:
    """The staff tests send no chat messages; the dialog engine is not needed."""


@asynccontextmanager
async def open_site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    """The stack (emulator + web process + database) with browsers for staff."""
    async for stack in start_stack(mongo_uri, db_name, handler_factory=lambda _: ignore_events):
        # Login failures are counted per address in the shared test database; start clean.
        await stack.services.storage.login_throttle.col.delete_many({})
        site = Site(stack)
        try:
            yield site
        finally:
            await site.close()
            await stack.services.storage.login_throttle.col.delete_many({})


async def add_registration(storage: Storage, **overrides: Any) -> dict[str, Any]:
    """A registration as the dialog engine writes it (see bot/storage/registrations.py)."""
    now = datetime.now(UTC).replace(microsecond=0)
    place = overrides.get("place_code", "042056")
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "user_id": "U" + secrets.token_hex(16),
        "place_code": place,
        "tier": "basic",
        "status": "active",
        "types": ["visit", "economic"],
        "connection": "hometown",
        "residence_code": "131016",
        "age_band": "30s",
        "nickname": "けせもい",
        "number": f"{place}-{secrets.randbelow(999999):06d}-0",
        "since": now,
        "valid_until": None,
        "card_version": 1,
        "via": None,
        "answers": {"q1": "secret answer"},
        "created_at": now,
        "updated_at": now,
    }
    doc.update(overrides)
    await storage.registrations.col.insert_one(doc)
    await storage.stats.registrations_changed(doc["user_id"])  # as the store's writes do
    return doc
