"""A web process that dies after a turn committed: the retry neither runs the turn again nor
loses its reply (docs/RELIABILITY.md, "nothing lost, nothing twice")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from linebot.v3.messaging import Message

from bot.dialog.engine import DialogEngine
from bot.line.pipeline import LEASE_TTL, STALE_AFTER, to_incoming
from bot.line.webhook import PIPELINE
from bot.router import Router
from bot.storage.db import Document
from tests.stack import Chat, Stack, message_texts, start_stack


@pytest.fixture
async def stack(mongo_uri: str, own_db_name: str) -> AsyncIterator[Stack]:
    # A database of its own: the sweeps below must find this test's abandoned event alone, not
    # events other tests left pending in the shared one.
    async for running in start_stack(mongo_uri, own_db_name):
        yield running


async def _recorded_event(stack: Stack, user_id: str) -> Document:
    """The user's pending event once its reply is recorded (the send is under way)."""
    events = stack.services.storage.inbound_events
    for _ in range(500):
        for entry in await events.pending.queue(user_id):
            stored = await events.get(entry["_id"])
            if stored is not None and stored.get("replies_tried") == 1:
                return stored
        await asyncio.sleep(0.01)
    raise AssertionError("the reply was never recorded")


async def test_a_reply_recorded_by_a_dead_attempt_is_sent_once_without_rerunning_the_turn(
    stack: Stack,
) -> None:
    chat = await stack.user("復旧花子")
    storage = stack.services.storage
    await stack.wait_idle()  # the greeting's event is finished: the pending one below is 登録's
    # LINE holds every reply for 3 s and then refuses it: the process "dies" in the meantime.
    await stack.emulator(
        "POST",
        "/_emulator/faults",
        {"path": "/v2/bot/message/reply", "status": 500, "latencyMs": 3000, "times": 10},
    )
    await chat._control("text", {"text": "登録"})
    stored = await _recorded_event(stack, chat.user_id)
    # The turn is committed (the registration flow has started), the reply not yet delivered.
    committed = await storage.conversations.load(chat.user_id)
    assert committed.conversation is not None and committed.event_id == stored["_id"]
    assert await stack.bot_app[PIPELINE].drain(timeout=0) == 1  # the process dies mid-send
    await stack.emulator("DELETE", "/_emulator/faults")
    assert await chat.inbox(wait=0.5) == []

    # Another process's sweep finds the event abandoned and finishes it.
    stack.clock.offset += STALE_AFTER
    assert await stack.bot_app[PIPELINE].sweep() == 1
    await stack.wait_idle()

    replies = await chat.inbox()
    assert len(replies) == 1
    assert "ふるさと住民登録をはじめます" in "\n".join(message_texts([replies[0]["message"]]))
    after = await storage.conversations.load(chat.user_id)
    assert after.version == committed.version  # the turn did not run again
    finished = await storage.inbound_events.get(stored["_id"])
    assert finished is not None and finished["status"] == "done"
    assert "replies" not in finished and "event" not in finished  # nothing kept once handled
    # The resident goes on where the recovered turn left them.
    await chat.send("けせんぬま")
    assert "でよろしいですか" in chat.last_text
    assert await chat.inbox(wait=0.5) == []  # and nothing came twice


async def test_a_turn_that_writes_no_state_is_simply_run_again(stack: Stack) -> None:
    chat = await stack.user("復旧次郎")
    await stack.wait_idle()  # the greeting's event is finished: the pending one below is ヘルプ's
    await stack.emulator(
        "POST",
        "/_emulator/faults",
        {"path": "/v2/bot/message/reply", "status": 500, "latencyMs": 3000, "times": 10},
    )
    await chat._control("text", {"text": "ヘルプ"})
    await _recorded_event(stack, chat.user_id)
    assert await stack.bot_app[PIPELINE].drain(timeout=0) == 1
    await stack.emulator("DELETE", "/_emulator/faults")

    stack.clock.offset += STALE_AFTER
    assert await stack.bot_app[PIPELINE].sweep() == 1
    await stack.wait_idle()
    replies = await chat.inbox()
    assert len(replies) == 1
    assert "ふるさと住民登録のLINEです" in "\n".join(message_texts([replies[0]["message"]]))
    assert await chat.inbox(wait=0.5) == []


async def handled_by_a_process_that_dies(
    stack: Stack, chat: Chat, action: str, body: dict[str, Any]
) -> tuple[str, list[Message]]:
    """The resident's next event (`action` with `body`, as the emulator's control API takes
    them) is handled by a process that holds their queue, commits the turn and dies before
    sending anything: its event id and the answer that went nowhere."""
    storage = stack.services.storage
    pipeline = stack.bot_app[PIPELINE]
    await stack.wait_idle()  # the earlier turns' handling has let go of the queue
    assert await storage.leases.acquire(chat.user_id, "dying", stack.clock.now(), LEASE_TTL)
    await chat._control(action, body)
    await stack.wait_idle()
    stored = await storage.inbound_events.next_pending(chat.user_id)
    assert stored is not None
    incoming = to_incoming(storage.inbound_events.event_of(stored))
    assert incoming is not None and isinstance(pipeline.handler, Router)
    assert isinstance(pipeline.handler.dialog, DialogEngine)
    lost = await pipeline.handler.dialog.handle(incoming)
    assert await chat.inbox(wait=0.5) == []
    return str(stored["_id"]), lost


async def taken_over(stack: Stack, chat: Chat) -> list[dict[str, Any]]:
    """Another process's sweep takes the dead one's event once its lease ran out: what the
    resident then receives."""
    stack.clock.offset += max(LEASE_TTL, STALE_AFTER)
    assert await stack.bot_app[PIPELINE].sweep() == 1
    await stack.wait_idle()
    return await chat.inbox()


async def test_an_answer_stored_with_the_commit_is_sent_by_the_survivor(stack: Stack) -> None:
    """The process dies right after the commit, before it even recorded the reply."""
    chat = await stack.user("復旧三郎")
    storage = stack.services.storage
    event_id, lost = await handled_by_a_process_that_dies(stack, chat, "text", {"text": "登録"})
    committed = await storage.conversations.load(chat.user_id)
    assert committed.event_id == event_id and committed.conversation is not None

    replies = await taken_over(stack, chat)
    assert len(replies) == 1
    assert replies[0]["message"] == lost[0].to_dict()  # the answer the dead process rendered
    assert (await storage.conversations.load(chat.user_id)).version == committed.version
    await chat.send("けせんぬま")  # its buttons and steps carry on from the committed turn
    assert "でよろしいですか" in chat.last_text
    assert await chat.inbox(wait=0.5) == []


async def test_a_completion_whose_answer_died_with_its_process_is_answered_once(
    stack: Stack,
) -> None:
    """The process dies after registering, before its answer went anywhere."""
    chat = await stack.user("復旧四郎")
    storage = stack.services.storage
    for text in ("登録", "気仙沼"):
        await chat.send(text)
    await chat.tap("はい")
    for label in ("①経済", "決定", "出身"):
        await chat.tap(label)
    await chat.send("世田谷区")
    await chat.tap("はい")
    await chat.tap("30代")
    await chat.send("しろう")
    await chat.tap("同意する")
    assert "この内容で登録しますか" in chat.last_text
    _, lost = await handled_by_a_process_that_dies(stack, chat, "tap", {"label": "登録する"})
    assert "登録が完了しました" in "\n".join(message_texts([m.to_dict() for m in lost]))
    made = await storage.registrations.for_user(chat.user_id)

    replies = await taken_over(stack, chat)
    assert "登録が完了しました" in "\n".join(message_texts([r["message"] for r in replies]))
    assert [r["message"] for r in replies] == [m.to_dict() for m in lost]  # the same answer
    assert await storage.registrations.for_user(chat.user_id) == made  # made once
    assert await chat.inbox(wait=0.5) == []
