"""A LINE emulator in the test process, a LINE client to it, and many residents at once.

News delivery tests need thousands of residents: they are put straight into the emulator's
state (following the account) and into `registrations` with `insert_many`, instead of going
through 10,000 chats.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestServer
from bson import ObjectId
from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration

from bot.clock import JST, Clock
from bot.domain.news import Content, DeliveryConfig, Schedule, Segment
from bot.domain.places import all_places
from bot.emulator.app import create_emulator_app
from bot.emulator.state import STATE, EmulatorState
from bot.line.client import LineClient
from bot.news import DeliveryRun, NewsItem, NewsService, deliver_news
from bot.render import Renderer
from bot.storage import Storage
from tests.stack import FAST_RETRIES

SECRET = secrets.token_hex(16)
TOKEN = secrets.token_hex(32)
MULTICAST = "/v2/bot/message/multicast"
NEWS_STORES = ("news", "news_runs", "news_batches", "news_people", "news_caps")


def user_id() -> str:
    return "U" + secrets.token_hex(16)


def at_jst(days: int, hour: int, minute: int = 0) -> datetime:
    """`hour:minute` Japan time, `days` days from today."""
    return (datetime.now(JST) + timedelta(days=days)).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )


@dataclass
class Lab:
    """Storage, an in-process emulator, a LINE client to it and a clock tests move."""

    storage: Storage
    emulator: EmulatorState
    url: str
    line: LineClient
    clock: Clock
    renderer: Renderer
    config: DeliveryConfig
    places: set[str] = field(default_factory=set)  # seeded: emptied at the end

    @property
    def news(self) -> NewsService:
        return NewsService(self.storage, self.line, self.renderer)

    async def unused_place(self, taken: Iterable[str] = ()) -> str:
        """A municipality nobody is registered with yet, picked at random: other tests leave
        residents in places of their own, and a report counts everyone in the place."""
        skip = set(taken) | self.places
        places = [p.code for p in all_places() if not p.is_prefecture and p.code not in skip]
        random.shuffle(places)
        for code in places:
            if await self.storage.registrations.col.find_one({"place_code": code}) is None:
                return code
        raise AssertionError("every municipality has residents")

    def set_time(self, moment: datetime) -> datetime:
        self.clock.offset = moment - datetime.now(UTC)
        return moment

    async def seed(self, place: str, count: int, **fields: Any) -> list[str]:
        """`count` residents registered with `place` (following the account in the emulator)."""
        self.places.add(place)
        users = [user_id() for _ in range(count)]
        now = datetime.now(UTC).replace(microsecond=0)
        docs = []
        for n, user in enumerate(users):
            self.emulator.add_user(user, f"住民{n}").following = True
            doc: dict[str, Any] = {
                "_id": ObjectId(),
                "user_id": user,
                "place_code": place,
                "tier": "basic",
                "status": "active",
                "types": ["visit"],
                "connection": "hometown",
                "residence_code": "131016",
                "age_band": "30s",
                "nickname": f"住民{n}",
                "number": f"{place}-{n:06d}-0",
                "since": now,
                "valid_until": None,
                "card_version": 1,
                "via": None,
                "answers": {},
                "created_at": now,
                "updated_at": now,
            }
            doc.update(fields)
            docs.append(doc)
        for start in range(0, len(docs), 1000):
            await self.storage.registrations.col.insert_many(docs[start : start + 1000])
        return users

    async def approved(
        self,
        place: str,
        title: str = "ふるさと便り",
        segment: Segment | None = None,
        schedule: Schedule | None = None,
        text: str = "今月のお知らせです。",
        content: Content | None = None,
    ) -> NewsItem:
        now = self.clock.now()
        news = self.news
        item = await news.create(
            place,
            "editor@example.jp",
            title,
            content or Content(kind="text", text=text),
            segment or Segment(),
            schedule or Schedule(),
            now,
        )
        await news.submit(place, item.id, "editor@example.jp", now)
        return await news.approve(place, item.id, "admin@example.jp", now)

    async def deliver(self, owner: str | None = None) -> DeliveryRun:
        return await deliver_news(
            self.storage, self.clock, self.line, self.renderer, self.config, owner
        )

    async def deliver_all(self, limit: int = 20) -> list[DeliveryRun]:
        """Delivery passes until one finds nothing left to do."""
        runs = []
        for _ in range(limit):
            run = await self.deliver()
            runs.append(run)
            if not (run.batches_sent or run.runs_started or run.batches_planned):
                return runs
        raise AssertionError("delivery did not settle")

    def received(self, users: Sequence[str], title: str) -> Counter[str]:
        """How many times each user got the news titled `title` (by its text)."""
        counts: Counter[str] = Counter()
        for user in users:
            for entry in self.emulator.users[user].inbox:
                if title in str(entry.message.get("text", "")):
                    counts[user] += 1
        return counts

    def requests(self, path: str = MULTICAST) -> Counter[str]:
        return Counter(self.emulator.requests.get(path, {}))


@asynccontextmanager
async def open_lab(
    storage: Storage, config: DeliveryConfig | None = None, **emulator: Any
) -> AsyncIterator[Lab]:
    """A fresh emulator and empty news collections (earlier tests' items never go out here)."""
    for name in NEWS_STORES:
        await getattr(storage, name).col.delete_many({})
    await storage.leases.col.delete_many({"name": "news-delivery"})
    app = create_emulator_app(
        channel_secret=SECRET, access_token=TOKEN, webhook_url=None, **emulator
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    clock = Clock()
    places: set[str] = set()
    try:
        async with AsyncApiClient(Configuration(host=url, access_token=TOKEN)) as client:
            line = LineClient(
                AsyncMessagingApi(client), storage.sends, storage.users, clock, FAST_RETRIES
            )
            yield Lab(
                storage,
                app[STATE],
                url,
                line,
                clock,
                Renderer(),
                config or DeliveryConfig(multicast_per_second=100.0),
                places,
            )
    finally:
        await server.close()
        # Thousands of registrations would slow every later test's scans of the collection.
        await storage.registrations.col.delete_many({"place_code": {"$in": sorted(places)}})
