"""Worker job: deliver approved news (`bot.news.deliver_news`), every two seconds.

The limits (quiet hours, daily cap, multicast rate, lease) come from `Settings.news`
(`NEWS_*` variables, see `bot.settings.news_delivery`). Tests call `deliver_news` in-process
with a moved clock, or run `python -m bot worker` with these variables.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.clock import Clock
from bot.domain.news import DeliveryConfig
from bot.line.client import LineClient
from bot.news import DeliveryRun, Pacer, deliver_news
from bot.render import Renderer
from bot.storage import Storage

INTERVAL = timedelta(seconds=2)  # an idle pass only reads two small collections


def news_job(
    storage: Storage,
    clock: Clock,
    line: Callable[[], LineClient],
    renderer: Renderer,
    config: DeliveryConfig,
) -> Callable[[], Awaitable[DeliveryRun]]:
    """The job for `Worker.every`: one owner name per worker process for the delivery lease."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    pacer = Pacer(config.multicast_per_second)  # one for all passes: they may follow closely

    async def run() -> DeliveryRun:
        return await deliver_news(storage, clock, line(), renderer, config, owner, pacer)

    return run


__all__ = ["INTERVAL", "news_job"]
