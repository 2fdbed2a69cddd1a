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
