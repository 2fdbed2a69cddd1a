"""Settings from the environment, validated once at start-up.

A missing or malformed value stops the process with one line that names the variable and what is
wrong (exit status 2), so an operator sees the mistake instead of a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from urllib.parse import urlsplit

from bot.domain.news import DEFAULT_DAILY_CAP, DEFAULT_MULTICAST_PER_SECOND, DeliveryConfig
from bot.domain.stays import QUIET_HOURS

MIN_SECRET_LENGTH = 32
_DB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


class SettingsError(Exception):
    """A variable is missing or malformed; the message names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"configuration error: {variable} {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    line_channel_secret: str
    line_channel_access_token: str
    line_api_base_url: str
    mongodb_uri: str
    mongodb_db: str
    public_base_url: str
    session_secret: str
    card_signing_secret: str
    log_level: str
    db_startup_timeout_s: float
    news: DeliveryConfig = field(default_factory=DeliveryConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            line_channel_secret=_secret(env, "LINE_CHANNEL_SECRET", min_length=16),
            line_channel_access_token=_secret(env, "LINE_CHANNEL_ACCESS_TOKEN", min_length=16),
            line_api_base_url=_http_url(env, "LINE_API_BASE_URL", "https://api.line.me"),
            mongodb_uri=_mongodb_uri(env),
            mongodb_db=_db_name(env),
            public_base_url=_http_url(env, "PUBLIC_BASE_URL", None),
            session_secret=_secret(env, "SESSION_SECRET", min_length=MIN_SECRET_LENGTH),
            card_signing_secret=_secret(env, "CARD_SIGNING_SECRET", min_length=MIN_SECRET_LENGTH),
            log_level=_choice(env, "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
            db_startup_timeout_s=_seconds(env, "DB_STARTUP_TIMEOUT", 30.0),
            news=news_delivery(env),
        )


def news_delivery(env: Mapping[str, str]) -> DeliveryConfig:
    """News delivery limits:

    - `NEWS_QUIET_HOURS`: "21:00-08:00" (default), Japan time; "off" sends at any hour.
    - `NEWS_DAILY_CAP`: news pushes per person per Japan day across all places (default 3).
    - `NEWS_MULTICAST_PER_SECOND`: multicast requests per second this channel may make (default
      200, LINE's ceiling); one worker sends at a time (the delivery lease), so two workers
      together stay under it.
    - `NEWS_LEASE_SECONDS`: how long a silent lease holder keeps the delivery (default 30): a
      worker killed mid-delivery is taken over after that.
    """
    return DeliveryConfig(
        quiet_hours=_quiet_hours(env.get("NEWS_QUIET_HOURS", "").strip()),
        daily_cap=int(_positive(env, "NEWS_DAILY_CAP", DEFAULT_DAILY_CAP, integer=True)),
        multicast_per_second=_positive(
            env, "NEWS_MULTICAST_PER_SECOND", DEFAULT_MULTICAST_PER_SECOND, integer=False
        ),
        lease_seconds=_positive(env, "NEWS_LEASE_SECONDS", 30.0, integer=False),
    )


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


def _positive(env: Mapping[str, str], name: str, default: float, *, integer: bool) -> float:
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


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(name, "is not set")
    return value


def _secret(env: Mapping[str, str], name: str, *, min_length: int) -> str:
    value = _required(env, name)
    if len(value) < min_length:
        raise SettingsError(name, f"is too short (at least {min_length} characters)")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise SettingsError(name, "contains whitespace or control characters")
    return value


def _http_url(env: Mapping[str, str], name: str, default: str | None) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        if default is None:
            raise SettingsError(name, "is not set (e.g. https://furusato.example.jp)")
        raw = default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(name, f"must be an http(s) URL with a host, got {raw!r}")
    if parts.query or parts.fragment:
        raise SettingsError(name, "must not contain a query or fragment")
    return raw.rstrip("/")


def _mongodb_uri(env: Mapping[str, str]) -> str:
    value = _required(env, "MONGODB_URI")
    if not value.startswith(("mongodb://", "mongodb+srv://")):
        raise SettingsError("MONGODB_URI", "must start with mongodb:// or mongodb+srv://")
    return value


def _db_name(env: Mapping[str, str]) -> str:
    value = env.get("MONGODB_DB", "").strip() or "furusato"
    if not _DB_NAME.match(value):
        raise SettingsError("MONGODB_DB", "may contain only letters, digits, _ and - (max 63)")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().upper() or default
    if value not in allowed:
        raise SettingsError(name, f"must be one of {', '.join(allowed)}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, f"must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 3600:
        raise SettingsError(name, "must be between 0 and 3600 seconds")
    return value
