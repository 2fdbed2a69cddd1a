"""Registrants as staff see them: a read-only view of the `registrations` collection.

The dialog engine writes `registrations` (`bot/storage/registrations.py`); this module only
reads it, always within a tenant's places (`Tenant.registrant_places`: empty for operators, who
see no resident-level data). The LINE user id never leaves this module: every query projects it
away, except the aggregate that counts distinct people.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, IndexModel

from bot.staff.tenancy import Tenant, places_in_prefecture
from bot.storage.base import Store
from bot.storage.db import Document
from bot.storage.staff import object_id

# What staff may see of a registration: no LINE user id, no answers, no residence municipality
# (only its prefecture is shown, derived from residence_code by the caller).
PROJECTION = {"user_id": 0, "answers": 0}


@dataclass(frozen=True)
class RegistrantFilter:
    """Filters of the registrant list; None means any."""

    place_code: str | None = None  # one place within the tenant's (for prefectures)
    tier: str | None = None
    type: str | None = None
    residence_prefecture: str | None = None  # a prefecture code
    age_band: str | None = None
    connection: str | None = None
    since_from: datetime | None = None  # inclusive
    since_until: datetime | None = None  # exclusive
    status: str | None = None


@dataclass(frozen=True)
class Totals:
    people: int  # 実人数: distinct persons
    registrations: int  # 延べ人数


class Registrants(Store):
    collection_name = "registrations"

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("place_code", 1), ("_id", DESCENDING)], name="place_id")]

    def query(self, tenant: Tenant, filters: RegistrantFilter | None = None) -> Document | None:
        """The MongoDB filter for the tenant and these filters; None when nothing can match."""
        places = tenant.registrant_places
        f = filters or RegistrantFilter()
        if f.place_code is not None:
            if f.place_code not in places:
                return None
            places = frozenset({f.place_code})
        if not places:
            return None
        query: dict[str, Any] = (
            {"place_code": next(iter(places))}
            if len(places) == 1
            else {"place_code": {"$in": sorted(places)}}
        )
        for field in ("tier", "age_band", "connection", "status"):
            value = getattr(f, field)
            if value is not None:
                query[field] = value
        if f.type is not None:
            query["types"] = f.type
        if f.residence_prefecture is not None:
            query["residence_code"] = {"$in": sorted(places_in_prefecture(f.residence_prefecture))}
        since: dict[str, datetime] = {}
        if f.since_from is not None:
            since["$gte"] = f.since_from
        if f.since_until is not None:
            since["$lt"] = f.since_until
        if since:
            query["since"] = since
        return query

    async def page(
        self,
        tenant: Tenant,
        filters: RegistrantFilter,
        *,
        limit: int,
        after: str | None = None,
    ) -> tuple[list[Document], str | None]:
        """Newest first, `limit` at a time; `after` is the cursor the previous page returned."""
        query = self.query(tenant, filters)
        if query is None:
            return [], None
        if after is not None:
            oid = object_id(after)
            if oid is None:
                return [], None
            query = {**query, "_id": {"$lt": oid}}
        cursor = self.col.find(query, projection=PROJECTION).sort([("_id", DESCENDING)])
        docs = [doc async for doc in cursor.limit(limit + 1)]
        more = len(docs) > limit
        docs = docs[:limit]
        return docs, (str(docs[-1]["_id"]) if more and docs else None)

    async def count(self, tenant: Tenant, filters: RegistrantFilter) -> int:
        query = self.query(tenant, filters)
        return 0 if query is None else await self.col.count_documents(query)

    async def get_for(self, tenant: Tenant, registration_id: str) -> Document | None:
        oid = object_id(registration_id)
        query = self.query(tenant)
        if oid is None or query is None:
            return None
        return await self.col.find_one({**query, "_id": oid}, projection=PROJECTION)

    async def stream(
        self, tenant: Tenant, filters: RegistrantFilter, batch_size: int = 500
    ) -> AsyncIterator[Document]:
        """Every matching registration, newest first, fetched `batch_size` at a time."""
        query = self.query(tenant, filters)
        if query is None:
            return
        after: ObjectId | None = None
        while True:
            q = query if after is None else {**query, "_id": {"$lt": after}}
            cursor = self.col.find(q, projection=PROJECTION).sort([("_id", DESCENDING)])
            docs = [doc async for doc in cursor.limit(batch_size)]
            for doc in docs:
                yield doc
            if len(docs) < batch_size:
                return
            after = docs[-1]["_id"]

    async def totals(self, tenant: Tenant, filters: RegistrantFilter | None = None) -> Totals:
        """実人数 (distinct persons) and 延べ人数 (registrations) within the tenant."""
        query = self.query(tenant, filters)
        if query is None:
            return Totals(0, 0)
        registrations = await self.col.count_documents(query)
        pipeline: list[dict[str, Any]] = [
            {"$match": query},
            {"$group": {"_id": "$user_id"}},
            {"$count": "n"},
        ]
        people = 0
        async for doc in await self.col.aggregate(pipeline):
            people = int(doc["n"])
        return Totals(people, registrations)

    async def count_by(
        self, tenant: Tenant, field: str, filters: RegistrantFilter | None = None
    ) -> dict[str, int]:
        """Registrations per value of `field` (`types` counts each type of a registration)."""
        query = self.query(tenant, filters)
        if query is None:
            return {}
        pipeline: list[dict[str, Any]] = [{"$match": query}]
        if field == "types":
            pipeline.append({"$unwind": "$types"})
        pipeline.append({"$group": {"_id": f"${field}", "n": {"$sum": 1}}})
        out: dict[str, int] = {}
        async for doc in await self.col.aggregate(pipeline):
            out[str(doc["_id"])] = int(doc["n"])
        return out

    # --- national figures (operators): counts only, never rows ----------------------------------

    async def national_totals(self) -> Totals:
        registrations = await self.col.count_documents({})
        people = 0
        pipeline: list[dict[str, Any]] = [{"$group": {"_id": "$user_id"}}, {"$count": "n"}]
        async for doc in await self.col.aggregate(pipeline):
            people = int(doc["n"])
        return Totals(people, registrations)

    async def national_count_by(self, field: str) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = []
        if field == "types":
            pipeline.append({"$unwind": "$types"})
        pipeline.append({"$group": {"_id": f"${field}", "n": {"$sum": 1}}})
        out: dict[str, int] = {}
        async for doc in await self.col.aggregate(pipeline):
            out[str(doc["_id"])] = int(doc["n"])
        return out
