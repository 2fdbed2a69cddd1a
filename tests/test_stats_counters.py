"""The 関係人口 counters: kept by the registration store's writes, equal to a full recount after
any series of writes, and corrected (with the drift reported) when they are not.

Each test has a database of its own (a recount looks at everything in it)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator

import pytest
from bson import ObjectId

from bot.clock import Clock
from bot.domain.registration import AgeBand, Connection, RelationshipType, Tier
from bot.domain.stats import (
    NATION,
    PEOPLE,
    REGISTRATIONS,
    Facts,
    contributions,
    difference,
    field,
    place_scope,
    pref_scope,
)
from bot.jobs.recount import recount
from bot.storage import Mongo, Storage
from bot.storage.stats import Stats
from tests.test_stats_support import (
    application,
    naive_by,
    naive_totals,
    new_user,
    open_storage,
    own_database,
)

# 宮城県 and two of its cities, 高知県 and two of its cities, and 那覇市 (沖縄県).
PLACES = ["040002", "042056", "041009", "390003", "392014", "392022", "472018"]
RESIDENCES = ["131016", "271004", "012025", "", "999999"]  # 千代田区, 大阪市, 函館市, none, bad


@pytest.fixture
async def db(mongo_uri: str) -> AsyncIterator[Mongo]:
    async with own_database(mongo_uri) as (mongo, _):
        yield mongo


@pytest.fixture
async def fresh(db: Mongo) -> Storage:
    return await open_storage(db)


async def assert_counters_are_true(storage: Storage) -> None:
    """Every scope's totals, and the breakdowns of every prefecture and the nation, equal the
    registrations counted one by one."""
    truth = await naive_totals(storage)
    states = await storage.stats.states()
    figures = await storage.stats.figures_of([*truth, *states])
    for scope, (people, registrations) in truth.items():
        assert (figures[scope].people, figures[scope].registrations) == (people, registrations), (
            scope
        )
    for scope, fig in figures.items():
        if scope not in truth:
            assert (fig.people, fig.registrations) == (0, 0), scope
    for scope in [s for s in truth if not s.startswith("place:")]:
        for dimension, doc_field in (
            ("tier", "tier"),
            ("type", "types"),
            ("age", "age_band"),
            ("conn", "connection"),
        ):
            expected = await naive_by(storage, scope, doc_field)
            for value, (people, registrations) in expected.items():
                fig = figures[scope]
                assert fig.get(PEOPLE, dimension, value) == people, (scope, dimension, value)
                assert fig.get(REGISTRATIONS, dimension, value) == registrations


# --- the definition (pure) ------------------------------------------------------------------


def facts(place: str, **kw: object) -> Facts:
    doc = {
        "status": "active",
        "place_code": place,
        "tier": "basic",
        "types": ["visit"],
        "residence_code": "131016",
        "age_band": "30s",
        "connection": "fan",
        **kw,
    }
    found = Facts.of(doc)
    assert found is not None
    return found


def test_a_person_counts_once_per_scope_and_each_registration_once() -> None:
    # 気仙沼市 (and 宮城県 with it) and 仙台市: three registrations of one person in 宮城県.
    counts = contributions(
        [facts("042056"), facts("040002"), facts("041009", types=["visit", "economic"])]
    )
    assert counts[(place_scope("042056"), field(REGISTRATIONS, "all"))] == 1
    assert counts[(pref_scope("040002"), field(REGISTRATIONS, "all"))] == 3
    assert counts[(pref_scope("040002"), field(PEOPLE, "all"))] == 1
    assert counts[(NATION, field(PEOPLE, "all"))] == 1
    assert counts[(NATION, field(REGISTRATIONS, "type", "visit"))] == 3
    assert counts[(NATION, field(PEOPLE, "type", "economic"))] == 1
    assert counts[(NATION, field(PEOPLE, "area", "040002"))] == 1
    assert counts[(pref_scope("040002"), field(REGISTRATIONS, "place", "041009"))] == 1
    assert counts[(NATION, field(PEOPLE, "res", "130001"))] == 1  # 東京都
    # Removing 仙台市: the person stays in 宮城県, the economic type goes.
    after = contributions([facts("042056"), facts("040002")])
    delta = difference(counts, after)
    assert delta[(pref_scope("040002"), field(REGISTRATIONS, "all"))] == -1
    assert (pref_scope("040002"), field(PEOPLE, "all")) not in delta
    assert delta[(NATION, field(PEOPLE, "type", "economic"))] == -1


def test_only_active_registrations_at_known_places_count() -> None:
    assert Facts.of({"status": "revoked", "place_code": "042056"}) is None
    assert Facts.of({"status": "active", "place_code": "999999"}) is None
    odd = facts("042056", tier="$bad.value", residence_code="", types=["visit", "visit"])
    assert odd.tier == "unknown" and odd.types == ("visit",)
    counts = contributions([odd])
    assert counts[(NATION, field(REGISTRATIONS, "res", "unknown"))] == 1
    assert Facts.from_doc(odd.to_doc()) == odd


# --- the store keeps them -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [7, 2027, 100_000_000])
async def test_counters_equal_a_recount_after_a_random_series_of_writes(
    fresh: Storage, seed: int
) -> None:
    rnd = random.Random(seed)
    clock = Clock()
    users = [new_user() for _ in range(8)]
    store = fresh.registrations
    for step in range(90):
        user = rnd.choice(users)
        mine = await store.for_user(user)
        op = rnd.random()
        if op < 0.45 or not mine:
            await store.create_basic(
                application(
                    user,
                    rnd.choice(PLACES),
                    types=tuple(rnd.sample([t.value for t in RelationshipType], rnd.randint(1, 3))),
                    connection=rnd.choice([c.value for c in Connection]),
                    residence_code=rnd.choice(RESIDENCES),
                    age_band=rnd.choice([a.value for a in AgeBand]),
                ),
                clock.now(),
            )
        elif op < 0.65:
            await store.remove(user, rnd.choice(mine)["place_code"])
        elif op < 0.8:
            types = rnd.sample([t.value for t in RelationshipType], rnd.randint(1, 4))
            await store.update_details(
                user, rnd.choice(mine)["place_code"], clock.now(), types=types
            )
        else:
            await store.set_tier(rnd.choice(mine)["_id"], rnd.choice(list(Tier)), None, clock.now())
        if step % 30 == 29:
            await assert_counters_are_true(fresh)
    await assert_counters_are_true(fresh)
    drift = await recount(fresh, settle=0)
    assert drift.clean, drift
    assert drift.registrations == await fresh.registrations.col.count_documents({})


async def test_concurrent_registrations_then_the_recount_corrects_and_reports_drift(
    db: Mongo, mongo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Three web processes, each with its own connection, one shard per counter: increments of
    # different processes race on the same documents (FerretDB 1.24 loses some of them).
    processes = [await open_storage(Mongo(mongo_uri, db.db.name), shards=1) for _ in range(2)]
    processes.append(await open_storage(db, shards=1))
    now = Clock().now()
    people = [new_user() for _ in range(40)]
    busy = [new_user() for _ in range(5)]  # five people register twice at the same time
    writes = [
        processes[i % 3].registrations.create_basic(
            application(user, ["392014", "392022", "392031"][i % 3]), now
        )
        for i, user in enumerate(people)
    ]
    for i, user in enumerate(busy):
        writes.append(processes[i % 3].registrations.create_basic(application(user, "392014"), now))
        writes.append(
            processes[(i + 1) % 3].registrations.create_basic(application(user, "392049"), now)
        )
    assert len(writes) == 50
    await asyncio.gather(*writes)
    storage = processes[2]
    truth = await naive_totals(storage)
    assert truth[pref_scope("390003")] == (45, 40 + 10 + 45)  # +1 高知県 each
    before = await storage.stats.states()

    caplog.set_level(logging.INFO, logger="bot.jobs.recount")
    drift = await recount(storage, settle=0)

    # What the recount reports is exactly the difference between the counters and the truth.
    for item in drift.items:
        assert before[item.scope].fields.get(item.field, 0) == item.found
    for scope, (people_n, registrations_n) in truth.items():
        found = before[scope].fields
        reported = drift.of(scope)
        for name, expected in (
            (field(PEOPLE, "all"), people_n),
            (field(REGISTRATIONS, "all"), registrations_n),
        ):
            if found.get(name, 0) != expected:
                assert reported[name].expected == expected
            else:
                assert name not in reported
    logged = [r for r in caplog.records if r.getMessage() == "stats drift corrected"]
    assert len(logged) == len(drift.items)
    for record, item in zip(logged, drift.items, strict=True):
        assert record.__dict__["counter"] == item.counter
        assert (record.__dict__["expected"], record.__dict__["found"]) == (
            item.expected,
            item.found,
        )
    assert not drift.deferred and drift.repaired_people == 0
    await assert_counters_are_true(storage)
    assert (await recount(storage, settle=0)).clean
    for process in processes[:2]:
        await process.mongo.close()


async def test_the_recount_repairs_writes_that_bypassed_the_store(
    fresh: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    kept, gone, bypass = new_user(), new_user(), new_user()
    await fresh.registrations.create_basic(application(kept, "042056"), clock.now())
    await fresh.registrations.create_basic(application(gone, "041009"), clock.now())
    # A registration inserted and one deleted behind the store's back (a crash between the
    # write and the counters, a manual fix in the database) ...
    await fresh.registrations.col.insert_one(
        {
            "_id": ObjectId(),
            "user_id": bypass,
            "place_code": "392014",
            "tier": "basic",
            "status": "active",
            "types": ["economic"],
            "connection": "fan",
            "residence_code": "131016",
            "age_band": "40s",
        }
    )
    await fresh.registrations.col.delete_many({"user_id": gone})
    # ... and an increment lost on the way.
    await fresh.stats.add({(NATION, field(REGISTRATIONS, "age", "30s")): -1}, shard=3)
    caplog.set_level(logging.WARNING, logger="bot.jobs.recount")

    drift = await recount(fresh, settle=0)

    assert drift.repaired_people == 2  # `bypass` and `gone`, through the live path
    lost = drift.of(NATION)[field(REGISTRATIONS, "age", "30s")]
    assert (lost.expected, lost.found) == (2, 1)
    assert "stats drift corrected" in caplog.text
    assert drift.scans == 2  # the repairs moved the counters: the moved scopes were rechecked
    await assert_counters_are_true(fresh)
    assert (await recount(fresh, settle=0)).clean
    # The repaired person's ledger is right again: the store's next write counts from it.
    await fresh.registrations.create_basic(application(bypass, "472018"), clock.now())
    await assert_counters_are_true(fresh)


async def test_a_recount_during_writes_corrects_nothing_that_was_right(fresh: Storage) -> None:
    clock = Clock()
    await asyncio.gather(
        *(
            fresh.registrations.create_basic(application(new_user(), "042056"), clock.now())
            for _ in range(10)
        )
    )

    async def keep_writing() -> None:
        for i in range(30):
            user = new_user()
            await fresh.registrations.create_basic(
                application(user, PLACES[i % len(PLACES)]), clock.now()
            )
            if i % 3 == 0:
                await fresh.registrations.remove(user, PLACES[i % len(PLACES)])

    _, during = await asyncio.gather(keep_writing(), recount(fresh, settle=0.2))
    assert not during.items  # nothing was wrong: whatever moved was left alone
    await assert_counters_are_true(fresh)
    assert (await recount(fresh, settle=0)).clean


async def test_deleting_a_persons_data_takes_them_out_of_the_counters(fresh: Storage) -> None:
    clock = Clock()
    person, other = new_user(), new_user()
    await fresh.registrations.create_basic(application(person, "042056"), clock.now())
    await fresh.registrations.create_basic(application(person, "392014"), clock.now())
    await fresh.registrations.create_basic(application(other, "042056"), clock.now())
    assert (await fresh.stats.figures(NATION)).people == 2
    await fresh.registrations.delete_for_user(person)
    assert await fresh.stats.delete_for_user(person) >= 1
    nation = await fresh.stats.figures(NATION)
    assert (nation.people, nation.registrations) == (1, 2)
    assert await fresh.stats.ledger.get(person) is None
    assert await fresh.stats.ledger.claims.count_documents({"user": person}) == 0
    await assert_counters_are_true(fresh)


async def test_reading_a_scope_reads_its_shards_only(fresh: Storage) -> None:
    clock = Clock()
    await asyncio.gather(
        *(
            fresh.registrations.create_basic(application(new_user(), "041009"), clock.now())
            for _ in range(60)
        )
    )
    # place:041009, place:040002, pref:040002, nation: at most `shards` documents each.
    assert await fresh.stats.col.count_documents({}) <= 4 * fresh.stats.shards
    figures = await fresh.stats.figures(place_scope("041009"))
    assert (figures.people, figures.registrations) == (60, 60)
    prefecture = await fresh.stats.figures(pref_scope("040002"))
    assert (prefecture.people, prefecture.registrations) == (60, 120)


async def test_within_one_process_concurrent_registrations_lose_nothing(fresh: Storage) -> None:
    # The shard documents are taken under a lock per process: no increment is lost, even on
    # FerretDB 1.24, before any recount.
    now = Clock().now()
    busy = new_user()
    await asyncio.gather(
        *(
            fresh.registrations.create_basic(application(new_user(), "392014"), now)
            for _ in range(45)
        ),
        *(
            fresh.registrations.create_basic(application(busy, code), now)
            for code in ("392014", "392022", "392031", "390003", "392049")
        ),
    )
    await assert_counters_are_true(fresh)
    prefecture = await fresh.stats.figures(pref_scope("390003"))
    assert (prefecture.people, prefecture.registrations) == (46, 45 * 2 + 5)
    assert (await recount(fresh, settle=0)).clean


async def test_a_process_reads_the_changes_another_process_made(db: Mongo) -> None:
    # Two processes, each with its own Storage (and its own figures in memory).
    here, there = await open_storage(db), await open_storage(db)
    clock = Clock()
    await here.registrations.create_basic(application(new_user(), "042056"), clock.now())
    scopes = [place_scope("042056"), pref_scope("040002"), NATION]
    before = await here.stats.figures_of(scopes)
    assert [(f.people, f.registrations) for f in before.values()] == [(1, 1), (1, 2), (1, 2)]

    gone = new_user()
    await there.registrations.create_basic(application(gone, "042056"), clock.now())
    after = await here.stats.figures_of(scopes)
    assert [(f.people, f.registrations) for f in after.values()] == [(2, 2), (2, 4), (2, 4)]

    await there.registrations.remove(gone, "042056")
    assert (await here.stats.figures(place_scope("042056"))).registrations == 1
    await assert_counters_are_true(here)


async def test_figures_are_served_from_memory_while_the_scope_is_unchanged(db: Mongo) -> None:
    storage = await open_storage(db)
    await storage.registrations.create_basic(application(new_user(), "392014"), Clock().now())
    scope = place_scope("392014")
    assert (await storage.stats.figures(scope)).registrations == 1
    # A change behind the store's back does not move the scope's mark: this process keeps the
    # figures it read, one without them (or whose figures are older than `cache_ttl`) reads it.
    await storage.stats.col.update_one(
        {"_id": f"{scope}#0"},
        {"$inc": {f"c.{field(REGISTRATIONS, 'all')}": 5}},
        upsert=True,
    )
    assert (await storage.stats.figures(scope)).registrations == 1
    assert (await Stats(db.db, cache_ttl=0).figures(scope)).registrations == 6
    # Any change through the store moves the mark: then everything is read again.
    await storage.stats.add({(scope, field(PEOPLE, "all")): 1})
    figures = await storage.stats.figures(scope)
    assert (figures.people, figures.registrations) == (2, 6)
