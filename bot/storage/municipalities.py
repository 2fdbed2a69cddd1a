"""The municipality directory in the database: one document per 全国地方公共団体コード.

Search runs in memory over the packaged data (bot/domain/places.py); these documents are what
tenants hang their settings on, and what queries across collections refer to.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pymongo import ASCENDING, IndexModel

from bot.domain.places import Place
from bot.storage.base import Store
from bot.storage.db import Document


class Municipalities(Store):
    collection_name = "municipalities"

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("prefecture_code", ASCENDING)], name="by_prefecture")]

    async def load_directory(self, places: Iterable[Place], now: datetime) -> int:
        """Insert missing places and correct changed ones; settings staff added stay untouched.

        Only differences are written: FerretDB rewrites a document on every upsert, so blindly
        upserting the 1,788 rows on each start would take minutes there.
        """
        stored = {
            doc["_id"]: doc async for doc in self.col.find({}, projection=dict.fromkeys(_FIELDS, 1))
        }
        missing: list[Document] = []
        changed = 0
        for place in places:
            fields = _fields(place)
            current = stored.get(place.code)
            if current is None:
                missing.append({"_id": place.code, **fields, "created_at": now})
            elif any(current.get(key) != value for key, value in fields.items()):
                await self.col.update_one({"_id": place.code}, {"$set": fields})
                changed += 1
        for start in range(0, len(missing), 500):
            await self.col.insert_many(missing[start : start + 500], ordered=False)
        return changed + len(missing)

    async def get(self, code: str) -> Document | None:
        return await self.col.find_one({"_id": code})

    async def count(self) -> int:
        return await self.col.count_documents({})


_FIELDS = ("name", "display_name", "prefecture", "prefecture_code", "kana", "is_prefecture")


def _fields(place: Place) -> Document:
    return {
        "name": place.name,
        "display_name": place.display_name,
        "prefecture": place.prefecture,
        "prefecture_code": place.prefecture_code,
        "kana": place.kana,
        "is_prefecture": place.is_prefecture,
    }
