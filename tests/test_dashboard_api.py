"""`GET /api/v1/stats`, `/stats/trend` and `/summary`: the dashboard's figures as JSON, always
those of the caller's tenant.

Places of 徳島県: no other test registers there (the database is shared)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.jobs.snapshots import take_snapshots
from tests.test_staff_support import Site, open_site
from tests.test_stats_support import application, new_user

TOKUSHIMA, TOKUSHIMA_CITY, NARUTO = "360007", "362018", "362026"


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        yield s


async def test_figures_are_scoped_to_the_tenant(site: Site) -> None:
    store, now = site.storage.registrations, site.stack.clock.now()
    # 徳島市: two people from 北海道; 鳴門市: five people from 沖縄県, aged 70+.
    for _ in range(2):
        await store.create_basic(
            application(new_user(), TOKUSHIMA_CITY, residence_code="011002"), now
        )
    for _ in range(5):
        await store.create_basic(
            application(new_user(), NARUTO, residence_code="472018", age_band="70_plus"), now
        )
    city = await site.staff(TOKUSHIMA_CITY, "viewer")
    status, stats = await city.api("GET", "/stats")
    assert status == 200
    assert (stats["scope"], stats["scope_code"], stats["kind"]) == (
        "徳島県徳島市",
        TOKUSHIMA_CITY,
        "municipality",
    )
    assert (stats["people"], stats["registrations"]) == (2, 2)
    assert [(b["value"], b["label"], b["people"]) for b in stats["by_residence_prefecture"]] == [
        ("010006", "北海道", 2)
    ]
    ages = {b["value"]: b["registrations"] for b in stats["by_age_band"]}
    assert ages["30s"] == 2 and ages["70_plus"] == 0
    assert stats["places"] == [] and stats["prefectures"] == [] and stats["targets"] == []
    # Nothing of 鳴門市 in 徳島市's answers, whichever way it asks.
    key, _ = await site.api_key(await site.staff(TOKUSHIMA_CITY, "admin"))
    for body in (
        stats,
        (await city.api("GET", "/stats/trend"))[1],
        (await city.api("GET", "/summary"))[1],
        (await site.browser().api("GET", "/stats", key=key))[1],
    ):
        text = json.dumps(body, ensure_ascii=False)
        assert "沖縄" not in text and "470007" not in text and "鳴門" not in text
        assert NARUTO not in text
    assert (await site.browser().api("GET", "/stats", key=key))[1] == stats
    # No parameter selects another place.
    status, other = await city.api("GET", "/stats", params={"scope": NARUTO, "place": NARUTO})
    assert status == 200 and other == stats
    naruto = await site.staff(NARUTO, "viewer")
    status, stats = await naruto.api("GET", "/stats")
    assert (stats["people"], stats["registrations"]) == (5, 5)
    # The prefecture: both, side by side, and nothing outside 徳島県.
    prefecture = await site.staff(TOKUSHIMA, "viewer")
    status, stats = await prefecture.api("GET", "/stats")
    assert (stats["people"], stats["registrations"], stats["own_registrations"]) == (7, 14, 7)
    assert [(p["code"], p["name"], p["registrations"]) for p in stats["places"]] == [
        (TOKUSHIMA, "徳島県", 7),
        (NARUTO, "鳴門市", 5),
        (TOKUSHIMA_CITY, "徳島市", 2),
    ]
    status, summary = await prefecture.api("GET", "/summary")
    assert summary["top_places"] == [
        {"code": NARUTO, "name": "鳴門市", "registrations": 5},
        {"code": TOKUSHIMA_CITY, "name": "徳島市", "registrations": 2},
    ]
    assert summary["by_tier"] == {"basic": 14} and summary["by_type"] == {"visit": 14}


async def test_operators_get_the_nation_and_the_targets(site: Site) -> None:
    store, now = site.storage.registrations, site.stack.clock.now()
    await store.create_basic(application(new_user(), TOKUSHIMA_CITY), now)
    operator = await site.staff("platform", "viewer")
    status, stats = await operator.api("GET", "/stats")
    assert status == 200 and stats["scope"] == "全国" and stats["kind"] == "platform"
    targets = {t["label"]: t for t in stats["targets"]}
    assert targets["実人数"]["target"] == 10_000_000
    assert targets["延べ人数"]["target"] == 100_000_000
    assert targets["実人数"]["value"] == stats["people"] >= 1
    assert targets["延べ人数"]["ratio"] == stats["registrations"] / 100_000_000
    tokushima = next(p for p in stats["prefectures"] if p["code"] == TOKUSHIMA)
    assert tokushima["name"] == "徳島県" and tokushima["people"] >= 1
    assert sum(p["registrations"] for p in stats["prefectures"]) == stats["registrations"]


async def test_the_trend_lists_the_snapshots_and_today(site: Site) -> None:
    store, clock = site.storage.registrations, site.stack.clock
    await store.create_basic(application(new_user(), "362034"), clock.now())  # 小松島市
    today = clock.now_jst().date()
    await take_snapshots(site.storage, clock, today - timedelta(days=1))
    await take_snapshots(site.storage, clock, today - timedelta(days=40))
    await store.create_basic(application(new_user(), "362034"), clock.now())
    city = await site.staff("362034", "viewer")
    status, trend = await city.api("GET", "/stats/trend")
    assert status == 200 and trend["days"] == 30 and trend["scope"] == "徳島県小松島市"
    assert [(p["day"], p["people"], p["live"]) for p in trend["points"]] == [
        ((today - timedelta(days=1)).isoformat(), 1, False),
        (today.isoformat(), 2, True),
    ]
    status, trend = await city.api("GET", "/stats/trend", params={"days": "60"})
    assert [p["people"] for p in trend["points"]] == [1, 1, 2]
    for bad in ("0", "367", "abc"):
        status, body = await city.api("GET", "/stats/trend", params={"days": bad})
        assert status == 422 and body["error"]["field"] == "days"


async def test_the_openapi_document_describes_the_figures(site: Site) -> None:
    status, document = await site.browser().api("GET", "/openapi.json")
    assert status == 200
    for path in ("/stats", "/stats/trend", "/summary"):
        assert "get" in document["paths"][path]
    assert "実人数" in json.dumps(document["components"]["schemas"]["Stats"], ensure_ascii=False)
