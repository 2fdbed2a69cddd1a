"""Everything that touches MongoDB. Nothing outside this package uses collections directly."""

from __future__ import annotations

from datetime import datetime

from bot.storage.base import Store
from bot.storage.conversations import Conversations
from bot.storage.counters import Counters
from bot.storage.db import Mongo
from bot.storage.events import InboundEvents, UserLeases
from bot.storage.questions import MunicipalityQuestions
from bot.storage.registrations import Registrations
from bot.storage.sends import Sends
from bot.storage.users import Users


class Storage:
    """All stores of the application over one database."""

    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo
        db = mongo.db
        self.inbound_events = InboundEvents(db)
        self.user_leases = UserLeases(db)
        self.users = Users(db)
        self.sends = Sends(db)
        self.conversations = Conversations(db)
        self.registrations = Registrations(db)
        self.counters = Counters(db)
        self.questions = MunicipalityQuestions(db)

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
