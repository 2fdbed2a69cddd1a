"""The console `/admin/`: dashboard figures, staff and API key pages, registrants page,
escaping, headers; and the `python -m bot staff add` command and the demo's staff login."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from bot.staff.accounts import ensure_demo_staff
from bot.storage import Storage
from tests.conftest import ROOT, make_env
from tests.test_staff_support import Site, add_registration, open_site, unique_email


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        yield s


def figure(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([0-9,]+)<', html)
    assert match, element_id
    return match.group(1)


async def test_dashboard_shows_people_and_registrations(site: Site) -> None:
    # 鳥取県 and its towns: no other test registers there.
    person = "U" + secrets.token_hex(16)
    await add_registration(site.storage, place_code="312011", user_id=person)
    await add_registration(site.storage, place_code="310000", user_id=person, via="312011")
    await add_registration(site.storage, place_code="312029", user_id=person)
    await add_registration(site.storage, place_code="312011", tier="premium", types=["bearer"])
    city = await site.staff("312011", "viewer")
    status, html = await city.page("/admin/")
    assert status == 200 and "鳥取県鳥取市" in html
    assert figure(html, "people") == "2" and figure(html, "registrations") == "2"
    assert "実人数" in html and "延べ人数" in html and "プレミアム登録" in html
    prefecture = await site.staff("310000", "viewer")
    status, html = await prefecture.page("/admin/")
    assert figure(html, "people") == "2" and figure(html, "registrations") == "4"
    assert "登録の多い市区町村" in html and "米子市" in html


async def test_pages_have_navigation_and_safe_headers(site: Site) -> None:
    admin = await site.staff("042056", "admin")
    async with admin.http.get(f"{site.base}/admin/") as response:
        html = await response.text()
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "script-src" not in response.headers["Content-Security-Policy"]
    for label, href in (
        ("ダッシュボード", "/admin/"),
        ("登録者", "/admin/registrants"),
        ("スタッフ", "/admin/staff"),
        ("APIキー", "/admin/api-keys"),
        ("パスワード変更", "/admin/password"),
    ):
        assert f'<a href="{href}"' in html and label in html
    assert 'action="/admin/logout"' in html and "ログアウト" in html
    assert 'name="viewport"' in html and "/admin/static/console.css" in html
    async with admin.http.get(f"{site.base}/admin/static/console.css") as response:
        assert response.status == 200 and "@media" in await response.text()
    async with admin.http.get(f"{site.base}/admin", allow_redirects=False) as response:
        assert response.status == 308 and response.headers["Location"] == "/admin/"
    status, html = await admin.page("/admin/no-such-page")
    assert status == 404 and "ページが見つかりません" in html and 'href="/admin/staff"' in html
    # Every page renders for an admin.
    for path in (
        "/admin/",
        "/admin/registrants",
        "/admin/staff",
        "/admin/api-keys",
        "/admin/password",
        "/admin/audit",
    ):
        status, _ = await admin.page(path)
        assert status == 200, path


async def test_adding_staff_in_the_console_shows_the_password_once(site: Site) -> None:
    admin = await site.staff("042056", "admin")
    await admin.page("/admin/staff")
    email = unique_email("console")
    status, html, _ = await admin.post("/admin/staff", {"email": email, "role": "editor"})
    assert status == 201 and "さんを追加しました" in html
    match = re.search(r'id="initial-password">([^<]+)<', html)
    assert match
    password = match.group(1)
    status, html = await admin.page("/admin/staff")
    assert email in html and password not in html and "初期パスワード" in html
    newcomer = site.browser()
    assert (await newcomer.login(email, password))[0] == 303
    status, html = await newcomer.page("/admin/registrants")
    assert "新しいパスワードを設定してください" in html  # sent to the password page first

    status, html, _ = await admin.post("/admin/staff", {"email": "nope", "role": "viewer"})
    assert status == 422 and "メールアドレスの形式が正しくありません" in html
    status, html, _ = await admin.post("/admin/staff", {"email": email, "role": "viewer"})
    assert status == 422 and "すでに登録されています" in html
    status, html, _ = await admin.post("/admin/staff", {"email": unique_email(), "role": "owner"})
    assert status == 422 and "「権限」" in html

    staff_id = (await site.storage.staff_accounts.by_email_for_login(email) or {})["_id"]
    status, _, response = await admin.post(f"/admin/staff/{staff_id}/delete")
    assert status == 303 and response.headers["Location"] == "/admin/staff?notice=staff_removed"
    assert await site.storage.staff_accounts.by_email_for_login(email) is None
    me = (await admin.api("GET", "/me"))[1]["id"]
    status, html, _ = await admin.post(f"/admin/staff/{me}/delete")
    assert status == 403 and "ご自身のアカウントは削除できません" in html


async def test_api_keys_in_the_console(site: Site) -> None:
    admin = await site.staff("042056", "admin")
    await admin.page("/admin/api-keys")
    status, html, _ = await admin.post(
        "/admin/api-keys", {"name": "<b>オープンデータ</b>", "role": "viewer"}
    )
    assert status == 201
    key = re.search(r'id="new-key">(fk_[^<]+)<', html)
    assert key
    assert "&lt;b&gt;オープンデータ&lt;/b&gt;" in html and "<b>オープンデータ</b>" not in html
    assert (await site.browser().api("GET", "/me", key=key.group(1)))[0] == 200
    status, html = await admin.page("/admin/api-keys")
    assert key.group(1) not in html and key.group(1)[:9] in html  # only the prefix, once made
    doc = await site.storage.api_keys.col.find_one({"name": "<b>オープンデータ</b>"})
    assert doc is not None
    status, _, _response = await admin.post(f"/admin/api-keys/{doc['_id']}/revoke")
    assert status == 303
    assert (await site.browser().api("GET", "/me", key=key.group(1)))[0] == 401
    status, html, _ = await admin.post("/admin/api-keys", {"name": "", "role": "viewer"})
    assert status == 422 and "「名前」" in html


async def test_registrants_page_filters_and_escapes(site: Site) -> None:
    place = "312037"  # 倉吉市
    evil = "<script>alert(1)</script>"
    await add_registration(site.storage, place_code=place, nickname=evil)
    await add_registration(site.storage, place_code=place, tier="premium", nickname="ぷれみあむ")
    member = await site.staff(place, "viewer")
    status, html = await member.page("/admin/registrants")
    assert status == 200
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "ぷれみあむ" in html and figure(html, "total") == "2"
    for label in ("区分", "関わり方", "居住都道府県", "年代", "きっかけ", "登録日（から）"):
        assert label in html
    status, html = await member.page("/admin/registrants", tier="premium")
    assert "ぷれみあむ" in html and "alert(1)" not in html and figure(html, "total") == "1"
    assert '<option value="premium" selected>' in html
    status, html = await member.page("/admin/registrants", tier="gold")
    assert status == 200 and "「tier」は次のいずれか" in html


async def test_pages_need_a_login(site: Site) -> None:
    anonymous = site.browser()
    for path in ("/admin/", "/admin/registrants", "/admin/staff", "/admin/password"):
        response = await anonymous.get_raw(path)
        assert response.status == 303 and response.headers["Location"].startswith("/admin/login")
    status, _, response = await anonymous.post(
        "/admin/staff", {"email": "x@example.jp", "role": "admin"}, csrf="x"
    )
    assert status == 303 and "session_expired" in response.headers["Location"]


# --- command line and demo ------------------------------------------------------------------------


def run_cli(
    mongo_uri: str, db_name: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **make_env(mongo_uri, db_name)}
    env.pop("MONGODB_URI_OVERRIDE", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", "staff", "add", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


async def test_the_staff_add_command(site: Site, mongo_uri: str, db_name: str) -> None:
    email = unique_email("cli")
    result = run_cli(
        mongo_uri, db_name, "--municipality", "042056", "--email", email, "--role", "admin"
    )
    assert result.returncode == 0, result.stderr
    assert "宮城県気仙沼市" in result.stdout and "管理者" in result.stdout
    match = re.search(r"初期パスワード: (\S+)", result.stdout)
    assert match
    browser = site.browser()
    assert (await browser.login(email, match.group(1)))[0] == 303
    assert (await browser.api("GET", "/me"))[1]["error"]["code"] == "password_change_required"
    added = await site.storage.audit.find({"action": "staff_added", "target": email})
    assert added and added[0]["actor_kind"] == "cli"

    own = unique_email("cli-stdin")
    result = run_cli(
        mongo_uri,
        db_name,
        "--municipality",
        "070009",
        "--email",
        own,
        "--role",
        "viewer",
        "--password-stdin",
        stdin="my chosen password\n",
    )
    assert result.returncode == 0, result.stderr
    assert "初期パスワード" not in result.stdout
    browser = site.browser()
    assert (await browser.login(own, "my chosen password"))[0] == 303
    assert (await browser.api("GET", "/me"))[1]["tenant"]["name"] == "福島県"

    result = run_cli(
        mongo_uri, db_name, "--operator", "--email", unique_email("op"), "--role", "viewer"
    )
    assert result.returncode == 0 and "運営" in result.stdout

    for args, stdin, message in (
        (
            ("--municipality", "999999", "--email", unique_email(), "--role", "admin"),
            "",
            "自治体コード",
        ),
        (("--municipality", "042056", "--email", email, "--role", "admin"), "", "すでに登録"),
        (
            (
                "--municipality",
                "042056",
                "--email",
                unique_email(),
                "--role",
                "admin",
                "--password-stdin",
            ),
            "short\n",
            "12文字以上",
        ),
        (("--municipality", "042056", "--email", "bad", "--role", "admin"), "", "メールアドレス"),
    ):
        result = run_cli(mongo_uri, db_name, *args, stdin=stdin)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)


async def test_ensure_demo_staff(site: Site) -> None:
    storage: Storage = site.storage
    email = unique_email("demo")
    password = await ensure_demo_staff(storage, email=email)
    assert password and len(password) >= 12
    assert await ensure_demo_staff(storage, email=email) is None
    browser = site.browser()
    assert (await browser.login(email, password))[0] == 303
    status, me = await browser.api("GET", "/me")
    assert status == 200 and me["role"] == "admin" and me["tenant"]["code"] == "042056"
