"""Residents' stays in their furusato, their reminder settings, and the reminders sent.

Collections:

- `stays`: `{_id, user_id, place_code, start, end (ISO dates), weekdays: [0..6] | null,
  nth_weeks: [1..5], area, created_at, updated_at}`; `weekdays` null is a one-off range.
- `stay_settings`: `{_id: user_id, remind_time: "HH:MM", evening_before: bool, updated_at}`.
- `garbage_reminders`: one claim per (user, collection date, category),
  `{_id: "<user>:<date>:<category>", user_id, day, category_id, place_code, area, key, sent,
  claimed_at}`. A reminder is claimed by
  inserting its document (the unique `_id` makes the claim exclusive on FerretDB too); `key` is
  the LINE push's logical key, so a claim whose push did not finish is pushed again with the same
  key and still delivered once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bot.domain.garbage import Weekday
from bot.domain.stays import DEFAULT_REMIND_TIME, Stay, StayPattern
from bot.storage.base import Store
from bot.storage.db import Document


def stay_id_for(user_id: str, origin: str) -> str:
    """The id of the stay flow run `origin` adds (16 hex digits, as random ids)."""
    return hashlib.blake2b(f"{user_id}:{origin}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class StoredStay:
    """A stay with its id and owner."""

    id: str
    user_id: str
    stay: Stay


@dataclass(frozen=True)
class ReminderSettings:
    remind_time: time = DEFAULT_REMIND_TIME
    evening_before: bool = True

    @property
    def label(self) -> str:
        when = "前日" if self.evening_before else "当日"
        return f"{when}の{self.remind_time:%H:%M}"


def _stay_document(stay: Stay) -> dict[str, Any]:
    pattern = stay.pattern
    return {
        "place_code": stay.place,
        "start": stay.start.isoformat(),
        "end": stay.end.isoformat(),
        "weekdays": sorted(int(w) for w in pattern.weekdays) if pattern else None,
        "nth_weeks": sorted(pattern.nth_weeks) if pattern else [],
        "area": stay.area,
    }


def stay_of(doc: Document) -> StoredStay:
    weekdays = doc.get("weekdays")
    pattern = (
        StayPattern(
            frozenset(Weekday(int(w)) for w in weekdays),
            frozenset(int(n) for n in doc.get("nth_weeks") or ()),
        )
        if weekdays
        else None
    )
    stay = Stay(
        place=str(doc["place_code"]),
        start=date.fromisoformat(str(doc["start"])),
        end=date.fromisoformat(str(doc["end"])),
        pattern=pattern,
        area=str(doc.get("area") or ""),
    )
    return StoredStay(str(doc["_id"]), str(doc["user_id"]), stay)


class Stays(Store):
    collection_name = "stays"
    personal_data = True

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self.settings: AsyncCollection[Document] = db["stay_settings"]
        self.reminders: AsyncCollection[Document] = db["garbage_reminders"]

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("user_id", ASCENDING), ("place_code", ASCENDING)], name="user_place"),
            IndexModel("end", name="end"),
        ]

    async def ensure_indexes(self) -> None:
        await super().ensure_indexes()
        existing = {ix["name"] async for ix in await self.reminders.list_indexes()}
        if "user_id" not in existing:
            await self.reminders.create_indexes([IndexModel("user_id", name="user_id")])

    # --- stays --------------------------------------------------------------------------------

    async def add(self, user_id: str, stay: Stay, now: datetime, origin: str = "") -> str:
        """Store a new stay; its id. With `origin` (the flow run adding it) the id comes from
        it, so the flow run again after a crash finds the stay it added instead of a second."""
        stay_id = stay_id_for(user_id, origin) if origin else secrets.token_hex(8)
        doc = {"_id": stay_id, "user_id": user_id, **_stay_document(stay)}
        try:
            await self.col.insert_one(doc | {"created_at": now, "updated_at": now})
        except DuplicateKeyError:
            if not origin:
                raise
        return stay_id

    async def replace(self, user_id: str, stay_id: str, stay: Stay, now: datetime) -> bool:
        result = await self.col.update_one(
            {"_id": stay_id, "user_id": user_id},
            {"$set": _stay_document(stay) | {"updated_at": now}},
        )
        return result.matched_count == 1

    async def remove(self, user_id: str, stay_id: str) -> bool:
        result = await self.col.delete_one({"_id": stay_id, "user_id": user_id})
        return result.deleted_count == 1

    async def get(self, user_id: str, stay_id: str) -> StoredStay | None:
        doc = await self.col.find_one({"_id": stay_id, "user_id": user_id})
        return stay_of(doc) if doc else None

    async def for_user(self, user_id: str, place_code: str | None = None) -> list[StoredStay]:
        """The resident's stays (at one place when given), by start date."""
        query: dict[str, Any] = {"user_id": user_id}
        if place_code is not None:
            query["place_code"] = place_code
        found = [stay_of(doc) async for doc in self.col.find(query)]
        return sorted(found, key=lambda s: (s.stay.start, s.stay.end, s.id))

    async def current(self, today: date) -> list[StoredStay]:
        """Every stay not over before `today` (what the reminder job looks at)."""
        cursor = self.col.find({"end": {"$gte": today.isoformat()}})
        return [stay_of(doc) async for doc in cursor]

    # --- reminder settings ----------------------------------------------------------------------

    async def reminder_settings(self, user_id: str) -> ReminderSettings:
        doc = await self.settings.find_one({"_id": user_id})
        if doc is None:
            return ReminderSettings()
        hour, _, minute = str(doc.get("remind_time") or "20:00").partition(":")
        return ReminderSettings(time(int(hour), int(minute)), bool(doc.get("evening_before", True)))

    async def set_reminder_settings(
        self, user_id: str, settings: ReminderSettings, now: datetime
    ) -> None:
        await self.settings.replace_one(
            {"_id": user_id},
            {
                "remind_time": f"{settings.remind_time:%H:%M}",
                "evening_before": settings.evening_before,
                "updated_at": now,
            },
            upsert=True,
        )

    # --- reminders sent -----------------------------------------------------------------------

    async def claim_reminder(
        self,
        user_id: str,
        day: date,
        category_id: str,
        key: str,
        now: datetime,
        *,
        place_code: str,
        area: str,
    ) -> bool:
        """Claim the reminder of (user, date, category); False when it was claimed before."""
        try:
            await self.reminders.insert_one(
                {
                    "_id": f"{user_id}:{day.isoformat()}:{category_id}",
                    "user_id": user_id,
                    "day": day.isoformat(),
                    "category_id": category_id,
                    "place_code": place_code,
                    "area": area,
                    "key": key,
                    "sent": False,
                    "claimed_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def unsent_reminders(self) -> list[Document]:
        """Claims whose push has not been confirmed (a crash between claim and push)."""
        return [doc async for doc in self.reminders.find({"sent": False})]

    async def mark_sent(self, key: str) -> None:
        await self.reminders.update_many({"key": key}, {"$set": {"sent": True}})

    async def reminders_for(self, user_id: str) -> list[Document]:
        return [doc async for doc in self.reminders.find({"user_id": user_id})]

    # --- privacy ------------------------------------------------------------------------------

    async def delete_for_user(self, user_id: str) -> int:
        removed = (await self.col.delete_many({"user_id": user_id})).deleted_count
        removed += (await self.settings.delete_many({"_id": user_id})).deleted_count
        removed += (await self.reminders.delete_many({"user_id": user_id})).deleted_count
        return removed
