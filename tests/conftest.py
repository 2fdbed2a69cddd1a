"""Shared fixtures: a real FerretDB for the session (or MONGODB_URI), a database per session."""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pymongo
import pytest

from bot.devdb import LocalFerret
from bot.settings import Settings
from bot.storage import Mongo, Storage

pytest_plugins = ["tests.stack", "tests.dialog_chat"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """The database server: MONGODB_URI when set, else a FerretDB started for this session."""
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="ferret-", dir=_var()) as data_dir:
        ferret = LocalFerret(Path(data_dir))
        ferret.start()
        try:
            client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
                ferret.uri, serverSelectionTimeoutMS=20000
            )
            client.admin.command("ping")
            client.close()
            yield ferret.uri
        finally:
            ferret.stop()


def _var() -> str:
    path = ROOT / "var"
    path.mkdir(exist_ok=True)
    return str(path)


@pytest.fixture(scope="session")
def db_name(mongo_uri: str) -> Iterator[str]:
    """A database of this test session's own, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_uri)
    client.drop_database(name)
    client.close()


@pytest.fixture
def own_db_name(mongo_uri: str, db_name: str) -> Iterator[str]:
    """A database for one test alone, dropped afterwards: for tests that change shared settings
    at random (schema fuzzing) or need a set-up no earlier test touched."""
    name = f"{db_name}_{uuid.uuid4().hex[:6]}"
    yield name
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_uri)
    client.drop_database(name)
    client.close()


def make_env(mongo_uri: str, db_name: str, **overrides: str) -> dict[str, str]:
    env = {
        "LINE_CHANNEL_SECRET": secrets.token_hex(16),
        "LINE_CHANNEL_ACCESS_TOKEN": secrets.token_hex(32),
        "LINE_API_BASE_URL": "http://127.0.0.1:9",
        "MONGODB_URI": mongo_uri,
        "MONGODB_DB": db_name,
        "PUBLIC_BASE_URL": "http://127.0.0.1:8080",
        "SESSION_SECRET": secrets.token_hex(32),
        "CARD_SIGNING_SECRET": secrets.token_hex(32),
    }
    env.update(overrides)
    return env


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return Settings.from_env(make_env(mongo_uri, db_name))


@pytest.fixture
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    mongo = Mongo(settings.mongodb_uri, settings.mongodb_db)
    store = Storage(mongo)
    await store.ensure_indexes()
    yield store
    await mongo.close()
