"""Tenant isolation and CSRF for EVERY route of the staff API and console, read from the route
registries (`bot/staff/web.py` API_ROUTES and PAGES): a route added without scoping, or with a
path parameter this file has no object of the other municipality for, fails here.

Two municipalities: A (042056 気仙沼市) and B (072133 伊達市). B owns one of everything, each
marked with a text that must never reach A. Staff of A then call every route with B's ids:
- reads of B's objects answer 404; writes never succeed on B's objects;
- ids that are names chosen per municipality (a benefit id, a template name) reach A's own
  thing, never B's;
- nothing A sees holds B's marks, and everything of B reads the same afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.clock import JST
from bot.domain.gomi5374 import export_5374
from bot.garbage import demo_calendar
from bot.staff.api import PREFIX
from bot.staff.console import PREFIX as CONSOLE
from bot.staff.tenancy import PLATFORM
from bot.staff.web import API_ROUTES, PAGES
from tests.test_staff_support import Browser, Site, add_registration, open_site

A, B = "042056", "072133"
MARK = "Bだけの秘密"  # in every text B writes

# Path parameters that name an object (an ObjectId or a global id): B's is 404 to A.
# Path parameters that are names chosen per municipality: A's own thing of that name.
PER_TENANT_NAMES = {"benefit_id", "question_id", "category_id", "area", "name"}


@dataclass
class World:
    a: Browser  # admin of A
    b: Browser  # admin of B
    ids: dict[str, str]  # path parameter -> B's object


@pytest.fixture
async def site(mongo_uri: str, own_db_name: str) -> AsyncIterator[Site]:
    # Its own database: the objects it makes for two municipalities must not show in other tests.
    async with open_site(mongo_uri, own_db_name) as s:
        yield s


async def _ok(browser: Browser, method: str, path: str, body: Any = None) -> Any:
    status, answer = await browser.api(method, path, body)
    assert status in (200, 201), (method, path, status, answer)
    return answer


async def build_world(site: Site, mark: str = MARK) -> World:
    """A's and B's admins, and one of everything B has, each holding `mark` in its texts."""
    a = await site.staff(A, "admin")
    b = await site.staff(B, "admin")
    storage = site.storage
    now = datetime.now(UTC)
    user_b = "U" + secrets.token_hex(16)
    reg = await add_registration(storage, place_code=B, user_id=user_b, nickname=mark)
    submitted = await storage.premium_applications.submit(
        user_b, B, reg["_id"], "staff_review", now
    )
    assert submitted.application is not None
    application_id = str(submitted.application["_id"])
    await storage.identity_documents.put(
        submitted.application["_id"], user_b, b"\x89PNG " + mark.encode(), "image/png", now
    )
    _, staff_b = await site.account(B, "viewer", email=f"b-{secrets.token_hex(3)}@example.jp")
    _, key_id = await site.api_key(b)
    await _ok(b, "PUT", "/benefits/b-benefit", {"title": mark, "kind": "facility"})
    await _ok(b, "PUT", "/questions/b-question", {"prompt": mark + "？"})
    program_id = f"b-program-{secrets.token_hex(3)}"
    await _ok(b, "PUT", f"/programs/{program_id}", {"name": mark, "member_number_format": "NNNN"})
    starts = (datetime.now(JST) + timedelta(days=5)).replace(microsecond=0, tzinfo=None)
    activity = await _ok(
        b,
        "POST",
        "/activities",
        {
            "title": mark,
            "kind": "volunteer",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "place": mark,
            "capacity": 3,
        },
    )
    news = await _ok(
        b,
        "POST",
        "/news",
        {
            "title": mark,
            "content": {"kind": "text", "text": mark},
            "segment": {},
            "schedule": {"kind": "now"},
        },
    )
    files = {k: v.decode("utf-8") for k, v in export_5374(demo_calendar(B)).items()}
    await _ok(b, "PUT", "/garbage", {"files": files})
    garbage = await _ok(b, "GET", "/garbage")
    await _ok(
        b,
        "PUT",
        "/templates/register/done",
        {"source": mark + "{{ place_name }}のふるさと住民になりました！\n登録番号：{{ number }}"},
    )
    ids = {
        "registrant_id": str(reg["_id"]),
        "application_id": application_id,
        "staff_id": str(staff_b["_id"]),
        "key_id": key_id,
        "benefit_id": "b-benefit",
        "question_id": "b-question",
        "program_id": program_id,
        "activity_id": str(activity["id"]),
        "news_id": str(news["news_id"]),
        "category_id": str(garbage["categories"][0]["id"]),
        "area": str(garbage["areas"][0]["name"]),
        "name": "area_days.csv",  # a file of the calendar export
        "area/name": "register/done",
    }
    return World(a, b, ids)


def fill(path: str, ids: dict[str, str]) -> str:
    """The path with B's objects in its parameters; fails for a parameter without one."""
    if "{area}/{name}" in path:  # templates: area and name together name one
        path = path.replace("{area}/{name}", ids["area/name"])

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"{path}: no object of B for {{{name}}}: add one to build_world"
        return ids[name]

    return re.sub(r"\{([a-z_]+)\}", one, path)


async def snapshot(b: Browser, ids: dict[str, str]) -> dict[str, Any]:
    """Everything B reads through the API (its audit log aside: B's own reads add to it)."""
    seen: dict[str, Any] = {}
    for routes in API_ROUTES:
        for op in routes.operations:
            if op.method != "GET" or op.path in ("/audit", "/me/line"):
                continue
            url = b.base + PREFIX + fill(op.path, ids)
            async with b.http.get(url) as response:
                raw = await response.read()
            body = _stable(json.loads(raw)) if op.produces == "application/json" else raw
            seen[op.path] = (response.status, body)
    return seen


def _stable(value: Any) -> Any:
    """Drop what changes by itself (use times, counters of the clock)."""
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in value.items()
            if k not in ("last_used_at", "generated_at", "now", "as_of")
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


# --- the API --------------------------------------------------------------------------------------


def attack_api(
    document: dict[str, Any],
    base: str,
    cookie: str,
    csrf: str,
    ids: dict[str, str],
    found: list[str],
    counted: list[int],
) -> None:
    """Runs in a thread: every operation of the document, as A's admin, on B's objects, with
    bodies schemathesis makes valid for the operation."""
    schema = schemathesis.openapi.from_dict({**document, "security": []})
    headers = {"Cookie": f"fb_session={cookie}", "X-CSRF-Token": csrf}
    for result in schema.get_all_operations():
        operation = result.ok()
        path = operation.path
        names = re.findall(r"\{([a-z_]+)\}", path)
        if not names:
            continue
        template = "{area}/{name}" in path
        pairs = dict(zip(("area", "name"), ids["area/name"].split("/"), strict=True))
        values = {n: pairs[n] if template else ids.get(n, "") for n in names}
        missing = [n for n in names if not values[n]]
        if missing:
            found.append(f"{operation.label}: no object of B for {missing}")
            continue
        chosen = set(names) <= PER_TENANT_NAMES

        @given(case=operation.as_strategy(path_parameters=values), chosen=st.just(chosen))
        @settings(
            max_examples=2,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case, chosen: bool) -> None:
            method = case.method.upper()
            response = case.call(base_url=base, headers=headers, timeout=10)
            counted.append(1)
            text = response.text
            label = f"{method} {case.formatted_path}"
            if MARK in text:
                found.append(f"{label}: B's data shown to A ({response.status_code})")
            if response.status_code >= 500:
                found.append(f"{label}: {response.status_code}")
            elif not chosen:
                if method == "GET" and response.status_code != 404:
                    found.append(f"{label}: {response.status_code}, not 404")
                elif response.status_code < 300:
                    found.append(f"{label}: {response.status_code} on B's object")

        run()


async def test_every_api_route_keeps_to_its_municipality(site: Site) -> None:
    world = await build_world(site)
    before = await snapshot(world.b, world.ids)
    status, document = await world.a.api("GET", "/openapi.json")
    assert status == 200
    # A made one of a few things too, so A's lists are not empty.
    await _ok(world.a, "PUT", "/benefits/a-benefit", {"title": "Aの特典", "kind": "facility"})
    await add_registration(site.storage, place_code=A, nickname="Aの人")
    cookie = world.a.session_cookie
    assert cookie
    found: list[str] = []
    counted: list[int] = []
    await asyncio.to_thread(
        attack_api, document, site.base + PREFIX, cookie, world.a.csrf, world.ids, found, counted
    )
    # Routes without parameters: A's own views hold nothing of B.
    for routes in API_ROUTES:
        for op in routes.operations:
            if op.method == "GET" and "{" not in op.path:
                status, body = await world.a.api("GET", op.path)
                counted.append(1)
                assert status < 500, op.path
                if MARK in str(body):
                    found.append(f"GET {op.path}: B's data shown to A")
    # Ids in bodies: B's resident marked as attending A's own activity.
    starts = (datetime.now(JST) + timedelta(days=6)).replace(microsecond=0, tzinfo=None)
    activity = await _ok(
        world.a,
        "POST",
        "/activities",
        {
            "title": "Aの清掃",
            "kind": "volunteer",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "place": "A",
            "capacity": 3,
        },
    )
    status, _ = await world.a.api(
        "POST",
        f"/activities/{activity['id']}/attendance",
        {"registration_id": world.ids["registrant_id"]},
    )
    assert status == 404
    assert not found, "\n".join(found)
    assert await snapshot(world.b, world.ids) == before
    audit = str((await world.b.api("GET", "/audit"))[1])
    assert world.a.email not in audit
    print(f"tenant isolation (API): {len(counted)} requests of A against B")


# --- the console ----------------------------------------------------------------------------------


async def test_every_console_page_keeps_to_its_municipality(site: Site) -> None:
    world = await build_world(site)
    before = await snapshot(world.b, world.ids)
    a = world.a
    found: list[str] = []
    count = 0
    for pages in PAGES:
        for page in pages.pages:
            if page.path == "/logout":  # would end A's session (tests/test_staff_auth.py)
                continue
            names = re.findall(r"\{([a-z_]+)\}", page.path)
            path = CONSOLE + fill(page.path, world.ids)
            chosen = set(names) <= PER_TENANT_NAMES
            if page.method == "GET":
                status, html = await a.page(path)
            else:
                await a.page(CONSOLE + "/")  # a fresh CSRF token
                status, html, _ = await a.post(path, {})
            count += 1
            if MARK in html:
                found.append(f"{page.method} {path}: B's data shown to A")
            if status >= 500:
                found.append(f"{page.method} {path}: {status}")
            elif names and not chosen and status != 404:
                found.append(f"{page.method} {path}: {status}, not 404")
    assert not found, "\n".join(found)
    assert (await a.page(CONSOLE + "/"))[0] == 200 and a.email in a.last_html  # still A
    assert await snapshot(world.b, world.ids) == before
    print(f"tenant isolation (console): {count} pages of A against B")


# --- CSRF -----------------------------------------------------------------------------------------


async def test_every_console_form_and_cookie_api_write_needs_the_csrf_token(site: Site) -> None:
    world = await build_world(site)
    other = (await site.staff(B, "admin")).csrf  # another session's token
    before = await snapshot(world.b, world.ids)
    b = world.b
    count = 0
    # Every POST page of the console: no token, another session's, or empty: refused.
    for pages in PAGES:
        for page in pages.pages:
            if page.method != "POST":
                continue
            path = CONSOLE + fill(page.path, world.ids)
            for token in (None, other, ""):
                status, html, _ = await b.post(path, {"title": "x"}, csrf=token)
                count += 1
                assert status == 403 and "正しくない送信" in html, (path, token, status)
    # The login form has its own token.
    status, _, _ = await site.browser().post(
        CONSOLE + "/login", {"email": "x@example.jp", "password": "y"}, csrf=None
    )
    assert status == 403
    # Every API write with the session cookie: without the header, or with a wrong one, 403.
    for routes in API_ROUTES:
        for op in routes.operations:
            if op.method == "GET":
                continue
            url = site.base + PREFIX + fill(op.path, world.ids)
            for header in ({}, {"X-CSRF-Token": other}):
                async with b.http.request(op.method, url, json={}, headers=header) as response:
                    body = await response.json()
                count += 1
                assert response.status == 403, (op.method, op.path, response.status)
                assert body["error"]["code"] == "csrf_failed"
    assert await snapshot(b, world.ids) == before
    print(f"CSRF: {count} forged requests refused")


async def test_every_console_form_carries_the_csrf_token(site: Site) -> None:
    world = await build_world(site)
    b = world.b
    forms = 0
    for pages in PAGES:
        for page in pages.pages:
            if page.method != "GET":
                continue
            response = await b.get_raw(CONSOLE + fill(page.path, world.ids))
            # 404: an editor page wanting its query string
            assert response.status in (200, 404), page.path
            if response.content_type != "text/html":
                continue  # a CSV or an image
            html = await response.text()
            for form in re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S | re.I):
                if re.search(r'method="post"', form, flags=re.I):
                    forms += 1
                    assert f'name="csrf_token" value="{b.csrf}"' in form, (page.path, form[:300])
    assert forms >= 20
    print(f"CSRF: {forms} console forms carry the session's token")


async def test_the_operator_gets_404_on_every_municipal_only_route_and_page(site: Site) -> None:
    """Routes declared `municipal_only` (a municipality's own things) answer the operator 404
    before any handler runs, whatever the object."""
    world = await build_world(site)
    before = await snapshot(world.b, world.ids)
    operator = await site.staff(PLATFORM, "admin")
    wrong: list[str] = []
    apis = [op for routes in API_ROUTES for op in routes.operations if op.municipal_only]
    pages = [page for group in PAGES for page in group.pages if page.municipal_only]
    assert len(apis) >= 30 and len(pages) >= 30  # the benefits, garbage, news … resources
    for op in apis:
        path = fill(op.path, world.ids)
        status, _ = await operator.api(op.method, path, None if op.method == "GET" else {})
        # A write's body is validated first: an empty one may be refused as such (422).
        if status != 404 and not (op.method != "GET" and status == 422):
            wrong.append(f"API {op.method} {path}: {status}")
    for page in pages:
        path = CONSOLE + fill(page.path, world.ids)
        if page.method == "GET":
            status, _ = await operator.page(path)
        else:
            await operator.page(CONSOLE + "/")  # a fresh CSRF token
            status, _, _ = await operator.post(path, {})
        if status != 404:
            wrong.append(f"page {page.method} {path}: {status}")
    assert not wrong, "\n".join(wrong)
    assert await snapshot(world.b, world.ids) == before
    # Nor does the operator's navigation lead there.
    _, home = await operator.page(CONSOLE + "/")
    links = set(re.findall(r'<a\b[^>]*href="([^"]+)"', home))
    hidden = {CONSOLE + page.path for page in pages if page.nav is not None}
    assert hidden and not links & hidden, sorted(links & hidden)
