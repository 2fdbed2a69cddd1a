"""The one MongoDB client of a process, and start-up/health helpers around it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from bot.storage import pymongo_py311

log = logging.getLogger(__name__)
pymongo_py311.install()  # before any client waits on a lock

Document = dict[str, Any]


class DatabaseUnavailable(Exception):
    """The database did not answer within the start-up deadline."""


class Mongo:
    """Owns the process's `AsyncMongoClient` and the application database."""

    def __init__(self, uri: str, db_name: str) -> None:
        # Short server-selection timeout: callers (health, webhook) must fail fast when the
        # database is away, so LINE redelivers instead of waiting on us.
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=3000,
            connectTimeoutMS=3000,
            appname="furusato-bot",
        )
        self.db: AsyncDatabase[Document] = self.client[db_name]

    async def ping(self, timeout: float = 1.5) -> bool:
        try:
            with pymongo.timeout(timeout):
                await self.client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    async def wait_until_up(self, deadline_s: float) -> None:
        """Ping with exponential backoff until the database answers or the deadline passes."""
        start = time.monotonic()
        delay = 0.2
        while not await self.ping(timeout=2.0):
            waited = time.monotonic() - start
            if waited >= deadline_s:
                raise DatabaseUnavailable(
                    f"the database at MONGODB_URI did not answer within {deadline_s:.0f} s"
                )
            log.warning(
                "database not answering yet; retrying", extra={"waited_s": round(waited, 1)}
            )
            await asyncio.sleep(min(delay, max(0.0, deadline_s - waited)))
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        await self.client.close()
