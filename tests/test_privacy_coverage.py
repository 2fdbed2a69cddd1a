"""「データを削除」 covers every collection: each store says whether it holds a resident's data,
`delete_person` empties every one that does, and nothing of the person is left anywhere.

When this fails after adding a store: give it `personal_data = True`, a `delete_for_user` and a
place in `bot.storage.privacy.personal_stores`, or list it in `NO_PERSONAL_DATA` with the reason.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.domain.activities import Activity, ActivityKind
from bot.domain.programs import Program
from bot.domain.stays import Stay
from bot.storage import Storage
from bot.storage.activities import RenewalKind
from bot.storage.conversations import Conversation
from bot.storage.preferences import Topic
from bot.storage.privacy import NO_PERSONAL_DATA, delete_person, personal_stores
from bot.storage.registrations import BasicApplication


def new_user_id() -> str:
    return "U" + uuid.uuid4().hex


def mentions(node: Any, needle: str) -> bool:
    """Whether the user id appears anywhere in a document: a value, a key, inside a string."""
    if isinstance(node, str):
        return needle in node
    if isinstance(node, dict):
        return any(mentions(k, needle) or mentions(v, needle) for k, v in node.items())
    if isinstance(node, list | tuple):
        return any(mentions(item, needle) for item in node)
    return False


async def where_user_appears(storage: Storage, user_id: str) -> dict[str, list[Any]]:
    """Every document of every collection of the database (the stores' and any other) that
    holds the user id, by collection."""
    db = storage.mongo.db
    names = set(await db.list_collection_names())
    names |= {store.collection_name for store in storage.stores()}
    found: dict[str, list[Any]] = {}
    for name in sorted(names):
        async for doc in db[name].find({}):
            if mentions(doc, user_id):
                found.setdefault(name, []).append(doc.get("_id"))
    return found


def test_every_store_says_whether_it_holds_personal_data(storage: Storage) -> None:
    covered = personal_stores(storage)
    unclassified = [
        type(store).__name__
        for store in storage.stores()
        if not store.personal_data and type(store) not in NO_PERSONAL_DATA
    ]
    assert unclassified == [], (
        "stores that do not say whether they hold a resident's data: set personal_data = True and "
        "add them to bot.storage.privacy.personal_stores, or list them in NO_PERSONAL_DATA"
    )
    uncovered = [
        type(store).__name__
        for store in storage.stores()
        if store.personal_data and not any(store is c for c in covered)
    ]
    assert uncovered == [], "stores of personal data that delete_person does not empty"
    for store in covered:
        assert store.personal_data, type(store).__name__
        assert callable(getattr(store, "delete_for_user", None)), type(store).__name__
    assert len({id(store) for store in covered}) == len(covered), "a store listed twice"
    both = [cls.__name__ for cls in NO_PERSONAL_DATA if any(type(s) is cls for s in covered)]
    assert both == []
    assert all(reason.strip() for reason in NO_PERSONAL_DATA.values())


async def fill(storage: Storage, clock: Clock, user_id: str) -> None:
    """Data of one resident in every store that can hold some."""
    now = clock.now()
    await storage.users.follow(user_id, now)
    created = await storage.registrations.create_basic(
        BasicApplication(
            user_id=user_id,
            place_code="042056",
            types=["economic"],
            connection="fan",
            residence_code="131121",
            age_band="30s",
            nickname="けせもい",
            answers={"q": "カツオ"},
        ),
        now,
    )
    assert created.registration is not None
    registration = created.registration
    submitted = await storage.premium_applications.submit(
        user_id, "042056", registration["_id"], "staff_review", now
    )
    assert submitted.application is not None
    await storage.identity_documents.put(
        submitted.application["_id"], user_id, b"\x89PNG fake", "image/png", now
    )
    decided = await storage.premium_applications.submit(
        user_id, "040002", registration["_id"], "staff_review", now
    )
    assert decided.application is not None
    await storage.premium_applications.decide(
        str(decided.application["_id"]), "rejected", "staff@example.jp", "読めません", now
    )
    await storage.preferences.set(user_id, "042056", Topic.BENEFITS, False, now)
    await storage.stays.add(user_id, Stay("042056", date(2030, 1, 5), date(2030, 1, 6)), now)
    await storage.preferences.set(user_id, "040002", Topic.NEWS, True, now)
    await storage.benefit_notices.claim("042056:privacy-test", user_id, "batch-privacy", now)
    seq = uuid.uuid4().int % 10**6  # news batches hold the people they go to; caps count pushes
    news_run = "privacy-news:1"
    assert await storage.news_batches.insert_planned(
        news_run, "privacy-news", "042056", seq, [user_id], now, now
    )
    assert await storage.news_caps.claim([user_id], "2030-01-05", 3, f"{news_run}:{seq}", now)
    fan_club = Program("privacy-fanclub", "042056", "気仙沼ファンクラブ", "KF-NNNNN")
    number = f"KF-{uuid.uuid4().int % 100000:05d}"
    assert (await storage.program_links.link(fan_club, user_id, number, now)).result == "linked"
    await fill_activities(storage, user_id, registration, now)
    await storage.sends.retry_key(f"gomi-reminder:{user_id}:2030-01-05:burnable", now)
    await storage.conversations.put(
        Conversation(user_id, "register", 1, "nickname", answers={"place": "042056"}), now
    )
    for n, status in enumerate(("done", "pending")):
        event_id = f"E{uuid.uuid4().hex}"
        event: dict[str, Any] = {
            "webhookEventId": event_id,
            "type": "message",
            "timestamp": 1_700_000_000_000 + n,
            "source": {"type": "user", "userId": user_id},
            "message": {"type": "text", "id": str(n), "text": "こんにちは"},
        }
        assert await storage.inbound_events.add(event, user_id, now)
        if status == "done":
            await storage.inbound_events.finish(event_id, user_id, "done", now)


async def fill_activities(
    storage: Storage, user_id: str, registration: dict[str, Any], now: datetime
) -> None:
    """担い手活動: a seat with its attendance, a place on a waiting list, a renewal decision."""
    starts = now + timedelta(days=3)
    full, mine = [
        await storage.activities.add(
            Activity(
                "new",
                "042056",
                "清掃",
                ActivityKind.VOLUNTEER,
                starts,
                starts + timedelta(hours=2),
                "港",
                1,
            ),
            now,
        )
        for _ in range(2)
    ]
    await storage.rosters.apply(full, new_user_id(), now)  # someone else holds the only seat
    assert (await storage.rosters.apply(full, user_id, now)).outcome == "waitlisted"
    assert (await storage.rosters.apply(mine, user_id, now)).outcome == "confirmed"
    assert await storage.attendance.record(mine, user_id, "code", now)
    await storage.renewal_decisions.decide(
        registration, date(2030, 1, 5), RenewalKind.BASIC, 2, 3, now
    )


async def test_delete_person_leaves_nothing_of_the_person_and_everything_of_others(
    storage: Storage,
) -> None:
    clock = Clock()
    person, other = new_user_id(), new_user_id()
    await fill(storage, clock, person)
    await fill(storage, clock, other)
    before = await where_user_appears(storage, person)
    assert {"stats_ledger", "premium_decisions"} <= set(before)  # the stores' inner collections
    others_before = await where_user_appears(storage, other)
    pending = await storage.inbound_events.next_pending(person)
    assert pending is not None
    counters = await storage.registrations.counters.current("registration:042056")

    removed = await delete_person(storage, person, handling=str(pending["_id"]))

    assert await where_user_appears(storage, person) == {}
    assert await where_user_appears(storage, other) == others_before
    for store in personal_stores(storage):
        assert removed[store.collection_name] > 0, (
            f"the test put nothing in {store.collection_name}"
        )
    assert removed["registrations"] == 2  # 気仙沼市 and 宮城県 made with it
    assert removed["users"] == 1
    assert removed["identity_documents"] == 1
    assert removed["preferences"] == 2
    # Numbers are never given out again: the sequence is not wound back.
    assert await storage.registrations.counters.current("registration:042056") == counters
    assert await delete_person(storage, person) == dict.fromkeys(removed, 0)  # again: nothing


async def test_events_queued_behind_the_request_stay_to_be_handled(storage: Storage) -> None:
    clock = Clock()
    person = new_user_id()
    await fill(storage, clock, person)  # one event handled, one pending (the request)
    request = await storage.inbound_events.next_pending(person)
    assert request is not None
    later = {
        "webhookEventId": f"E{uuid.uuid4().hex}",
        "type": "message",
        "timestamp": 1_800_000_000_000,
        "source": {"type": "user", "userId": person},
        "message": {"type": "text", "id": "9", "text": "登録"},
    }
    assert await storage.inbound_events.add(later, person, clock.now())

    await delete_person(storage, person, handling=str(request["_id"]))

    left = await storage.inbound_events.next_pending(person)
    assert left is not None and left["_id"] == later["webhookEventId"]
    assert await storage.inbound_events.get(str(request["_id"])) is None


async def test_a_live_lease_is_left_to_its_holder(storage: Storage) -> None:
    """The deletion runs under the user's event lease: it must not break that exclusion."""
    clock = Clock()
    person = new_user_id()
    assert await storage.leases.acquire(person, "me", clock.now(), timedelta(seconds=60))
    await delete_person(storage, person)
    assert not await storage.leases.acquire(person, "other", clock.now(), timedelta(seconds=60))
    await storage.leases.release(person, "me")
    assert await where_user_appears(storage, person) == {}


async def test_no_user_id_is_refused(storage: Storage) -> None:
    try:
        await delete_person(storage, "")
    except ValueError:
        return
    raise AssertionError("an empty user id must be refused")
