"""Tenant isolation and roles, for every resource and console page: staff of 042056 (気仙沼市)
get 404 for 072133's (伊達市) registrants, staff and API keys; a prefecture sees its
municipalities; operators see no resident rows; viewers cannot write."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from bson import ObjectId

from tests.test_staff_support import Browser, Site, add_registration, open_site


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        yield s


@dataclass
class Tenants:
    a: Browser  # admin of 042056
    b: Browser  # admin of 072133
    reg_a: dict[str, Any]
    reg_b: dict[str, Any]
    reg_b_prefecture: dict[str, Any]  # 福島県, made together with reg_b
    staff_b: str
    key_b: str
    key_b_id: str
    key_a: str


@pytest.fixture
async def tenants(site: Site) -> Tenants:
    a = await site.staff("042056", "admin")
    b = await site.staff("072133", "admin")
    reg_a = await add_registration(site.storage, place_code="042056", nickname="けせんぬま")
    user_b = "U" + secrets.token_hex(16)
    reg_b = await add_registration(
        site.storage, place_code="072133", user_id=user_b, nickname="だてっこ"
    )
    reg_b_pref = await add_registration(
        site.storage, place_code="070009", user_id=user_b, via="072133", nickname="だてっこ"
    )
    _, staff_b = await site.account("072133", "viewer")
    key_b, key_b_id = await site.api_key(b)
    key_a, _ = await site.api_key(a)
    return Tenants(a, b, reg_a, reg_b, reg_b_pref, str(staff_b["_id"]), key_b, key_b_id, key_a)


async def test_api_resources_of_another_municipality_are_404(site: Site, tenants: Tenants) -> None:
    t = tenants
    a = t.a
    reg_b = str(t.reg_b["_id"])
    for method, path in (
        ("GET", f"/registrants/{reg_b}"),
        ("GET", f"/registrants/{t.reg_b_prefecture['_id']}"),
        ("GET", f"/staff/{t.staff_b}"),
        ("DELETE", f"/staff/{t.staff_b}"),
        ("GET", f"/api-keys/{t.key_b_id}"),
        ("DELETE", f"/api-keys/{t.key_b_id}"),
        ("GET", f"/registrants/{ObjectId()}"),
        ("GET", "/registrants/not-an-id"),
        ("DELETE", "/staff/not-an-id"),
    ):
        status, body = await a.api(method, path)
        assert status == 404, (method, path, body)
        assert body == {
            "error": {"code": "not_found", "message": "指定されたデータが見つかりません。"}
        }
    # Nothing happened to B's things.
    assert await site.storage.staff_accounts.by_id_for_session(t.staff_b) is not None
    assert (await site.browser().api("GET", "/me", key=t.key_b))[0] == 200
    # Lists hold only A's.
    status, page = await a.api("GET", "/registrants", params={"limit": "200"})
    listed = {item["id"] for item in page["items"]}
    assert str(t.reg_a["_id"]) in listed and reg_b not in listed
    staff = (await a.api("GET", "/staff"))[1]["items"]
    assert t.staff_b not in {s["id"] for s in staff}
    keys = (await a.api("GET", "/api-keys"))[1]["items"]
    assert t.key_b_id not in {k["id"] for k in keys}
    audit = (await a.api("GET", "/audit"))[1]["items"]
    assert audit and all(b_email not in str(audit) for b_email in (t.b.email,))
    assert (await a.api("GET", "/summary"))[1]["scope"] == "宮城県気仙沼市"


async def test_a_key_of_one_municipality_cannot_read_another(site: Site, tenants: Tenants) -> None:
    client = site.browser()
    status, _ = await client.api("GET", f"/registrants/{tenants.reg_b['_id']}", key=tenants.key_a)
    assert status == 404
    status, _ = await client.api("GET", f"/registrants/{tenants.reg_a['_id']}", key=tenants.key_a)
    assert status == 200
    status, page = await client.api("GET", "/registrants", key=tenants.key_b)
    ids = {item["id"] for item in page["items"]}
    assert str(tenants.reg_b["_id"]) in ids and str(tenants.reg_a["_id"]) not in ids
    status, text = await client.api("GET", "/registrants.csv", key=tenants.key_a)
    assert status == 200 and tenants.reg_a["number"] in text and tenants.reg_b["number"] not in text


async def test_console_pages_of_another_municipality_are_404(site: Site, tenants: Tenants) -> None:
    t = tenants
    a = t.a
    status, html = await a.page(f"/admin/registrants/{t.reg_b['_id']}")
    assert status == 404 and "見つかりません" in html and "だてっこ" not in html
    status, html = await a.page(f"/admin/registrants/{t.reg_a['_id']}")
    assert status == 200 and t.reg_a["number"] in html
    await a.page("/admin/staff")
    status, _, _ = await a.post(f"/admin/staff/{t.staff_b}/delete")
    assert status == 404
    assert await site.storage.staff_accounts.by_id_for_session(t.staff_b) is not None
    await a.page("/admin/api-keys")
    status, _, _ = await a.post(f"/admin/api-keys/{t.key_b_id}/revoke")
    assert status == 404
    assert (await site.browser().api("GET", "/me", key=t.key_b))[0] == 200
    status, html = await a.page("/admin/registrants")
    assert t.reg_a["number"] in html and t.reg_b["number"] not in html
    status, html = await a.page("/admin/staff")
    assert t.b.email not in html
    status, html = await a.page("/admin/audit")
    assert status == 200 and t.b.email not in html
    status, html = await a.page("/admin/registrants", place_code="072133")
    assert t.reg_b["number"] not in html


async def test_a_prefecture_sees_its_municipalities(site: Site, tenants: Tenants) -> None:
    fukushima = await site.staff("070009", "viewer")
    status, page = await fukushima.api("GET", "/registrants", params={"limit": "200"})
    ids = {item["id"] for item in page["items"]}
    assert {str(tenants.reg_b["_id"]), str(tenants.reg_b_prefecture["_id"])} <= ids
    assert str(tenants.reg_a["_id"]) not in ids
    status, one = await fukushima.api("GET", f"/registrants/{tenants.reg_b['_id']}")
    assert status == 200 and one["place_name"] == "福島県伊達市"
    assert (await fukushima.api("GET", f"/registrants/{tenants.reg_a['_id']}"))[0] == 404
    # Narrowing to one municipality: its own, or nothing when it is not in the prefecture.
    status, page = await fukushima.api("GET", "/registrants", params={"place_code": "072133"})
    assert {item["place_code"] for item in page["items"]} == {"072133"}
    status, page = await fukushima.api("GET", "/registrants", params={"place_code": "042056"})
    assert page["items"] == [] and page["total"] == 0
    status, html = await fukushima.page("/admin/registrants")
    assert tenants.reg_b["number"] in html and "伊達市" in html
    # A prefecture's staff and keys are its own, not its municipalities'.
    staff = await site.staff("070009", "admin")
    assert (await staff.api("GET", f"/staff/{tenants.staff_b}"))[0] == 404
    miyagi = await site.staff("040002", "viewer")
    assert (await miyagi.api("GET", f"/registrants/{tenants.reg_a['_id']}"))[0] == 200
    assert (await miyagi.api("GET", f"/registrants/{tenants.reg_b['_id']}"))[0] == 404


async def test_operators_see_national_figures_but_no_resident_rows(
    site: Site, tenants: Tenants
) -> None:
    operator = await site.staff("platform", "admin")
    status, me = await operator.api("GET", "/me")
    assert me["tenant"]["kind"] == "platform"
    status, page = await operator.api("GET", "/registrants", params={"limit": "200"})
    assert status == 200 and page["items"] == [] and page["total"] == 0
    assert (await operator.api("GET", f"/registrants/{tenants.reg_a['_id']}"))[0] == 404
    status, text = await operator.api("GET", "/registrants.csv")
    assert status == 200 and text.lstrip("\ufeff").count("\r\n") == 1  # the header only
    status, summary = await operator.api("GET", "/summary")
    assert summary["scope"] == "全国" and summary["registrations"] >= 3 and summary["people"] >= 2
    status, html = await operator.page("/admin/registrants")
    assert "個々の登録者は表示しません" in html
    assert tenants.reg_a["number"] not in html and "けせんぬま" not in html
    status, html = await operator.page(f"/admin/registrants/{tenants.reg_a['_id']}")
    assert status == 404
    status, html = await operator.page("/admin/")
    assert status == 200 and "全国" in html
    # Operators manage platform staff, not a municipality's.
    assert (await operator.api("GET", f"/staff/{tenants.staff_b}"))[0] == 404


async def test_viewers_and_editors_cannot_manage_staff_or_keys(
    site: Site, tenants: Tenants
) -> None:
    for role in ("viewer", "editor"):
        member = await site.staff("042056", role)
        for method, path, body in (
            ("GET", "/staff", None),
            ("POST", "/staff", {"email": "x@example.jp", "role": "admin"}),
            ("DELETE", f"/staff/{ObjectId()}", None),
            ("GET", "/api-keys", None),
            ("POST", "/api-keys", {"name": "mine"}),
            ("DELETE", f"/api-keys/{ObjectId()}", None),
            ("GET", "/audit", None),
        ):
            status, answer = await member.api(method, path, body)
            assert status == 403, (role, method, path)
            assert answer["error"]["code"] == "forbidden"
        assert (await member.api("GET", "/registrants"))[0] == 200
        assert (await member.api("GET", "/me"))[0] == 200
        for path in ("/admin/staff", "/admin/api-keys", "/admin/audit"):
            status, html = await member.page(path)
            assert status == 403 and "権限がありません" in html
        await member.page("/admin/")
        status, _, _ = await member.post(
            "/admin/staff", {"email": "sneaky@example.jp", "role": "admin"}
        )
        assert status == 403
        status, _, _ = await member.post("/admin/api-keys", {"name": "sneaky"})
        assert status == 403
        # The navigation shows only what the role may open.
        status, html = await member.page("/admin/")
        assert 'href="/admin/registrants"' in html and 'href="/admin/password"' in html
        assert 'href="/admin/staff"' not in html and 'href="/admin/api-keys"' not in html
    assert await site.storage.staff_accounts.by_email_for_login("sneaky@example.jp") is None
    assert await site.storage.api_keys.col.find_one({"name": "sneaky"}) is None
    assert await site.storage.api_keys.col.find_one({"name": "mine"}) is None
