"""Worker job: tell eligible residents about newly published benefits, once, in batches.

The work is in `bot.benefits.run_benefit_notices` (planning by unique-insert claims, sending by
`multicast` under a logical key per batch, nothing in quiet hours). Tests call it in-process after
moving the clock.
"""

from __future__ import annotations

from bot.benefits import NoticeRun, run_benefit_notices
from bot.clock import Clock
from bot.line.client import LineClient
from bot.render import Renderer
from bot.storage import Storage


async def benefit_notices(
    storage: Storage, clock: Clock, line: LineClient, renderer: Renderer
) -> NoticeRun:
    return await run_benefit_notices(storage, clock, line, renderer)


__all__ = ["benefit_notices"]
