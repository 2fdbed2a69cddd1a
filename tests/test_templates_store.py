"""Template versions in the database (insert-only, unique per tenant, template and version) and
the in-memory overrides every process keeps up to date from them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.render import Renderer
from bot.settings import Settings
from bot.staff.tenancy import Tenant
from bot.storage import Mongo, Storage
from bot.storage.templates import VersionConflict
from bot.templates_overrides import StoredOverrides

KESENNUMA = Tenant.of("042056")
DATE = Tenant.of("072133")
NAME = "register/done"


@pytest.fixture
async def store(storage: Storage) -> AsyncIterator[Storage]:
    await storage.template_versions.col.delete_many({})
    yield storage
    await storage.template_versions.col.delete_many({})


async def add(
    storage: Storage,
    source: str | None,
    *,
    tenant: Tenant | None = KESENNUMA,
    expected: int | None = None,
    at: datetime | None = None,
    action: Any = "save",
) -> dict[str, Any]:
    assert tenant is not None
    return await storage.template_versions.add(
        tenant,
        NAME,
        source,
        action=action,
        now=at or datetime.now(UTC),
        actor_kind="cli",
        actor_id=None,
        actor="test",
        expected=expected,
    )


async def test_versions_are_numbered_per_tenant_and_template(store: Storage) -> None:
    assert KESENNUMA is not None and DATE is not None
    versions = store.template_versions
    first = await add(store, "一")
    second = await add(store, "二", expected=1)
    other = await add(store, "伊達", tenant=DATE)
    assert (first["version"], second["version"], other["version"]) == (1, 2, 1)
    current = await versions.current(KESENNUMA, NAME)
    assert current is not None and current["source"] == "二"
    history = await versions.history(KESENNUMA, NAME)
    assert [d["version"] for d in history] == [2, 1]
    assert (await versions.version(KESENNUMA, NAME, 1) or {})["source"] == "一"
    assert await versions.version(DATE, NAME, 2) is None
    assert set(await versions.current_for(DATE)) == {NAME}
    reset = await add(store, None, action="reset")
    assert reset["version"] == 3
    assert (await versions.current(KESENNUMA, NAME) or {})["source"] is None


async def test_racing_saves_from_the_same_version_let_exactly_one_win(store: Storage) -> None:
    await add(store, "はじめ")
    results = await asyncio.gather(
        *(add(store, f"案{i}", expected=1) for i in range(8)), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, VersionConflict)]
    assert len(won) == 1 and len(lost) == 7, results
    assert won[0]["version"] == 2
    assert await store.template_versions.col.count_documents({"tenant": "042056"}) == 2


async def test_racing_saves_without_an_expected_version_all_land(store: Storage) -> None:
    results = await asyncio.gather(*(add(store, f"案{i}") for i in range(5)))
    assert sorted(r["version"] for r in results) == [1, 2, 3, 4, 5]


async def test_overrides_follow_saves_made_elsewhere(store: Storage, settings: Settings) -> None:
    """Another process (its own client) sees new versions at its next refresh."""
    other = Mongo(settings.mongodb_uri, settings.mongodb_db)
    try:
        theirs = StoredOverrides(Storage(other).template_versions, interval=0.2)
        await theirs.load()
        assert theirs.source(NAME, "042056") is None
        theirs.start()
        renderer = Renderer(overrides=theirs)
        context = {
            "place_name": "宮城県気仙沼市",
            "number": "042056-000001-0",
            "prefecture_name": "",
            "prefecture_number": "",
            "has_card": False,
        }
        await add(store, "{{ place_name }}の仲間です")
        started = time.monotonic()
        while theirs.source(NAME, "042056") is None:
            assert time.monotonic() - started < 3
            await asyncio.sleep(0.05)
        [message] = renderer.render(NAME, context, municipality="042056")
        assert message.to_dict()["text"] == "宮城県気仙沼市の仲間です"
        [default] = renderer.render(NAME, context, municipality="072133")
        assert "登録が完了しました" in default.to_dict()["text"]
        assert theirs.version(NAME, "042056") == 1

        await add(store, None, action="reset")
        started = time.monotonic()
        while theirs.source(NAME, "042056") is not None:
            assert time.monotonic() - started < 3
            await asyncio.sleep(0.05)
        assert theirs.version(NAME, "042056") == 2
        await theirs.stop()
    finally:
        await other.close()


async def test_versions_apply_in_any_order_and_a_clock_behind_is_still_seen(
    store: Storage,
) -> None:
    overrides = StoredOverrides(store.template_versions)
    await overrides.load()
    now = datetime.now(UTC)
    first = await add(store, "一", at=now)
    second = await add(store, "二", at=now)
    assert overrides.apply(second) and not overrides.apply(first)  # the highest version wins
    assert overrides.source(NAME, "042056") == "二"
    # A version written by a process whose clock is 5 s behind is still found by the check.
    late = await add(store, "三", at=now - timedelta(seconds=5))
    assert await overrides.refresh() == 1
    assert overrides.source(NAME, "042056") == "三" and late["version"] == 3
    assert await overrides.refresh() == 0  # nothing new: nothing fetched again
    # A full load agrees with what was applied.
    fresh = StoredOverrides(store.template_versions)
    await fresh.load()
    assert fresh.source(NAME, "042056") == "三" and fresh.version(NAME, "042056") == 3


async def test_a_failing_refresh_keeps_the_last_known_texts(store: Storage) -> None:
    overrides = StoredOverrides(store.template_versions, interval=0.05)
    await add(store, "覚えている文面")
    await overrides.load()

    async def broken(since: datetime) -> list[Any]:
        raise RuntimeError("database away")

    overrides.store.recent_ids = broken  # type: ignore[method-assign]
    overrides.start()
    await asyncio.sleep(0.2)
    assert overrides.source(NAME, "042056") == "覚えている文面"
    await overrides.stop()
