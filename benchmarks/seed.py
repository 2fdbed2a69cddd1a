"""`python -m benchmarks.seed`: synthetic registrations for the benchmarks, in bulk, with a
progress bar.

    MONGODB_URI=mongodb://127.0.0.1:27017/ MONGODB_DB=bench python -m benchmarks.seed 1000000

People register with 1–5 municipalities (a long-tailed popularity over all 1,741), each
municipality registration bringing its prefecture registration as `create_basic` does; they live
mostly in the big metropolitan prefectures (never in a place they register with); relationship
types, connections, age bands and tiers follow a plausible mix. The generator is seeded, so a
size always gives the same data (`--seed` for other people in the same database).

The registrations, the per-person ledger of the 関係人口 counters and the counters themselves are
written as the live path would leave them (`bot.domain.stats.contributions` per person, summed),
but in bulk: going through `Registrations.create_basic` costs several round trips per
registration (numbers, ledger claims, counters), far too slow for a million. The recount
(`bot/jobs/recount.py`) is what checks that the result is consistent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from tqdm import tqdm

from bot.domain.places import Place, all_places
from bot.domain.registration import AgeBand, Connection, RelationshipType, Tier, registration_number
from bot.domain.stats import Facts, Key, by_scope, contributions
from bot.storage import Mongo, Storage
from bot.storage.db import Document

BATCH = 2000
# Where people live: the share of residents of the big prefectures (the rest spread evenly).
RESIDENCE_WEIGHTS = {"13": 30, "14": 12, "27": 10, "23": 7, "11": 7, "12": 6, "28": 4, "01": 3}
PLACES_PER_PERSON = {1: 55, 2: 25, 3: 12, 4: 5, 5: 3}
TYPE_SHARES = {
    RelationshipType.ECONOMIC: 0.5,
    RelationshipType.VISIT: 0.6,
    RelationshipType.BEARER: 0.15,
    RelationshipType.DUAL_RESIDENCE: 0.1,
}
CONNECTION_WEIGHTS = {
    Connection.HOMETOWN: 30,
    Connection.FORMER_RESIDENT: 15,
    Connection.WORK_OR_SCHOOL: 10,
    Connection.FAMILY: 15,
    Connection.FAN: 20,
    Connection.DISASTER_VOLUNTEER: 3,
    Connection.OTHER: 7,
}
AGE_WEIGHTS = {
    AgeBand.UNDER_18: 3,
    AgeBand.FROM_18_TO_29: 14,
    AgeBand.THIRTIES: 18,
    AgeBand.FORTIES: 22,
    AgeBand.FIFTIES: 20,
    AgeBand.SIXTIES: 14,
    AgeBand.SEVENTY_PLUS: 9,
}
PREMIUM_SHARE = 0.02


@dataclass(frozen=True)
class Seeded:
    registrations: int
    people: int
    seconds: float  # everything
    insert_seconds: float  # the bulk inserts of registrations and ledgers
    place_registrations: dict[str, int]

    @property
    def rate(self) -> float:
        return self.registrations / self.seconds if self.seconds else 0.0

    @property
    def insert_rate(self) -> float:
        return self.registrations / self.insert_seconds if self.insert_seconds else 0.0


class Population:
    """The seeded generator of people and their registrations."""

    def __init__(
        self, seed: int = 20270101, only_place: str | None = None, with_prefecture: bool = True
    ) -> None:
        self.rng = random.Random(seed)
        self.with_prefecture = with_prefecture
        places = all_places()
        towns = [p for p in places if not p.is_prefecture]
        if only_place is not None:
            towns = [p for p in towns if p.code == only_place]
            if not towns:
                raise ValueError(f"{only_place} is not a municipality code")
        # Popularity: a long tail over a shuffled order (a few places draw most people).
        ranked = towns[:]
        self.rng.shuffle(ranked)
        self.towns = ranked
        self.town_weights = [1 / (rank + 1) ** 0.8 for rank in range(len(ranked))]
        by_pref: dict[str, list[Place]] = {}
        for town in (p for p in places if not p.is_prefecture):
            by_pref.setdefault(town.prefecture_code[:2], []).append(town)
        self.homes = by_pref
        pref_keys = sorted(by_pref)
        self.home_prefs = pref_keys
        self.home_weights = [RESIDENCE_WEIGHTS.get(k, 1) for k in pref_keys]
        self.counts: Counter[str] = Counter()

    def _pick(self, weights: dict[Any, int]) -> Any:
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def person(self, now: datetime) -> tuple[str, list[Document]]:
        rng = self.rng
        user_id = f"U{rng.getrandbits(128):032x}"
        home = rng.choice(self.homes[rng.choices(self.home_prefs, self.home_weights)[0]])
        wanted = min(self._pick(PLACES_PER_PERSON), len(self.towns))
        chosen: dict[str, Place] = {}
        while len(chosen) < wanted:
            town = rng.choices(self.towns, self.town_weights)[0]
            if town.code != home.code:
                chosen[town.code] = town
            elif len(self.towns) == 1:
                break
        types = [t.value for t, share in TYPE_SHARES.items() if rng.random() < share]
        base = {
            "user_id": user_id,
            "status": "active",
            "types": types or [RelationshipType.VISIT.value],
            "connection": self._pick(CONNECTION_WEIGHTS).value,
            "residence_code": home.code,
            "age_band": self._pick(AGE_WEIGHTS).value,
            "nickname": f"ふるさと{rng.randrange(10000)}",
            "card_version": 1,
            "answers": {},
        }
        since = now - timedelta(days=rng.randrange(365))
        docs: list[Document] = []
        premium = 0
        for town in chosen.values():
            tier = Tier.BASIC
            if premium < 3 and rng.random() < PREMIUM_SHARE:
                tier, premium = Tier.PREMIUM, premium + 1
            docs.append(self._doc(base, town.code, tier, None, since))
            pref = town.prefecture_code
            if self.with_prefecture and all(d["place_code"] != pref for d in docs):
                docs.append(self._doc(base, pref, Tier.BASIC, town.code, since))
        return user_id, docs

    def _doc(
        self, base: Document, code: str, tier: Tier, via: str | None, since: datetime
    ) -> Document:
        self.counts[code] += 1
        return {
            **base,
            "_id": ObjectId(),
            "place_code": code,
            "tier": tier.value,
            "number": registration_number(self.counts[code], code),
            "since": since,
            "valid_until": since + timedelta(days=365) if tier is Tier.PREMIUM else None,
            "via": via,
            "created_at": since,
            "updated_at": since,
        }


def batches(
    population: Population, registrations: int, now: datetime
) -> Iterator[tuple[list[Document], list[Document], Counter[Key]]]:
    """(registrations, ledgers, counter contributions) per batch, until `registrations` are made."""
    made = 0
    while made < registrations:
        regs: list[Document] = []
        ledgers: list[Document] = []
        delta: Counter[Key] = Counter()
        while len(regs) < BATCH and made + len(regs) < registrations:
            user_id, docs = population.person(now)
            docs = docs[: registrations - made - len(regs)]
            regs += docs
            facts = {str(d["_id"]): f for d in docs if (f := Facts.of(d)) is not None}
            ledgers.append(
                {
                    "_id": user_id,
                    "v": 1,
                    "regs": {rid: f.to_doc() for rid, f in facts.items()},
                    "at": now,
                }
            )
            delta.update(contributions(facts.values()))
        made += len(regs)
        yield regs, ledgers, delta


async def seed(
    storage: Storage,
    registrations: int,
    *,
    only_place: str | None = None,
    with_stats: bool = True,
    progress: bool = True,
    generator_seed: int = 20270101,
) -> Seeded:
    """Add `registrations` synthetic registrations (and their people's ledgers and counters).

    `only_place`: everyone registers with this municipality alone, without its prefecture, and
    `with_stats=False` leaves the counters out (the news benchmark needs neither)."""
    await storage.ensure_indexes()
    now = datetime.now(UTC).replace(microsecond=0)
    population = Population(generator_seed, only_place, with_prefecture=only_place is None)
    total: Counter[Key] = Counter()
    people = 0
    started = time.monotonic()
    bar = tqdm(
        total=registrations,
        unit="reg",
        unit_scale=True,
        desc="seeding",
        disable=not progress,
        file=sys.stderr,
    )

    # Bulk inserts straight into the stores' collections: the stores have no bulk write, and
    # a person's documents here are new (no race to decide), so unique inserts are all we need.
    async def write(regs: list[Document], ledgers: list[Document]) -> None:
        await storage.registrations.col.insert_many(regs, ordered=False)
        if with_stats:
            await storage.stats.ledger.col.insert_many(ledgers, ordered=False)
        bar.update(len(regs))

    with bar:
        # The database writes one batch while the next one is generated (CPU-bound here).
        writing: asyncio.Task[None] | None = None
        for regs, ledgers, delta in batches(population, registrations, now):
            if writing is not None:
                await writing
            writing = asyncio.create_task(write(regs, ledgers))
            await asyncio.sleep(0)  # let the task send its request before we generate again
            total.update(delta)
            people += len(ledgers)
        if writing is not None:
            await writing
    inserted = time.monotonic()
    # Counters through the store, one scope at a time: `Stats.add` writes a delta's scopes in
    # parallel, and two thousand parallel upserts make SQLite answer "database is locked".
    for scope, fields in by_scope(total if with_stats else {}).items():
        await storage.stats.add({(scope, name): n for name, n in fields.items()})
    for code, n in population.counts.items():
        name = f"registration:{code}"
        current = await storage.registrations.counters.current(name)
        await storage.registrations.counters.col.update_one(
            {"_id": name}, {"$set": {"seq": current + n}}, upsert=True
        )
    return Seeded(
        registrations,
        people,
        time.monotonic() - started,
        inserted - started,
        dict(population.counts),
    )


_SEEDED: dict[tuple[str, int], Seeded] = {}


def db_for(size: int) -> str:
    return f"bench_regs_{size}"


def is_seeded(mongo_uri: str, size: int) -> bool:
    return (mongo_uri, size) in _SEEDED


async def seeded(mongo_uri: str, size: int, *, progress: bool = True) -> Seeded:
    """The database `db_for(size)` holding `size` seeded registrations: seeded once per run
    (from empty), shared by the benchmarks that need it."""
    key = (mongo_uri, size)
    if key not in _SEEDED:
        mongo = Mongo(mongo_uri, db_for(size))
        try:
            await mongo.client.drop_database(db_for(size))
            _SEEDED[key] = await seed(Storage(mongo), size, progress=progress)
        finally:
            await mongo.close()
    return _SEEDED[key]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seed", description=__doc__)
    parser.add_argument("registrations", type=int, help="how many registrations to add")
    parser.add_argument("--place", help="register everyone with this municipality only")
    parser.add_argument(
        "--seed", type=int, default=20270101, help="another seed adds other people to a database"
    )
    args = parser.parse_args(argv)
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        raise SystemExit("benchmarks.seed: set MONGODB_URI (and MONGODB_DB, default bench)")
    mongo = Mongo(uri, os.environ.get("MONGODB_DB", "bench"))
    try:
        await mongo.wait_until_up(30)
        done = await seed(
            Storage(mongo), args.registrations, only_place=args.place, generator_seed=args.seed
        )
    finally:
        await mongo.close()
    print(
        f"{done.registrations:,} registrations of {done.people:,} people in "
        f"{done.seconds:.1f} s ({done.rate:,.0f}/s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
