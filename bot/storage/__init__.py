"""Everything that touches MongoDB. Nothing outside this package uses collections directly."""

from __future__ import annotations

from datetime import datetime

from bot.storage.base import Store
from bot.storage.db import Mongo
from bot.storage.events import InboundEvents, UserLeases


class Storage:
    """All stores of the application over one database."""

    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo
        db = mongo.db
        self.inbound_events = InboundEvents(db)
        self.user_leases = UserLeases(db)

    def stores(self) -> list[Store]:
        return [value for value in vars(self).values() if isinstance(value, Store)]

    async def ensure_indexes(self) -> None:
        for store in self.stores():
            await store.ensure_indexes()

    async def remove_expired(self, now: datetime) -> dict[str, int]:
        removed: dict[str, int] = {}
        for store in self.stores():
            if store.expires:
                removed[store.collection_name] = await store.remove_expired(now)
        return removed


__all__ = ["Mongo", "Storage"]
