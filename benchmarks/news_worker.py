"""The worker side of the news fan-out benchmark, in a process of its own so that its peak
memory (`VmHWM`) is the delivery's: `python -m benchmarks.news_worker DB TOWN EMULATOR_URL`.

It does what `python -m bot worker`'s news job does (`bot.news.deliver_news`, news-core's code),
with the worker's own clock moved instead of waiting: an item is approved for `LEAD` ahead, one
pass plans it (planning may happen before the scheduled time), the clock moves to the due time,
and passes run until every batch is sent. Prints one JSON line of figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import time as daytime
from datetime import timedelta
from pathlib import Path

from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration

from bot.clock import Clock
from bot.domain.news import Content, DeliveryConfig, Schedule, Segment
from bot.line.client import LineClient
from bot.news import NewsService, deliver_news
from bot.render import Renderer
from bot.storage import Mongo, Storage

LEAD = timedelta(minutes=50)  # within the planning horizon (DeliveryConfig.plan_ahead, 1 h)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(db: str, town: str, emulator_url: str) -> dict[str, float]:
    mongo = Mongo(os.environ["MONGODB_URI"], db)
    storage = Storage(mongo)
    await storage.ensure_indexes()
    clock = Clock()
    config = DeliveryConfig(quiet_hours=(daytime(0), daytime(0)), multicast_per_second=200)
    renderer = Renderer()
    configuration = Configuration(
        access_token=os.environ["LINE_CHANNEL_ACCESS_TOKEN"], host=emulator_url
    )
    figures: dict[str, float] = {"rss start MB": rss_mb()}
    try:
        async with AsyncApiClient(configuration) as api_client:
            line = LineClient(AsyncMessagingApi(api_client), storage.sends, storage.users, clock)
            service = NewsService(storage, line, renderer)
            now = clock.now()
            item = await service.create(
                town,
                "bench",
                "ベンチマーク",
                Content(kind="text", text="ふるさとからのお知らせです。"),
                Segment(),
                Schedule(kind="at", at=now + LEAD),
                now,
            )
            await service.submit(town, item.id, "bench", now)
            await service.approve(town, item.id, "bench", now)
            started = time.perf_counter()
            planned = await deliver_news(storage, clock, line, renderer, config, "bench")
            figures["plan s"] = time.perf_counter() - started
            figures["batches"] = planned.batches_planned
            figures["rss after plan MB"] = rss_mb()
            clock.offset += LEAD
            started = time.perf_counter()
            recipients = 0
            for _ in range(1000):
                done = await deliver_news(storage, clock, line, renderer, config, "bench")
                recipients += done.recipients
                if not done.batches_sent:
                    break
            figures["send s"] = time.perf_counter() - started
            figures["recipients"] = recipients
            report = await service.report(town, item.id)
            figures["reported sent"] = report.sent
    finally:
        await mongo.close()
    figures["peak MB"] = peak_rss_mb()
    return figures


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
