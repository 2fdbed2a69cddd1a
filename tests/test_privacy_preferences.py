"""Notification preferences per (person, place, topic): on until switched off, only the choices
made are stored, and delivery asks who may be sent a topic of a place."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bot.clock import Clock
from bot.storage import Storage
from bot.storage.preferences import TOPICS, Topic
from bot.storage.registrations import BasicApplication


def new_user_id() -> str:
    return "U" + uuid.uuid4().hex


async def register(storage: Storage, user_id: str, place_code: str) -> None:
    created = await storage.registrations.create_basic(
        BasicApplication(
            user_id=user_id,
            place_code=place_code,
            types=["visit"],
            connection="fan",
            residence_code="131121",
            age_band="40s",
            nickname="たろう",
        ),
        Clock().now(),
    )
    assert created.registration is not None


async def recipients(storage: Storage, place: str, topic: Topic, batch: int = 500) -> set[str]:
    return {
        u async for u in storage.preferences.recipients_allowing(place, topic, batch_size=batch)
    }


async def test_every_topic_is_on_until_switched_off(storage: Storage) -> None:
    person, now = new_user_id(), Clock().now()
    prefs = storage.preferences
    for topic in TOPICS:
        assert await prefs.allows(person, "042056", topic)
    assert await prefs.for_place(person, "042056") == dict.fromkeys(TOPICS, True)
    assert await prefs.col.count_documents({"user_id": person}) == 0  # nothing stored

    await prefs.set(person, "042056", Topic.BENEFITS, False, now)
    await prefs.set(person, "042056", "benefits", False, now)  # the same choice again
    assert not await prefs.allows(person, "042056", Topic.BENEFITS)
    assert await prefs.allows(person, "042056", "news")
    assert await prefs.allows(person, "040002", Topic.BENEFITS)  # other places untouched
    assert await prefs.col.count_documents({"user_id": person}) == 1

    await prefs.set(person, "042056", Topic.BENEFITS, True, now)
    assert await prefs.allows(person, "042056", Topic.BENEFITS)

    await prefs.set_all(person, "040002", False, now)
    states = await prefs.for_places(person, ["042056", "040002"])
    assert states["040002"] == dict.fromkeys(TOPICS, False)
    assert states["042056"] == dict.fromkeys(TOPICS, True)


async def test_unknown_topics_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.preferences.set(new_user_id(), "042056", "weather", False, Clock().now())
    with pytest.raises(ValueError):
        await storage.preferences.allows(new_user_id(), "042056", "weather")


async def test_racing_first_choices_leave_one_document(storage: Storage) -> None:
    person, now = new_user_id(), Clock().now()
    await asyncio.gather(
        *(storage.preferences.set(person, "042056", Topic.NEWS, False, now) for _ in range(8))
    )
    assert await storage.preferences.col.count_documents({"user_id": person}) == 1
    assert not await storage.preferences.allows(person, "042056", Topic.NEWS)


async def test_recipients_are_the_registered_who_did_not_switch_the_topic_off(
    storage: Storage,
) -> None:
    # A place of its own, so other tests' registrations do not count here.
    place = "015750"  # 北海道 壮瞥町
    people = [new_user_id() for _ in range(5)]
    for person in people:
        await register(storage, person, place)
    stranger = new_user_id()  # not registered: never a recipient, whatever it chose
    now = Clock().now()
    await storage.preferences.set(stranger, place, Topic.NEWS, True, now)
    await storage.preferences.set(people[0], place, Topic.NEWS, False, now)
    await storage.preferences.set_all(people[1], place, False, now)
    await storage.preferences.set(people[2], place, Topic.NEWS, True, now)
    await storage.registrations.col.update_one(
        {"user_id": people[3], "place_code": place}, {"$set": {"status": "suspended"}}
    )

    for batch in (1, 2, 500):
        assert await recipients(storage, place, Topic.NEWS, batch) == {people[2], people[4]}
        assert await recipients(storage, place, Topic.BENEFITS, batch) == {
            people[0],
            people[2],
            people[4],
        }
    # The prefecture registered together counts on its own.
    assert {people[0], people[1]} <= await recipients(storage, "010006", Topic.NEWS)


async def test_choices_for_places_no_longer_registered_can_be_dropped(storage: Storage) -> None:
    person, now = new_user_id(), Clock().now()
    await storage.preferences.set(person, "042056", Topic.NEWS, False, now)
    await storage.preferences.set(person, "040002", Topic.NEWS, False, now)
    assert await storage.preferences.keep_only(person, ["042056"]) == 1
    assert not await storage.preferences.allows(person, "042056", Topic.NEWS)
    assert await storage.preferences.allows(person, "040002", Topic.NEWS)
    assert await storage.preferences.delete_for_user(person) == 1
