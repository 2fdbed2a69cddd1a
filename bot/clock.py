"""Time: stored in UTC, shown and scheduled in Japan time. Tests may shift the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")


class Clock:
    """The current time, with an offset that tests move forward instead of waiting."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def now_jst(self) -> datetime:
        return self.now().astimezone(JST)
