"""The JSON API `/api/v1`: me, staff, API keys, registrants with filters and pages, errors as
JSON with Japanese messages, and the OpenAPI document."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from openapi_spec_validator import validate

from bot.staff.api import PREFIX
from bot.staff.web import API_ROUTES
from tests.test_staff_support import PASSWORD, Site, add_registration, open_site, unique_email


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        yield s


async def test_me_with_a_session_and_with_a_key(site: Site) -> None:
    admin = await site.staff("042056", "admin")
    status, me = await admin.api("GET", "/me")
    assert status == 200
    assert me["auth"] == "session" and me["label"] == admin.email and me["role"] == "admin"
    assert me["tenant"] == {"code": "042056", "name": "宮城県気仙沼市", "kind": "municipality"}
    assert me["csrf_token"] == admin.csrf
    key, key_id = await site.api_key(admin)
    status, me = await site.browser().api("GET", "/me", key=key)
    assert status == 200
    assert me["auth"] == "api_key" and me["id"] == key_id and me["role"] == "viewer"
    assert me["csrf_token"] is None


async def test_no_credentials_bad_keys_and_bad_headers_are_401(site: Site) -> None:
    anonymous = site.browser()
    status, body = await anonymous.api("GET", "/me")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert "ログイン" in body["error"]["message"]
    status, body = await anonymous.api("GET", "/me", key="fk_not-a-real-key")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    async with anonymous.http.get(
        f"{site.base}{PREFIX}/me", headers={"Authorization": "Basic abc"}
    ) as response:
        assert response.status == 401
    # Unknown paths under /api/v1 need credentials too, then answer JSON 404.
    assert (await anonymous.api("GET", "/nothing-here"))[0] == 401
    admin = await site.staff()
    status, body = await admin.api("GET", "/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await admin.api("PUT", "/me", {})
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


async def test_api_keys_are_shown_once_work_and_stop_when_revoked(site: Site) -> None:
    admin = await site.staff("042056", "admin")
    status, created = await admin.api("POST", "/api-keys", {"name": "集計システム"})
    assert status == 201
    key = created["key"]
    key_id = created["api_key"]["id"]
    assert key.startswith("fk_") and len(key) > 40
    assert created["api_key"]["role"] == "viewer" and created["api_key"]["last_used_at"] is None
    # Only a hash is stored, and listings never show the key again.
    stored = await site.storage.api_keys.col.find_one({"name": "集計システム", "tenant": "042056"})
    assert stored is not None and key not in str(stored)
    status, listing = await admin.api("GET", "/api-keys")
    assert status == 200 and key not in str(listing)
    assert any(item["id"] == key_id for item in listing["items"])

    client = site.browser()
    status, page = await client.api("GET", "/registrants", key=key)
    assert status == 200 and "items" in page
    status, one = await admin.api("GET", f"/api-keys/{key_id}")
    assert status == 200 and one["last_used_at"] is not None

    status, _ = await admin.api("DELETE", f"/api-keys/{key_id}")
    assert status == 204
    status, body = await client.api("GET", "/registrants", key=key)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, one = await admin.api("GET", f"/api-keys/{key_id}")
    assert one["revoked_at"] is not None
    actions = {d["action"] for d in await site.storage.audit.find({"details.key_id": key_id})}
    assert {"api_key_created", "api_key_revoked"} <= actions


async def test_keys_cannot_manage_staff_or_keys(site: Site) -> None:
    admin = await site.staff()
    for role in ("viewer", "editor"):
        key, _ = await site.api_key(admin, role)
        client = site.browser()
        status, body = await client.api("GET", "/staff", key=key)
        assert status == 403 and body["error"]["code"] == "forbidden"
        assert "権限" in body["error"]["message"]
        status, _ = await client.api(
            "POST", "/api-keys", {"name": "escalate", "role": "editor"}, key=key
        )
        assert status == 403
    status, body = await admin.api("POST", "/api-keys", {"name": "x", "role": "admin"})
    assert status == 422 and body["error"]["field"] == "role"


async def test_staff_accounts_through_the_api(site: Site) -> None:
    admin = await site.staff("042056", "admin")
    email = unique_email("new")
    status, created = await admin.api("POST", "/staff", {"email": email.upper(), "role": "editor"})
    assert status == 201
    assert created["staff"]["email"] == email and created["staff"]["role"] == "editor"
    password = created["initial_password"]
    assert password and len(password) >= 12 and created["staff"]["must_change_password"]
    status, listing = await admin.api("GET", "/staff")
    assert email in [item["email"] for item in listing["items"]]
    assert "password" not in str(listing).replace("must_change_password", "")

    newcomer = site.browser()
    assert (await newcomer.login(email, password))[0] == 303

    status, body = await admin.api("POST", "/staff", {"email": email, "role": "viewer"})
    assert status == 409 and body["error"]["code"] == "email_taken"
    me = (await admin.api("GET", "/me"))[1]
    status, body = await admin.api("DELETE", f"/staff/{me['id']}")
    assert status == 409 and body["error"]["code"] == "cannot_remove_self"

    status, _ = await admin.api("DELETE", f"/staff/{created['staff']['id']}")
    assert status == 204
    assert (await newcomer.api("GET", "/me"))[0] == 401  # their sessions ended
    assert (await admin.api("GET", f"/staff/{created['staff']['id']}"))[0] == 404
    removed = await site.storage.audit.find({"action": "staff_removed", "target": email})
    assert removed and removed[0]["actor"] == admin.email and removed[0]["tenant"] == "042056"


async def test_a_given_password_is_checked_and_needs_no_change(site: Site) -> None:
    admin = await site.staff()
    email = unique_email()
    status, body = await admin.api(
        "POST", "/staff", {"email": email, "role": "viewer", "password": "short"}
    )
    assert status == 422 and body["error"]["field"] == "password"
    status, body = await admin.api(
        "POST", "/staff", {"email": email, "role": "viewer", "password": "long enough password"}
    )
    assert status == 201 and body["initial_password"] is None
    assert not body["staff"]["must_change_password"]


async def test_validation_errors_are_422_and_name_the_field(site: Site) -> None:
    admin = await site.staff()
    cases: list[tuple[Any, str]] = [
        ({"email": "not-an-email", "role": "viewer"}, "email"),
        ({"email": unique_email(), "role": "boss"}, "role"),
        ({"role": "viewer"}, "email"),
        ({"email": unique_email(), "role": "viewer", "extra": 1}, "extra"),
    ]
    for body, field in cases:
        status, answer = await admin.api("POST", "/staff", body)
        assert status == 422, body
        assert answer["error"]["code"] == "validation_error"
        assert answer["error"]["field"] == field
        assert f"「{field}」" in answer["error"]["message"]
    async with admin.http.post(
        f"{site.base}{PREFIX}/staff",
        data=b"{not json",
        headers={"Content-Type": "application/json", "X-CSRF-Token": admin.csrf},
    ) as response:
        answer = await response.json()
        assert response.status == 422 and answer["error"]["code"] == "invalid_json"
    for params, field in (
        ({"tier": "gold"}, "tier"),
        ({"since_from": "2027-13-40"}, "since_from"),
        ({"residence_prefecture": "131016"}, "residence_prefecture"),
        ({"limit": "0"}, "limit"),
        ({"colour": "red"}, "colour"),
    ):
        status, answer = await admin.api("GET", "/registrants", params=params)
        assert status == 422 and answer["error"]["field"] == field, (params, answer)
    status, answer = await admin.api(
        "GET", "/registrants", params={"residence_prefecture": "131016"}
    )
    assert "都道府県の6桁コード" in answer["error"]["message"]


async def test_session_api_calls_that_change_things_need_the_csrf_header(site: Site) -> None:
    admin = await site.staff()
    status, body = await admin.api("POST", "/api-keys", {"name": "no csrf"}, csrf=False)
    assert status == 403 and body["error"]["code"] == "csrf_failed"
    assert not await site.storage.api_keys.col.find_one({"name": "no csrf"})
    # Keys need none (they are not sent by browsers on their own).
    status, _ = await admin.api("POST", "/api-keys", {"name": "with csrf"})
    assert status == 201


async def test_registrants_filters_and_pages(site: Site) -> None:
    admin = await site.staff("212156", "viewer")  # 山県市: no other test registers here
    t0 = datetime(2027, 1, 10, 3, 0, tzinfo=UTC)  # 12:00 JST
    docs = [
        await add_registration(site.storage, place_code="212156", since=t0),
        await add_registration(
            site.storage,
            place_code="212156",
            tier="premium",
            types=["bearer"],
            residence_code="271004",  # 大阪市
            age_band="60s",
            connection="fan",
            since=t0 + timedelta(days=1, hours=14),  # 2027-01-12 02:00 JST
            valid_until=t0 + timedelta(days=365),
        ),
        await add_registration(
            site.storage,
            place_code="212156",
            types=["dual_residence"],
            since=t0 + timedelta(days=5),
        ),
    ]
    ids = [str(d["_id"]) for d in docs]

    async def found(**params: str) -> list[str]:
        status, page = await admin.api("GET", "/registrants", params=params)
        assert status == 200, page
        return [item["id"] for item in page["items"]]

    assert await found() == ids[::-1]  # newest first
    assert await found(tier="premium") == [ids[1]]
    assert await found(type="visit") == [ids[0]]
    assert await found(type="bearer") == [ids[1]]
    assert await found(residence_prefecture="270008") == [ids[1]]
    assert await found(residence_prefecture="130001") == [ids[2], ids[0]]
    assert await found(age_band="60s") == [ids[1]]
    assert await found(connection="fan") == [ids[1]]
    assert await found(since_from="2027-01-12", since_to="2027-01-12") == [ids[1]]
    assert await found(since_to="2027-01-11") == [ids[0]]
    assert await found(since_from="2027-01-13") == [ids[2]]

    status, first = await admin.api("GET", "/registrants", params={"limit": "2"})
    assert [i["id"] for i in first["items"]] == [ids[2], ids[1]] and first["total"] == 3
    status, second = await admin.api(
        "GET", "/registrants", params={"limit": "2", "cursor": first["next_cursor"]}
    )
    assert [i["id"] for i in second["items"]] == [ids[0]] and second["next_cursor"] is None

    status, one = await admin.api("GET", f"/registrants/{ids[1]}")
    assert status == 200
    assert one == {
        "id": ids[1],
        "number": docs[1]["number"],
        "place_code": "212156",
        "place_name": "岐阜県山県市",
        "tier": "premium",
        "types": ["bearer"],
        "residence_prefecture": "270008",
        "residence_prefecture_name": "大阪府",
        "age_band": "60s",
        "connection": "fan",
        "nickname": "けせもい",
        "since": "2027-01-12",
        "valid_until": "2028-01-10",
        "status": "active",
    }
    # Pseudonymous: never the LINE user id, the answers, or the residence municipality.
    status, page = await admin.api("GET", "/registrants")
    text = str(page)
    for doc in docs:
        assert doc["user_id"] not in text
    assert "secret answer" not in text and "271004" not in text


@pytest.fixture
async def own_site(mongo_uri: str, own_db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, own_db_name) as s:
        yield s


async def test_summary_counts_people_and_registrations(own_site: Site) -> None:
    # A database of its own: exact counts for 島根県, whatever other tests register there.
    site = own_site
    same_person = "U" + secrets.token_hex(16)
    await add_registration(site.storage, place_code="322016", user_id=same_person)
    await add_registration(site.storage, place_code="320005", user_id=same_person, via="322016")
    await add_registration(site.storage, place_code="322024", tier="premium", types=["bearer"])
    prefecture = await site.staff("320005", "viewer")
    status, summary = await prefecture.api("GET", "/summary")
    assert status == 200
    assert summary["people"] == 2 and summary["registrations"] == 3
    assert summary["by_tier"] == {"basic": 2, "premium": 1}
    assert summary["by_type"] == {"visit": 2, "economic": 2, "bearer": 1}
    assert summary["own_registrations"] == 1
    assert [(p["code"], p["registrations"]) for p in summary["top_places"]] == [
        ("322016", 1),
        ("322024", 1),
    ]
    city = await site.staff("322016", "viewer")
    status, summary = await city.api("GET", "/summary")
    assert summary["people"] == 1 and summary["registrations"] == 1


async def test_the_openapi_document_is_valid_and_lists_every_operation(site: Site) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{site.base}{PREFIX}/openapi.json") as response,
    ):
        assert response.status == 200
        document = await response.json()  # valid JSON; no credentials needed
    validate(document)
    assert document["openapi"].startswith("3.1")
    registered = {(op.method.lower(), op.path) for routes in API_ROUTES for op in routes.operations}
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == registered
    assert {
        "/me",
        "/staff",
        "/staff/{staff_id}",
        "/api-keys",
        "/api-keys/{key_id}",
        "/registrants",
        "/registrants/{registrant_id}",
        "/registrants.csv",
    } <= set(document["paths"])
    create = document["paths"]["/staff"]["post"]
    assert create["x-required-role"] == "admin"
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StaffCreate"
    }
    assert "422" in create["responses"] and "201" in create["responses"]
    params = {p["name"] for p in document["paths"]["/registrants"]["get"]["parameters"]}
    assert {
        "tier",
        "type",
        "residence_prefecture",
        "age_band",
        "connection",
        "since_from",
        "since_to",
        "limit",
        "cursor",
    } <= params
    assert "text/csv" in document["paths"]["/registrants.csv"]["get"]["responses"]["200"]["content"]
    # The schemas are the models that validate: the role enum is the one the API accepts.
    assert set(document["components"]["schemas"]["Role"]["enum"]) == {"admin", "editor", "viewer"}


async def test_errors_and_passwords_never_leak_through_the_api(site: Site) -> None:
    admin = await site.staff()
    status, listing = await admin.api("GET", "/staff")
    assert status == 200
    assert "argon2" not in str(listing) and PASSWORD not in str(listing)
