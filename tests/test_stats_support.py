"""Helpers of the stats tests (no tests here): a database of their own, so that a recount sees
only what the test made, and the truth counted the slow way, independently of the counters."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.domain.places import get_place
from bot.storage import Mongo, Storage
from bot.storage.registrations import BasicApplication


@asynccontextmanager
async def own_database(mongo_uri: str) -> AsyncIterator[tuple[Mongo, str]]:
    name = f"stats_{uuid.uuid4().hex[:12]}"
    mongo = Mongo(mongo_uri, name)
    try:
        yield mongo, name
    finally:
        await mongo.client.drop_database(name)
        await mongo.close()


async def open_storage(mongo: Mongo, shards: int | None = None) -> Storage:
    storage = Storage(mongo)
    if shards is not None:
        storage.stats.shards = shards
    await storage.ensure_indexes()
    return storage


def new_user() -> str:
    return "U" + uuid.uuid4().hex


def application(
    user_id: str,
    place_code: str,
    *,
    types: tuple[str, ...] = ("visit",),
    connection: str = "hometown",
    residence_code: str = "131016",
    age_band: str = "30s",
) -> BasicApplication:
    return BasicApplication(
        user_id=user_id,
        place_code=place_code,
        types=list(types),
        connection=connection,
        residence_code=residence_code,
        age_band=age_band,
        nickname="テスト",
    )


async def naive_totals(storage: Storage) -> dict[str, tuple[int, int]]:
    """Per scope, (people, registrations), counted from the registrations one by one: the
    definition the counters must meet, written without any of their code."""
    people: dict[str, set[str]] = defaultdict(set)
    registrations: dict[str, int] = defaultdict(int)
    async for doc in storage.registrations.col.find({"status": "active"}):
        place = get_place(doc["place_code"])
        assert place is not None
        for scope in (f"place:{place.code}", f"pref:{place.prefecture_code}", "nation"):
            people[scope].add(doc["user_id"])
            registrations[scope] += 1
    return {scope: (len(people[scope]), registrations[scope]) for scope in registrations}


async def naive_by(storage: Storage, scope: str, field: str) -> dict[str, tuple[int, int]]:
    """Per value of a registration field within a scope: (people, registrations)."""
    people: dict[str, set[str]] = defaultdict(set)
    registrations: dict[str, int] = defaultdict(int)
    async for doc in storage.registrations.col.find({"status": "active"}):
        place = get_place(doc["place_code"])
        assert place is not None
        if scope not in (f"place:{place.code}", f"pref:{place.prefecture_code}", "nation"):
            continue
        values: list[Any] = doc[field] if isinstance(doc[field], list) else [doc[field]]
        for value in set(values):
            people[str(value)].add(doc["user_id"])
            registrations[str(value)] += 1
    return {v: (len(people[v]), registrations[v]) for v in registrations}
