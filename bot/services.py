"""What a process needs to talk to the world: database, LINE client, event handler.

Both the web process and the worker open the same services (the worker handles events a dead
web process left pending), so they are built in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
)

from bot.clock import Clock
from bot.line.client import LineClient, RetryPolicy
from bot.line.incoming import EventHandler
from bot.line.pipeline import Pipeline
from bot.line.richmenu import RichMenus
from bot.news import NewsService
from bot.premium import PremiumService
from bot.render import Renderer
from bot.settings import Settings
from bot.storage import Mongo, Storage
from bot.template_check import TemplateChecker
from bot.templates_overrides import StoredOverrides


@dataclass
class Services:
    settings: Settings
    clock: Clock
    storage: Storage
    line: LineClient
    api: AsyncMessagingApi
    richmenus: RichMenus
    renderer: Renderer
    premium: PremiumService
    news: NewsService
    # Municipalities' own template texts (the renderer's overrides) and their save-time check.
    overrides: StoredOverrides | None = None
    template_checker: TemplateChecker | None = None


HandlerFactory = Callable[[Services], EventHandler]


def default_handler(services: Services) -> EventHandler:
    from bot.router import build_handler

    return build_handler(services)


@asynccontextmanager
async def open_services(
    settings: Settings, clock: Clock, policy: RetryPolicy | None = None
) -> AsyncIterator[Services]:
    mongo = Mongo(settings.mongodb_uri, settings.mongodb_db)
    try:
        await mongo.wait_until_up(settings.db_startup_timeout_s)
        storage = Storage(mongo)
        await storage.ensure_indexes()
        configuration = Configuration(
            host=settings.line_api_base_url, access_token=settings.line_channel_access_token
        )
        # AsyncApiClient opens its aiohttp session on construction: build it inside the loop.
        async with AsyncApiClient(configuration) as api_client:
            api = AsyncMessagingApi(api_client)
            line = LineClient(api, storage.sends, storage.users, clock, policy)
            blob = AsyncMessagingApiBlob(api_client)
            richmenus = RichMenus(api, blob, storage, clock)
            overrides = StoredOverrides(storage.template_versions)
            await overrides.load()
            checker = TemplateChecker()
            renderer = Renderer(overrides=overrides)
            premium = PremiumService(storage, line, blob, renderer, clock, settings=settings)
            overrides.start()
            try:
                yield Services(
                    settings,
                    clock,
                    storage,
                    line,
                    api,
                    richmenus,
                    renderer,
                    premium,
                    NewsService(storage, line, renderer),
                    overrides=overrides,
                    template_checker=checker,
                )
            finally:
                await overrides.stop()
                await checker.close()
    finally:
        await mongo.close()


def make_pipeline(services: Services, handler_factory: HandlerFactory | None) -> Pipeline:
    handler = (handler_factory or default_handler)(services)
    return Pipeline(services.storage, services.line, handler, services.clock)
