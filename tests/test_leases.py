"""Leases exclude racing holders on the real database (FerretDB: only inserts are exclusive)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from bot.clock import Clock
from bot.storage import Storage


async def race(storage: Storage, name: str, now_offset: timedelta = timedelta()) -> list[str]:
    now = Clock().now() + now_offset
    owners = [uuid.uuid4().hex for _ in range(20)]
    won = await asyncio.gather(
        *(storage.leases.acquire(name, o, now, timedelta(seconds=60)) for o in owners)
    )
    return [o for o, ok in zip(owners, won, strict=True) if ok]


async def test_one_of_many_racing_owners_gets_a_fresh_lease(storage: Storage) -> None:
    assert len(await race(storage, f"fresh-{uuid.uuid4().hex}")) == 1


async def test_one_of_many_takes_over_an_expired_lease(storage: Storage) -> None:
    name = f"expired-{uuid.uuid4().hex}"
    past = Clock().now() - timedelta(minutes=5)
    assert await storage.leases.acquire(name, "dead-process", past, timedelta(seconds=60))
    winners = await race(storage, name)
    assert len(winners) == 1
    # The dead holder's generation is gone; the winner can renew and the loser cannot take it.
    now = Clock().now()
    assert await storage.leases.acquire(name, winners[0], now, timedelta(seconds=60))
    assert not await storage.leases.acquire(name, "dead-process", now, timedelta(seconds=60))


async def test_release_lets_the_next_holder_in(storage: Storage) -> None:
    name = f"release-{uuid.uuid4().hex}"
    now = Clock().now()
    assert await storage.leases.acquire(name, "a", now, timedelta(seconds=60))
    assert not await storage.leases.acquire(name, "b", now, timedelta(seconds=60))
    await storage.leases.release(name, "a")
    assert await storage.leases.acquire(name, "b", now, timedelta(seconds=60))


async def test_a_holder_that_was_taken_over_cannot_renew(storage: Storage) -> None:
    name = f"takeover-{uuid.uuid4().hex}"
    then = Clock().now() - timedelta(minutes=5)
    assert await storage.leases.acquire(name, "slow", then, timedelta(seconds=60))
    now = Clock().now()
    assert await storage.leases.acquire(name, "fast", now, timedelta(seconds=60))
    assert not await storage.leases.acquire(name, "slow", now, timedelta(seconds=60))


async def test_a_read_alongside_the_taking_runs_only_once_the_lease_is_open(
    storage: Storage,
) -> None:
    name = f"then-{uuid.uuid4().hex}"
    now, ttl = Clock().now(), timedelta(seconds=60)
    reads: list[str] = []

    async def read() -> str:
        reads.append("read")
        return "seen"

    assert await storage.leases.acquire_then(name, "first", now, ttl, read) == (True, "seen")
    # Held: the other owner neither takes it nor reads.
    assert await storage.leases.acquire_then(name, "second", now, ttl, read) == (False, None)
    assert reads == ["read"]
    # Racing owners once it is let go: one takes it, and only the winner gets its read back.
    await storage.leases.release(name, "first")
    owners = [uuid.uuid4().hex for _ in range(10)]
    results = await asyncio.gather(
        *(storage.leases.acquire_then(name, o, now, ttl, read) for o in owners)
    )
    assert sorted(results, key=lambda r: r[0]) == [(False, None)] * 9 + [(True, "seen")]
    # Over an expired holder, a new owner takes it and reads.
    later = now + timedelta(minutes=5)
    assert await storage.leases.acquire_then(name, "third", later, ttl, read) == (True, "seen")
