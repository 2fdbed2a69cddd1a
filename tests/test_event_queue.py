"""The event store against the real database: an event is queued once, handled once, and a
repeated delivery or a handling cut short never brings a handled event back."""

from __future__ import annotations

import uuid
from typing import Any

from bot.clock import Clock
from bot.storage import Storage


def text_event(user_id: str, *, redelivery: bool = False) -> dict[str, Any]:
    return {
        "webhookEventId": f"E{uuid.uuid4().hex}",
        "type": "message",
        "timestamp": 1_700_000_000_000,
        "source": {"type": "user", "userId": user_id},
        "message": {"type": "text", "id": "1", "text": "ヘルプ"},
        "deliveryContext": {"isRedelivery": redelivery},
    }


async def two_queued(storage: Storage) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A user with two events queued, in that order: (user, first, second)."""
    user = f"U{uuid.uuid4().hex}"
    first, second = text_event(user), text_event(user)
    second["timestamp"] += 1
    for event in (first, second):
        assert await storage.inbound_events.add(event, user, Clock().now())
    return user, first, second


async def only_left(storage: Storage, user: str, event: dict[str, Any]) -> None:
    """`event` is the user's next and only queued event: the lookup dropped the one before."""
    queued = await storage.inbound_events.next_pending(user)
    assert queued is not None and queued["_id"] == event["webhookEventId"]
    queue = await storage.pending_events.queue(user)
    assert [e["_id"] for e in queue] == [event["webhookEventId"]]


async def test_a_repeat_of_a_handled_event_is_dropped_unhandled(storage: Storage) -> None:
    events, now = storage.inbound_events, Clock().now()
    user = f"U{uuid.uuid4().hex}"
    event = text_event(user)
    assert await events.add(event, user, now)
    queued = await events.next_pending(user)
    assert queued is not None and events.event_of(queued) == event
    await events.finish(event["webhookEventId"], user, "done", now)

    for repeat in (event, {**event, "deliveryContext": {"isRedelivery": True}}):
        assert not await events.add(repeat, user, now)  # seen before
        assert await storage.pending_events.queue(user) != []  # queued again, marked to check
        assert await events.next_pending(user) is None  # the ending says it was handled
        assert await storage.pending_events.queue(user) == []  # and the lookup dropped it
    stored = await events.get(event["webhookEventId"])
    assert stored is not None and stored["status"] == "done"
    assert "event" not in stored and "user_key" not in stored  # the ending keeps neither


async def test_a_redelivery_of_an_event_never_queued_is_handled(storage: Storage) -> None:
    """The first delivery stored the receipt, but queueing failed (the webhook answered 503)."""
    events, now = storage.inbound_events, Clock().now()
    user = f"U{uuid.uuid4().hex}"
    event = text_event(user)
    assert await events.add(event, user, now)
    await storage.pending_events.col.delete_one({"_id": event["webhookEventId"]})
    assert await events.next_pending(user) is None

    redelivered = {**event, "deliveryContext": {"isRedelivery": True}}
    assert not await events.add(redelivered, user, now)
    queued = await events.next_pending(user)
    assert queued is not None and queued["_id"] == event["webhookEventId"]
    assert queued.get("check") is True  # it was checked against the endings, and none is there


async def test_an_event_ended_but_still_queued_is_not_handled_again(storage: Storage) -> None:
    """A crash between storing the ending and leaving the queue, after a reply was recorded."""
    events, now = storage.inbound_events, Clock().now()
    user, first, second = await two_queued(storage)
    await events.mark_reply(first["webhookEventId"], user, 1, [{"type": "text", "text": "はい"}])
    cut_short = await storage.pending_events.get(first["webhookEventId"])
    assert cut_short is not None and events.replies_of(cut_short) == {
        1: [{"type": "text", "text": "はい"}]
    }
    await events.finish(first["webhookEventId"], user, "done", now)
    await storage.pending_events.col.insert_one(cut_short)  # as if its removal never happened

    await only_left(storage, user, second)


async def test_an_event_that_recorded_no_reply_ended_but_still_queued_is_dropped(
    storage: Storage,
) -> None:
    """The state `finish` leaves when cut short between its ending and the unqueue (a crash,
    or a removal that went through unanswered) for an event that sent nothing (an unfollow,
    an event type not handled): marked, then ended, still queued."""
    events, now = storage.inbound_events, Clock().now()
    user, first, second = await two_queued(storage)
    snapshot = await storage.pending_events.get(first["webhookEventId"])
    assert snapshot is not None and "check" not in snapshot and "replies_tried" not in snapshot
    await events.finish(first["webhookEventId"], user, "ignored", now)
    stored = await events.get(first["webhookEventId"])
    assert stored is not None and stored["status"] == "ignored"
    await storage.pending_events.col.insert_one({**snapshot, "check": True})

    await only_left(storage, user, second)


async def test_a_repeat_finding_its_event_still_queued_marks_it_to_check(storage: Storage) -> None:
    """A repeat that arrives while the event is queued: the entry is read against the endings
    before it is handled (the first delivery's own queueing may have been the one that failed)."""
    events, now = storage.inbound_events, Clock().now()
    user = f"U{uuid.uuid4().hex}"
    event = text_event(user)
    assert await events.add(event, user, now)
    assert not await events.add(event, user, now)
    queued = await events.next_pending(user)
    assert queued is not None and queued.get("check") is True  # no ending: handled now


async def test_a_user_s_receipts_go_but_events_queued_behind_stay(storage: Storage) -> None:
    events, now = storage.inbound_events, Clock().now()
    user = f"U{uuid.uuid4().hex}"
    handled, handling, behind = text_event(user), text_event(user), text_event(user)
    handling["timestamp"] += 1
    behind["timestamp"] += 2
    for event in (handled, handling, behind):
        assert await events.add(event, user, now)
    await events.finish(handled["webhookEventId"], user, "done", now)

    assert await events.delete_for_user(user, handling=handling["webhookEventId"]) == 2
    assert await storage.pending_events.delete_for_user(user, handling=handling["webhookEventId"])
    left = await events.col.find({"user_key": user}).to_list(None)
    assert [doc["_id"] for doc in left] == [behind["webhookEventId"]]
    queued = await events.next_pending(user)
    assert queued is not None and queued["_id"] == behind["webhookEventId"]
