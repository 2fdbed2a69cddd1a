"""Per-path rate limits as token buckets, with LINE's real limits as defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

HOUR = 3600.0


@dataclass(frozen=True)
class Limit:
    rate: float  # requests refilled per second
    burst: float  # bucket size: how many may come at once

    @classmethod
    def per_second(cls, rate: float) -> Limit:
        return cls(rate, max(1.0, rate))


# Keys are route paths, optionally prefixed with the method when only one method is limited.
DEFAULT_LIMITS: dict[str, Limit] = {
    "/v2/bot/message/multicast": Limit(200, 200),
    "/v2/bot/message/broadcast": Limit(60 / HOUR, 60),
    "/v2/bot/message/narrowcast": Limit(60 / HOUR, 60),
    "POST /v2/bot/richmenu": Limit(100 / HOUR, 100),
    "DELETE /v2/bot/richmenu/{richMenuId}": Limit(100 / HOUR, 100),
}
OTHERS = Limit(2000, 2000)


@dataclass
class _Bucket:
    limit: Limit
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, overrides: Mapping[str, float] | None = None) -> None:
        self._limits = dict(DEFAULT_LIMITS)
        self._buckets: dict[str, _Bucket] = {}
        self.configure(overrides or {})

    def configure(self, per_second: Mapping[str, float]) -> None:
        """Set limits (requests per second) for paths; their buckets start full."""
        for key, rate in per_second.items():
            self._limits[key] = Limit.per_second(rate)
            self._buckets.pop(key, None)

    def allow(self, method: str, route: str, now: float) -> bool:
        """Take one token from the bucket of this route; False when it is empty."""
        key = f"{method} {route}"
        if key not in self._limits:
            key = route
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self._limits.get(key, OTHERS)
            bucket = self._buckets[key] = _Bucket(limit, limit.burst, now)
        bucket.tokens = min(
            bucket.limit.burst, bucket.tokens + (now - bucket.updated) * bucket.limit.rate
        )
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True
