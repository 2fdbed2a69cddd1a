"""News fan-out: one お知らせ of a municipality to 10,000, 100,000 and 1,000,000 registrants, with
the emulator's multicast limit at LINE's real 200 requests a second (500 recipients each): the
ceiling is 100,000 recipients a second.

The delivery is news-core's (`bot.news.deliver_news`, the worker's news job), run by
`benchmarks.news_worker` in a process of its own (its peak memory is the worker's). Planning
happens before the scheduled time and is reported apart; the rate counts the sending from the
due time to the last batch. Baseline: the ceiling itself, and the emulator's answer to a bare
loop of multicasts paced at 200/s from the same machine (what the emulator can take).

Targets: ≥ 90 % of the ceiling at 100,000 recipients; the worker's peak memory grows ≤ 20 %
from 100,000 to 1,000,000.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from benchmarks.common import ROOT, Emulator, Figure, Row, Run, emulator, out_of_time, verdict
from benchmarks.seed import seed
from bot.storage import Mongo, Storage

NAME = "news"
TOWN = "042056"  # 気仙沼市
CEILING = 200 * 500  # recipients a second: LINE's multicast limit × recipients per request
MULTICAST = "/v2/bot/message/multicast"


def sizes(run: Run) -> list[int]:
    return [1_000, 10_000] if run.quick else [10_000, 100_000, 1_000_000]


async def bare_multicasts(emu: Emulator, token: str, requests: int) -> float:
    """Recipients a second of `requests` multicasts of 500 paced at 200/s, nothing else."""
    body = {
        "to": [f"U{i:032x}" for i in range(500)],
        "messages": [{"type": "text", "text": "ふるさとからのお知らせです。"}],
    }
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, started + i / 200 - time.perf_counter()))
        async with emu.http.post(f"{emu.url}{MULTICAST}", json=body, headers=headers) as r:
            assert r.status == 200, await r.text()

    await asyncio.gather(*(one(i) for i in range(requests)))
    return requests * 500 / (time.perf_counter() - started)


async def deliver(run: Run, size: int) -> dict[str, Figure]:
    db = f"bench_news_{size}"
    mongo = Mongo(run.mongo_uri, db)
    try:
        await mongo.client.drop_database(db)
        seeded = await seed(Storage(mongo), size, only_place=TOWN, with_stats=False)
    finally:
        await mongo.close()
    async with emulator(run, f"news-{size}", "http://127.0.0.1:9/callback") as emu:
        await emu.call("POST", "/_emulator/config", {"rateLimits": {MULTICAST: 200}})
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.news_worker",
            db,
            TOWN,
            emu.url,
            cwd=ROOT,
            env=run.env(db, emu.url, "http://127.0.0.1:8080", LOG_LEVEL="WARNING"),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"news_worker exited with {proc.returncode}; see its output")
        figures: dict[str, Figure] = json.loads(out.decode().strip().splitlines()[-1])
        calls = await emu.requests(MULTICAST)
    figures["multicasts"] = calls.get("200", 0)
    figures["429s"] = calls.get("429", 0)
    figures["seed regs/s"] = seeded.insert_rate
    return figures


async def run(run: Run) -> list[Row]:
    rows: list[Row] = []
    async with emulator(run, "news-bare", "http://127.0.0.1:9/callback") as emu:
        await emu.call("POST", "/_emulator/config", {"rateLimits": {MULTICAST: 200}})
        bare = await bare_multicasts(emu, run.token, 200 if run.quick else 1000)
    rows.append(
        Row(
            NAME,
            "baseline: bare multicasts at 200/s",
            "500 × 200 req" if run.quick else "500 × 1,000 req",
            {"recipients/s": bare, "% of ceiling": bare / CEILING * 100},
        )
    )
    results: dict[int, dict[str, Figure]] = {}
    for size in sizes(run):
        # Seeding, planning and sending at the rates seen here (~3,000, ~1,300, ~10,000 a second).
        estimate = size / 3000 + size / 1300 + size / 10_000 + 30
        if not run.fits(estimate):
            rows.append(out_of_time(NAME, "deliver_news (news-core)", f"{size:,} people", estimate))
            continue
        try:
            results[size] = await deliver(run, size)
        except Exception as exc:  # one size failing must not hide the others
            rows.append(
                Row(NAME, "deliver_news", f"{size:,}", {}, verdict="ERROR", note=repr(exc)[:160])
            )
            continue
        f = results[size]
        sent_s = float(f["send s"])
        rate = float(f["recipients"]) / sent_s if sent_s else 0.0
        figures: dict[str, Figure] = {
            "recipients/s": rate,
            "% of ceiling": rate / CEILING * 100,
            "send s": sent_s,
            "plan s": f["plan s"],
            "µs/recipient": sent_s / size * 1e6,
            "peak MB": f["peak MB"],
            "recipients": f["recipients"],
            "multicasts": f["multicasts"],
            "429s": f["429s"],
        }
        target, met = "", ""
        if size == (10_000 if run.quick else 100_000):
            target, met = "≥90 % of 100,000/s", verdict(rate >= 0.9 * CEILING)
        rows.append(Row(NAME, "deliver_news (news-core)", f"{size:,} people", figures, target, met))
    small, large = sizes(run)[-2:]
    if small in results and large in results:
        growth = (float(results[large]["peak MB"]) / float(results[small]["peak MB"]) - 1) * 100
        rows.append(
            Row(
                NAME,
                "worker peak memory",
                f"{small:,} → {large:,}",
                {"growth %": growth},
                "≤20 %",
                verdict(growth <= 20),
            )
        )
    return rows
