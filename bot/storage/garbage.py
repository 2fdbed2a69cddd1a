"""Garbage calendars, one per municipality (collection `garbage_calendars`).

Document: `{_id: <municipality code>, files: [{name: <5374 file name>, text: <CSV>}],
updated_at, updated_by}` (a list: keys may not hold a `.`). The calendar is kept as its own
5374.jp CSV set (`export_5374`), which reads back to the same calendar (`parse_5374`): one
format for storage, import and export. A replacement is one whole-document write, so a failed
import never leaves half a calendar.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain.garbage import Calendar
from bot.domain.gomi5374 import export_5374, parse_5374
from bot.storage.base import Store


class GarbageCalendars(Store):
    collection_name = "garbage_calendars"

    async def put(self, calendar: Calendar, now: datetime, by: str = "") -> None:
        """Add or replace the calendar of its municipality."""
        if not calendar.municipality_code:
            raise ValueError("a stored calendar needs its municipality code")
        files = [
            {"name": name, "text": data.decode("utf-8")}
            for name, data in export_5374(calendar).items()
        ]
        await self.col.replace_one(
            {"_id": calendar.municipality_code},
            {"files": files, "updated_at": now, "updated_by": by},
            upsert=True,
        )

    async def get(self, municipality_code: str) -> Calendar | None:
        """The calendar of a municipality, or None when it has none."""
        doc = await self.col.find_one({"_id": municipality_code})
        if doc is None:
            return None
        files = {str(f["name"]): str(f["text"]).encode("utf-8") for f in doc.get("files") or ()}
        return parse_5374(files, municipality_code=municipality_code)

    async def updated_at(self, municipality_code: str) -> datetime | None:
        doc = await self.col.find_one({"_id": municipality_code}, {"updated_at": 1})
        value = doc.get("updated_at") if doc else None
        return value if isinstance(value, datetime) else None

    async def remove(self, municipality_code: str) -> bool:
        result = await self.col.delete_one({"_id": municipality_code})
        return result.deleted_count == 1
