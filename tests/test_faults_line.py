"""LINE misbehaves while residents register: random 500s, 429s and timeouts on reply and push.
Every event is handled once and every answer reaches the resident exactly once."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator

import pytest

from tests.fault_chat import HELP, Resident, check_exactly_once, new_resident
from tests.stack import FAST_RETRIES, Stack, start_stack

pytestmark = pytest.mark.slow

# Longer than the bot's request timeout in tests: the emulator handles the request after the
# bot gave up on it, as a slow LINE would.
TIMEOUT_LATENCY_MS = FAST_RETRIES.request_timeout_s * 1000 + 500
PATHS = ("/v2/bot/message/reply", "/v2/bot/message/push")
# Longer than a timed-out attempt and its retry pause: a request meets one burst at most.
QUIET_S = FAST_RETRIES.request_timeout_s + 0.5


@pytest.fixture
async def stack(mongo_uri: str, db_name: str) -> AsyncIterator[Stack]:
    async for running in start_stack(mongo_uri, f"{db_name}_faults_line"):
        await running.emulator("POST", "/_emulator/config", {"redeliver": True})
        yield running


async def inject_faults(stack: Stack, path: str, rng: random.Random, met: set[str]) -> None:
    """500, 429 and timeout in turn on `path`, one or two requests each, then a quiet spell
    longer than a retry: LINE misbehaving within what the bot's retries ride out (six 5xx in a
    row end in SendFailed, by design). `met` gets the kinds requests have met."""
    for kind in itertools.cycle(("500", "429", "timeout")):
        fault: dict[str, object] = {"path": path, "times": rng.randint(1, 2)}
        if kind == "timeout":
            fault |= {"status": None, "latencyMs": TIMEOUT_LATENCY_MS}
        else:
            fault["status"] = int(kind)
        await stack.emulator("POST", "/_emulator/faults", fault)
        while True:
            pending = (await stack.emulator("GET", "/_emulator/faults"))["faults"]
            if all(f["path"] != path for f in pending):
                met.add(kind)
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(QUIET_S)


async def test_line_errors_and_timeouts_lose_and_double_nothing(stack: Stack) -> None:
    residents = [await new_resident(stack.http, stack.emulator_url, f"住民{n}") for n in range(4)]
    rng = random.Random(10)
    on_reply: set[str] = set()
    on_push: set[str] = set()
    faults = [
        asyncio.create_task(inject_faults(stack, PATHS[0], rng, on_reply)),
        asyncio.create_task(inject_faults(stack, PATHS[1], rng, on_push)),
    ]

    async def session(resident: Resident) -> None:
        await resident.register(pause=0.2)
        while len(on_reply) < 3:  # chat on until replies have met every kind of fault
            await resident.act("text", "ヘルプ", HELP)

    await asyncio.gather(*(session(r) for r in residents))
    for task in faults:
        task.cancel()
    await asyncio.gather(*faults, return_exceptions=True)
    await stack.emulator("DELETE", "/_emulator/faults")

    ledger = await check_exactly_once(
        stack.http, stack.emulator_url, stack.services.storage, residents
    )
    stats = (await stack.emulator("GET", "/_emulator/stats"))["requests"]
    refused = {s: stats.get(PATHS[0], {}).get(s, 0) for s in ("500", "429")}
    assert refused["500"] > 0 and refused["429"] > 0, refused
    print(
        f"LINE faults: replies met {sorted(on_reply)}, pushes {sorted(on_push)} {refused}; {ledger}"
    )
