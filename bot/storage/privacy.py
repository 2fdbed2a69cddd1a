"""「データを削除」: everything the platform keeps about one resident, removed on request.

`delete_person` walks an explicit list of the stores that hold a resident's data under their LINE
user id (`Store.personal_data`). Every other store says here why it holds none
(`NO_PERSONAL_DATA`). `tests/test_privacy_coverage.py` fails when a store is added to `Storage`
without being put on one side or the other, and scans the whole database for the user id after a
deletion.

What stays: sums that name nobody (the 関係人口 trend snapshots; `counters`, whose registration
numbers are never given out again) and staff-side records that never held a resident's id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol, cast

from bot.storage.activities import Activities, ActivitySettings
from bot.storage.base import Store
from bot.storage.benefits import BenefitNoticeBatches, Benefits
from bot.storage.counters import Counters
from bot.storage.events import InboundEvents, PendingEvents
from bot.storage.garbage import GarbageCalendars
from bot.storage.leases import Leases
from bot.storage.municipalities import Municipalities
from bot.storage.news import NewsBatches, NewsItems, NewsRuns
from bot.storage.programs import ProgramMembers, Programs
from bot.storage.questions import MunicipalityQuestions
from bot.storage.registrants import Registrants
from bot.storage.richmenus import RichMenuIds
from bot.storage.staff import ApiKeys, AuditLog, LoginThrottle, StaffAccounts, StaffSessions
from bot.storage.templates import TemplateVersions

if TYPE_CHECKING:
    from bot.storage import Storage

log = logging.getLogger(__name__)


class PersonalStore(Protocol):
    collection_name: str

    def delete_for_user(self, user_id: str) -> Awaitable[int]: ...


# Stores without any resident's data, and why. A new store goes either here (with its reason) or
# gets `personal_data = True`, a `delete_for_user` and a place in `personal_stores`.
NO_PERSONAL_DATA: dict[type[Store], str] = {
    Activities: "the activities municipalities post (who applied is in activity_seats/waits)",
    ActivitySettings: "per municipality: activities a Premium renewal needs",
    Counters: "sequence numbers per place; names nobody (numbers are never reused)",
    Municipalities: "the municipality directory",
    MunicipalityQuestions: "the questions municipalities ask (the answers are in registrations)",
    Registrants: "a read-only view of `registrations`, deleted through Registrations",
    RichMenuIds: "rich menu ids by menu name",
    Leases: (
        "a user's event-queue lease lives only while their events are handled (the deletion "
        "runs under it) and is released right after; a dead process's lease expires within a "
        "minute and the cleanup job removes it"
    ),
    StaffAccounts: (
        "municipality staff, not residents; a staff member's own LINE user id (linked for test "
        "sends of news) is removed by `delete_person`"
    ),
    StaffSessions: "municipality staff, not residents",
    ApiKeys: "municipality staff, not residents",
    LoginThrottle: "staff login attempts",
    AuditLog: "what staff did; never holds a resident's LINE user id",
    TemplateVersions: "message templates staff edited, with their history",
    Benefits: "the benefits municipalities publish",
    BenefitNoticeBatches: "batches of benefit notices; the residents are in benefit_notices",
    Programs: "municipalities' fan-club programs",
    ProgramMembers: "member lists staff imported (member numbers, names); no LINE user id",
    GarbageCalendars: "municipalities' garbage calendars",
    NewsItems: "the news municipalities write (the recipients are in news_people)",
    NewsRuns: "one document per delivery run of a news item; names nobody",
    NewsBatches: "a delivery's batches: times, counts and status; whom each is for is in news_people",
}


def personal_stores(storage: Storage) -> list[Store]:
    """Every store holding a resident's data, in the order `delete_person` empties them.

    Registrations go first, so the cards stop working even if a later step fails (the resident
    can ask again: every step deletes what is left). The 関係人口 counters then follow the
    registrations, as for any removal, and the person's ledger behind them goes; the daily
    snapshots (sums) stay. The user document, the conversation and the events go last.
    """
    return [
        storage.registrations,
        storage.stats,  # after registrations: the person leaves the counters, their ledger goes
        storage.premium_applications,  # with its decisions
        storage.identity_documents,
        storage.activity_seats,  # 担い手活動: seats, waiting list, attendance, renewals
        storage.activity_waits,
        storage.attendance,
        storage.renewal_decisions,
        storage.preferences,
        storage.benefit_notices,  # who was told about which benefit
        storage.news_people,  # who is (or was) to receive which news
        storage.news_caps,  # the daily news cap slots they hold
        storage.program_links,  # member numbers the resident linked
        storage.stays,  # with reminder settings and the reminders sent
        storage.sends,  # logical keys that name the person (reminders)
        storage.users,
        # Until it goes, a process that takes over the deletion's event after a crash finds
        # the completion committed and runs the deletion again, goodbye included; the event
        # itself must outlive it for that.
        storage.conversations,
        storage.inbound_events,
        storage.pending_events,
    ]


async def delete_person(storage: Storage, user_id: str, *, handling: str = "") -> dict[str, int]:
    """Delete everything kept about `user_id`; the number of documents removed per collection.

    `handling`: the webhook event being handled now (the resident's final 「削除する」), removed
    with the others. Events queued behind it stay: they came after the request.
    """
    if not user_id:
        raise ValueError("no user id")
    removed: dict[str, int] = {}
    for store in personal_stores(storage):
        if isinstance(store, InboundEvents | PendingEvents):
            count = await store.delete_for_user(user_id, handling=handling)
        else:
            count = await _personal(store).delete_for_user(user_id)
        removed[store.collection_name] = removed.get(store.collection_name, 0) + count
    # A staff member's own LINE account, linked for test sends of news, is forgotten too.
    unlinked = await storage.staff_accounts.unlink_line_user(user_id)
    if unlinked:
        removed[storage.staff_accounts.collection_name] = unlinked
    log.info("personal data deleted", extra={"removed": removed})
    return removed


def _personal(store: Store) -> PersonalStore:
    if not store.personal_data or not hasattr(store, "delete_for_user"):
        raise TypeError(f"{type(store).__name__} is not a store of personal data")
    return cast(PersonalStore, store)
