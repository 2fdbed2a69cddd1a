"""The 関係人口 counters: 実人数 and 延べ人数 per place, prefecture and nation, kept up to date as
registrations change, so that the dashboard reads a few documents instead of counting.

Collections:

- `stats_counters`: per scope (`bot.domain.stats`), `SHARDS` documents
  `{_id: "<scope>#<shard>", scope, shard, ops, c: {field: n}}`. A change adds to one shard picked
  at random (`$inc`), so concurrent changes rarely touch the same document; reading a scope sums
  its shards: O(number of fields), whatever the number of registrations. `ops` counts the
  changes applied to the document; the recount uses it to see whether a scope moved meanwhile.
- `stats_ledger`: per person, what the counters hold of them: `{_id: <user id>, v,
  regs: {registration id: facts}}`. After a registration write, `registrations_changed(user)`
  compares the person's registrations with their ledger; the difference of their
  `contributions` is the change to the counters, which decides "first/last registration of this
  person in this scope" for 実人数. Moving the ledger from version v to v+1 is claimed first
  by *inserting* `{_id: "<user>#<v+1>"}` into `stats_claims`: an insert against a unique key is
  the one write that is exclusive on MongoDB and on FerretDB 1.24 alike (FerretDB applies
  conditional updates non-atomically), so of two racing writers of one person exactly one applies
  a change computed from a given state; the other reads again. A write reads and writes by `_id`
  only (the one filter FerretDB 1.24 answers from an index).
- `stats_marks`: per scope, `{_id: <scope>, m: <random token>}`, replaced after every change to
  the scope's counters. A process keeps the figures it read (`CACHE_SCOPES`, at most
  `CACHE_TTL` old) under the token it saw *before* reading them: while the token is unchanged no
  change has completed since, so one read by `_id` serves them. Every shard read is a full scan
  of the counters on FerretDB's PostgreSQL backend (its equality pushdown, `->` with `@>`,
  cannot use the `_id` index), so this is what keeps the dashboard flat with size there.
- `stats_snapshots`: one document per scope and day (`_id: "<scope>|<YYYY-MM-DD>"`), written once
  (insert; a second run finds the key taken) for the trend.

Consistency: on MongoDB, `$inc` is atomic and ledger versions are exclusive, so the counters are
exact once each write's `registrations_changed` has returned. FerretDB 1.24 loses `$inc`s racing
on one document: within a process the shard documents are taken under a lock (no loss); across
processes sharding makes collisions rare and the nightly recount (`bot/jobs/recount.py`) measures
and corrects what was lost, so there the counters are exact after the recount. A crash between a
registration write and its counter update (or a write that bypassed the store) is repaired by the
recount on both. A crash between a counter's `$inc` and its mark leaves other processes' cached
figures of that scope behind by that change for at most `CACHE_TTL`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from bot.domain.stats import (
    ALL,
    PEOPLE,
    REGISTRATIONS,
    Facts,
    Figures,
    Key,
    by_scope,
    contributions,
    difference,
    field,
)
from bot.storage.base import DUPLICATE_KEY, Store
from bot.storage.db import Document

log = logging.getLogger(__name__)

SHARDS = 16
MAX_ATTEMPTS = 50  # reconciling one person: rounds before giving up (the recount finishes it)
CLAIM_TIMEOUT = timedelta(seconds=30)  # a claim older than this was abandoned by a dead writer
CACHE_SCOPES = 512  # scopes whose figures a process keeps (the least recently read go first)
CACHE_TTL = 60.0  # seconds: bounds what a writer that died between its `$inc` and mark hides

# The fields of a registration the counters depend on.
FACT_FIELDS = {
    "user_id": 1,
    "place_code": 1,
    "tier": 1,
    "types": 1,
    "status": 1,
    "residence_code": 1,
    "age_band": 1,
    "connection": 1,
}

Ledger = dict[str, Facts]  # registration id → facts


def claim_id(user_id: str, version: int) -> str:
    return f"{user_id}#{version}"


def facts_of(docs: Iterable[Document]) -> Ledger:
    """The counted registrations among these documents, by registration id."""
    out: Ledger = {}
    for doc in docs:
        facts = Facts.of(doc)
        if facts is not None:
            out[str(doc["_id"])] = facts
    return out


def ledger_of(doc: Document | None) -> Ledger:
    if doc is None:
        return {}
    regs = doc.get("regs") or {}
    return {rid: Facts.from_doc(facts) for rid, facts in regs.items()}


def add_fields(total: dict[str, int], fields: Mapping[str, Any]) -> None:
    for name, n in fields.items():
        if isinstance(n, int | float):
            total[name] = total.get(name, 0) + int(n)


@dataclass(frozen=True)
class ScopeState:
    """A scope's summed fields, and the `ops` of each shard (to tell whether it moved)."""

    fields: dict[str, int]
    ops: tuple[tuple[int, int], ...]


class StatsLedger(Store):
    """One document per person (`_id`: their user id), and the claims that order its versions."""

    collection_name = "stats_ledger"

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self.claims = db["stats_claims"]

    async def get(self, user_id: str) -> Document | None:
        return await self.col.find_one({"_id": user_id})

    async def claim(self, user_id: str, version: int) -> bool:
        """The right to write version `version` of the person's ledger (read at `version - 1`);
        False when another writer has it, or has already written it."""
        now = datetime.now(UTC)  # the wall clock, whatever the application's clock says
        try:
            await self.claims.insert_one(
                {"_id": claim_id(user_id, version), "user": user_id, "at": now}
            )
        except DuplicateKeyError:
            await self._free_if_abandoned(user_id, version, now)
            return False
        # Claims are deleted once used, so a writer that read long ago may get a version that
        # was already written: then its change was computed from a stale state.
        head = await self.get(user_id)
        if (int(head["v"]) if head is not None else 0) != version - 1:
            await self.claims.delete_one({"_id": claim_id(user_id, version)})
            return False
        return True

    async def _free_if_abandoned(self, user_id: str, version: int, now: datetime) -> None:
        """A claim whose writer died (a crash between claim and write) would block the person
        for good: after `CLAIM_TIMEOUT` it is given up."""
        doc = await self.claims.find_one({"_id": claim_id(user_id, version)})
        if doc is not None and doc["at"] < now - CLAIM_TIMEOUT:
            await self.claims.delete_one({"_id": doc["_id"], "at": doc["at"]})

    async def write(self, user_id: str, version: int, regs: Ledger, now: datetime) -> None:
        """Write the claimed version, then give the claim back."""
        await self.col.update_one(
            {"_id": user_id},
            {
                "$set": {
                    "v": version,
                    "regs": {rid: facts.to_doc() for rid, facts in regs.items()},
                    "at": now,
                }
            },
            upsert=True,
        )
        await self.claims.delete_one({"_id": claim_id(user_id, version)})

    async def delete_for(self, user_id: str) -> int:
        deleted = (await self.col.delete_one({"_id": user_id})).deleted_count
        await self.claims.delete_many({"user": user_id})
        return deleted

    async def sorted_by_user(self, batch_size: int) -> AsyncIterator[Document]:
        """Every person's ledger, by user id (streamed)."""
        cursor = self.col.find({}).sort([("_id", ASCENDING)])
        async for doc in cursor.batch_size(batch_size):
            yield doc


class StatsMarks(Store):
    """Per scope, a token that every change to its counters replaces (once the change is made)."""

    collection_name = "stats_marks"

    async def of(self, scopes: Iterable[str]) -> dict[str, str | None]:
        """The scopes' current tokens (None: never changed since marks exist)."""
        wanted = list(scopes)
        docs = await asyncio.gather(*(self.col.find_one({"_id": scope}) for scope in wanted))
        return {
            scope: (str(doc["m"]) if doc is not None else None)
            for scope, doc in zip(wanted, docs, strict=True)
        }

    async def move(self, scope: str) -> None:
        # A fresh random token, not a `$inc`ed version: FerretDB 1.24 may lose one of two racing
        # `$inc`s, and both writers would then leave the same version behind.
        for _ in range(5):
            try:
                await self.col.update_one(
                    {"_id": scope}, {"$set": {"m": secrets.token_hex(8)}}, upsert=True
                )
                return
            except DuplicateKeyError:
                continue  # two first writes raced on the upsert: the document exists now
        raise RuntimeError(f"stats: mark {scope!r} could not be written")


@dataclass(frozen=True)
class Cached:
    """A scope's figures as read after its mark was seen as `mark`, at `at` (monotonic)."""

    mark: str | None
    fields: dict[str, int]
    at: float


class StatsSnapshots(Store):
    collection_name = "stats_snapshots"

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("scope", ASCENDING), ("day", ASCENDING)], name="scope_day")]

    async def take(self, day: date, scopes: Mapping[str, Mapping[str, int]], now: datetime) -> int:
        """One document per scope for `day`; those already taken stay as they are. Returns the
        number written."""
        key = day.isoformat()
        docs = [
            {
                "_id": f"{scope}|{key}",
                "scope": scope,
                "day": key,
                "people": max(0, int(fields.get(field(PEOPLE, ALL), 0))),
                "registrations": max(0, int(fields.get(field(REGISTRATIONS, ALL), 0))),
                "c": dict(fields),
                "taken_at": now,
            }
            for scope, fields in sorted(scopes.items())
        ]
        written = 0
        for start in range(0, len(docs), 500):
            chunk = docs[start : start + 500]
            try:
                result = await self.col.insert_many(chunk, ordered=False)
                written += len(result.inserted_ids)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                written += int(exc.details.get("nInserted", 0))
        return written

    async def trend(self, scope: str, since: date) -> list[Document]:
        """The scope's snapshots from `since` on, oldest first."""
        cursor = self.col.find(
            {"scope": scope, "day": {"$gte": since.isoformat()}},
            projection={"day": 1, "people": 1, "registrations": 1},
        ).sort([("day", ASCENDING)])
        docs = [doc async for doc in cursor]
        docs.sort(key=lambda d: str(d["day"]))
        return docs


class Stats(Store):
    """The counters (this collection), the per-person ledger and the daily snapshots.

    Personal data: the ledger holds, under the LINE user id, the facts of the person's
    registrations; `delete_for_user` (「データを削除」, after their registrations are gone) takes
    the person out of the counters and deletes their ledger. Counters and snapshots are sums.
    """

    collection_name = "stats_counters"
    personal_data = True

    def __init__(
        self, db: AsyncDatabase[Document], shards: int = SHARDS, cache_ttl: float = CACHE_TTL
    ) -> None:
        super().__init__(db)
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.shards = shards
        self.cache_ttl = cache_ttl
        self.ledger = StatsLedger(db)
        self.marks = StatsMarks(db)
        self.snapshots = StatsSnapshots(db)
        self.registrations = db["registrations"]  # read only
        self._locks: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, Cached] = {}  # by scope, least recently read first

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("scope", ASCENDING)], name="scope")]

    async def ensure_indexes(self) -> None:
        await super().ensure_indexes()
        await self.ledger.ensure_indexes()
        await self.marks.ensure_indexes()
        await self.snapshots.ensure_indexes()

    async def delete_for_user(self, user_id: str) -> int:
        """Data deletion: the counters follow the person's (deleted) registrations, then their
        ledger goes. Returns the ledger documents deleted."""
        if await self.ledger.get(user_id) is not None:  # none: nothing of theirs is counted
            await self.reconcile(user_id)
        return await self.ledger.delete_for(user_id)

    # --- keeping the counters ------------------------------------------------------------------

    async def registrations_changed(self, user_id: str, now: datetime | None = None) -> None:
        """Bring the counters up to date with the person's registrations (call after every
        write to `registrations`). A database error is logged, not raised: the registration is
        made, and the nightly recount adds what is missing."""
        try:
            await self.reconcile(user_id, now)
        except PyMongoError:
            log.warning(
                "stats: counters not updated; the nightly recount will correct them",
                exc_info=True,
            )

    async def user_registrations(self, user_id: str) -> Ledger:
        cursor = self.registrations.find({"user_id": user_id}, projection=FACT_FIELDS)
        return facts_of([doc async for doc in cursor])

    async def reconcile(self, user_id: str, now: datetime | None = None) -> dict[Key, int]:
        """Make the person's ledger, and the counters with it, match their registrations;
        returns the change applied to the counters.

        Each call ends by writing a new version of the ledger (even when nothing changed), from
        registrations read after the version it replaces was read. So the last version always
        comes from a read made after the last registration write: a writer that read before it
        cannot write any more (its claim on that version fails and it reads again), and one
        that read after it read the final registrations.
        """
        at = now or datetime.now(UTC)
        for attempt in range(MAX_ATTEMPTS):
            head = await self.ledger.get(user_id)
            version = int(head["v"]) if head is not None else 0
            counted = ledger_of(head)
            current = await self.user_registrations(user_id)
            if not await self.ledger.claim(user_id, version + 1):
                await asyncio.sleep(min(0.2, 0.002 * (attempt + 1)))  # another writer: wait
                continue
            await self.ledger.write(user_id, version + 1, current, at)
            delta = difference(contributions(counted.values()), contributions(current.values()))
            await self.add(delta)
            return delta
        log.warning("stats: a person's counters were not updated; the recount will do it")
        return {}

    def _lock(self, doc_id: str) -> asyncio.Lock:
        lock = self._locks.get(doc_id)
        if lock is None:
            lock = self._locks[doc_id] = asyncio.Lock()
        return lock

    def _pick_shard(self, scope: str) -> str:
        """A random shard of the scope, preferring one no task of this process is writing."""
        order = random.sample(range(self.shards), self.shards)
        for shard in order:
            doc_id = f"{scope}#{shard}"
            if not self._lock(doc_id).locked():
                return doc_id
        return f"{scope}#{order[0]}"

    async def add(self, delta: Mapping[Key, int], shard: int | None = None) -> None:
        """Add to the counters: one `$inc` per scope, on a shard no task of this process is
        writing (`shard` forces one), then the scope's mark; the scopes in parallel."""
        scopes = by_scope(delta)
        if not scopes:
            return
        targets = {
            scope: (f"{scope}#{shard}" if shard is not None else self._pick_shard(scope))
            for scope in scopes
        }
        async with AsyncExitStack() as stack:
            # Sorted: two tasks taking several locks never wait on each other in a cycle.
            for doc_id in sorted(targets.values()):
                await stack.enter_async_context(self._lock(doc_id))
            await asyncio.gather(
                *(self._inc(targets[scope], scope, fields) for scope, fields in scopes.items())
            )

    async def _inc(self, doc_id: str, scope: str, fields: Mapping[str, int]) -> None:
        update = {
            "$inc": {"ops": 1, **{f"c.{name}": n for name, n in fields.items()}},
            "$setOnInsert": {"scope": scope, "shard": int(doc_id.rsplit("#", 1)[1])},
        }
        for _ in range(5):
            try:
                await self.col.update_one({"_id": doc_id}, update, upsert=True)
                break
            except DuplicateKeyError:
                continue  # two first writes raced on the upsert: the document exists now
        else:
            raise RuntimeError(f"stats: counter {doc_id!r} could not be written")
        await self.marks.move(scope)  # after the change: a reader that sees it reads it

    # --- reading -------------------------------------------------------------------------------

    def _shard_ids(self, scope: str) -> list[str]:
        return [f"{scope}#{shard}" for shard in range(self.shards)]

    async def figures(self, scope: str) -> Figures:
        return (await self.figures_of([scope]))[scope]

    async def figures_of(self, scopes: Iterable[str]) -> dict[str, Figures]:
        """Summed counters of these scopes: their marks, then the shard documents of those whose
        mark moved since this process last read them (or whose figures are older than
        `cache_ttl`)."""
        wanted = list(dict.fromkeys(scopes))
        # Read before the shards: a change made after this read moves the mark again.
        marks = await self.marks.of(wanted)
        now = time.monotonic()
        found = {
            scope: fields
            for scope in wanted
            if (fields := self._cached(scope, marks[scope], now)) is not None
        }
        for scope, fields in (await self._read([s for s in wanted if s not in found])).items():
            found[scope] = fields
            self._cache.pop(scope, None)
            self._cache[scope] = Cached(marks[scope], fields, now)
            if len(self._cache) > CACHE_SCOPES:
                del self._cache[next(iter(self._cache))]
        return {scope: Figures(scope, found[scope]) for scope in wanted}

    def _cached(self, scope: str, mark: str | None, now: float) -> dict[str, int] | None:
        """The scope's figures this process holds as of `mark`, if read recently enough."""
        entry = self._cache.get(scope)
        if entry is None or entry.mark != mark or now - entry.at >= self.cache_ttl:
            return None
        self._cache[scope] = self._cache.pop(scope)  # most recently read: evicted last
        return entry.fields

    async def _read(self, wanted: list[str]) -> dict[str, dict[str, int]]:
        """Summed shard documents of these scopes."""
        ids = [doc_id for scope in wanted for doc_id in self._shard_ids(scope)]
        totals: dict[str, dict[str, int]] = {scope: {} for scope in wanted}
        # One read by `_id` per shard document: FerretDB 1.24 answers `_id` equality from its
        # index on SQLite (on PostgreSQL by a scan in PostgreSQL: see `stats_marks`) but an `$in`
        # by reading every counter document (measured: 10× slower at a million registrations);
        # MongoDB serves both from the index.
        docs = await asyncio.gather(*(self.col.find_one({"_id": doc_id}) for doc_id in ids))
        for doc in docs:
            if doc is None:
                continue
            scope = str(doc.get("scope") or str(doc["_id"]).rsplit("#", 1)[0])
            if scope in totals:
                add_fields(totals[scope], doc.get("c") or {})
        return totals

    async def states(self, scopes: Iterable[str] | None = None) -> dict[str, ScopeState]:
        """Every scope's fields and shard `ops` (all scopes when None): memory O(counters)."""
        query: Document = {}
        if scopes is not None:
            query = {"_id": {"$in": [i for s in scopes for i in self._shard_ids(s)]}}
        fields: dict[str, dict[str, int]] = {}
        ops: dict[str, list[tuple[int, int]]] = {}
        async for doc in self.col.find(query).batch_size(1000):
            scope = str(doc.get("scope") or str(doc["_id"]).rsplit("#", 1)[0])
            add_fields(fields.setdefault(scope, {}), doc.get("c") or {})
            ops.setdefault(scope, []).append((int(doc.get("shard", -1)), int(doc.get("ops", 0))))
        return {scope: ScopeState(fields[scope], tuple(sorted(ops[scope]))) for scope in fields}
