"""Named sequences (registration numbers per place).

`next` is an atomic `$inc` with upsert on MongoDB. FerretDB 1.24 does not apply `$inc` atomically
(two racing increments can return the same value), so `next_unique` also claims each value with
an insert against the unique `_id` ("<name>#<value>"), which is atomic everywhere, and draws again
when the value was already claimed. Claimed values are never given out again, even when the
registration that used the number is deleted.
"""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store

MAX_DRAWS = 1000


class Counters(Store):
    collection_name = "counters"

    async def next(self, name: str) -> int:
        """The next value of the sequence `name`, starting at 1 (atomic on MongoDB only)."""
        for _ in range(3):
            try:
                doc = await self.col.find_one_and_update(
                    {"_id": name},
                    {"$inc": {"seq": 1}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # two first uses raced on the upsert: the document exists now
            if doc is not None:
                return int(doc["seq"])
        raise RuntimeError(f"counter {name!r} could not be incremented")

    async def next_unique(self, name: str) -> int:
        """The next value of `name` that nobody else has been given, on any server."""
        for _ in range(MAX_DRAWS):
            value = await self.next(name)
            try:
                await self.col.insert_one({"_id": f"{name}#{value}", "claimed": True})
            except DuplicateKeyError:
                continue
            return value
        raise RuntimeError(f"counter {name!r}: no free value after {MAX_DRAWS} draws")

    async def current(self, name: str) -> int:
        doc = await self.col.find_one({"_id": name})
        return int(doc["seq"]) if doc else 0
