"""News (お知らせ): staff compose, an admin approves, the worker delivers exactly once.

Compose and approval (`NewsService`, used by the staff API and console): an item is a draft
until an editor submits it; an admin approves (it is scheduled) or rejects it. The transitions
are `bot.domain.news.transition`; the roles are checked by the staff routes.

Delivery (`deliver_news`, run by the worker every few seconds, `bot/jobs/news.py`):

1. **Runs.** An approved item whose `next_run_at` is near gets run number `runs + 1`, claimed by
   inserting `news_runs/<news>:<run>` (a unique insert: two workers never start it twice).
2. **Planning**, while the first batches already go out (or ahead of the due time, which the
   sending does not wait for). The run's segment is read from `registrations` by one cursor
   sorted by `user_id` (memory stays flat whatever the segment's size) and cut into batches of
   at most 500 people. A batch's `_id` is `<news>:<run>:<seq>` and inserting it is the claim;
   planning resumes after the last planned batch's last user id, so a person is in exactly one
   batch by construction, even across crashes. Batches carry `not_before` (the due time moved
   out of quiet hours). People who blocked the account are not in the segment at all (their
   registrations carry `blocked`, see `bot/storage/users.py`). All per-person work happens
   here, before the batch is inserted: people who switched the topic off (read once per
   planning pass, by equality filters) are put in the batch's `skip`; each other person claims
   one of their daily cap
   slots (`news_caps/<user>:<day>:<n>`, n ≤ the cap, by unique insert, naming the batch) on the
   Japan day of `not_before`; people with no slot left move to a follow-up batch
   `<batch>~<next day>` (allotted the same way, never dropped).
3. **Sending**, by one worker at a time: the holder of the `news-delivery` lease (another worker
   takes over when it expires). One sender keeps the channel under its multicast rate limit
   however many workers run. Inside the holder one reader takes due batches a window at a time
   and IN_FLIGHT senders send them concurrently, paced at `multicast_per_second`, so database
   latency overlaps the pacing. The batches of a fully planned run are read with their people
   by one read per run (`NewsBatches.planned`); a scan of ready batches finds the rest. Per run (or window of scanned
   batches), two small reads find who blocked the account or switched the topic off since
   planning: they are left out too (their cap slot stays used). A batch is one `multicast` to its people minus `skip`
   under the logical key `news:<batch id>`: its `X-Line-Retry-Key` is stored before the first
   attempt (a window's keys in one write), 5xx, timeouts and 429 are retried with backoff
   (`bot/line/client.py`), and its sender marks the batch sent after LINE accepted it (one
   update by `_id`). The pacer never starts more than `multicast_per_second` requests within
   any second, and lets requests held up by a slow database call catch the even schedule up.
   No per-person database work happens here.
4. **Crashes.** A worker killed at any point leaves batches unsent or sent-but-not-marked. The
   next holder resends every batch not marked sent under the same stored retry key: LINE
   answers 409 to a key it accepted (treated as sent), so nothing is sent twice and nothing is
   lost. A planner killed after claiming cap slots but before inserting the batch plans the same
   people again under the same batch id: the slots name the batch, so they are found again.
5. **Quiet hours** (21:00–08:00 Japan time by default): nothing is sent; due batches wait. A
   batch's cap slots count on the Japan date of its `not_before`; a batch still unsent on a
   later day (a backlog, an outage) is allotted again against the day it goes if it was never
   tried, and keeps its day if it was (so a resend carries the same people); one first tried
   over 23 hours ago fails as `retry_window` (LINE keeps retry keys for 24 hours).
6. **Report** (`NewsService.report`): summed from the batches of the latest run. Invariant:
   targeted = sent + Σ skipped + Σ failed + pending.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import secrets
import time as monotonic_time
import uuid
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from linebot.v3.messaging import Message

from bot.cards import place_name
from bot.clock import Clock
from bot.dialog.postback import command_data, news_stop_data
from bot.domain.news import (
    MAX_TITLE,
    MULTICAST_MAX,
    Action,
    Content,
    DeliveryConfig,
    Schedule,
    Segment,
    Status,
    after_run,
    japan_day,
    progress,
    transition,
)
from bot.line.client import LineClient, SendFailed
from bot.render import Button, Renderer, attach_quick_replies, json_messages
from bot.storage import Storage
from bot.storage.news import (
    CANCELLED,
    DONE,
    FAILED,
    PLANNED,
    PLANNING,
    SENT,
    Plan,
    aware,
    batch_id,
    news_item_doc,
    run_id,
    send_key,
)
from bot.storage.preferences import topic_of
from bot.storage.sends import StoredKey

log = logging.getLogger(__name__)

MESSAGE_TEMPLATE = "news/message"
LEASE = "news-delivery"
SEND_WINDOW = 100  # batches read at a time (at most 50,000 user ids in memory)
IN_FLIGHT = 16  # concurrent batches inside the lease holder (200/s × ~50 ms each, twice)
READ_AHEAD = 64  # batches of a planned run read ahead of the senders (~4 MB of ids)
CATCH_UP_S = 1.0  # how far behind its schedule the pacer may catch up (200 requests at 200/s)
PLANNING_POLL_S = 0.5  # how often the sender looks for batches planned meanwhile
RETRY_WINDOW = timedelta(hours=23)  # a batch first tried longer ago is not resent (LINE: 24 h)


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewsItem:
    id: str
    municipality_code: str
    title: str
    content: Content
    segment: Segment
    schedule: Schedule
    status: Status
    created_by: str
    approved_by: str | None
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None
    runs: int
    submitted_by: str | None = None
    last_sent_at: datetime | None = None  # when the latest run finished


@dataclass
class NewsReport:
    """How the latest run of an item went (all zero before its first run).

    targeted = sent + Σ skipped + Σ failed + pending; who had blocked the account when the run
    was planned is not targeted. `skipped` reasons: blocked (since planning), opted_out,
    deferred_cap (moved to a later day by the daily cap, not sent yet), cancelled. `deferred`
    counts every push the cap moved, including those delivered since.
    """

    targeted: int = 0
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    deferred: int = 0
    state: str = "scheduled"  # scheduled, planning, sending, waiting, done, cancelled
    progress: float = 0.0
    run: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


def _validate(title: str, content: Content, segment: Segment, schedule: Schedule) -> None:
    if not title.strip():
        raise ValueError("件名を入力してください。")
    if len(title.strip()) > MAX_TITLE:
        raise ValueError(f"件名は{MAX_TITLE}文字以内にしてください。")
    content.validate()
    segment.validate()
    try:
        topic_of(segment.topic)
    except ValueError:
        raise ValueError("配信の種類の指定が正しくありません。") from None
    schedule.validate()


def _item(doc: dict[str, Any]) -> NewsItem:
    return NewsItem(
        id=str(doc["_id"]),
        municipality_code=str(doc["municipality_code"]),
        title=str(doc.get("title") or ""),
        content=Content.from_doc(doc.get("content")),
        segment=Segment.from_doc(doc.get("segment")),
        schedule=Schedule.from_doc(doc.get("schedule")),
        status=Status(str(doc.get("status") or Status.DRAFT)),
        created_by=str(doc.get("created_by") or ""),
        approved_by=doc.get("approved_by"),
        reject_reason=doc.get("reject_reason"),
        created_at=aware(doc["created_at"]),
        updated_at=aware(doc["updated_at"]),
        next_run_at=aware(doc["next_run_at"]) if doc.get("next_run_at") else None,
        runs=int(doc.get("runs") or 0),
        submitted_by=doc.get("submitted_by"),
        last_sent_at=aware(doc["last_sent_at"]) if doc.get("last_sent_at") else None,
    )


# --- what residents receive --------------------------------------------------------------------


def news_messages(renderer: Renderer, item: NewsItem) -> list[Message]:
    """The item as residents receive it: an optional image, then the text (from the template
    `news/message`, the municipality's own version first) or the Flex message; the quick replies
    「配信停止」 (this topic from this place) and 「お知らせ一覧」 on the last message."""
    place = item.municipality_code
    quick = [
        Button("配信停止", data=news_stop_data(place, item.segment.topic)),
        Button("お知らせ一覧", data=command_data("news")),
    ]
    content = item.content
    if content.kind == "text":
        body = renderer.render(
            MESSAGE_TEMPLATE,
            {"place_name": place_name(place), "title": item.title, "text": content.text},
            municipality=place,
        )
    else:
        body = json_messages(json.dumps(content.flex_message(), ensure_ascii=False), "news")
    image = content.image_message()
    head = json_messages(json.dumps(image), "news") if image is not None else []
    return attach_quick_replies(head + body, quick)


# --- the service -------------------------------------------------------------------------------


class NewsService:
    def __init__(self, storage: Storage, line: LineClient, renderer: Renderer) -> None:
        self.storage = storage
        self.line = line
        self.renderer = renderer

    async def create(
        self,
        municipality_code: str,
        author: str,
        title: str,
        content: Content,
        segment: Segment,
        schedule: Schedule,
        now: datetime,
    ) -> NewsItem:
        """A new draft; ValueError (Japanese) when a field is not acceptable."""
        _validate(title, content, segment, schedule)
        doc = news_item_doc(
            news_id=secrets.token_hex(8),
            municipality_code=municipality_code,
            author=author,
            title=title.strip(),
            content=content.to_doc(),
            segment=segment.to_doc(),
            schedule=schedule.to_doc(),
            now=now,
        )
        await self.storage.news.insert(doc)
        return _item(doc)

    async def _require(self, municipality_code: str, news_id: str) -> NewsItem:
        item = await self.get(municipality_code, news_id)
        if item is None:
            raise LookupError(news_id)
        return item

    async def _move(
        self,
        municipality_code: str,
        news_id: str,
        action: Action,
        now: datetime,
        changes: dict[str, Any],
    ) -> NewsItem:
        item = await self._require(municipality_code, news_id)
        status = transition(item.status, action)
        await self.storage.news.set(news_id, {**changes, "status": status.value}, now)
        return await self._require(municipality_code, news_id)

    async def update(
        self,
        municipality_code: str,
        news_id: str,
        title: str,
        content: Content,
        segment: Segment,
        schedule: Schedule,
        now: datetime,
    ) -> NewsItem:
        """Change a draft or rejected item (LookupError when it is not the municipality's)."""
        _validate(title, content, segment, schedule)
        return await self._move(
            municipality_code,
            news_id,
            "update",
            now,
            {
                "title": title.strip(),
                "content": content.to_doc(),
                "segment": segment.to_doc(),
                "schedule": schedule.to_doc(),
            },
        )

    async def submit(
        self, municipality_code: str, news_id: str, by: str, now: datetime
    ) -> NewsItem:
        return await self._move(
            municipality_code, news_id, "submit", now, {"submitted_by": by, "reject_reason": None}
        )

    async def approve(
        self, municipality_code: str, news_id: str, by: str, now: datetime
    ) -> NewsItem:
        """Schedule the item: the worker sends it at `next_run_at` (at once for `now`)."""
        item = await self._require(municipality_code, news_id)
        first = item.schedule.first(now)
        if first is None:
            raise ValueError("繰り返しの終了日を過ぎているため、配信できません。")
        return await self._move(
            municipality_code,
            news_id,
            "approve",
            now,
            {"approved_by": by, "approved_at": now, "next_run_at": first},
        )

    async def reject(
        self, municipality_code: str, news_id: str, by: str, reason: str, now: datetime
    ) -> NewsItem:
        if not reason.strip():
            raise ValueError("差し戻しの理由を入力してください。")
        return await self._move(
            municipality_code,
            news_id,
            "reject",
            now,
            {"reject_reason": reason.strip(), "rejected_by": by},
        )

    async def cancel(
        self, municipality_code: str, news_id: str, by: str, now: datetime
    ) -> NewsItem:
        """Stop the item; batches not sent yet are not sent (the report counts them)."""
        return await self._move(
            municipality_code,
            news_id,
            "cancel",
            now,
            {"cancelled_by": by, "cancelled_at": now, "next_run_at": None},
        )

    async def get(self, municipality_code: str, news_id: str) -> NewsItem | None:
        doc = await self.storage.news.get(news_id)
        if doc is None or doc.get("municipality_code") != municipality_code:
            return None
        return _item(doc)

    async def list(self, municipality_code: str) -> list[NewsItem]:
        """The municipality's items, newest first."""
        return [_item(doc) for doc in await self.storage.news.for_place(municipality_code)]

    async def count_recipients(self, municipality_code: str, segment: Segment) -> int:
        """How many people would receive it now: the segment minus opt-outs and blocks."""
        return await self.storage.news_batches.count_recipients(municipality_code, segment)

    def messages(self, item: NewsItem) -> builtins.list[Message]:
        return news_messages(self.renderer, item)

    async def send_test(
        self, municipality_code: str, news_id: str, line_user_id: str, now: datetime
    ) -> bool:
        """One push to a staff member's own LINE account (not in reports or caps); False when
        that account has blocked ours."""
        item = await self._require(municipality_code, news_id)
        key = f"news-test:{news_id}:{uuid.uuid4().hex}"  # every test press is a new push
        return await self.line.push(line_user_id, self.messages(item), key)

    async def report(self, municipality_code: str, news_id: str) -> NewsReport:
        item = await self._require(municipality_code, news_id)
        return await build_report(self.storage, item)

    async def past_for_place(self, place_code: str, limit: int = 10) -> builtins.list[NewsItem]:
        """Items the place has sent (a run finished), newest first."""
        return [_item(doc) for doc in await self.storage.news.past_for_place(place_code, limit)]


async def build_report(storage: Storage, item: NewsItem) -> NewsReport:
    report = NewsReport(run=item.runs)
    if item.runs == 0:
        report.state = "cancelled" if item.status is Status.CANCELLED else "scheduled"
        return report
    rid = run_id(item.id, item.runs)
    run = await storage.news_runs.get(rid)
    skipped: dict[str, int] = {}
    failed: dict[str, int] = {}
    waiting_deferred = 0
    async for batch in storage.news_batches.summaries(rid):
        size = int(batch.get("size") or 0)
        counts = batch.get("counts") or {}
        people = int(counts.get("recipients", size))  # whom the batch sends to
        status = batch.get("status")
        if int(batch.get("gen") or 0) == 0:
            report.targeted += size
        report.deferred += int(counts.get("deferred") or 0)
        for reason in ("blocked", "opted_out"):
            if counts.get(reason):
                skipped[reason] = skipped.get(reason, 0) + int(counts[reason])
        if status == SENT:
            report.sent += int(counts.get("sent") or 0)
        elif status == FAILED:
            reason = str(batch.get("reason") or "error")
            failed[reason] = failed.get(reason, 0) + people
        elif status == CANCELLED:
            skipped["cancelled"] = skipped.get("cancelled", 0) + people
        elif int(batch.get("gen") or 0) > 0:
            waiting_deferred += people
        else:
            report.pending += people
    if waiting_deferred:
        skipped["deferred_cap"] = waiting_deferred
    report.skipped, report.failed = skipped, failed
    report.progress = progress(report.targeted, report.targeted - report.pending - waiting_deferred)
    if run is not None:
        report.started_at = run.get("created_at")
        report.finished_at = run.get("finished_at")
        status = run.get("status")
        if status == DONE:
            report.state, report.progress = "done", 1.0
        elif status == CANCELLED or item.status is Status.CANCELLED:
            report.state = "cancelled"
        elif status == PLANNING:
            report.state = "planning"
        elif report.pending == 0 and waiting_deferred:
            report.state = "waiting"
        else:
            report.state = "sending"
    return report


# --- delivery ----------------------------------------------------------------------------------


@dataclass
class DeliveryRun:
    """What one pass of the delivery job did."""

    held: bool = False  # whether this worker held the delivery lease
    runs_started: int = 0
    batches_planned: int = 0
    batches_sent: int = 0
    recipients: int = 0  # people sent to
    deferred: int = 0  # people the daily cap moved to another day
    quiet: bool = False  # quiet hours: nothing sent
    lost_lease: bool = False


class Pacer:
    """Starts at most `per_second` requests a second, shared by the concurrent senders (and by
    a worker's passes: the news job keeps one).

    Never ahead of an even schedule, and never more than `per_second` starts within any one
    second: requests held up (a slow database call) catch the schedule up at twice the pace,
    by at most CATCH_UP_S, while LINE's limit still holds over every second."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next: float | None = None  # the next request's place on the schedule
        self.last_second: deque[float] = deque(maxlen=max(1, int(per_second)))

    def reserve(self, now: float) -> float:
        """When the next request may start (`now` or later); the slot is taken."""
        # A pacer idle for long owes no long burst: the schedule trails `now` by CATCH_UP_S at most.
        due = now if self.next is None else max(self.next, now - CATCH_UP_S)
        start = max(now, due)
        if self.last_second:
            start = max(start, self.last_second[-1] + self.interval / 2)
        if len(self.last_second) == self.last_second.maxlen:
            start = max(start, self.last_second[0] + 1.0)
        self.next = due + self.interval
        self.last_second.append(start)
        return start

    async def wait(self) -> None:
        now = monotonic_time.monotonic()
        start = self.reserve(now)
        if start > now:
            await asyncio.sleep(start - now)


# A batch due (with its people, or read by the sender) and who was left out since planning.
Ready = tuple[dict[str, Any], Mapping[str, str]]
# A batch handed to a sender: also its retry key, if it was stored with its window's.
Job = tuple[dict[str, Any], Mapping[str, str], StoredKey | None]


class _ReadAhead:
    """Batches read ahead of the senders: at most READ_AHEAD held; `take` returns all there are
    (waiting for one), and [] once the reader ended and everything was taken."""

    def __init__(self) -> None:
        self._ready: deque[Ready] = deque()
        self._room = asyncio.Semaphore(READ_AHEAD)
        self._changed = asyncio.Event()
        self._ended = False

    async def put(self, entry: Ready) -> None:
        await self._room.acquire()
        self._ready.append(entry)
        self._changed.set()

    def end(self) -> None:
        self._ended = True
        self._changed.set()

    async def take(self) -> list[Ready]:
        while not self._ready and not self._ended:
            self._changed.clear()
            await self._changed.wait()
        taken = list(self._ready)
        self._ready.clear()
        for _ in taken:
            self._room.release()
        return taken


class Delivery:
    """One pass of the delivery job by the holder of the delivery lease (see the module doc)."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        line: LineClient,
        renderer: Renderer,
        config: DeliveryConfig,
        owner: str,
        pacer: Pacer | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.line = line
        self.renderer = renderer
        self.config = config
        self.owner = owner
        self.pacer = pacer or Pacer(config.multicast_per_second)
        self.result = DeliveryRun()
        self._items: dict[str, NewsItem | None] = {}
        self._messages: dict[str, list[Message]] = {}

    @property
    def window(self) -> int:
        """Batches per window: sent well within the lease, which is renewed between windows."""
        per_lease = self.config.multicast_per_second * self.config.lease_seconds / 4
        return max(1, min(SEND_WINDOW, int(per_lease)))

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.config.lease_seconds)

    async def hold(self) -> bool:
        """Take or renew the delivery lease; False when another worker holds it."""
        return await self.storage.leases.acquire(LEASE, self.owner, self.clock.now(), self.ttl)

    async def idle(self) -> bool:
        """Nothing due and no run open: the pass ends without writing (no lease taken)."""
        runs, due = await asyncio.gather(
            self.storage.news_runs.active(),
            self.storage.news.due(self.clock.now() + self.config.plan_ahead),
        )
        return not (runs or due)

    async def run(self) -> DeliveryRun:
        if await self.idle() or not await self.hold():
            return self.result
        self.result.held = True
        try:
            await self.start_runs()
            runs = await self.storage.news_runs.active()
            now = self.clock.now()
            due = any(self.config.not_before(run["due_at"]) <= now for run in runs)
            # Sending starts while a large segment is still being planned (if it is due).
            planning = asyncio.create_task(self.plan_open_runs(runs))
            try:
                await self.send(planning, runs, due)
            finally:
                await planning
            await self.finish_runs()
        finally:
            await self.storage.leases.release(LEASE, self.owner)
        return self.result

    # --- runs and planning ---------------------------------------------------------------------

    async def start_runs(self) -> None:
        now = self.clock.now()
        for doc in await self.storage.news.due(now + self.config.plan_ahead):
            item = _item(doc)
            if item.next_run_at is None:
                continue
            number = item.runs + 1
            claimed = await self.storage.news_runs.claim(
                item.id, number, item.municipality_code, item.next_run_at, now
            )
            # Claimed now, or by a pass that died before recording it: record it either way.
            await self.storage.news.run_started(item.id, number, item.next_run_at, now)
            self.result.runs_started += 1 if claimed else 0

    async def plan_open_runs(self, runs: list[dict[str, Any]]) -> None:
        for run in runs:
            if run.get("status") == PLANNING and not self.result.lost_lease:
                await self.plan(run)

    async def plan(self, run: dict[str, Any]) -> None:
        """Cut the run's segment into batches, resuming after the last planned batch."""
        item = await self._item(str(run["news_id"]))
        rid = str(run["_id"])
        if item is None or item.status is Status.CANCELLED:
            await self.storage.news_runs.set_status(rid, CANCELLED, self.clock.now())
            return
        not_before = self.config.not_before(run["due_at"])
        seq, after = await self.storage.news_batches.resume_point(rid)
        place = item.municipality_code
        checked_at = self.clock.now()
        excluded = await self.storage.news_batches.excluded(place, item.segment.topic)
        chunk: list[str] = []
        self._messages_of(item)  # a template error shows now; the sending pass finds it loaded

        async def flush() -> None:
            nonlocal seq
            seq += 1
            bid = batch_id(rid, seq)
            origin = {"run_id": rid, "news_id": item.id, "municipality_code": place, "seq": seq}
            plan = await self.allot(origin, bid, chunk, excluded, not_before, checked_at)
            if not await self.storage.news_batches.insert_planned(
                rid, item.id, place, seq, chunk, not_before, self.clock.now(), plan
            ):
                raise _LeaseLost  # another planner made this batch: it carries on
            self.result.batches_planned += 1
            chunk.clear()
            if seq % 20 == 0 and not await self.hold():
                raise _LeaseLost

        try:
            async for user_id in self.storage.news_batches.segment_users(
                item.municipality_code, item.segment, after
            ):
                chunk.append(user_id)
                if len(chunk) >= MULTICAST_MAX:
                    await flush()
            if chunk:
                await flush()
        except _LeaseLost:
            self.result.lost_lease = True
            return
        await self.storage.news_runs.set_status(rid, PLANNED, self.clock.now(), seq)

    async def allot(
        self,
        origin: Mapping[str, Any],
        bid: str,
        people: Sequence[str],
        excluded: Mapping[str, str],
        not_before: datetime,
        checked_at: datetime,
    ) -> Plan:
        """Settle whom batch `bid` sends to: not the `excluded`; the others each claim a daily
        cap slot on the Japan day of `not_before`, and who has none left moves to a follow-up
        batch `<bid>~<next day>` (allotted the same way). Claims name the batch, so doing this
        again after a crash finds the same people."""
        now = self.clock.now()
        wanted = [u for u in people if u not in excluded]
        day = japan_day(not_before)
        allowed = await self.storage.news_caps.claim(wanted, day, self.config.daily_cap, bid, now)
        excess = [u for u in wanted if u not in allowed]
        if excess:
            later = self.config.next_day(not_before)
            fid = f"{bid}~{japan_day(later)}"
            plan = await self.allot(origin, fid, excess, {}, later, checked_at)
            await self.storage.news_batches.insert_follow_up(origin, fid, excess, later, now, plan)
            self.result.deferred += len(excess)
        reasons = Counter(excluded[u] for u in people if u in excluded)
        counts = {
            "recipients": len(wanted) - len(excess),
            "blocked": reasons["blocked"],
            "opted_out": reasons["opted_out"],
            "deferred": len(excess),
        }
        return Plan(checked_at, counts, [u for u in people if u not in allowed])

    # --- sending -------------------------------------------------------------------------------

    async def send(
        self, planning: asyncio.Task[None], runs: list[dict[str, Any]], due: bool
    ) -> None:
        """Send due batches until none is left and planning is over: one reader hands them to
        IN_FLIGHT senders (database latency overlaps the pacing), a window at a time. The
        batches of planned runs go first, read once per run; then a scan finds the rest
        (follow-ups, runs being planned, batches a failed attempt left)."""
        queue: asyncio.Queue[Job] = asyncio.Queue(self.window)
        dispatched: set[str] = set()  # in this pass (a batch in flight is still "ready")
        async with asyncio.TaskGroup() as group:
            senders = [group.create_task(self._sender(queue)) for _ in range(IN_FLIGHT)]
            await self._dispatch_planned(queue, runs, dispatched)
            await queue.join()  # sent and recorded: the scan no longer reads them
            await self._dispatch(queue, planning, due, dispatched)
            await queue.join()
            for sender in senders:
                sender.cancel()

    async def _sender(self, queue: asyncio.Queue[Job]) -> None:
        while True:
            batch, fresh, key = await queue.get()
            try:
                batch = await self.storage.news_batches.with_people(batch)
                await self.send_batch(batch, fresh, key)
            finally:
                queue.task_done()

    async def _enqueue(
        self, queue: asyncio.Queue[Job], window: Sequence[Ready], dispatched: set[str]
    ) -> None:
        """Store the window's retry keys in one write, then hand its batches to the senders. A
        late batch stores its key when it is tried: whether it was tried before decides its day
        (`send_batch`)."""
        now = self.clock.now()
        on_time = {
            send_key(str(batch["_id"])): ""
            for batch, _ in window
            if japan_day(batch["not_before"]) == japan_day(now)
        }
        keys = await self.storage.sends.retry_keys(on_time, now)
        for batch, fresh in window:
            dispatched.add(str(batch["_id"]))
            await queue.put((batch, fresh, keys.get(send_key(str(batch["_id"])))))

    async def _dispatch_planned(
        self, queue: asyncio.Queue[Job], runs: list[dict[str, Any]], dispatched: set[str]
    ) -> None:
        """The batches of due, fully planned runs, with their people, by one read per run. A
        reader task reads ahead while the keys of the batches read so far are stored, so a
        slow read or write holds up neither the other nor (the queue is ahead) the senders."""
        for run in runs:
            now = self.clock.now()
            if self.result.lost_lease or self.config.quiet(now):
                return
            if run["status"] != PLANNED or self.config.not_before(run["due_at"]) > now:
                continue
            item = await self._item(str(run["news_id"]))
            if item is None:
                continue
            ahead = _ReadAhead()
            reader = asyncio.create_task(self._read_planned(ahead, run, item))
            try:
                await self._hand_out(queue, ahead, item.id, dispatched)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            if not reader.cancelled() and (error := reader.exception()) is not None:
                raise error

    async def _read_planned(self, ahead: _ReadAhead, run: dict[str, Any], item: NewsItem) -> None:
        """Read the run's ready batches with their people into `ahead`, then end it."""
        # Who changed since planning began: two small reads for the whole run, made while the
        # run's first batches are read.
        changed = asyncio.ensure_future(
            self.storage.news_batches.excluded(
                item.municipality_code, item.segment.topic, run["created_at"]
            )
        )
        planned = self.storage.news_batches.planned(str(run["_id"]), self.clock.now(), IN_FLIGHT)
        try:
            async with contextlib.aclosing(planned) as batches:  # cancelled: the cursor closes
                async for batch in batches:
                    await ahead.put((batch, await changed))
        finally:
            changed.cancel()
            await asyncio.gather(changed, return_exceptions=True)  # its error is not lost
            ahead.end()  # also when reading failed: the error is raised by `_dispatch_planned`

    async def _hand_out(
        self, queue: asyncio.Queue[Job], ahead: _ReadAhead, news_id: str, dispatched: set[str]
    ) -> None:
        """Store the keys of every batch read so far (up to READ_AHEAD at a time) and hand them
        to the senders, until the reader is done."""
        handed = 0
        while window := await ahead.take():
            if self.result.lost_lease or self.config.quiet(self.clock.now()):
                return
            await self._enqueue(queue, window, dispatched)
            if (handed + len(window)) // self.window > handed // self.window:
                # A cancellation is seen within one window; the senders find the item read.
                self._items.pop(news_id, None)
                await self._item(news_id)
                if not await self.hold():
                    self.result.lost_lease = True
            handed += len(window)

    async def _dispatch(
        self,
        queue: asyncio.Queue[Job],
        planning: asyncio.Task[None],
        due: bool,
        dispatched: set[str],
    ) -> None:
        """`due`: a run being planned is due, so its batches are sent as they are planned."""
        after: str | None = None
        while not self.result.lost_lease:
            now = self.clock.now()
            if self.config.quiet(now):
                self.result.quiet = True
                return
            batches = await self.storage.news_batches.due(now, after, self.window)
            if not batches:
                if planning.done():
                    return
                # More batches are coming: wait for some (for all, if none will be due yet),
                # then look again from the start.
                await asyncio.wait({planning}, timeout=PLANNING_POLL_S if due else None)
                after = None
                continue
            after = str(batches[-1]["_id"])
            batches = [b for b in batches if str(b["_id"]) not in dispatched]
            self._items.clear()  # a cancellation is seen within one window
            fresh = await self._changed_since_planning(batches)
            await self._enqueue(
                queue,
                [(b, fresh.get(str(b["news_id"]), {})) for b in batches],
                dispatched,
            )
            if not await self.hold():
                self.result.lost_lease = True

    async def _changed_since_planning(
        self, batches: Sequence[dict[str, Any]]
    ) -> dict[str, Mapping[str, str]]:
        """Per item, who blocked the account or switched the topic off since its batches were
        planned: two small reads per item and window, none per person."""
        since: dict[str, datetime | None] = {}
        for batch in batches:
            news_id, checked = str(batch["news_id"]), batch.get("checked_at")
            earlier = since.get(news_id, checked)
            # Planned before checks moved to planning (no `checked_at`): read them all.
            since[news_id] = min(checked, earlier) if checked and earlier else None
        fresh: dict[str, Mapping[str, str]] = {}
        for news_id, moment in since.items():
            item = await self._item(news_id)
            if item is not None:
                fresh[news_id] = await self.storage.news_batches.excluded(
                    item.municipality_code, item.segment.topic, moment
                )
        return fresh

    async def send_batch(
        self, batch: dict[str, Any], fresh: Mapping[str, str], key: StoredKey | None = None
    ) -> None:
        """Send one batch and record how it ended. A batch sent but not marked when the process
        dies is sent again under its stored retry key, which LINE answers with 409."""
        bid = str(batch["_id"])
        item = await self._item(str(batch["news_id"]))
        now = self.clock.now()
        counts: dict[str, Any] = dict(batch.get("counts") or {})
        if item is None or item.status is Status.CANCELLED:
            await self.storage.news_batches.finish(bid, CANCELLED, now, counts)
            return
        users: list[str] = list(batch.get("user_ids") or [])
        skip = set(batch.get("skip") or ())
        if japan_day(now) != japan_day(batch["not_before"]):
            # Late: a backlog or an outage crossed midnight. A batch tried before keeps its day,
            # hence its cap slots and its people; a fresh one counts against today.
            first = await self.storage.news_batches.first_attempt(bid)
            if first is None:
                people = [u for u in users if u not in skip]
                plan = await self.allot(batch, bid, people, fresh, now, now)
                skip.update(plan.skip)
                counts = {k: int(counts.get(k) or 0) + int(v) for k, v in plan.counts.items()}
                counts["recipients"] = plan.counts["recipients"]
                await self.storage.news_batches.redate(bid, now, Plan(now, counts, sorted(skip)))
            elif now - first > RETRY_WINDOW:
                # LINE forgets the retry key after 24 h: a resend could deliver twice.
                await self.storage.news_batches.finish(bid, FAILED, now, counts, "retry_window")
                return
        recipients = [u for u in users if u not in skip and u not in fresh]
        late = Counter(fresh[u] for u in users if u not in skip and u in fresh)
        for reason, n in late.items():
            counts[reason] = int(counts.get(reason) or 0) + n
        counts["recipients"] = len(recipients)
        if recipients:
            await self.pacer.wait()
            try:
                await self.line.multicast(
                    recipients, self._messages_of(item), send_key(bid), stored=key
                )
            except SendFailed as exc:
                if exc.status == 0 or exc.status == 429 or exc.status >= 500:
                    log.warning("news batch not sent; will retry", extra={"batch": bid})
                    return  # retries exhausted: the next pass tries again, same retry key
                await self.storage.news_batches.finish(
                    bid, FAILED, self.clock.now(), counts, f"line_{exc.status}"
                )
                return
        await self.storage.news_batches.finish(
            bid, SENT, self.clock.now(), {**counts, "sent": len(recipients)}
        )
        self.result.batches_sent += 1
        self.result.recipients += len(recipients)

    def _messages_of(self, item: NewsItem) -> list[Message]:
        if item.id not in self._messages:
            self._messages[item.id] = news_messages(self.renderer, item)
        return self._messages[item.id]

    async def _item(self, news_id: str) -> NewsItem | None:
        if news_id not in self._items:
            doc = await self.storage.news.get(news_id)
            self._items[news_id] = _item(doc) if doc is not None else None
        return self._items[news_id]

    async def finish_runs(self) -> None:
        now = self.clock.now()
        self._items.clear()
        for run in await self.storage.news_runs.active():
            rid = str(run["_id"])
            item = await self._item(str(run["news_id"]))
            if item is None:
                continue
            if item.status is Status.CANCELLED:
                await self.storage.news_batches.cancel_run(rid, now)
                await self.storage.news_runs.set_status(rid, CANCELLED, now)
                continue
            if run["due_at"] <= now and item.status is Status.APPROVED:
                await self.storage.news.set(item.id, {"status": Status.SENDING.value}, now)
            if run.get("status") != PLANNED or await self.storage.news_batches.open_count(rid):
                continue
            await self.storage.news_runs.set_status(rid, DONE, now)
            status, following = after_run(item.schedule, run["due_at"])
            await self.storage.news.run_finished(item.id, status.value, following, now)


class _LeaseLost(Exception):
    """Another worker took the delivery lease over: stop, it carries on."""


async def deliver_news(
    storage: Storage,
    clock: Clock,
    line: LineClient,
    renderer: Renderer | None = None,
    config: DeliveryConfig | None = None,
    owner: str | None = None,
    pacer: Pacer | None = None,
) -> DeliveryRun:
    """The worker job: start due runs, plan them, send due batches, close finished runs.

    `owner` names this worker for the delivery lease (a fresh id per call when omitted);
    `pacer` paces its multicasts (one per worker, so that passes close together stay within
    the limit; a fresh one when omitted)."""
    delivery = Delivery(
        storage,
        clock,
        line,
        renderer or Renderer(),
        config or DeliveryConfig(),
        owner or uuid.uuid4().hex,
        pacer,
    )
    result = await delivery.run()
    if result.batches_sent or result.runs_started or result.deferred:
        log.info(
            "news delivery",
            extra={
                "runs": result.runs_started,
                "planned": result.batches_planned,
                "batches": result.batches_sent,
                "sent": result.recipients,
                "deferred": result.deferred,
            },
        )
    return result


__all__ = [
    "Content",
    "DeliveryConfig",
    "DeliveryRun",
    "NewsItem",
    "NewsReport",
    "NewsService",
    "Schedule",
    "Segment",
    "Status",
    "deliver_news",
    "news_messages",
]
