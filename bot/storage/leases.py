"""Leases held in the database, so that processes on several machines exclude each other.

A lease is a sequence of generations `name#1`, `name#2`, …; taking a lease (fresh, or over an
expired holder) inserts the next generation. Only an insert against the unique `_id` is
exclusive on every server we run on (FerretDB 1.24 applies conditional updates non-atomically),
so two processes racing for the same lease can never both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store


class Leases(Store):
    """Named leases: one holder at a time (a user's event queue, a one-off set-up task)."""

    collection_name = "leases"
    expires = True

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("name", ASCENDING), ("seq", DESCENDING)], name="by_name")]

    async def acquire(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        latest = await self.col.find_one({"name": name}, sort=[("seq", DESCENDING)])
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
        if latest is not None and latest["expires_at"] >= now:
            return False  # held by someone else
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
