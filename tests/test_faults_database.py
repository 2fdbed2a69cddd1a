"""The database stops for ~10 s while residents chat: the webhook answers 503, LINE redelivers,
and after the restart every event is handled exactly once with exactly one answer.
Also: the web app shuts down within a bounded time while the database is away."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import DRAIN_TIMEOUT_S
from bot.devdb import LocalFerret
from bot.line.webhook import PIPELINE
from tests.fault_chat import HELP, Hold, check_exactly_once, new_resident, until
from tests.stack import Stack, start_stack

pytestmark = pytest.mark.slow

OUTAGE_S = 10.0


@pytest.fixture
async def ferret(tmp_path: Path) -> AsyncIterator[LocalFerret]:
    """A FerretDB of this test's own: stopping it disturbs no other test."""
    own = LocalFerret(tmp_path / "db")
    await own.start_and_wait()
    yield own
    own.stop()


@pytest.fixture
async def stack(ferret: LocalFerret) -> AsyncIterator[Stack]:
    async for running in start_stack(ferret.uri, "faults_db"):
        await running.emulator("POST", "/_emulator/config", {"redeliver": True})
        yield running


async def test_database_outage_mid_conversations_loses_and_doubles_nothing(
    stack: Stack, ferret: LocalFerret
) -> None:
    emulator = stack.emulator_url
    residents = [await new_resident(stack.http, emulator, f"住民{n}") for n in range(4)]
    late = await new_resident(stack.http, emulator, "遅れて話す住民")
    # Everyone mid-registration when the database goes (their last turn may still be finishing),
    # and their next turns sent during the outage. A completion cut after its commit is
    # tests/test_completion_recovery.py's: an outage cannot be timed into that window here.
    hold = Hold(before=4)
    chats = [asyncio.create_task(r.register(pause=0.1, hold=hold)) for r in residents]
    await until(lambda: hold.waiting == len(residents), 60)
    await asyncio.to_thread(ferret.stop)
    hold.release.set()
    # Both deliveries (the first and the emulator's immediate duplicate) are refused with 503
    # within LINE's ~2 s each.
    started = time.monotonic()
    assert await late.say("text", "ヘルプ") == 503
    assert time.monotonic() - started < 2 * 2.0
    await asyncio.sleep(OUTAGE_S - (time.monotonic() - started))
    await ferret.start_and_wait()
    await late.answer("ヘルプ", HELP)
    await asyncio.gather(*chats)

    ledger = await check_exactly_once(
        stack.http, emulator, stack.services.storage, residents, extra=[late]
    )
    # The outage was felt: webhooks were refused while it lasted, and redelivered.
    assert all(503 in r.statuses for r in [*residents, late])
    assert ledger.refused_deliveries >= 2 * (len(residents) + 1)
    print(f"database outage: {ledger}")


async def test_shutdown_while_the_database_is_away_is_bounded(
    ferret: LocalFerret, caplog: pytest.LogCaptureFixture
) -> None:
    async for stack in start_stack(ferret.uri, "faults_shutdown"):
        resident = await new_resident(stack.http, stack.emulator_url, "住民")
        pipeline = stack.bot_app[PIPELINE]
        await pipeline.drain()  # the greeting's task could pick up the event below
        # An event stored just before the outage, whose handling then waits for the database.
        users: list[str] = []
        event = {
            "type": "message",
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": resident.user_id},
            "webhookEventId": "01FAULTSHUTDOWN000000000000",
            "message": {"type": "text", "id": "1", "text": "ヘルプ"},
        }
        await pipeline.accept([event], users)
        await asyncio.to_thread(ferret.stop)
        pipeline.schedule(users)
        await asyncio.sleep(1.0)
        assert pipeline.tasks, "nothing is waiting for the database"
        caplog.set_level(logging.WARNING, logger="bot.web")
        started = time.monotonic()
        await stack.bot_app.shutdown()
        took = time.monotonic() - started
        assert took < DRAIN_TIMEOUT_S + 2, took
        assert "left pending for the sweep" in caplog.text
        assert not pipeline.tasks
        # Back up, the event is still pending: the sweep of any process will handle it.
        await ferret.start_and_wait()
        stored = await stack.services.storage.inbound_events.get(event["webhookEventId"])
        assert stored is not None and stored["status"] == "pending"
