"""Bearer activities (担い手活動): the activities, their seats and waiting lists, attendance.

FerretDB 1.24 applies conditional updates and `$inc` non-atomically, so every exclusive step is
an insert against a unique index:

- `activities`: one document per activity (`_id` a short id), with its capacity.
- `activity_seats`: seat `n` of activity `a` is the document `_id: "a#s<n>"`; the unique index on
  (activity_id, user_id) keeps a person to one seat. Whoever inserts a seat holds it, so at most
  `capacity` people are ever confirmed, however many apply at once.
- `activity_waits`: waiting-list position `n` is `_id: "a#w<n>"`, drawn as the last position + 1
  (a lost insert draws again); unique on (activity_id, user_id) as well.
- A freed seat goes to the head of the waiting list by the same seat insert (`fill`): two workers
  promoting at once cannot both win one seat, and a person can hold only one.
- `activity_attendance`: `_id: "a#<user>"`: attending twice counts once.
- `activity_settings`: per municipality, how many activities a Premium renewal needs.
- `renewal_decisions`: `_id: "<registration>#<last valid day>"`: the renewal outcome, decided once.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from bot.domain.activities import JST, Activity, ActivityKind, ApplyOutcome, Attendance
from bot.domain.registration import RENEWAL_MIN_ACTIVITIES
from bot.storage.base import Store
from bot.storage.db import Document
from bot.storage.registrations import Registrations

MAX_DRAWS = 1000
MAX_REQUIRED = 50
OPEN = "open"
CANCELLED = "cancelled"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def activity_from(doc: Document) -> Activity:
    """The domain activity of a stored document."""
    return Activity(
        id=str(doc["_id"]),
        municipality_code=str(doc["municipality_code"]),
        title=str(doc["title"]),
        kind=ActivityKind(str(doc["kind"])),
        starts_at=_aware(doc["starts_at"]),
        ends_at=_aware(doc["ends_at"]),
        place=str(doc.get("place", "")),
        capacity=int(doc["capacity"]),
        description=str(doc.get("description", "")),
    )


class Activities(Store):
    """The activities municipalities post (no personal data)."""

    collection_name = "activities"

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("municipality_code", ASCENDING), ("starts_at", ASCENDING)], name="place_start"
            ),
            IndexModel([("starts_at", ASCENDING)], name="starts_at"),
        ]

    async def add(self, activity: Activity, now: datetime, created_by: str = "") -> Activity:
        """Store a new activity; its id is made here (the one given is ignored)."""
        activity_id = "a" + secrets.token_hex(6)
        doc: Document = {
            "_id": activity_id,
            "municipality_code": activity.municipality_code,
            "title": activity.title,
            "kind": activity.kind.value,
            "starts_at": activity.starts_at.astimezone(UTC),
            "ends_at": activity.ends_at.astimezone(UTC),
            "place": activity.place,
            "capacity": activity.capacity,
            "description": activity.description,
            "status": OPEN,
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        }
        await self.col.insert_one(doc)
        return activity_from(doc)

    async def get(self, activity_id: str) -> Activity | None:
        doc = await self.col.find_one({"_id": activity_id, "status": OPEN})
        return activity_from(doc) if doc else None

    async def set_capacity(self, activity_id: str, capacity: int, now: datetime) -> None:
        await self.col.update_one(
            {"_id": activity_id}, {"$set": {"capacity": capacity, "updated_at": now}}
        )

    async def cancel(self, activity_id: str, now: datetime) -> bool:
        result = await self.col.update_one(
            {"_id": activity_id, "status": OPEN},
            {"$set": {"status": CANCELLED, "updated_at": now}},
        )
        return result.matched_count == 1

    async def for_place(self, place_code: str, since: datetime | None = None) -> list[Activity]:
        """The open activities of a place (from `since` when given), earliest first."""
        query: dict[str, Any] = {"municipality_code": place_code, "status": OPEN}
        if since is not None:
            query["starts_at"] = {"$gte": since}
        found = [activity_from(doc) async for doc in self.col.find(query)]
        return sorted(found, key=lambda a: (a.starts_at, a.id))

    async def upcoming(self, place_codes: Sequence[str], now: datetime) -> list[Activity]:
        """Open activities of these places that have not started, earliest first."""
        if not place_codes:
            return []
        query = {
            "municipality_code": {"$in": list(place_codes)},
            "status": OPEN,
            "starts_at": {"$gt": now},
        }
        found = [activity_from(doc) async for doc in self.col.find(query)]
        return sorted(found, key=lambda a: (a.starts_at, a.id))

    async def starting_between(self, first: datetime, last: datetime) -> list[Activity]:
        """Open activities starting in [first, last)."""
        query = {"status": OPEN, "starts_at": {"$gte": first, "$lt": last}}
        found = [activity_from(doc) async for doc in self.col.find(query)]
        return sorted(found, key=lambda a: (a.starts_at, a.id))

    async def by_ids(self, activity_ids: Sequence[str]) -> dict[str, Activity]:
        if not activity_ids:
            return {}
        cursor = self.col.find({"_id": {"$in": list(activity_ids)}})
        return {str(doc["_id"]): activity_from(doc) async for doc in cursor}


@dataclass(frozen=True)
class Applied:
    """Outcome of `Roster.apply`: confirmed, waitlisted (with the position) or already."""

    outcome: ApplyOutcome
    position: int | None = None  # waiting-list position (1 = next to move up)
    promoted: tuple[Promotion, ...] = ()


@dataclass(frozen=True)
class Promotion:
    """Someone moved from the waiting list to a seat; `token` names this move (notify once)."""

    activity_id: str
    user_id: str
    token: str


@dataclass(frozen=True)
class Cancelled:
    """Outcome of `Rosters.cancel`: what the person held, and who moved up."""

    was: str | None  # "confirmed", "waiting" or None (nothing to cancel)
    promoted: tuple[Promotion, ...] = ()


@dataclass(frozen=True)
class RosterView:
    """Who holds seats (in seat order) and who waits (first first)."""

    capacity: int
    confirmed: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    seats: dict[str, int] = field(default_factory=dict)

    def position(self, user_id: str) -> int | None:
        return self.waiting.index(user_id) + 1 if user_id in self.waiting else None


class Seats(Store):
    """Seats: one document per taken seat, claimed by insert."""

    collection_name = "activity_seats"
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("activity_id", ASCENDING), ("user_id", ASCENDING)],
                name="activity_user",
                unique=True,
            ),
            IndexModel([("user_id", ASCENDING)], name="user"),
        ]

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count


class Waits(Store):
    """Waiting-list positions: one document per waiting person, drawn by insert."""

    collection_name = "activity_waits"
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("activity_id", ASCENDING), ("user_id", ASCENDING)],
                name="activity_user",
                unique=True,
            ),
            IndexModel([("user_id", ASCENDING)], name="user"),
        ]

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count


class Rosters:
    """Capacity and waiting list over `Seats` and `Waits` (see the module docstring)."""

    def __init__(self, activities: Activities, seats: Seats, waits: Waits) -> None:
        self.activities = activities
        self.seats = seats
        self.waits = waits

    async def view(self, activity_id: str, capacity: int) -> RosterView:
        seat_docs = [d async for d in self.seats.col.find({"activity_id": activity_id})]
        seat_docs.sort(key=lambda d: int(d["n"]))
        wait_docs = [d async for d in self.waits.col.find({"activity_id": activity_id})]
        wait_docs.sort(key=lambda d: int(d["n"]))
        confirmed = tuple(str(d["user_id"]) for d in seat_docs)
        waiting = tuple(u for u in (str(d["user_id"]) for d in wait_docs) if u not in confirmed)
        return RosterView(
            capacity, confirmed, waiting, {str(d["user_id"]): int(d["n"]) for d in seat_docs}
        )

    async def status(self, activity_id: str, user_id: str) -> tuple[str | None, int | None]:
        """("confirmed", None), ("waiting", position) or (None, None)."""
        if await self.seats.col.find_one({"activity_id": activity_id, "user_id": user_id}):
            return "confirmed", None
        mine = await self.waits.col.find_one({"activity_id": activity_id, "user_id": user_id})
        if mine is None:
            return None, None
        ahead = await self.waits.col.count_documents(
            {"activity_id": activity_id, "n": {"$lt": int(mine["n"])}}
        )
        return "waiting", ahead + 1

    async def _taken(self, activity_id: str) -> set[int]:
        cursor = self.seats.col.find({"activity_id": activity_id}, projection={"n": 1})
        return {int(d["n"]) async for d in cursor}

    async def _claim_seat(
        self, activity_id: str, user_id: str, capacity: int, now: datetime, via: str
    ) -> tuple[bool, str]:
        """Take any free seat by insert. (True, token) on success; (False, "") when the seats are
        full, or (False, "held") when the person already holds one."""
        for _ in range(MAX_DRAWS):
            taken = await self._taken(activity_id)
            free = [n for n in range(1, capacity + 1) if n not in taken]
            if len(taken) >= capacity or not free:
                return False, ""
            for n in free:
                token = uuid.uuid4().hex
                try:
                    await self.seats.col.insert_one(
                        {
                            "_id": f"{activity_id}#s{n}",
                            "activity_id": activity_id,
                            "user_id": user_id,
                            "n": n,
                            "via": via,
                            "token": token,
                            "at": now,
                        }
                    )
                    return True, token
                except DuplicateKeyError:
                    held = await self.seats.col.find_one(
                        {"activity_id": activity_id, "user_id": user_id}
                    )
                    if held is not None:
                        return False, "held"
                    continue
        raise RuntimeError(f"activity {activity_id}: no seat after {MAX_DRAWS} draws")

    async def _join_waiting(self, activity_id: str, user_id: str, now: datetime) -> int:
        for _ in range(MAX_DRAWS):
            last = await self.waits.col.find_one(
                {"activity_id": activity_id}, sort=[("n", -1)], projection={"n": 1}
            )
            n = int(last["n"]) + 1 if last else 1
            while True:
                try:
                    await self.waits.col.insert_one(
                        {
                            "_id": f"{activity_id}#w{n}",
                            "activity_id": activity_id,
                            "user_id": user_id,
                            "n": n,
                            "at": now,
                        }
                    )
                    return n
                except DuplicateKeyError:
                    mine = await self.waits.col.find_one(
                        {"activity_id": activity_id, "user_id": user_id}
                    )
                    if mine is not None:
                        return int(mine["n"])
                    n += 1
                    if n > MAX_DRAWS * 10:
                        break
        raise RuntimeError(f"activity {activity_id}: no waiting position")

    async def apply(self, activity: Activity, user_id: str, now: datetime) -> Applied:
        """Take a seat, else a place on the waiting list; applying twice changes nothing.

        Nobody takes a seat past the people already waiting: with a waiting list, a new applicant
        joins its end (and `fill` then gives any seat freed meanwhile to the head).
        """
        state, position = await self.status(activity.id, user_id)
        if state is not None:
            return Applied(ApplyOutcome.ALREADY, position)
        someone_waits = await self.waits.col.find_one({"activity_id": activity.id})
        if someone_waits is None:
            ok, token = await self._claim_seat(
                activity.id, user_id, activity.capacity, now, "apply"
            )
            if ok:
                return Applied(ApplyOutcome.CONFIRMED)
            if token == "held":
                return Applied(ApplyOutcome.ALREADY)
        await self._join_waiting(activity.id, user_id, now)
        promoted = await self.fill(activity, now)
        if any(p.user_id == user_id for p in promoted):
            others = tuple(p for p in promoted if p.user_id != user_id)
            return Applied(ApplyOutcome.CONFIRMED, None, others)
        state, position = await self.status(activity.id, user_id)
        if state == "confirmed":
            return Applied(ApplyOutcome.CONFIRMED, None, promoted)
        return Applied(ApplyOutcome.WAITLISTED, position, promoted)

    async def fill(self, activity: Activity, now: datetime) -> tuple[Promotion, ...]:
        """Give free seats to the head of the waiting list, one by one, by seat inserts."""
        promoted: list[Promotion] = []
        for _ in range(MAX_DRAWS):
            head = await self.waits.col.find_one({"activity_id": activity.id}, sort=[("n", 1)])
            if head is None:
                break
            user_id = str(head["user_id"])
            ok, token = await self._claim_seat(
                activity.id, user_id, activity.capacity, now, "waiting_list"
            )
            if ok:
                await self.waits.col.delete_one({"_id": head["_id"]})
                promoted.append(Promotion(activity.id, user_id, token))
                continue
            if token == "held":  # promoted by someone else just now: leave the list
                await self.waits.col.delete_one({"_id": head["_id"]})
                continue
            break  # no free seat
        return tuple(promoted)

    async def promotions(self, activity_id: str) -> tuple[Promotion, ...]:
        """The seats held now that came from the waiting list."""
        cursor = self.seats.col.find({"activity_id": activity_id, "via": "waiting_list"})
        return tuple(
            [Promotion(activity_id, str(doc["user_id"]), str(doc["token"])) async for doc in cursor]
        )

    async def cancel(self, activity: Activity, user_id: str, now: datetime) -> Cancelled:
        """Withdraw; a freed seat goes to the head of the waiting list."""
        seat = await self.seats.col.delete_one({"activity_id": activity.id, "user_id": user_id})
        wait = await self.waits.col.delete_many({"activity_id": activity.id, "user_id": user_id})
        if seat.deleted_count:
            return Cancelled("confirmed", await self.fill(activity, now))
        return Cancelled("waiting" if wait.deleted_count else None)

    async def resize(
        self, activity: Activity, capacity: int, now: datetime
    ) -> tuple[Promotion, ...]:
        """Change the capacity. Lowering it never bumps anyone: refused (ValueError) while a seat
        numbered above the new capacity is held. Raising it moves people up from the list."""
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        taken = await self._taken(activity.id)
        if taken and max(taken) > capacity:
            raise ValueError("capacity below the seats already taken")
        await self.activities.set_capacity(activity.id, capacity, now)
        resized = Activity(
            activity.id,
            activity.municipality_code,
            activity.title,
            activity.kind,
            activity.starts_at,
            activity.ends_at,
            activity.place,
            capacity,
            activity.description,
        )
        return await self.fill(resized, now)

    async def mine(self, user_id: str) -> dict[str, tuple[str, int | None]]:
        """The person's applications: activity id → ("confirmed", None) or ("waiting", pos)."""
        found: dict[str, tuple[str, int | None]] = {}
        async for doc in self.seats.col.find({"user_id": user_id}):
            found[str(doc["activity_id"])] = ("confirmed", None)
        async for doc in self.waits.col.find({"user_id": user_id}):
            activity_id = str(doc["activity_id"])
            if activity_id not in found:
                found[activity_id] = ("waiting", (await self.status(activity_id, user_id))[1])
        return found


class AttendanceLog(Store):
    """Attendance: one document per (activity, person), made by the code or by staff."""

    collection_name = "activity_attendance"
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("user_id", ASCENDING), ("place_code", ASCENDING)], name="user_place"),
            IndexModel([("activity_id", ASCENDING)], name="activity"),
        ]

    async def record(
        self, activity: Activity, user_id: str, via: str, now: datetime, staff: str = ""
    ) -> bool:
        """Record attendance once; False when it was recorded already."""
        try:
            await self.col.insert_one(
                {
                    "_id": f"{activity.id}#{user_id}",
                    "activity_id": activity.id,
                    "user_id": user_id,
                    "place_code": activity.municipality_code,
                    "on": activity.day.isoformat(),
                    "via": via,
                    "staff": staff,
                    "at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def attended(self, activity_id: str) -> set[str]:
        cursor = self.col.find({"activity_id": activity_id}, projection={"user_id": 1})
        return {str(d["user_id"]) async for d in cursor}

    async def for_user(self, user_id: str, place_code: str | None = None) -> list[Attendance]:
        query: dict[str, Any] = {"user_id": user_id}
        if place_code is not None:
            query["place_code"] = place_code
        return [
            Attendance(str(d["activity_id"]), str(d["place_code"]), date.fromisoformat(d["on"]))
            async for d in self.col.find(query)
        ]

    async def count(self, user_id: str, place_code: str, first: date, last: date) -> int:
        """Activities of the place the person attended from `first` to `last` (inclusive)."""
        return await self.col.count_documents(
            {
                "user_id": user_id,
                "place_code": place_code,
                "on": {"$gte": first.isoformat(), "$lte": last.isoformat()},
            }
        )

    async def counts_for_place(self, place_code: str, year: int) -> dict[str, int]:
        """Attendances per person at the place in a (Japan) calendar year."""
        counts: dict[str, int] = {}
        query = {
            "place_code": place_code,
            "on": {"$gte": f"{year:04d}-01-01", "$lte": f"{year:04d}-12-31"},
        }
        async for doc in self.col.find(query, projection={"user_id": 1}):
            user_id = str(doc["user_id"])
            counts[user_id] = counts.get(user_id, 0) + 1
        return counts

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count


class ActivitySettings(Store):
    """Per municipality: activities a Premium renewal needs (default 3)."""

    collection_name = "activity_settings"

    async def required(self, place_code: str) -> int:
        doc = await self.col.find_one({"_id": place_code})
        value = (doc or {}).get("renewal_required")
        return int(value) if isinstance(value, int) and value >= 1 else RENEWAL_MIN_ACTIVITIES

    async def set_required(self, place_code: str, required: int, now: datetime) -> None:
        if not 1 <= required <= MAX_REQUIRED:
            raise ValueError(f"required must be 1 to {MAX_REQUIRED}")
        await self.col.update_one(
            {"_id": place_code},
            {"$set": {"renewal_required": required, "updated_at": now}},
            upsert=True,
        )


class RenewalKind(StrEnum):
    RENEWED = "renewed"
    BASIC = "basic"


class RenewalDecisions(Store):
    """One renewal decision per (registration, last valid day), claimed by insert."""

    collection_name = "renewal_decisions"
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("user_id", ASCENDING)], name="user")]

    async def decide(
        self,
        registration: Document,
        last_day: date,
        outcome: RenewalKind,
        count: int,
        required: int,
        now: datetime,
    ) -> Document:
        """Store the decision unless one exists; the stored decision either way."""
        key = f"{registration['_id']}#{last_day.isoformat()}"
        doc: Document = {
            "_id": key,
            "registration_id": str(registration["_id"]),
            "user_id": str(registration["user_id"]),
            "place_code": str(registration["place_code"]),
            "last_day": last_day.isoformat(),
            "outcome": outcome.value,
            "count": count,
            "required": required,
            "at": now,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            found = await self.col.find_one({"_id": key})
            assert found is not None
            return found
        return doc

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count


async def premium_registrations(registrations: Registrations) -> list[Document]:
    """Every Premium registration with an expiry (for the renewal job)."""
    cursor = registrations.col.find({"tier": "premium", "valid_until": {"$ne": None}})
    return [doc async for doc in cursor]


def last_valid_day(valid_until: datetime) -> date:
    """The Japan date of a stored `valid_until` (the end of the last valid day)."""
    return _aware(valid_until).astimezone(JST).date()


def end_of_day(day: date) -> datetime:
    """The end of a Japan date, in UTC (how `valid_until` is stored)."""
    return (
        datetime.combine(day, datetime.min.time(), JST) + timedelta(days=1, seconds=-1)
    ).astimezone(UTC)


def registration_oid(registration: Document) -> ObjectId | str:
    value = registration["_id"]
    return value if isinstance(value, ObjectId) else str(value)
