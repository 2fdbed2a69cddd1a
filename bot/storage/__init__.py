"""Everything that touches MongoDB. Nothing outside this package uses collections directly."""

from __future__ import annotations

from datetime import datetime

from bot.storage.base import Store
from bot.storage.conversations import Conversations
from bot.storage.counters import Counters
from bot.storage.db import Mongo
from bot.storage.events import InboundEvents
from bot.storage.leases import Leases
from bot.storage.municipalities import Municipalities
from bot.storage.premium import IdentityDocuments, PremiumApplications
from bot.storage.questions import MunicipalityQuestions
from bot.storage.registrants import Registrants
from bot.storage.registrations import Registrations
from bot.storage.richmenus import RichMenuIds
from bot.storage.sends import Sends
from bot.storage.staff import ApiKeys, AuditLog, LoginThrottle, StaffAccounts, StaffSessions
from bot.storage.users import Users


class Storage:
    """All stores of the application over one database."""

    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo
        db = mongo.db
        self.inbound_events = InboundEvents(db)
        self.leases = Leases(db)
        self.rich_menus = RichMenuIds(db)
        self.municipalities = Municipalities(db)
        self.premium_applications = PremiumApplications(db)
        self.identity_documents = IdentityDocuments(db)
        self.users = Users(db)
        self.sends = Sends(db)
        self.conversations = Conversations(db)
        self.registrations = Registrations(db)
        self.counters = Counters(db)
        self.questions = MunicipalityQuestions(db)
        self.staff_accounts = StaffAccounts(db)
        self.staff_sessions = StaffSessions(db)
        self.api_keys = ApiKeys(db)
        self.login_throttle = LoginThrottle(db)
        self.audit = AuditLog(db)
        self.registrants = Registrants(db)

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
