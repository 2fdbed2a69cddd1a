"""News items, their delivery runs and batches, and the per-person daily cap.

Documents (the delivery protocol is described in `bot/news.py`):

- `news`: one per item::

    {_id: "<16 hex>", municipality_code, title, content: {kind, text, flex, alt_text, image_url},
     segment: {tiers, types, prefectures, regions, age_bands, topic},
     schedule: {kind, at, every_months, until}, status, created_by, submitted_by, approved_by,
     approved_at, rejected_by, reject_reason, cancelled_by, cancelled_at,
     next_run_at (None while a run is open), runs, run_due_at, last_sent_at,
     created_at, updated_at}

- `news_runs`: one per (item, run number), claimed by inserting it::

    {_id: "<news>:<run>", news_id, run, municipality_code, due_at,
     status: "planning" | "planned" | "done" | "cancelled", created_at, planned_at, finished_at}

- `news_batches`: at most 500 people of one run::

    {_id: "<news>:<run>:<seq 6 digits>" (planned) | "<planned id>~<gen>" (deferred by the cap),
     run_id, news_id, municipality_code, seq, gen: 0 planned / n deferred n times, size,
     status: "ready" | "sent" | "failed" | "cancelled",
     not_before (its Japan date is the day its cap slots count on), checked_at (when blocks and
     opt-outs were read for it), counts: {recipients, blocked, opted_out, deferred, sent},
     reason, created_at, finished_at}

- `news_people` (personal data: LINE user ids): whom each batch is for, apart from the batch so
  that reading or finishing a batch by `_id` stays cheap where the server scans (FerretDB)::

    {_id: <batch id>, run_id, gen, users: "<id>,<id>,…" (sorted), first, last (its lowest and
     highest id), skip: [people of users not sent this batch: opted out (or, for a late batch,
     blocked), or moved on by the cap]}

  The ids are one string, not an array: FerretDB turns every array element into a value of
  its own, and reading 200 documents of 500 ids took 0.8 s as arrays, 0.16 s as strings (a
  LINE user id is "U" and 32 hex digits: never a comma). Documents written before hold the
  array `user_ids` instead. Read back, a batch is the two merged (`user_ids`, `skip` on the
  batch document).

- `news_caps` (personal data): one per push counted against a person's daily cap::

    {_id: "<user_id>:<YYYY-MM-DD Japan>:<n>", user_id, day, batch_id, created_at, expires_at}

Exclusivity comes only from unique `_id` inserts (runs, batches, cap slots); status updates
only record progress. Every hot query is on `_id` or on a run's batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bot.clock import JST
from bot.domain.news import Segment, Status, cap_slot_id
from bot.storage.base import Store
from bot.storage.db import Document
from bot.storage.preferences import Preferences
from bot.storage.registrations import ACTIVE, Registrations
from bot.storage.sends import Sends
from bot.storage.users import Users

PLANNING = "planning"
PLANNED = "planned"
DONE = "done"
READY = "ready"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"

SEPARATOR = ","  # between the user ids of a batch's people
KEEP_CAPS = timedelta(days=2)  # a day's cap slots are needed until that Japan day is over


def aware(value: datetime) -> datetime:
    """A stored datetime as aware UTC (the driver returns naive UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def run_id(news_id: str, run: int) -> str:
    return f"{news_id}:{run}"


def batch_id(run: str, seq: int) -> str:
    return f"{run}:{seq:06d}"


def send_key(bid: str) -> str:
    """The logical key of a batch's multicast (its retry key is stored under it in `sends`)."""
    return f"news:{bid}"


def news_item_doc(
    *,
    news_id: str,
    municipality_code: str,
    author: str,
    title: str,
    content: Document,
    segment: Document,
    schedule: Document,
    now: datetime,
) -> Document:
    return {
        "_id": news_id,
        "municipality_code": municipality_code,
        "title": title,
        "content": content,
        "segment": segment,
        "schedule": schedule,
        "status": Status.DRAFT.value,
        "created_by": author,
        "submitted_by": None,
        "approved_by": None,
        "reject_reason": None,
        "next_run_at": None,
        "runs": 0,
        "last_sent_at": None,
        "created_at": now,
        "updated_at": now,
    }


class NewsItems(Store):
    collection_name = "news"

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("municipality_code", ASCENDING), ("created_at", DESCENDING)], name="place"
            ),
            IndexModel([("status", ASCENDING), ("next_run_at", ASCENDING)], name="due"),
        ]

    async def insert(self, doc: Document) -> None:
        await self.col.insert_one(doc)

    async def get(self, news_id: str) -> Document | None:
        return await self.col.find_one({"_id": news_id})

    async def set(self, news_id: str, changes: Document, now: datetime) -> None:
        await self.col.update_one({"_id": news_id}, {"$set": {**changes, "updated_at": now}})

    async def for_place(self, municipality_code: str) -> list[Document]:
        cursor = self.col.find({"municipality_code": municipality_code})
        docs = [doc async for doc in cursor.sort([("created_at", DESCENDING)])]
        return docs

    async def past_for_place(self, place_code: str, limit: int) -> list[Document]:
        cursor = self.col.find({"municipality_code": place_code, "last_sent_at": {"$ne": None}})
        cursor = cursor.sort([("last_sent_at", DESCENDING)]).limit(limit)
        return [doc async for doc in cursor]

    async def due(self, until: datetime) -> list[Document]:
        """Approved items whose next run is due by `until`."""
        cursor = self.col.find(
            {"status": Status.APPROVED.value, "next_run_at": {"$ne": None, "$lte": until}}
        )
        return [doc async for doc in cursor]

    async def run_started(self, news_id: str, run: int, due_at: datetime, now: datetime) -> None:
        """Record run `run` as open (it is not due again until it finishes)."""
        await self.set(news_id, {"runs": run, "next_run_at": None, "run_due_at": due_at}, now)

    async def run_finished(
        self, news_id: str, status: str, next_run_at: datetime | None, now: datetime
    ) -> None:
        doc = await self.get(news_id)
        if doc is None or doc.get("status") == Status.CANCELLED.value:
            return
        await self.set(
            news_id, {"status": status, "next_run_at": next_run_at, "last_sent_at": now}, now
        )


class NewsRuns(Store):
    collection_name = "news_runs"

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("status", ASCENDING)], name="status")]

    async def claim(
        self,
        news_id: str,
        run: int,
        municipality_code: str,
        due_at: datetime,
        now: datetime,
    ) -> bool:
        """Open run `run` of the item; False when it was opened before (by anyone)."""
        try:
            await self.col.insert_one(
                {
                    "_id": run_id(news_id, run),
                    "news_id": news_id,
                    "run": run,
                    "municipality_code": municipality_code,
                    "due_at": due_at,
                    "status": PLANNING,
                    "created_at": now,
                    "planned_at": None,
                    "finished_at": None,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get(self, rid: str) -> Document | None:
        doc = await self.col.find_one({"_id": rid})
        if doc is not None:
            for key in ("due_at", "created_at", "finished_at"):
                if isinstance(doc.get(key), datetime):
                    doc[key] = aware(doc[key])
        return doc

    async def active(self) -> list[Document]:
        cursor = self.col.find({"status": {"$in": [PLANNING, PLANNED]}}).sort([("_id", ASCENDING)])
        docs = [doc async for doc in cursor]
        for doc in docs:
            doc["due_at"], doc["created_at"] = aware(doc["due_at"]), aware(doc["created_at"])
        return docs

    async def set_status(
        self, rid: str, status: str, now: datetime, batches: int | None = None
    ) -> None:
        """`batches`: how many batches planning made (their `_id`s are then known)."""
        stamp = "planned_at" if status == PLANNED else "finished_at"
        changes: Document = {"status": status, stamp: now}
        if batches is not None:
            changes["batches"] = batches
        await self.col.update_one({"_id": rid}, {"$set": changes})


def segment_query(place_code: str, segment: Segment) -> Document:
    """The `registrations` filter of a segment (`Segment.matches` is the rule; this narrows)."""
    query: Document = {"place_code": place_code, "status": ACTIVE, "blocked": {"$ne": True}}
    if segment.tiers:
        query["tier"] = {"$in": list(segment.tiers)}
    if segment.types:
        query["types"] = {"$in": list(segment.types)}
    if segment.age_bands:
        query["age_band"] = {"$in": list(segment.age_bands)}
    prefectures = segment.residence_prefectures
    if prefectures is not None:
        query["residence_code"] = {"$regex": f"^({'|'.join(sorted(prefectures))})"}
    return query


SEGMENT_FIELDS = {"user_id": 1, "status": 1, "tier": 1, "types": 1, "age_band": 1}


@dataclass(frozen=True)
class Plan:
    """What planning settled for a batch: who of its people are not sent to, and the counts."""

    checked_at: datetime  # when blocks and opt-outs were read
    counts: Document  # recipients, blocked, opted_out, deferred
    skip: Sequence[str] = ()


def _batch_docs(
    bid: str,
    rid: str,
    news_id: str,
    place_code: str,
    seq: int,
    gen: int,
    user_ids: Sequence[str],
    not_before: datetime,
    now: datetime,
    plan: Plan | None = None,
) -> tuple[Document, Document]:
    """The batch document and its people."""
    plan = plan or Plan(checked_at=now, counts={"recipients": len(user_ids)})
    batch = {
        "_id": bid,
        "run_id": rid,
        "news_id": news_id,
        "municipality_code": place_code,
        "seq": seq,
        "gen": gen,
        "size": len(user_ids),
        "status": READY,
        "not_before": not_before,
        "checked_at": plan.checked_at,
        "counts": plan.counts,
        "reason": None,
        "created_at": now,
        "finished_at": None,
    }
    people = {
        "_id": bid,
        "run_id": rid,
        "gen": gen,
        **_packed(user_ids),
        "skip": list(plan.skip),
    }
    return batch, people


def _packed(user_ids: Sequence[str]) -> Document:
    """The fields of `news_people` that hold the ids."""
    return {
        "users": SEPARATOR.join(user_ids),
        "first": min(user_ids, default=""),
        "last": max(user_ids, default=""),
    }


def people_of(doc: Document) -> list[str]:
    """The user ids of a `news_people` document (or of a batch that carries them inline)."""
    packed = doc.get("users")
    if isinstance(packed, str):
        return packed.split(SEPARATOR) if packed else []
    return list(doc.get("user_ids") or [])  # written before the ids were packed


def _aware_batch(doc: Document, people: Document | None = None) -> Document:
    """A batch as the sender reads it: aware times, and its people (batches planned before the
    people had a collection of their own carry them inline)."""
    for key in ("not_before", "checked_at"):
        if isinstance(doc.get(key), datetime):
            doc[key] = aware(doc[key])
    if people is not None:
        doc["user_ids"], doc["skip"] = people_of(people), people.get("skip") or []
    return doc


class NewsPeople(Store):
    """Whom each news batch is for (see the module's documentation)."""

    collection_name = "news_people"
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("run_id", ASCENDING)], name="run"),
            IndexModel([("first", ASCENDING), ("last", ASCENDING)], name="span"),
        ]

    async def put(self, doc: Document) -> None:
        """Store a batch's people, before the batch is claimed. People stored first stay: a
        planner that died between the two, or one planning the same batch at the same time, made
        them, and the batch goes to them (planning resumes after the last of them, so everyone
        is still in one batch only)."""
        with suppress(DuplicateKeyError):
            await self.col.insert_one(doc)

    async def delete_for_user(self, user_id: str) -> int:
        """Take the person out of every batch (an unsent batch then goes without them): the
        batches whose span of ids holds theirs are read and written back without them."""
        changed = 0
        spans = {"first": {"$lte": user_id}, "last": {"$gte": user_id}}
        async for doc in self.col.find(spans, projection={"users": 1}):
            changed += await self._take_out(doc, user_id)
        legacy = await self.col.update_many(
            {"user_ids": user_id}, {"$pull": {"user_ids": user_id, "skip": user_id}}
        )
        return changed + legacy.modified_count

    async def _take_out(self, doc: Document | None, user_id: str) -> int:
        """Write `doc` back without the person; conditional on the ids read, so a deletion of
        someone else in the same batch meanwhile is read again, not undone (on MongoDB;
        FerretDB 1.24 checks a condition apart from the write, as it did for `$pull`)."""
        while doc is not None and user_id in (ids := people_of(doc)):
            rest = [u for u in ids if u != user_id]
            result = await self.col.update_one(
                {"_id": doc["_id"], "users": doc["users"]},
                {"$set": _packed(rest), "$pull": {"skip": user_id}},
            )
            if result.modified_count:
                return 1
            doc = await self.col.find_one({"_id": doc["_id"]}, projection={"users": 1})
        return 0


class NewsBatches(Store):
    collection_name = "news_batches"

    def __init__(self, db: AsyncDatabase[Document], people: NewsPeople | None = None) -> None:
        super().__init__(db)
        self.people = people if people is not None else NewsPeople(db)
        # Read-only: who is in a segment, who blocked us, who switched the topic off.
        self._registrations: AsyncCollection[Document] = db[Registrations.collection_name]
        self._users: AsyncCollection[Document] = db[Users.collection_name]
        self._preferences: AsyncCollection[Document] = db[Preferences.collection_name]
        self._sends: AsyncCollection[Document] = db[Sends.collection_name]

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("run_id", ASCENDING), ("seq", DESCENDING)], name="run_seq"),
            IndexModel([("status", ASCENDING), ("not_before", ASCENDING)], name="due"),
        ]

    # --- who --------------------------------------------------------------------------------

    async def segment_users(
        self, place_code: str, segment: Segment, after: str | None, *, batch_size: int = 1000
    ) -> AsyncIterator[str]:
        """The segment's user ids in ascending order, after `after`, by one streaming cursor."""
        query = segment_query(place_code, segment)
        if after is not None:
            query["user_id"] = {"$gt": after}
        cursor = self._registrations.find(
            query, projection={**SEGMENT_FIELDS, "residence_code": 1}, batch_size=batch_size
        ).sort([("user_id", ASCENDING)])
        async for doc in cursor:
            if doc.get("user_id") and segment.matches(doc):
                yield str(doc["user_id"])

    async def count_recipients(self, place_code: str, segment: Segment) -> int:
        """The segment minus people who switched the topic off or blocked the account."""
        excluded = await self.excluded(place_code, segment.topic)
        query = segment_query(place_code, segment)
        if excluded:
            query["user_id"] = {"$nin": sorted(excluded)}
        return await self._registrations.count_documents(query)

    async def excluded(
        self, place_code: str, topic: str, since: datetime | None = None
    ) -> dict[str, str]:
        """Who must not get the place's news on `topic`: user id → "blocked" or "opted_out".
        Without `since`, the place's opt-outs (a segment's query already leaves out who blocked
        the account); with it, who opted out or blocked since then. Equality filters only: no
        `$in` over a batch."""
        found: dict[str, str] = {}
        opt_outs: Document = {"place_code": place_code, "topic": topic, "enabled": False}
        if since is not None:
            opt_outs["updated_at"] = {"$gte": since}
        async for doc in self._preferences.find(opt_outs, projection={"user_id": 1}):
            found[str(doc["user_id"])] = "opted_out"
        if since is not None:
            blocks = {"blocked": True, "blocked_at": {"$gte": since}}
            async for doc in self._users.find(blocks, projection={"_id": 1}):
                found[str(doc["_id"])] = "blocked"
        return found

    # --- planning ---------------------------------------------------------------------------

    async def resume_point(self, rid: str) -> tuple[int, str | None]:
        """The last planned sequence number of the run and the last user id planned."""
        cursor = self.col.find({"run_id": rid, "gen": 0}, projection={"seq": 1}).sort(
            [("seq", DESCENDING)]
        )
        last_seq = 0
        async for doc in cursor:
            last_seq = max(last_seq, int(doc["seq"]))
            people = await self.people.col.find_one({"_id": doc["_id"]})
            users = people_of(people or {})
            if users:
                return last_seq, str(users[-1])
        return last_seq, None

    async def insert_planned(
        self,
        rid: str,
        news_id: str,
        place_code: str,
        seq: int,
        user_ids: Sequence[str],
        not_before: datetime,
        now: datetime,
        plan: Plan | None = None,
    ) -> bool:
        """Claim batch `seq` of the run; False when it exists (another planner is at work)."""
        batch, people = _batch_docs(
            batch_id(rid, seq), rid, news_id, place_code, seq, 0, user_ids, not_before, now, plan
        )
        await self.people.put(people)
        try:
            await self.col.insert_one(batch)
        except DuplicateKeyError:
            return False
        return True

    # --- sending ----------------------------------------------------------------------------

    async def due(self, now: datetime, after: str | None, limit: int) -> list[Document]:
        """Ready batches whose time has come, by `_id`, after `after` (without their people:
        `with_people` adds them)."""
        query: Document = {"status": READY, "not_before": {"$lte": now}}
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self.col.find(query).sort([("_id", ASCENDING)]).limit(limit)
        return [_aware_batch(doc) async for doc in cursor]

    async def with_people(self, batch: Document) -> Document:
        """A batch of `due` with its people (one read by `_id`)."""
        if "user_ids" in batch:
            return batch
        return _aware_batch(batch, await self.people.col.find_one({"_id": batch["_id"]}) or {})

    async def planned(self, rid: str, now: datetime, step: int) -> AsyncGenerator[Document]:
        """The run's planned batches (not those the cap deferred) that are ready and due, with
        their people: one read of the batches and one cursor over their people for the whole
        run, as the server may scan a whole collection for any read, even one by `_id`. The
        people come `step` batches at a time, so the first are ready at once."""
        query = {"run_id": rid, "gen": 0, "status": READY, "not_before": {"$lte": now}}
        people = self.people.col.find({"run_id": rid, "gen": 0}, batch_size=step)
        try:
            # The batches and the first people at once: the first multicast waits for both.
            batches, first = await asyncio.gather(
                self.col.find(query).to_list(None), people.to_list(step), return_exceptions=True
            )
            # Both ended before either error goes on (and the cursor is closed).
            if isinstance(batches, BaseException):
                raise batches
            if isinstance(first, BaseException):
                raise first
            ready: dict[str, Document] = {str(doc["_id"]): doc for doc in batches}
            # Only `ready` may hold the batches: each is let go with its people once handed out
            # (kept in the list, 1,000,000 people's ids stayed in memory till the run's end).
            del batches
            for bid, doc in list(ready.items()):
                if "user_ids" in doc:  # planned before the people had a collection of their own
                    yield _aware_batch(ready.pop(bid))
            for doc in first:
                if (waiting := ready.pop(str(doc["_id"]), None)) is not None:
                    yield _aware_batch(waiting, doc)
            async for doc in people:
                if not ready:
                    return
                if (waiting := ready.pop(str(doc["_id"]), None)) is not None:
                    yield _aware_batch(waiting, doc)
        finally:
            await people.close()

    async def first_attempt(self, bid: str) -> datetime | None:
        """When the batch's retry key was stored (just before its first attempt), if it was."""
        doc = await self._sends.find_one({"_id": send_key(bid)}, projection={"created_at": 1})
        return aware(doc["created_at"]) if doc is not None else None

    async def redate(self, bid: str, now: datetime, plan: Plan) -> None:
        """A late batch never tried: it goes, and counts against the daily cap, today."""
        await self.people.col.update_one({"_id": bid}, {"$set": {"skip": list(plan.skip)}})
        await self.col.update_one(
            {"_id": bid}, {"$set": {"not_before": now, "counts": plan.counts}}
        )

    async def finish(
        self, bid: str, status: str, now: datetime, counts: Document, reason: str | None = None
    ) -> None:
        """Record how a batch ended: one update by `_id`, from its sender (bulk writes of several
        senders at once stalled FerretDB's PostgreSQL backend, docs/RELIABILITY.md fix 13)."""
        await self.col.update_one(
            {"_id": bid},
            {"$set": {"status": status, "counts": counts, "reason": reason, "finished_at": now}},
        )

    async def insert_follow_up(
        self,
        parent: Mapping[str, Any],
        fid: str,
        user_ids: Sequence[str],
        not_before: datetime,
        now: datetime,
        plan: Plan,
    ) -> None:
        """The people the cap moved on from `parent`, as batch `fid` (named after the parent
        and its day, so a replan after a crash finds it instead of making another)."""
        batch, people = _batch_docs(
            fid,
            str(parent["run_id"]),
            str(parent["news_id"]),
            str(parent["municipality_code"]),
            int(parent["seq"]),
            fid.count("~"),
            user_ids,
            not_before,
            now,
            plan,
        )
        await self.people.put(people)
        with suppress(DuplicateKeyError):  # made before a crash: the same people
            await self.col.insert_one(batch)

    async def open_count(self, rid: str) -> int:
        return await self.col.count_documents({"run_id": rid, "status": READY})

    async def cancel_run(self, rid: str, now: datetime) -> None:
        await self.col.update_many(
            {"run_id": rid, "status": READY},
            {"$set": {"status": CANCELLED, "finished_at": now}},
        )

    async def summaries(self, rid: str) -> AsyncIterator[Document]:
        """The run's batches without their people (for the report)."""
        cursor = self.col.find({"run_id": rid}, projection={"user_ids": 0, "skip": 0})
        async for doc in cursor:
            yield doc


class NewsCaps(Store):
    collection_name = "news_caps"
    expires = True
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("user_id", ASCENDING)], name="user")]

    async def claim(
        self, user_ids: Sequence[str], day: str, cap: int, bid: str, now: datetime
    ) -> set[str]:
        """The people who may get batch `bid` on `day`: each claims their lowest free slot
        (by unique insert), or already holds one for this batch (a resend after a crash)."""
        expires = datetime.combine(date.fromisoformat(day), time(0), tzinfo=JST) + KEEP_CAPS
        allowed: set[str] = set()
        ours: set[str] | None = None
        trying = list(user_ids)
        for n in range(1, cap + 1):
            if not trying:
                break
            docs = [
                {
                    "_id": cap_slot_id(user, day, n),
                    "user_id": user,
                    "day": day,
                    "batch_id": bid,
                    "created_at": now,
                    "expires_at": expires,
                }
                for user in trying
            ]
            taken = await self.insert_new(docs)
            allowed.update(u for u in trying if cap_slot_id(u, day, n) not in taken)
            if not taken:
                break
            if ours is None:
                # Slots this batch claimed before a crash (equality filters: no `$in`).
                ours = {
                    str(doc["user_id"])
                    async for doc in self.col.find(
                        {"batch_id": bid, "day": day}, projection={"user_id": 1}
                    )
                }
                allowed |= ours.intersection(user_ids)
            trying = [u for u in trying if cap_slot_id(u, day, n) in taken and u not in ours]
        return allowed

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count
