"""Remove documents whose `expires_at` has passed (the portable subset has no TTL indexes)."""

from __future__ import annotations

import logging

from bot.clock import Clock
from bot.storage import Storage

log = logging.getLogger(__name__)


async def remove_expired(storage: Storage, clock: Clock) -> dict[str, int]:
    removed = await storage.remove_expired(clock.now())
    if any(removed.values()):
        log.info("expired documents removed", extra={"removed": removed})
    return removed
