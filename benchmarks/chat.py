"""Chat turn: users of the LINE emulator send text; how many turns a second, and how long from
the webhook to the reply reaching the emulator, at 1, 10 and 100 concurrent users.

Each simulated user loops: `POST /_emulator/users/{id}/text` (the emulator signs the webhook and
POSTs it to the bot), then waits on its inbox for the reply; the latency is the emulator's
delivery time of the first reply message minus the moment the text was sent. The same load runs
against the baseline (`benchmarks.echo_bot`, the SDK's aiohttp echo example), against the same
echo bot inserting each event into the database before it replies (the floor: what storing an
event before answering LINE costs alone), against it also inserting each reply before sending it
(the floor of exactly once: no bot that sends each reply once across crashes writes less), and
against ours (`python -m bot serve` with its database), each behind a fresh emulator process.

Targets: our throughput ≥ 0.5× the baseline's and our p99 ≤ 3× the baseline's, at each
concurrency.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from benchmarks.common import (
    Emulator,
    Figure,
    Row,
    Run,
    emulator,
    percentile,
    serve,
    verdict,
)
from bot.devdb import free_port, wait_http

# The echo bot's writes before it replies (`benchmarks.echo_bot`).
Floor = Literal["store", "exactly-once"]

NAME = "chat"
TEXT = "ヘルプ"  # a whole turn of ours: webhook, queue, lease, dialog interrupt, template, reply


@dataclass
class Load:
    turns: int
    seconds: float
    latencies: list[float]  # seconds
    errors: int

    @property
    def rate(self) -> float:
        return self.turns / self.seconds if self.seconds else 0.0

    def ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000


async def turn(emu: Emulator, user_id: str, seq: int) -> tuple[float, int]:
    """One text and its reply: (latency in seconds, the inbox position after it)."""
    sent = time.time()
    result = await emu.call("POST", f"/_emulator/users/{user_id}/text", {"text": TEXT})
    if result["status"] != 200:
        raise RuntimeError(f"webhook answered {result['status']}")
    while True:
        inbox = await emu.call("GET", f"/_emulator/users/{user_id}/inbox?after={seq}&wait=30")
        entries = inbox["messages"]
        if not entries:
            raise RuntimeError("no reply within 30 s")
        seq = int(entries[-1]["seq"])
        for entry in entries:
            # Older entries are late replies to an earlier turn that timed out.
            arrived = datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
            if arrived >= sent:
                return arrived - sent, seq


async def drive(
    emu: Emulator, users: list[str], seconds: float, seqs: dict[str, int] | None = None
) -> Load:
    """Every user in a closed loop for `seconds`. `seqs`: where each user's inbox was read up
    to, kept by a caller that drives again (read from 0, an inbox returns everything it holds,
    which makes long runs slower and slower)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    seqs = {} if seqs is None else seqs

    async def loop(user: str) -> None:
        nonlocal errors
        seqs.setdefault(user, 0)
        while time.monotonic() < deadline:
            try:
                latency, seqs[user] = await turn(emu, user, seqs[user])
                latencies.append(latency)
            except (RuntimeError, TimeoutError):
                errors += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(user) for user in users))
    return Load(len(latencies), time.monotonic() - started, latencies, errors)


@asynccontextmanager
async def baseline(
    run: Run, floor: Floor | None = None
) -> AsyncIterator[tuple[Emulator, subprocess.Popen[bytes]]]:
    """The echo bot behind its own emulator: (emulator, bot process). `floor`: the writes it
    makes to the run's database first (see `benchmarks.echo_bot`)."""
    port = free_port()
    name = f"echo-{floor}" if floor else "echo-bot"
    flags = {None: [], "store": ["--store"], "exactly-once": ["--store", "--record-replies"]}
    async with emulator(run, f"chat-{name}", f"http://127.0.0.1:{port}/callback") as emu:
        proc = run.spawn(
            name,
            ["-m", "benchmarks.echo_bot", "--port", str(port), *flags[floor]],
            run.env("bench_chat_floor", emu.url, f"http://127.0.0.1:{port}"),
        )
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz", alive=lambda: proc.poll() is None)
            yield emu, proc
        finally:
            await run.stop(proc)


@asynccontextmanager
async def ours(run: Run, db: str) -> AsyncIterator[tuple[Emulator, subprocess.Popen[bytes]]]:
    """`python -m bot serve` behind its own emulator: (emulator, web process)."""
    port = free_port()
    async with emulator(run, "chat-ours", f"http://127.0.0.1:{port}/callback") as emu:
        proc = await serve(run, f"web-{db}", db, emu.url, port)
        try:
            yield emu, proc
        finally:
            await run.stop(proc)


async def friends(emu: Emulator, count: int) -> list[str]:
    """`count` users who have added the account (the greeting is part of no measurement)."""
    users = [await emu.user(f"利用者{i}") for i in range(count)]
    for user in users:
        await emu.call("POST", f"/_emulator/users/{user}/follow")
    return users


async def measure(emu: Emulator, levels: list[int], seconds: float) -> dict[int, Load]:
    users = await friends(emu, max(levels))
    seqs: dict[str, int] = {}
    await drive(emu, users[: min(10, len(users))], min(3.0, seconds), seqs)  # warm-up
    return {level: await drive(emu, users[:level], seconds, seqs) for level in levels}


async def run(run: Run) -> list[Row]:
    levels = [1, 10, 100]
    seconds = 5.0 if run.quick else 20.0
    async with baseline(run) as (emu, _):
        base = await measure(emu, levels, seconds)
    async with baseline(run, "store") as (emu, _):
        floor = await measure(emu, levels, seconds)
    async with baseline(run, "exactly-once") as (emu, _):
        once = await measure(emu, levels, seconds)
    async with ours(run, "bench_chat") as (emu, _):
        mine = await measure(emu, levels, seconds)
    rows: list[Row] = []
    for level in levels:
        b, o = base[level], mine[level]
        rows.append(Row(NAME, "baseline (SDK echo)", f"{level} users", figures(b)))
        # No target: they show how much of the target the writes of any bot that keeps its
        # events (and, exactly once, its replies) already take.
        rows.append(
            Row(NAME, "floor (echo + 1 insert)", f"{level} users", against(floor[level], b))
        )
        rows.append(
            Row(
                NAME,
                "floor, exactly once (echo + 2 inserts)",
                f"{level} users",
                against(once[level], b),
            )
        )
        ratios = against(o, b)
        throughput, tail = float(ratios["x throughput"]), float(ratios["x p99"])
        rows.append(
            Row(
                NAME,
                "ours",
                f"{level} users",
                ratios,
                "≥0.5× events/s, ≤3× p99",
                verdict(throughput >= 0.5 and tail <= 3 and o.errors == 0),
            )
        )
    return rows


def figures(load: Load) -> dict[str, Figure]:
    return {
        "events/s": load.rate,
        "p50 ms": load.ms(50),
        "p99 ms": load.ms(99),
        "turns": load.turns,
        "errors": load.errors,
    }


def against(load: Load, base: Load) -> dict[str, Figure]:
    """A load's figures with its throughput and p99 as multiples of the baseline's."""
    return figures(load) | {
        "x throughput": load.rate / base.rate if base.rate else 0.0,
        "x p99": load.ms(99) / base.ms(99) if base.ms(99) else 0.0,
    }
