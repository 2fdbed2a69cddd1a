"""Worker job: deliver approved news (`bot.news.deliver_news`), every two seconds.

Limits come from the environment, read once when the worker starts its jobs (a bad value stops
it with a `SettingsError` naming the variable):

- `NEWS_QUIET_HOURS`: "21:00-08:00" (default), Japan time; "off" sends at any hour.
- `NEWS_DAILY_CAP`: news pushes per person per Japan day across all places (default 3).
- `NEWS_MULTICAST_PER_SECOND`: multicast requests per second this channel may make (default
  200, LINE's ceiling); one worker sends at a time (the delivery lease), so two workers together
  stay under it.
- `NEWS_LEASE_SECONDS`: how long a silent lease holder keeps the delivery (default 30): a
  worker killed mid-delivery is taken over after that.

Tests call `deliver_news` in-process with a moved clock, or run `python -m bot worker` with
these variables.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import time, timedelta

from bot.clock import Clock
from bot.domain.news import DEFAULT_DAILY_CAP, DEFAULT_MULTICAST_PER_SECOND, DeliveryConfig
from bot.domain.stays import QUIET_HOURS
from bot.line.client import LineClient
from bot.news import DeliveryRun, deliver_news
from bot.render import Renderer
from bot.settings import SettingsError
from bot.storage import Storage

INTERVAL = timedelta(seconds=2)  # an idle pass only reads two small collections


def _quiet_hours(raw: str) -> tuple[time, time]:
    if not raw:
        return QUIET_HOURS
    if raw.lower() == "off":
        return (time(0), time(0))  # equal ends: never quiet
    try:
        start, end = (time.fromisoformat(part.strip()) for part in raw.split("-"))
    except ValueError:
        raise SettingsError("NEWS_QUIET_HOURS", "must look like 21:00-08:00 or be off") from None
    return (start, end)


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise SettingsError(name, "must be a number") from None
    if value <= 0:
        raise SettingsError(name, "must be positive")
    return value


def config_from_env(env: Mapping[str, str]) -> DeliveryConfig:
    return DeliveryConfig(
        quiet_hours=_quiet_hours(env.get("NEWS_QUIET_HOURS", "").strip()),
        daily_cap=int(_number(env, "NEWS_DAILY_CAP", DEFAULT_DAILY_CAP, integer=True)),
        multicast_per_second=_number(
            env, "NEWS_MULTICAST_PER_SECOND", DEFAULT_MULTICAST_PER_SECOND, integer=False
        ),
        lease_seconds=_number(env, "NEWS_LEASE_SECONDS", 30.0, integer=False),
    )


def news_job(
    storage: Storage,
    clock: Clock,
    line: Callable[[], LineClient],
    renderer: Renderer,
    config: DeliveryConfig | None = None,
) -> Callable[[], Awaitable[DeliveryRun]]:
    """The job for `Worker.every`: one owner name per worker process for the delivery lease."""
    settings = config or config_from_env(os.environ)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def run() -> DeliveryRun:
        return await deliver_news(storage, clock, line(), renderer, settings, owner)

    return run


__all__ = ["INTERVAL", "config_from_env", "news_job"]
