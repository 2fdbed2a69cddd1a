"""The shape every store follows: one collection, its indexes, its queries."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from bot.storage.db import Document

DUPLICATE_KEY = 11000


class Store:
    """Base of a module-per-aggregate store.

    `expires`: the collection's documents carry `expires_at` and the worker's cleanup job removes
    them after that time (the portable subset has no TTL indexes).

    `personal_data`: the collection holds a resident's data under their LINE user id. Such a
    store has `delete_for_user(user_id) -> int`, and `bot.storage.privacy.delete_person` (「データ
    を削除」) must cover it; `tests/test_privacy_coverage.py` fails until it does.
    """

    collection_name: ClassVar[str]
    expires: ClassVar[bool] = False
    personal_data: ClassVar[bool] = False

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.col: AsyncCollection[Document] = db[self.collection_name]

    def indexes(self) -> list[IndexModel]:
        return []

    async def ensure_indexes(self) -> None:
        wanted = self.indexes()
        if self.expires:
            wanted.append(IndexModel("expires_at", name="expires_at"))
        # One at a time and only the missing ones: FerretDB 1.24 drops the connection on a
        # createIndexes whose list mixes existing and new indexes.
        existing = {ix["name"] async for ix in await self.col.list_indexes()}
        for index in wanted:
            if index.document["name"] not in existing:
                await self.col.create_indexes([index])

    async def insert_if_new(self, doc: Document) -> bool:
        """Insert a document; False when its `_id` was taken already."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def insert_new(self, docs: list[Document]) -> set[str]:
        """Insert, in one round trip, the documents whose `_id` is free; the `_id`s that were
        taken already (by an earlier attempt or another process)."""
        if not docs:
            return set()
        try:
            await self.col.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return {str(docs[e["index"]]["_id"]) for e in errors}
        return set()

    async def remove_expired(self, now: datetime) -> int:
        result = await self.col.delete_many({"expires_at": {"$lt": now}})
        return result.deleted_count
