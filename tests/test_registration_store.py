"""The stores behind registration: counters, registrations, questions, conversations."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from bot.clock import Clock
from bot.domain.registration import Tier, is_valid_registration_number
from bot.storage import Storage
from bot.storage.conversations import Conversation, ConversationConflict, Loaded
from bot.storage.questions import Question
from bot.storage.registrations import BasicApplication


def application(user_id: str, place_code: str = "042056") -> BasicApplication:
    return BasicApplication(
        user_id=user_id,
        place_code=place_code,
        types=["economic"],
        connection="hometown",
        residence_code="131121",
        age_band="30s",
        nickname="たろう",
        answers={"visited": "ある"},
    )


def user() -> str:
    return "U" + uuid.uuid4().hex


async def test_counters_never_give_a_value_twice(storage: Storage) -> None:
    name = f"test:{uuid.uuid4().hex}"
    assert [await storage.counters.next_unique(name) for _ in range(3)] == [1, 2, 3]
    # Racing draws: FerretDB's $inc is not atomic, the claims keep the values unique anyway.
    values = await asyncio.gather(*(storage.counters.next_unique(name) for _ in range(30)))
    assert len(set(values)) == 30 and min(values) >= 4
    assert await storage.counters.current(name) >= max(values)
    assert await storage.counters.current(f"test:{uuid.uuid4().hex}") == 0


async def test_racing_registrations_of_many_people_get_distinct_numbers(storage: Storage) -> None:
    now = Clock().now()
    results = await asyncio.gather(
        *(storage.registrations.create_basic(application(user(), "152269"), now) for _ in range(15))
    )
    numbers = [r.registration["number"] for r in results if r.registration]
    assert len(numbers) == 15 and len(set(numbers)) == 15
    assert all(is_valid_registration_number(n) for n in numbers)


async def test_racing_creations_make_one_registration(storage: Storage) -> None:
    now = Clock().now()
    someone = user()
    results = await asyncio.gather(
        *(storage.registrations.create_basic(application(someone), now) for _ in range(5))
    )
    assert sum(1 for r in results if not r.already) == 1
    docs = await storage.registrations.for_user(someone)
    assert sorted(d["place_code"] for d in docs) == ["040002", "042056"]
    numbers = [d["number"] for d in docs]
    assert all(is_valid_registration_number(n) for n in numbers)


async def test_registration_documents(storage: Storage) -> None:
    now = Clock().now()
    someone = user()
    created = await storage.registrations.create_basic(application(someone), now)
    assert created.registration is not None and created.prefecture is not None
    main, prefecture = created.registration, created.prefecture
    assert main["answers"] == {"visited": "ある"} and prefecture["answers"] == {}
    assert prefecture["via"] == "042056" and main["via"] is None
    assert await storage.registrations.get(str(main["_id"])) is not None
    assert await storage.registrations.get("not-an-id") is None
    assert await storage.registrations.get("0" * 24) is None
    assert await storage.registrations.place_codes(someone) == {"042056", "040002"}
    # A second municipality of the same prefecture: the prefecture is not registered twice.
    again = await storage.registrations.create_basic(application(someone, "046060"), now)
    assert again.registration is not None and again.prefecture is None
    # A prefecture alone.
    alone = await storage.registrations.create_basic(application(someone, "070009"), now)
    assert alone.registration is not None and alone.prefecture is None
    with pytest.raises(ValueError):
        await storage.registrations.create_basic(application(someone, "999999"), now)


async def test_remove_and_update(storage: Storage) -> None:
    now = Clock().now()
    someone = user()
    await storage.registrations.create_basic(application(someone), now)
    await storage.registrations.create_basic(application(someone, "046060"), now)
    changed = await storage.registrations.update_details(
        someone, "042056", now, types=["visit"], nickname="はなこ"
    )
    assert changed == 2  # the municipality and the prefecture made with it
    removed = await storage.registrations.remove(someone, "042056")
    assert removed.place_codes == ("042056",)
    prefecture = await storage.registrations.find(someone, "040002")
    assert prefecture is not None and prefecture["via"] == "046060"
    assert prefecture["nickname"] == "はなこ"
    removed = await storage.registrations.remove(someone, "046060")
    assert removed.place_codes == ("046060", "040002")
    assert not (await storage.registrations.remove(someone, "046060")).removed


async def test_questions(storage: Storage) -> None:
    now = Clock().now()
    place = "01" + uuid.uuid4().hex[:4]
    await storage.questions.put(Question(place, "b", "二つ目", order=2), now)
    await storage.questions.put(
        Question(place, "a", "一つ目", "choice", ("はい", "いいえ"), order=1), now
    )
    await storage.questions.put(Question(place, "c", "使わない", active=False), now)
    await storage.questions.put(Question(place, "b", "二つ目（改）", order=2), now)
    assert [(q.question_id, q.prompt) for q in await storage.questions.for_place(place)] == [
        ("a", "一つ目"),
        ("b", "二つ目（改）"),
    ]
    for bad in (
        Question(place, "x", ""),
        Question(place, "x", "?", "choice", ()),
        Question(place, "x", "?", "choice", ("あ" * 21,)),
        Question(place, "x", "?", "choice", ("a", "a")),
        Question(place, "X$", "?"),
    ):
        with pytest.raises(ValueError):
            await storage.questions.put(bad, now)
    assert await storage.questions.remove(place, "a")
    assert not await storage.questions.remove(place, "a")


async def test_conversation_writes_are_conditional_on_the_version(storage: Storage) -> None:
    clock = Clock()
    store = storage.conversations
    someone = user()
    assert await store.load(someone) == Loaded(None, 0)
    conv = Conversation(someone, "register", 1, "place", run="abc")
    await store.put(conv, clock.now())
    assert conv.version == 1
    with pytest.raises(ConversationConflict):  # a writer that read "nothing yet"
        await store.save(someone, Conversation(someone, "register", 1, "place"), 0, clock.now())
    loaded = await store.load(someone)
    assert loaded.version == 1 and loaded.conversation is not None
    assert loaded.conversation.updated_at is not None and loaded.conversation.run == "abc"
    loaded.conversation.answers["place"] = "042056"
    assert await store.save(someone, loaded.conversation, 1, clock.now()) == 2
    with pytest.raises(ConversationConflict):
        await store.save(someone, Conversation(someone, "register", 1, "types"), 1, clock.now())
    again = await store.get(someone)
    assert again is not None and again.answers == {"place": "042056"} and again.step == "place"
    assert await store.save(someone, None, 2, clock.now()) == 3  # the flow ended
    assert await store.load(someone) == Loaded(None, 3)
    assert await storage.conversations.col.count_documents({"user_id": someone}) == 1


async def test_racing_writers_of_one_version_make_one_winner(storage: Storage) -> None:
    clock = Clock()
    store = storage.conversations
    someone = user()
    await store.put(Conversation(someone, "register", 1, "place"), clock.now())

    async def write(step: str) -> bool:
        try:
            await store.save(someone, Conversation(someone, "register", 1, step), 1, clock.now())
        except ConversationConflict:
            return False
        return True

    steps = [f"s{i}" for i in range(20)]
    wins = await asyncio.gather(*(write(step) for step in steps))
    assert sum(wins) == 1
    winner = steps[wins.index(True)]
    final = await store.get(someone)
    assert final is not None and final.step == winner and final.version == 2


async def test_abandoned_conversations_are_removed_by_the_cleanup_job(storage: Storage) -> None:
    clock = Clock()
    someone = user()
    await storage.conversations.put(Conversation(someone, "register", 1, "place"), clock.now())
    removed = await storage.remove_expired(clock.now() + timedelta(days=29))
    assert await storage.conversations.get(someone) is not None
    removed = await storage.remove_expired(clock.now() + timedelta(days=31))
    assert removed["conversations"] >= 1
    assert await storage.conversations.get(someone) is None


async def test_set_tier_bumps_the_card_version(storage: Storage) -> None:
    clock = Clock()
    someone = user()
    created = await storage.registrations.create_basic(application(someone), clock.now())
    assert created.registration is not None
    until = clock.now() + timedelta(days=365)
    doc = await storage.registrations.set_tier(
        str(created.registration["_id"]), Tier.PREMIUM, until, clock.now()
    )
    assert doc is not None and doc["tier"] == "premium" and doc["card_version"] == 2
    assert doc["valid_until"] is not None
    assert await storage.registrations.set_tier("nope", Tier.BASIC, None, clock.now()) is None
    assert await storage.registrations.set_tier("0" * 24, Tier.BASIC, None, clock.now()) is None
