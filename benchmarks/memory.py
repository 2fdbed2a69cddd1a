"""Memory: resident memory (RSS, psutil) of the web process idle, after a warm-up, and then at
checkpoints of chat turns; the baseline echo bot goes through the same turns.

Target: no growth beyond the first warm-up (the last checkpoint within 5 % of the RSS after the
warm-up). The turn rate at the first and the last checkpoint shows whether a turn gets dearer as
the stored events accumulate. A full run does the 100,000 turns of issue 9 (about 40 minutes on
the PostgreSQL backend here), a quick run 1,000; `BENCH_MEMORY_TURNS` sets another count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

import psutil
from pymongo import AsyncMongoClient

from benchmarks.chat import Load, baseline, drive, friends, ours
from benchmarks.common import Emulator, Figure, Row, Run, verdict
from bot.storage.db import Document

NAME = "memory"
USERS = 10
WARM_UP = 500
MB = 1024 * 1024


def turns(run: Run) -> int:
    if os.environ.get("BENCH_MEMORY_TURNS"):
        return max(WARM_UP + 500, int(os.environ["BENCH_MEMORY_TURNS"]))
    return 1_000 if run.quick else 100_000


Prune = Callable[[], Awaitable[None]]


async def _no_pruning() -> None:
    return None


async def _turns(
    emu: Emulator, users: list[str], count: int, prune: Prune, seqs: dict[str, int]
) -> Load:
    """Run at least `count` turns (the load runs in slices of a second)."""
    done = Load(0, 0.0, [], 0)
    while done.turns < count:
        load = await drive(emu, users, 1.0, seqs)
        await prune()
        done = Load(
            done.turns + load.turns,
            done.seconds + load.seconds,
            done.latencies + load.latencies,
            done.errors + load.errors,
        )
    return done


async def profile(
    emu: Emulator, pid: int, total: int, prune: Prune = _no_pruning
) -> dict[str, Figure]:
    proc = psutil.Process(pid)
    users = await friends(emu, USERS)
    idle = proc.memory_info().rss
    seqs: dict[str, int] = {}
    await _turns(emu, users, WARM_UP, prune, seqs)
    warm = proc.memory_info().rss
    checkpoints: list[tuple[int, int, float]] = []  # (turns, rss, turns/s)
    done = WARM_UP
    step = max(500, (total - WARM_UP) // 5)
    while done < total:
        load = await _turns(emu, users, min(step, total - done), prune, seqs)
        done += load.turns
        checkpoints.append((done, proc.memory_info().rss, load.rate))
    last_turns, last, _ = checkpoints[-1]
    slope = (last - warm) / max(1, last_turns - WARM_UP) * 1000 / 1024  # KB per 1000 turns
    return {
        "turns": last_turns,
        "idle MB": idle / MB,
        "warm MB": warm / MB,
        "last MB": last / MB,
        "growth %": (last - warm) / warm * 100,
        "KB/1k turns": slope,
        "100k turns MB (extrap.)": (warm + slope * 1024 * (100_000 - WARM_UP) / 1000) / MB,
        "turns/s first": checkpoints[0][2],
        "turns/s last": checkpoints[-1][2],
    }


async def run(run: Run) -> list[Row]:
    total = turns(run)
    started = time.monotonic()
    async with baseline(run) as (emu, proc):
        base = await profile(emu, proc.pid, total)
    client: AsyncMongoClient[Document] = AsyncMongoClient(run.mongo_uri)
    async with ours(run, "bench_memory") as (emu, proc), client:
        db = client["bench_memory"]

        async def prune() -> None:
            # Sent replies' retry keys and handled events' endings, kept 3 days in production
            # (the cleanup job), are dropped every second here, as in the runs this one is
            # compared with (when turns still read events by `_id`, which FerretDB answers with
            # a scan). What is measured is the web process's memory, which they never were in.
            await db["inbound_events"].delete_many({"status": "done"})
            await db["sends"].delete_many({"status": "sent"})

        mine = await profile(emu, proc.pid, total, prune)
    took = f"~{time.monotonic() - started:.0f} s here"
    note = f"{total:,} turns, not 100,000: {took}" if total < 100_000 else took
    return [
        Row(NAME, "baseline (SDK echo)", f"{total:,} turns", base),
        Row(
            NAME,
            "ours (web process)",
            f"{total:,} turns",
            mine,
            "≤5 % growth after warm-up",
            verdict(float(mine["growth %"]) <= 5),
            note,
        ),
    ]
