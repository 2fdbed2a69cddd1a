"""The registrants CSV export: BOM, Japanese headers and labels, formula injection neutralised,
filters, streaming of many rows, the audit entry, and CSRF on the console's export button."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from bot.staff.api import PREFIX
from bot.staff.resources.registrants import safe_cell
from tests.test_staff_support import Browser, Site, add_registration, open_site


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        yield s


async def download(browser: Browser, path: str, **params: str) -> tuple[bytes, dict[str, str]]:
    async with browser.http.get(f"{browser.base}{PREFIX}{path}", params=params) as response:
        assert response.status == 200, await response.text()
        return await response.read(), dict(response.headers)


def rows_of(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel then reads the Japanese right
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8"), newline="")))


DANGEROUS = {
    '=HYPERLINK("http://evil.example","click")': '\'=HYPERLINK("http://evil.example","click")',
    "+81-90-0000": "'+81-90-0000",
    "-1+2": "'-1+2",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\tcmd": "'\tcmd",
    "\rcmd": "'\rcmd",
    "ふつうの名前": "ふつうの名前",
    'comma, and "quotes"': 'comma, and "quotes"',
}


def test_safe_cell() -> None:
    for raw, expected in DANGEROUS.items():
        assert safe_cell(raw) == expected
    assert safe_cell("") == ""
    assert safe_cell("a=b") == "a=b"


async def test_csv_neutralises_formulas_has_a_bom_and_is_audited(site: Site) -> None:
    place = "015601"  # 滝上町: only this test registers here
    for nickname in DANGEROUS:
        await add_registration(site.storage, place_code=place, nickname=nickname)
    member = await site.staff(place, "viewer")
    body, headers = await download(member, "/registrants.csv")
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"].startswith('attachment; filename="registrants-015601-')
    assert headers["Cache-Control"] == "no-store"
    rows = rows_of(body)
    assert rows[0] == [
        "登録番号",
        "登録先コード",
        "登録先",
        "区分",
        "関わり方",
        "居住都道府県",
        "年代",
        "きっかけ",
        "ニックネーム",
        "登録日",
        "有効期限",
        "状態",
    ]
    nicknames = sorted(row[8] for row in rows[1:])
    assert nicknames == sorted(DANGEROUS.values())
    first = rows[1]
    assert first[2] == "北海道滝上町" and first[3] == "ベーシック登録" and first[4] == "訪問・経済"
    assert (
        first[5] == "東京都" and first[6] == "30代" and first[7] == "出身" and first[11] == "有効"
    )
    for row in rows[1:]:
        assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    entries = await site.storage.audit.find(
        {"action": "registrants_exported", "actor": member.email}
    )
    assert len(entries) == 1
    entry = entries[0]
    assert entry["tenant"] == place and entry["ip"] == "127.0.0.1"
    assert entry["actor_kind"] == "staff" and entry["details"]["filters"] == {}
    assert "ふつうの名前" not in str(entry)  # no resident data in the log


async def test_csv_follows_the_filters(site: Site) -> None:
    place = "015610"  # another Hokkaido town, only here
    await add_registration(site.storage, place_code=place, tier="premium", nickname="premium-one")
    await add_registration(site.storage, place_code=place, nickname="basic-one")
    member = await site.staff(place, "viewer")
    body, _ = await download(member, "/registrants.csv", tier="premium")
    rows = rows_of(body)
    assert [row[8] for row in rows[1:]] == ["premium-one"]
    entry = (
        await site.storage.audit.find({"action": "registrants_exported", "actor": member.email})
    )[0]
    assert entry["details"]["filters"] == {"tier": "premium"}
    key, _ = await site.api_key(await site.staff(place, "admin"))
    async with site.browser().http.get(
        f"{site.base}{PREFIX}/registrants.csv", headers={"Authorization": f"Bearer {key}"}
    ) as response:
        assert response.status == 200
        assert len(rows_of(await response.read())) == 3
    by_key = await site.storage.audit.find(
        {"action": "registrants_exported", "actor_kind": "api_key"}
    )
    assert any(e["tenant"] == place for e in by_key)


async def test_csv_streams_many_rows(site: Site) -> None:
    place = "463035"  # 三島村
    now = datetime.now(UTC).replace(microsecond=0)
    docs: list[dict[str, Any]] = [
        {
            "_id": ObjectId(),
            "user_id": "U" + secrets.token_hex(16),
            "place_code": place,
            "tier": "basic",
            "status": "active",
            "types": ["visit"],
            "connection": "fan",
            "residence_code": "131016",
            "age_band": "40s",
            "nickname": f"n{i}",
            "number": f"{place}-{i:06d}-0",
            "since": now - timedelta(minutes=i),
            "valid_until": None,
            "card_version": 1,
            "via": None,
            "answers": {},
            "created_at": now,
        }
        for i in range(1, 1203)
    ]
    await site.storage.registrations.col.insert_many(docs)
    member = await site.staff(place, "viewer")
    body, _ = await download(member, "/registrants.csv")
    rows = rows_of(body)
    assert len(rows) == 1 + 1202
    assert len({row[0] for row in rows[1:]}) == 1202  # every registration once
    _status, page = await member.api("GET", "/registrants", params={"limit": "1"})
    assert page["total"] == 1202


async def test_console_export_button_needs_the_csrf_token(site: Site) -> None:
    place = "015628"
    await add_registration(site.storage, place_code=place, nickname="=1+1")
    await add_registration(site.storage, place_code=place, tier="premium", nickname="p")
    member = await site.staff(place, "viewer")
    status, html = await member.page("/admin/registrants", tier="basic")
    assert status == 200 and "CSVで出力" in html
    assert '<input type="hidden" name="tier" value="basic">' in html
    status, _, _ = await member.post("/admin/registrants/export", {"tier": "basic"}, csrf=None)
    assert status == 403
    assert not await site.storage.audit.find(
        {"action": "registrants_exported", "actor": member.email}
    )
    async with member.http.post(
        f"{site.base}/admin/registrants/export",
        data={"tier": "basic", "csrf_token": member.csrf},
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        rows = rows_of(await response.read())
    assert [row[8] for row in rows[1:]] == ["'=1+1"]
    entries = await site.storage.audit.find(
        {"action": "registrants_exported", "actor": member.email}
    )
    assert len(entries) == 1 and entries[0]["details"]["filters"] == {"tier": "basic"}
