"""A flow's completion is run again when the process that committed it died before its work or
its answer was done: the work happens once and the resident gets the answer of a first run
(docs/RELIABILITY.md, "the completion step")."""

from __future__ import annotations

import re
from datetime import timedelta

from bson import ObjectId

from bot.clock import Clock
from bot.garbage import demo_calendar
from bot.storage import Storage
from tests.dialog_chat import DirectChat
from tests.test_registration_flow import register
from tests.test_staff_support import add_registration

KESENNUMA, MIYAGI = "042056", "040002"


def numbers(text: str) -> list[str]:
    return re.findall(r"\d{6}-\d{6}-\d", text)


async def places(storage: Storage, user_id: str) -> list[str]:
    return sorted(doc["place_code"] for doc in await storage.registrations.for_user(user_id))


async def test_a_completion_committed_by_a_dead_process_is_run_by_the_next(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    await register(chat, submit=False)
    confirming = await storage.conversations.load(chat.user_id)
    assert confirming.conversation is not None
    # What a process leaves that committed the final 「登録する」 and died before registering:
    # the flow ended, naming the event and the completed flow, with no answer yet.
    await chat.tap("登録する")
    event = chat.last
    assert event is not None
    await storage.registrations.col.delete_many({"user_id": chat.user_id})
    await storage.conversations.col.delete_many({"user_id": chat.user_id})
    await storage.conversations.save(
        chat.user_id, None, 0, clock.now(), event.event_id, [], confirming.conversation
    )

    await chat.again()
    assert "登録が完了しました" in chat.text
    assert await places(storage, chat.user_id) == [MIYAGI, KESENNUMA]
    number = numbers(chat.text)[0]
    assert number.startswith(KESENNUMA)

    # The answer was lost once more: the same registrations, the same answer.
    await chat.again()
    assert "登録が完了しました" in chat.text and numbers(chat.text)[0] == number
    assert await places(storage, chat.user_id) == [MIYAGI, KESENNUMA]


async def test_a_completion_cut_short_is_finished_not_refused(
    chat: DirectChat, storage: Storage
) -> None:
    await register(chat)
    number = numbers(chat.text)[0]
    # It died after registering with the town, before the prefecture that comes with it.
    await storage.registrations.col.delete_one({"user_id": chat.user_id, "place_code": MIYAGI})
    await chat.again()
    assert "すでにご登録" not in chat.text and "登録が完了しました" in chat.text
    assert numbers(chat.text)[0] == number
    assert await places(storage, chat.user_id) == [MIYAGI, KESENNUMA]
    # Another run of the flow is still refused: the registration is not its own.
    await chat.send("登録")
    await chat.send("気仙沼")
    assert "すでにご登録" in chat.text


async def test_an_unregistration_done_before_a_crash_is_confirmed_not_denied(
    chat: DirectChat, storage: Storage
) -> None:
    await register(chat, "気仙沼")
    await chat.send("登録解除")
    await chat.tap("解除する")
    assert "宮城県気仙沼市・宮城県の登録を解除しました" in chat.text
    await chat.again()  # the answer was lost: the registration is gone already
    assert "登録を解除しました" in chat.text and "宮城県気仙沼市" in chat.text
    assert await storage.registrations.for_user(chat.user_id) == []


async def test_a_stay_saved_before_a_crash_is_not_added_twice(
    chat: DirectChat, storage: Storage, clock: Clock
) -> None:
    await add_registration(storage, user_id=chat.user_id, place_code=KESENNUMA)
    await storage.garbage_calendars.put(demo_calendar(KESENNUMA), clock.now())
    until = clock.now_jst().date() + timedelta(days=60)
    await chat.send("滞在予定")
    await chat.tap("滞在を追加")
    await chat.tap("毎週くりかえし")
    await chat.send("毎週土日")
    await chat.send(f"{until.year}-{until.month:02d}-{until.day:02d}")
    await chat.tap("唐桑地区")
    assert "滞在予定を登録しました" in chat.text
    await chat.again()  # its answer was lost: the stay is found, not seen as an overlap
    assert "滞在予定を登録しました" in chat.text
    assert len(await storage.stays.for_user(chat.user_id)) == 1


async def test_a_premium_application_is_found_by_the_flow_run_that_made_it(
    storage: Storage, clock: Clock
) -> None:
    applications = storage.premium_applications
    user, registration = "U" + ObjectId().binary.hex(), ObjectId()
    first = await applications.submit(
        user, KESENNUMA, registration, "staff_review", clock.now(), "r1"
    )
    assert first.application is not None
    again = await applications.submit(
        user, KESENNUMA, registration, "staff_review", clock.now(), "r1"
    )
    assert again.application is not None and again.application["_id"] == first.application["_id"]
    other = await applications.submit(
        user, KESENNUMA, registration, "staff_review", clock.now(), "r2"
    )
    assert other.already_pending
    assert len(await applications.for_user(user)) == 1
