"""`make soak` / `python -m soak [--minutes 10] [--probe 40]`: the web process under steady chat.

1. Probe: residents chat in a closed loop for `--probe` seconds; the turns per second reached
   is the maximum chat throughput on this machine.
2. Soak: residents chat at half that rate (paced, open loop) for `--minutes`; every minute the
   web process's resident memory (RSS) and the turn latency (p50/p99, from the text sent to the
   reply delivered by the emulator) are recorded.

A resident follows, registers (12 turns), asks three commands three times, then leaves and a
new resident takes its place, so the database keeps growing as in production. At the end the
emulator's counts prove every turn was answered exactly once. The figures go to
`var/soak/<time>.json` and `var/soak/latest.json`; the exit status is 1 when memory or latency
was not flat (last whole minute against the first) or a turn was lost or answered twice.

Processes: FerretDB (SQLite backend, fresh under `var/soak/db`; or its PostgreSQL backend on the
empty database at `SOAK_POSTGRESQL_URL`), `python -m bot emulator`, `python -m bot serve`; this
process plays the residents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Emulator, Run, emulator, percentile, serve, start_ferret
from bot.devdb import free_port

VAR = ROOT / "var" / "soak"
# FerretDB's PostgreSQL backend (an empty database), as for `make bench`: on SQLite every
# lookup not by `_id` reads its whole collection, which grows through a soak by design.
POSTGRESQL = os.environ.get("SOAK_POSTGRESQL_URL") or None
REGISTRATION: list[tuple[str, str]] = [
    ("text", "登録"),
    ("text", "けせんぬま"),
    ("tap", "はい"),
    ("tap", "①経済"),
    ("tap", "決定"),
    ("tap", "応援・ファン"),
    ("text", "世田谷"),
    ("tap", "はい"),
    ("tap", "40代"),
    ("text", "ﾀﾛｳ"),
    ("tap", "同意する"),
    ("tap", "登録する"),
]
COMMANDS: list[tuple[str, str]] = [("text", c) for c in ("ヘルプ", "登録一覧", "特典")] * 3
# Memory and latency count as flat when the last whole minute is within these of the first.
RSS_GROWTH_LIMIT = 1.25
P99_GROWTH_LIMIT = 2.0
REPLY_WAIT_S = 60.0


@dataclass
class Turns:
    """Turn latencies and failures, by minute of the soak."""

    latencies: dict[int, list[float]] = field(default_factory=dict)
    lost: int = 0
    done: int = 0

    def add(self, minute: int, latency: float) -> None:
        self.latencies.setdefault(minute, []).append(latency)
        self.done += 1


async def turn(emu: Emulator, user: str, seq: int, kind: str, value: str) -> tuple[float, int]:
    """One action and its reply: (latency in seconds, the inbox position after it)."""
    body = {"text": value} if kind == "text" else {"label": value}
    sent = time.time()
    await emu.call("POST", f"/_emulator/users/{user}/{kind}", body)
    inbox = await emu.call("GET", f"/_emulator/users/{user}/inbox?after={seq}&wait={REPLY_WAIT_S}")
    entries = inbox["messages"]
    if not entries:
        raise TimeoutError(f"no reply to {value!r}")
    arrived = datetime.fromisoformat(entries[0]["at"].replace("Z", "+00:00")).timestamp()
    return arrived - sent, int(entries[-1]["seq"])


class Residents:
    """Residents one after another in `slots` parallel lanes; each turn waits for a token."""

    def __init__(self, emu: Emulator, slots: int) -> None:
        self.emu = emu
        self.slots = slots
        self.turns = Turns()
        self.actions = 0
        self.started = time.monotonic()
        self.count = 0

    async def lane(self, tokens: asyncio.Queue[None] | None, until: float) -> None:
        while time.monotonic() < until:
            self.count += 1
            user = await self.emu.user(f"住民{self.count}")
            seq = 0
            script = [("follow", ""), *REGISTRATION, *COMMANDS]
            for kind, value in script:
                if time.monotonic() >= until:
                    return
                if tokens is not None:
                    try:
                        await asyncio.wait_for(tokens.get(), until - time.monotonic())
                    except TimeoutError:
                        return
                try:
                    if kind == "follow":
                        sent = time.time()
                        await self.emu.call("POST", f"/_emulator/users/{user}/follow")
                        inbox = await self.emu.call(
                            "GET", f"/_emulator/users/{user}/inbox?after=0&wait={REPLY_WAIT_S}"
                        )
                        if not inbox["messages"]:
                            raise TimeoutError("no greeting")
                        latency, seq = time.time() - sent, int(inbox["messages"][-1]["seq"])
                    else:
                        latency, seq = await turn(self.emu, user, seq, kind, value)
                except (TimeoutError, RuntimeError):
                    self.actions += 1
                    self.turns.lost += 1
                    break  # the script cannot go on; a new resident takes the lane
                self.actions += 1
                self.turns.add(int((time.monotonic() - self.started) // 60), latency)

    async def run(self, seconds: float, rate: float | None) -> None:
        until = time.monotonic() + seconds
        self.started = time.monotonic()
        tokens: asyncio.Queue[None] | None = None
        pacer = None
        if rate is not None:
            tokens = asyncio.Queue()
            pacer = asyncio.create_task(_pace(tokens, rate, until))
        try:
            await asyncio.gather(*(self.lane(tokens, until) for _ in range(self.slots)))
        finally:
            if pacer is not None:
                pacer.cancel()


async def _pace(tokens: asyncio.Queue[None], rate: float, until: float) -> None:
    start = time.monotonic()
    n = 0
    while time.monotonic() < until:
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        tokens.put_nowait(None)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sample_rss(pid: int, samples: dict[int, float], started: float) -> None:
    while True:
        await asyncio.sleep(5)
        samples[int((time.monotonic() - started) // 60)] = rss_mb(pid)


async def answered(emu: Emulator) -> int:
    stats = (await emu.call("GET", "/_emulator/stats"))["requests"]
    return sum(
        stats.get(path, {}).get("200", 0)
        for path in ("/v2/bot/message/reply", "/v2/bot/message/push")
    )


async def main(minutes: float, probe_s: float, slots: int) -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    ferret = start_ferret(VAR / ("db-pg" if POSTGRESQL else "db"), POSTGRESQL)
    try:
        await ferret.wait_ready()
    except BaseException:
        ferret.stop()
        raise
    run = Run(quick=False, mongo_uri=ferret.uri)
    port = free_port()
    try:
        async with emulator(run, "soak", f"http://127.0.0.1:{port}/callback") as emu:
            web = await serve(run, "soak-serve", "soak", emu.url, port)
            probe = Residents(emu, slots)
            await probe.run(probe_s, None)
            maximum = probe.turns.done / probe_s
            rate = maximum / 2
            print(f"probe: {maximum:.1f} turns/s at most; soaking at {rate:.1f}", flush=True)
            before = await answered(emu)
            soak = Residents(emu, slots)
            rss: dict[int, float] = {}
            sampler = asyncio.create_task(sample_rss(web.pid, rss, time.monotonic()))
            await soak.run(minutes * 60, rate)
            sampler.cancel()
            await asyncio.sleep(3)  # late duplicates would arrive now
            answers = await answered(emu) - before
            await run.stop_all()
    finally:
        ferret.stop()
    return report(maximum, rate, minutes, soak, rss, answers)


def report(
    maximum: float,
    rate: float,
    minutes: float,
    soak: Residents,
    rss: dict[int, float],
    answers: int,
) -> int:
    rows: list[dict[str, Any]] = []
    for minute in sorted(soak.turns.latencies):
        values = soak.turns.latencies[minute]
        rows.append(
            {
                "minute": minute + 1,
                "turns": len(values),
                "p50_ms": round(percentile(values, 50) * 1000, 1),
                "p99_ms": round(percentile(values, 99) * 1000, 1),
                "rss_mb": round(rss.get(minute, 0.0), 1),
            }
        )
    print(f"{'minute':>6} {'turns':>6} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>8}")
    for row in rows:
        print(
            f"{row['minute']:>6} {row['turns']:>6} {row['p50_ms']:>8} {row['p99_ms']:>8}"
            f" {row['rss_mb']:>8}"
        )
    # The last whole minute against the first (a run's final minute holds only stragglers).
    first, last = rows[0], rows[-2] if len(rows) > 2 else rows[-1]
    rss_flat = last["rss_mb"] <= first["rss_mb"] * RSS_GROWTH_LIMIT
    p99_flat = last["p99_ms"] <= first["p99_ms"] * P99_GROWTH_LIMIT
    exact = soak.turns.lost == 0 and answers == soak.actions
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": f"FerretDB 1.24 {'PostgreSQL' if POSTGRESQL else 'SQLite'}",
        "max_turns_per_s": round(maximum, 2),
        "soak_turns_per_s": round(rate, 2),
        "minutes": minutes,
        "turns": soak.actions,
        "answers": answers,
        "lost": soak.turns.lost,
        "residents": soak.count,
        "minutes_table": rows,
        "rss_flat": rss_flat,
        "p99_flat": p99_flat,
        "exactly_once": exact,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"{stamp}.json", "latest.json"):
        (VAR / name).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(
        f"{soak.actions} turns by {soak.count} residents, {answers} answers, {soak.turns.lost} lost;"
        f" RSS flat: {rss_flat}, p99 flat: {p99_flat}, exactly once: {exact}"
    )
    return 0 if rss_flat and p99_flat and exact else 1


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--probe", type=float, default=40.0, help="seconds of the throughput probe")
    parser.add_argument("--slots", type=int, default=16, help="residents chatting at once")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.minutes, args.probe, args.slots)))


if __name__ == "__main__":
    cli()
