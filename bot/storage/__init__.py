"""Everything that touches MongoDB. Nothing outside this package uses collections directly."""

from __future__ import annotations

from datetime import datetime

from bot.storage.activities import (
    Activities,
    ActivitySettings,
    AttendanceLog,
    RenewalDecisions,
    Rosters,
    Seats,
    Waits,
)
from bot.storage.base import Store
from bot.storage.benefits import BenefitNoticeBatches, BenefitNotices, Benefits
from bot.storage.conversations import Conversations
from bot.storage.counters import Counters
from bot.storage.db import Mongo
from bot.storage.events import InboundEvents
from bot.storage.garbage import GarbageCalendars
from bot.storage.leases import Leases
from bot.storage.municipalities import Municipalities
from bot.storage.news import NewsBatches, NewsCaps, NewsItems, NewsPeople, NewsRuns
from bot.storage.preferences import Preferences
from bot.storage.premium import IdentityDocuments, PremiumApplications
from bot.storage.programs import ProgramLinks, ProgramMembers, Programs
from bot.storage.questions import MunicipalityQuestions
from bot.storage.registrants import Registrants
from bot.storage.registrations import Registrations
from bot.storage.richmenus import RichMenuIds
from bot.storage.sends import Sends
from bot.storage.staff import ApiKeys, AuditLog, LoginThrottle, StaffAccounts, StaffSessions
from bot.storage.stats import Stats
from bot.storage.stays import Stays
from bot.storage.templates import TemplateVersions
from bot.storage.users import Users


class Storage:
    """All stores of the application over one database."""

    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo
        db = mongo.db
        self.inbound_events = InboundEvents(db)
        self.pending_events = self.inbound_events.pending  # the queue of events not handled yet
        self.leases = Leases(db)
        self.rich_menus = RichMenuIds(db)
        self.municipalities = Municipalities(db)
        self.premium_applications = PremiumApplications(db)
        self.identity_documents = IdentityDocuments(db)
        self.users = Users(db)
        self.sends = Sends(db)
        self.conversations = Conversations(db)
        self.stats = Stats(db)  # 関係人口 counters, their ledger and daily snapshots
        self.registrations = Registrations(db, self.stats)
        self.counters = Counters(db)
        self.questions = MunicipalityQuestions(db)
        self.staff_accounts = StaffAccounts(db)
        self.staff_sessions = StaffSessions(db)
        self.api_keys = ApiKeys(db)
        self.login_throttle = LoginThrottle(db)
        self.audit = AuditLog(db)
        self.registrants = Registrants(db)
        self.template_versions = TemplateVersions(db)
        self.preferences = Preferences(db)
        self.benefits = Benefits(db)
        self.benefit_notices = BenefitNotices(db)
        self.benefit_notice_batches = BenefitNoticeBatches(db)
        self.news = NewsItems(db)  # news items, their runs, batches and the daily cap
        self.news_runs = NewsRuns(db)
        self.news_people = NewsPeople(db)  # whom each batch is for
        self.news_batches = NewsBatches(db, self.news_people)
        self.news_caps = NewsCaps(db)
        self.programs = Programs(db)
        self.program_members = ProgramMembers(db)
        self.program_links = ProgramLinks(db)
        self.garbage_calendars = GarbageCalendars(db)
        self.stays = Stays(db)  # with reminder settings and the reminders sent
        self.activities = Activities(db)  # 担い手活動, seats and waiting lists claimed by insert
        self.activity_seats = Seats(db)
        self.activity_waits = Waits(db)
        self.rosters = Rosters(self.activities, self.activity_seats, self.activity_waits)
        self.attendance = AttendanceLog(db)
        self.activity_settings = ActivitySettings(db)
        self.renewal_decisions = RenewalDecisions(db)

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
