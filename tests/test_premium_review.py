"""The staff side of Premium: racing approvals decide once and tell once, tenant isolation on
every route, roles, the reason's rules, the audit log, and the console page プレミアム審査."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import ObjectId

from tests.test_premium_support import (
    apply,
    open_premium_site,
    pending_id,
    png,
    resident,
    texts,
)
from tests.test_staff_support import Browser, Site

ROUTES = ("", "/document", "/approve", "/reject")


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_premium_site(mongo_uri, db_name) as s:
        yield s


async def applied(site: Site, name: str = "山田", place: str = "302015") -> tuple[Any, str]:
    chat, _ = await resident(site, name, place_code=place)
    await apply(chat, png())
    await chat.inbox(wait=0.2)  # nothing else waiting
    return chat, await pending_id(site, chat.user_id)


async def call(browser: Browser, route: str, app_id: str) -> tuple[int, Any]:
    path = f"/premium-applications/{app_id}{route}"
    if route == "/document":
        response = await browser.get_raw("/api/v1" + path)
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.read()
    if route == "/approve":
        return await browser.api("POST", path)
    if route == "/reject":
        return await browser.api("POST", path, {"reason": "読めませんでした。"})
    return await browser.api("GET", path)


async def pushes(site: Site) -> int:
    stats = await site.stack.emulator("GET", "/_emulator/stats")
    return int(stats["requests"].get("/v2/bot/message/push", {}).get("200", 0))


async def test_racing_decisions_decide_once_and_tell_once(site: Site) -> None:
    chat, app_id = await applied(site)
    deciders = [await site.staff("302015", role) for role in ("admin", "editor", "editor")]
    before = await pushes(site)
    results = await asyncio.gather(
        *(b.api("POST", f"/premium-applications/{app_id}/approve") for b in deciders),
        *(
            b.api("POST", f"/premium-applications/{app_id}/reject", {"reason": "やり直し"})
            for b in deciders
        ),
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409, 409, 409, 409], results
    losers = [body for status, body in results if status == 409]
    assert all(body["error"]["code"] == "already_decided" for body in losers)
    winner = next(body for status, body in results if status == 200)

    entries = await chat.inbox(wait=1.0)
    await asyncio.sleep(0.3)
    entries += await chat.inbox(wait=0.2)
    said = texts(entries)
    told = said.count("承認されました") + said.count("承認されませんでした")
    assert told == 1, said
    assert await pushes(site) == before + 1

    registration = (await site.storage.registrations.for_user(chat.user_id))[0]
    if winner["status"] == "approved":
        assert registration["tier"] == "premium" and registration["card_version"] == 2
    else:
        assert registration["tier"] == "basic" and registration["card_version"] == 1
    audited = await site.storage.audit.find({"target": app_id})
    assert len([e for e in audited if e["action"] in ("premium_approved", "premium_rejected")]) == 1


async def test_every_route_is_404_outside_the_tenant(site: Site) -> None:
    _, app_id = await applied(site)
    outsiders = [
        await site.staff("422011", "admin"),  # another municipality
        await site.staff("300004", "admin"),  # its prefecture: the municipality decides
        await site.staff("platform", "admin"),  # operators
    ]
    for browser in outsiders:
        status, listing = await browser.api("GET", "/premium-applications")
        assert status == 200 and all(item["id"] != app_id for item in listing["items"])
        for route in ROUTES:
            status, body = await call(browser, route, app_id)
            assert status == 404, (route, body)
            assert body["error"]["code"] == "not_found"
        for path in (f"/admin/premium/{app_id}", f"/admin/premium/{app_id}/document"):
            status, html = await browser.page(path)
            assert status == 404 and "見つかりません" in html
        await browser.page("/admin/premium")
        assert app_id not in browser.last_html
        status, _, _ = await browser.post(f"/admin/premium/{app_id}/approve")
        assert status == 404
        status, _, _ = await browser.post(f"/admin/premium/{app_id}/reject", {"reason": "x"})
        assert status == 404
    owner = await site.staff("302015", "editor")
    for route in ROUTES:  # unknown and malformed ids look the same
        assert (await call(owner, route, str(ObjectId())))[0] == 404
        assert (await call(owner, route, "nonsense"))[0] == 404
    stored = await site.storage.premium_applications.get(app_id)
    assert stored is not None and stored["status"] == "pending"


async def test_viewers_look_but_cannot_decide(site: Site) -> None:
    _, app_id = await applied(site)
    viewer = await site.staff("302015", "viewer")
    status, body = await viewer.api("GET", f"/premium-applications/{app_id}")
    assert status == 200 and body["status"] == "pending"
    response = await viewer.get_raw(f"/api/v1/premium-applications/{app_id}/document")
    assert response.status == 200 and response.content_type == "image/png"
    for route in ("/approve", "/reject"):
        status, body = await call(viewer, route, app_id)
        assert status == 403 and body["error"]["code"] == "forbidden"
    status, html = await viewer.page(f"/admin/premium/{app_id}")
    assert status == 200 and "承認する" not in html and "編集者か管理者" in html
    status, _, _ = await viewer.post(f"/admin/premium/{app_id}/approve")
    assert status == 403
    # An API key of the viewer role cannot either; an editor key can.
    admin = await site.staff("302015", "admin")
    viewer_key, _ = await site.api_key(admin, "viewer")
    status, _ = await admin.api("POST", f"/premium-applications/{app_id}/approve", key=viewer_key)
    assert status == 403
    editor_key, _ = await site.api_key(admin, "editor")
    status, body = await admin.api(
        "POST", f"/premium-applications/{app_id}/approve", key=editor_key
    )
    assert status == 200 and body["status"] == "approved"
    stored = await site.storage.premium_applications.get(app_id)
    assert stored is not None and stored["decided_by"].startswith("key ")


async def test_the_reason_is_required_and_short(site: Site) -> None:
    _, app_id = await applied(site)
    editor = await site.staff("302015", "editor")
    path = f"/premium-applications/{app_id}/reject"
    for body in (
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": "あ" * 201},
        {"reason": "a\x07b"},
    ):
        status, answer = await editor.api("POST", path, body)
        assert status == 422, (body, answer)
        assert answer["error"]["field"] == "reason"
    status, answer = await editor.api("POST", path, {"reason": "あ" * 200})
    assert status == 200 and answer["reason"] == "あ" * 200
    status, answer = await editor.api("POST", f"/premium-applications/{app_id}/approve")
    assert status == 409 and answer["error"]["code"] == "already_decided"


async def test_audit_log_records_views_and_decisions(site: Site) -> None:
    _, first = await applied(site, "一郎")
    _, second = await applied(site, "二郎")
    admin = await site.staff("302015", "admin")
    assert (await call(admin, "/document", first))[0] == 200
    await admin.api("POST", f"/premium-applications/{first}/approve")
    await admin.api("POST", f"/premium-applications/{second}/reject", {"reason": "秘密の理由"})
    status, body = await admin.api("GET", "/audit")
    assert status == 200
    entries = [(e["action"], e["target"]) for e in body["items"]]
    assert ("premium_document_viewed", first) in entries
    assert ("premium_approved", first) in entries
    assert ("premium_rejected", second) in entries
    assert "秘密の理由" not in str(body)  # the reason may describe the resident
    for entry in body["items"]:
        if entry["target"] in (first, second):
            assert entry["details"] == {"place_code": "302015"}
            assert entry["actor"] == admin.email
    status, html = await admin.page("/admin/audit")
    assert "プレミアム登録の承認" in html and "プレミアム審査書類の閲覧" in html


async def test_an_unregistered_resident_is_withdrawn_not_decided(site: Site) -> None:
    editor = await site.staff("302015", "editor")
    for route in ("/approve", "/reject"):
        chat, app_id = await applied(site)
        await site.storage.registrations.remove(chat.user_id, "302015")
        status, body = await call(editor, route, app_id)
        assert status == 409 and body["error"]["code"] == "registration_removed"
        status, body = await editor.api("GET", f"/premium-applications/{app_id}")
        assert body["status"] == "withdrawn" and body["has_document"] is False
        assert body["registration_number"] is None
        assert texts(await chat.inbox(wait=0.3)) == ""
        assert (await call(editor, route, app_id))[0] == 409  # decided: withdrawn


async def test_console_review_page(site: Site) -> None:
    chat, app_id = await applied(site, "花子")
    other_chat, other_id = await applied(site, "次郎")
    editor = await site.staff("302015", "editor")
    status, html = await editor.page("/admin/")
    assert "プレミアム審査" in html
    status, html = await editor.page("/admin/premium")
    assert status == 200 and f"/admin/premium/{app_id}" in html and "確認する" in html

    status, html = await editor.page(f"/admin/premium/{app_id}")
    assert status == 200 and f'src="/admin/premium/{app_id}/document"' in html
    response = await editor.get_raw(f"/admin/premium/{app_id}/document")
    assert response.status == 200 and response.content_type == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.read() == png()

    # A rejection needs a reason; without one the page says so and nothing is decided.
    status, html, _ = await editor.post(f"/admin/premium/{app_id}/reject", {"reason": "  "})
    assert status == 422 and "承認しない理由" in html and "入力してください" in html
    status, _, _ = await editor.post(f"/admin/premium/{app_id}/approve", csrf=False)
    assert status == 403  # no CSRF token
    stored = await site.storage.premium_applications.get(app_id)
    assert stored is not None and stored["status"] == "pending"

    status, _, response = await editor.post(
        f"/admin/premium/{app_id}/reject", {"reason": "写真がぼやけていて読めませんでした。"}
    )
    assert status == 303
    assert response.headers["Location"].endswith(f"/admin/premium/{app_id}?notice=premium_rejected")
    status, html = await editor.page(f"/admin/premium/{app_id}")
    assert "不承認" in html and "写真がぼやけていて読めませんでした。" in html
    assert "書類の写真はありません" in html
    assert "写真がぼやけていて読めませんでした。" in texts(await chat.inbox())

    await editor.page(f"/admin/premium/{other_id}")
    status, _, response = await editor.post(f"/admin/premium/{other_id}/approve")
    assert status == 303 and "notice=premium_approved" in response.headers["Location"]
    await editor.page(f"/admin/premium/{other_id}?notice=premium_approved")
    assert "申請者にLINEでお知らせしました" in editor.last_html
    assert "承認されました" in texts(await other_chat.inbox())
    status, _, response = await editor.post(f"/admin/premium/{other_id}/approve")
    assert status == 303 and "premium_already_decided" in response.headers["Location"]

    await editor.page("/admin/premium")
    pending_section = editor.last_html.split("最近の審査結果")[0]
    assert app_id not in pending_section and other_id not in pending_section
    assert re.search(r'id="pending-count">\d+<', editor.last_html)
