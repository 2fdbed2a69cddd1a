"""Residents who keep chatting through faults, and the checks that nothing was lost or doubled.

Unlike `tests.stack.Chat`, a turn here does not require the webhook to answer 200: while the
database or the web process is away the emulator gets a 503 or no answer, redelivers the event
later (redelivery on), and the resident simply waits longer for the reply.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.storage import Storage
from tests.stack import message_texts

# Basic registration in 12 turns: what the resident does and a piece of the answer that shows
# the turn was handled in order (a lost or doubled turn derails everything after it).
REGISTRATION: list[tuple[str, str, str]] = [
    ("text", "登録", "ふるさと住民登録をはじめます"),
    ("text", "けせんぬま", "でよろしいですか"),
    ("tap", "はい", "関わり方"),
    ("tap", "①経済", "✓①経済"),
    ("tap", "決定", "応援・ファン"),
    ("tap", "応援・ファン", "お住まいの市区町村"),
    ("text", "世田谷", "世田谷区"),
    ("tap", "はい", "年代"),
    ("tap", "40代", "ニックネーム"),
    ("text", "ﾀﾛｳ", "規約と個人情報の取扱い"),
    ("tap", "同意する", "この内容で登録しますか"),
    ("tap", "登録する", "登録が完了しました"),
]
HELP = "ふるさと住民登録のLINEです"  # the first line of the answer to 「ヘルプ」
TURN_WAIT_S = 90.0  # an event refused during a fault comes back with the emulator's redelivery


@dataclass
class Resident:
    http: aiohttp.ClientSession
    emulator: str
    user_id: str
    seq: int = 0
    turns: int = 0
    received: int = 0
    statuses: list[int] = field(default_factory=list)
    done: bool = False

    async def act(self, kind: str, value: str, expect: str) -> list[str]:
        await self.say(kind, value)
        return await self.answer(value, expect)

    async def say(self, kind: str, value: str) -> int:
        """Send a text or tap a quick reply; the bot's HTTP status for the first delivery."""
        body = {"text": value} if kind == "text" else {"label": value}
        async with self.http.post(
            f"{self.emulator}/_emulator/users/{self.user_id}/{kind}", json=body
        ) as response:
            sent = await response.json()
            assert response.status == 200, sent
        self.statuses.append(int(sent["status"]))
        self.turns += 1
        return self.statuses[-1]

    async def answer(self, value: str, expect: str) -> list[str]:
        texts = message_texts([e["message"] for e in await self.inbox(TURN_WAIT_S)])
        assert any(expect in t for t in texts), (self.user_id, value, texts)
        return texts

    async def inbox(self, wait: float) -> list[dict[str, Any]]:
        url = f"{self.emulator}/_emulator/users/{self.user_id}/inbox"
        async with self.http.get(url, params={"after": self.seq, "wait": wait}) as response:
            entries: list[dict[str, Any]] = (await response.json())["messages"]
        if entries:
            self.seq = entries[-1]["seq"]
            self.received += len(entries)
        return entries

    async def register(self, pause: float = 0.0, hold: Hold | None = None) -> None:
        for n, (kind, value, expect) in enumerate(REGISTRATION):
            if hold is not None and n == hold.before:
                hold.waiting += 1
                await hold.release.wait()
            await self.act(kind, value, expect)
            await asyncio.sleep(pause)
        self.done = True


@dataclass
class Hold:
    """Residents stop before turn `before` of the registration until `release` is set."""

    before: int
    release: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def new_resident(http: aiohttp.ClientSession, emulator: str, name: str) -> Resident:
    async with http.post(f"{emulator}/_emulator/users", json={"displayName": name}) as response:
        user_id = (await response.json())["userId"]
    resident = Resident(http, emulator, user_id)
    async with http.post(f"{emulator}/_emulator/users/{user_id}/follow", json={}) as response:
        resident.statuses.append(int((await response.json())["status"]))
    resident.turns += 1
    assert await resident.inbox(TURN_WAIT_S), "no greeting"
    return resident


async def emulator_get(http: aiohttp.ClientSession, emulator: str, path: str) -> Any:
    async with http.get(f"{emulator}{path}") as response:
        return await response.json()


@dataclass
class Ledger:
    """What the emulator and the database say about a run, for the report and the asserts."""

    events: int
    refused_deliveries: int
    handled: Counter[str]
    answered_requests: int
    messages: int

    def __str__(self) -> str:
        return (
            f"{self.events} events, {self.refused_deliveries} deliveries refused and redelivered,"
            f" {self.answered_requests} answers, {self.messages} messages"
        )


async def check_exactly_once(
    http: aiohttp.ClientSession,
    emulator: str,
    storage: Storage,
    registering: list[Resident],
    extra: list[Resident] | None = None,
) -> Ledger:
    """Every event handled once, every turn answered by exactly one reply or push; the
    `registering` residents went through the whole registration, in order."""
    residents = registering + (extra or [])
    # Nothing more arrives later (a duplicate reply would come after the expected one).
    await asyncio.sleep(2.0)
    for resident in residents:
        assert await resident.inbox(0) == [], f"an extra message reached {resident.user_id}"
    deliveries = (await emulator_get(http, emulator, "/_emulator/webhooks"))["deliveries"]
    ours = {r.user_id for r in residents}
    event_ids = {d["webhookEventId"] for d in deliveries if d["userId"] in ours}
    accepted = {
        d["webhookEventId"] for d in deliveries if d["userId"] in ours and d["status"] == 200
    }
    assert accepted == event_ids, "an event never got a 200 from the bot"
    assert len(event_ids) == sum(r.turns for r in residents)
    refused = sum(1 for d in deliveries if d["userId"] in ours and d["status"] != 200)
    handled: Counter[str] = Counter()
    for event_id in event_ids:
        stored = await storage.inbound_events.get(event_id)
        assert stored is not None, f"event {event_id} never stored"
        handled[str(stored["status"])] += 1
    assert handled == Counter({"done": len(event_ids)}), handled
    stats = (await emulator_get(http, emulator, "/_emulator/stats"))["requests"]
    answered = sum(
        stats.get(route, {}).get("200", 0)
        for route in ("/v2/bot/message/reply", "/v2/bot/message/push")
    )
    # Each resident's turn (follow included) is answered by exactly one accepted request.
    assert answered == len(event_ids), (answered, len(event_ids), stats)
    for resident in registering:
        assert resident.done
        regs = await storage.registrations.for_user(resident.user_id)
        assert sorted(r["place_code"] for r in regs) == ["040002", "042056"], regs
    return Ledger(
        events=len(event_ids),
        refused_deliveries=refused,
        handled=handled,
        answered_requests=answered,
        messages=sum(r.received for r in residents),
    )
