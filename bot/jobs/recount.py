"""The nightly recount: every counter recomputed from `registrations`, compared, corrected.

`recount(storage) -> Drift` (also what benchmarks and tests call):

1. Streams the registrations sorted by person (the `user_place` index), one person at a time,
   next to the ledger sorted the same way (`stats_ledger`). The person's counted registrations
   are the truth: their `contributions` go into the expected counters (memory: one person's
   registrations plus one number per counter, never the whole collection). A person whose
   ledger disagrees (a write that never reached the counters: a crash, a direct database edit)
   is repaired on the spot with `Stats.reconcile`, the same path live writes use, so a repair
   is safe while residents keep registering.
2. Compares the expected counters with the stored ones and adds the difference to shard 0 of
   each scope; every difference is logged (`counter`, `expected`, `found`).

A counter is compared only when its scope did not move during the scan (the `ops` of its shards
are the same before and after, a `settle` pause later): comparing a scan with a moving target
would "correct" changes that are merely in flight. Scopes that moved are recounted again (up to
`attempts` scans); those still moving are reported as `deferred` and checked the next night.

Two recounts never run at once: the job takes a lease (`run_recount`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from pymongo import ASCENDING

from bot.clock import Clock
from bot.domain.stats import Key, contributions
from bot.storage import Storage
from bot.storage.db import Document
from bot.storage.stats import FACT_FIELDS, Ledger, facts_of, ledger_of

log = logging.getLogger("bot.jobs.recount")

LEASE = "stats-recount"
LEASE_TTL = timedelta(hours=6)


@dataclass(frozen=True)
class DriftItem:
    scope: str
    field: str
    expected: int
    found: int

    @property
    def counter(self) -> str:
        return f"{self.scope} {self.field}"

    @property
    def difference(self) -> int:
        return self.expected - self.found


@dataclass
class Drift:
    """What the recount found and corrected."""

    items: list[DriftItem] = field(default_factory=list)  # counters corrected
    repaired_people: int = 0  # persons whose counters missed a registration change
    deferred: list[str] = field(default_factory=list)  # scopes that kept moving: next time
    registrations: int = 0  # registrations read (first scan)
    people: int = 0  # persons read (first scan)
    scans: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.items and not self.repaired_people and not self.deferred

    def of(self, scope: str) -> dict[str, DriftItem]:
        return {item.field: item for item in self.items if item.scope == scope}


@dataclass
class _Scan:
    expected: dict[str, dict[str, int]] = field(default_factory=dict)
    registrations: int = 0
    people: int = 0
    repaired: int = 0


async def _people(storage: Storage, batch_size: int) -> AsyncIterator[tuple[str, list[Document]]]:
    """(person, their registrations), person by person."""
    cursor = storage.stats.registrations.find({}, projection=FACT_FIELDS).sort(
        [("user_id", ASCENDING), ("place_code", ASCENDING)]
    )
    user: str | None = None
    docs: list[Document] = []
    async for doc in cursor.batch_size(batch_size):
        uid = str(doc.get("user_id") or "")
        if uid != user:
            if user is not None:
                yield user, docs
            user, docs = uid, []
        docs.append(doc)
    if user is not None:
        yield user, docs


class _Ledgers:
    """The ledger stream, advanced alongside the people stream (both sorted by user id)."""

    def __init__(self, stream: AsyncIterator[Document]) -> None:
        self.stream = stream
        self.head: Document | None = None
        self.started = False

    async def until(self, user: str | None) -> tuple[Document | None, list[str]]:
        """The ledger of `user` (None: to the end), and the persons before it that have a
        ledger still counting registrations but no registrations left."""
        if not self.started:
            self.started = True
            self.head = await anext(self.stream, None)
        found: Document | None = None
        orphans: list[str] = []
        while self.head is not None and (user is None or str(self.head["_id"]) <= user):
            doc = self.head
            self.head = await anext(self.stream, None)
            if str(doc["_id"]) == user:
                found = doc
            elif ledger_of(doc):
                orphans.append(str(doc["_id"]))
        return found, orphans


async def _repair(storage: Storage, user: str) -> bool:
    delta = await storage.stats.reconcile(user)
    return bool(delta)


def _add(
    expected: dict[str, dict[str, int]], counts: dict[Key, int], only: set[str] | None
) -> None:
    for (scope, name), n in counts.items():
        if only is None or scope in only:
            fields = expected.setdefault(scope, {})
            fields[name] = fields.get(name, 0) + n


async def _scan(storage: Storage, batch_size: int, only: set[str] | None, repair: bool) -> _Scan:
    scan = _Scan()
    ledgers = _Ledgers(storage.stats.ledger.sorted_by_user(batch_size)) if repair else None
    async for user, docs in _people(storage, batch_size):
        truth: Ledger = facts_of(docs)
        scan.registrations += len(docs)
        scan.people += 1
        if ledgers is not None:
            ledger, orphans = await ledgers.until(user)
            for orphan in orphans:
                scan.repaired += await _repair(storage, orphan)
            if ledger_of(ledger) != truth and await _repair(storage, user):
                scan.repaired += 1
        _add(scan.expected, dict(contributions(truth.values())), only)
    if ledgers is not None:
        _, orphans = await ledgers.until(None)
        for orphan in orphans:
            scan.repaired += await _repair(storage, orphan)
    return scan


async def recount(
    storage: Storage,
    *,
    settle: float = 2.0,
    attempts: int = 3,
    batch_size: int = 1000,
) -> Drift:
    """Recompute every counter from the registrations; correct and report the drift."""
    started = time.monotonic()
    drift = Drift()
    stats = storage.stats
    pending: set[str] | None = None  # None: every scope
    for attempt in range(attempts):
        before = await stats.states(pending)
        scan = await _scan(storage, batch_size, pending, repair=attempt == 0)
        drift.scans += 1
        drift.repaired_people += scan.repaired
        if attempt == 0:
            drift.registrations, drift.people = scan.registrations, scan.people
        if settle > 0:
            await asyncio.sleep(settle)
        after = await stats.states(pending)
        scopes = pending if pending is not None else set(scan.expected) | set(after)
        moved: set[str] = set()
        for scope in sorted(scopes):
            was, now = before.get(scope), after.get(scope)
            if (was.ops if was else ()) != (now.ops if now else ()):
                moved.add(scope)
                continue
            expected = scan.expected.get(scope, {})
            found = now.fields if now else {}
            fix: dict[Key, int] = {}
            for name in sorted(expected.keys() | found.keys()):
                e, f = expected.get(name, 0), found.get(name, 0)
                if e != f:
                    item = DriftItem(scope, name, e, f)
                    drift.items.append(item)
                    fix[(scope, name)] = e - f
                    log.warning(
                        "stats drift corrected",
                        extra={"counter": item.counter, "expected": e, "found": f},
                    )
            if fix:
                await stats.add(fix, shard=0)
        pending = moved
        if not moved:
            break
    drift.deferred = sorted(pending or ())
    drift.seconds = time.monotonic() - started
    log.info(
        "stats recount done",
        extra={
            "registrations": drift.registrations,
            "people": drift.people,
            "counters_corrected": len(drift.items),
            "people_repaired": drift.repaired_people,
            "deferred_scopes": drift.deferred,
            "scans": drift.scans,
            "seconds": round(drift.seconds, 2),
        },
    )
    return drift


async def run_recount(storage: Storage, clock: Clock) -> Drift | None:
    """The worker's nightly job: `recount` under a lease (None when another one is running)."""
    owner = uuid.uuid4().hex
    if not await storage.leases.acquire(LEASE, owner, clock.now(), LEASE_TTL):
        log.info("stats recount skipped: another recount is running")
        return None
    try:
        return await recount(storage)
    finally:
        await storage.leases.release(LEASE, owner)
