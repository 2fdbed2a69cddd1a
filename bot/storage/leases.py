"""Leases held in the database, so that processes on several machines exclude each other.

A lease is a sequence of generations `name#1`, `name#2`, …; taking a lease (fresh, or over an
expired holder) inserts the next generation. Only an insert against the unique `_id` is
exclusive on every server we run on (FerretDB 1.24 applies conditional updates non-atomically),
so two processes racing for the same lease can never both win.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store
from bot.storage.db import Document

T = TypeVar("T")


def _open_to(latest: Document | None, owner: str, now: datetime) -> bool:
    """`owner` may take a lease whose newest generation is `latest`: nobody holds it, `owner`
    does, or its holder's time ran out."""
    return latest is None or latest["owner"] == owner or latest["expires_at"] < now


class Leases(Store):
    """Named leases: one holder at a time (a user's event queue, a one-off set-up task)."""

    collection_name = "leases"
    expires = True

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("name", ASCENDING), ("seq", DESCENDING)], name="by_name")]

    async def acquire(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        latest = await self._latest(name)
        return _open_to(latest, owner, now) and await self._take(name, owner, now, ttl, latest)

    async def acquire_then(
        self,
        name: str,
        owner: str,
        now: datetime,
        ttl: timedelta,
        read: Callable[[], Awaitable[T]],
    ) -> tuple[bool, T | None]:
        """Take the lease and run `read` alongside: (taken, what `read` returned; None when not
        taken). `read` starts once the lease is seen free (or ours), so it sees everything a
        previous holder did before letting go; one whose lease ran out may still be at work."""
        latest = await self._latest(name)
        if not _open_to(latest, owner, now):
            return False, None
        taken, result = await asyncio.gather(self._take(name, owner, now, ttl, latest), read())
        return taken, result if taken else None

    async def _latest(self, name: str) -> Document | None:
        return await self.col.find_one({"name": name}, sort=[("seq", DESCENDING)])

    async def _take(
        self, name: str, owner: str, now: datetime, ttl: timedelta, latest: Document | None
    ) -> bool:
        """Take the lease, open to `owner`, whose newest generation was read as `latest`."""
        if latest is not None and latest["owner"] == owner:
            if latest["expires_at"] - now >= ttl / 2:
                # Ours with half the TTL left: a takeover needs it expired, so nothing to write.
                # (The webhook pipeline renews right after acquiring: two round trips saved.)
                return True
            # Renewal by the holder: its own generation, then make sure nobody took over since.
            await self.col.update_one(
                {"_id": latest["_id"], "owner": owner}, {"$set": {"expires_at": now + ttl}}
            )
            newer = await self.col.find_one({"name": name, "seq": {"$gt": latest["seq"]}})
            return newer is None
        seq = int(latest["seq"]) + 1 if latest is not None else 1
        try:
            await self.col.insert_one(
                {
                    "_id": f"{name}#{seq}",
                    "name": name,
                    "seq": seq,
                    "owner": owner,
                    "expires_at": now + ttl,
                }
            )
        except DuplicateKeyError:
            return False  # another process took this generation first
        if latest is not None:  # an expired holder's generations
            await self.col.delete_many({"name": name, "seq": {"$lt": seq}})
        return True

    async def release(self, name: str, owner: str) -> None:
        await self.col.delete_many({"name": name, "owner": owner})
