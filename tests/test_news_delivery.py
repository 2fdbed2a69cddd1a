"""News delivery through the LINE emulator, against the real database: every recipient exactly
once (with injected 500s and 429s, two workers, a worker killed with SIGKILL mid-delivery, and
the database stopped for 10 s mid-delivery), segments, opt-outs and blocks, quiet hours and the
daily cap."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.devdb import LocalFerret
from bot.domain.news import Content, DeliveryConfig, Schedule, Segment, Status
from bot.emulator.faults import Fault
from bot.news import NewsReport
from bot.storage import Mongo, Storage
from bot.storage.preferences import Topic
from bot.storage.privacy import delete_person
from tests.conftest import ROOT, make_env
from tests.news_support import MULTICAST, SECRET, TOKEN, Lab, at_jst, open_lab

OUTAGE_S = 10.0


@pytest.fixture
async def lab(storage: Storage) -> AsyncIterator[Lab]:
    async with open_lab(storage) as running:
        running.set_time(at_jst(1, 10))  # 10:00 tomorrow, Japan time: not quiet
        yield running


async def test_ten_thousand_exactly_once_through_500s_429s_and_two_workers(lab: Lab) -> None:
    place = await lab.unused_place()
    users = await lab.seed(place, 10_000)
    # The channel allows 40 multicasts a second; the sending worker is paced at 30.
    lab.emulator.rate_limiter.configure({MULTICAST: 40})
    lab.config = DeliveryConfig(multicast_per_second=30)
    item = await lab.approved(place, "一万人へのお知らせ")
    assert await lab.news.count_recipients(place, Segment()) == 10_000
    for status, times in ((500, 3), (429, 2), (503, 1)):
        lab.emulator.faults.add(Fault(MULTICAST, status, times, 0.0))

    first, second = await asyncio.gather(lab.deliver("worker-a"), lab.deliver("worker-b"))
    assert first.held != second.held  # one worker sends at a time
    await lab.deliver_all()

    received = lab.received(users, "一万人へのお知らせ")
    assert len(received) == 10_000 and set(received.values()) == {1}
    statuses = lab.requests()
    assert statuses["200"] == 20  # 20 batches of 500
    assert statuses["500"] == 3 and statuses["503"] == 1
    assert statuses["429"] == 2  # only the injected ones: pacing stayed under the limit
    report = await lab.news.report(place, item.id)
    assert (report.targeted, report.sent, report.pending, report.state) == (
        10_000,
        10_000,
        0,
        "done",
    )
    assert report.progress == 1.0 and not report.failed
    done = await lab.news.get(place, item.id)
    assert done is not None and done.status is Status.SENT and done.last_sent_at is not None
    assert [i.id for i in await lab.news.past_for_place(place)] == [item.id]


async def test_segment_opt_outs_and_blocks(lab: Lab) -> None:
    place = await lab.unused_place()
    storage = lab.storage
    tokyo_visitors = await lab.seed(place, 3, types=["visit"], residence_code="131016")
    osaka_premium = await lab.seed(
        place, 2, tier="premium", types=["bearer"], residence_code="271004", age_band="60s"
    )
    hokkaido_young = await lab.seed(place, 2, residence_code="011002", age_band="18_29")
    elsewhere = await lab.seed(await lab.unused_place([place]), 2)
    now = lab.clock.now()
    opted_out, blocked = tokyo_visitors[0], tokyo_visitors[1]
    await storage.preferences.set(opted_out, place, Topic.NEWS, False, now)
    await storage.preferences.set(tokyo_visitors[2], place, Topic.BENEFITS, False, now)
    await storage.users.block(blocked, now)

    news = lab.news
    assert await news.count_recipients(place, Segment()) == 5
    assert await news.count_recipients(place, Segment(regions=("関東", "近畿"))) == 3
    assert await news.count_recipients(place, Segment(prefectures=("01",))) == 2
    assert await news.count_recipients(place, Segment(tiers=("premium",), age_bands=("60s",))) == 2
    assert await news.count_recipients(place, Segment(types=("visit",))) == 3

    item = await lab.approved(place, "関東と近畿の皆さまへ", Segment(regions=("関東", "近畿")))
    await lab.deliver_all()
    everyone = tokyo_visitors + osaka_premium + hokkaido_young + elsewhere
    received = lab.received(everyone, "関東と近畿の皆さまへ")
    assert set(received) == {tokyo_visitors[2], *osaka_premium}
    assert set(received.values()) == {1}
    report = await news.report(place, item.id)
    # Who blocked the account is no longer in the audience (their registrations say so);
    # who switched the topic off is, and is skipped.
    assert report.targeted == 4 and report.sent == 3
    assert report.skipped == {"opted_out": 1} and balanced(report)
    marked = await storage.registrations.col.count_documents({"user_id": blocked, "blocked": True})
    assert marked == 1
    await storage.users.follow(blocked, now)  # following again: in the audience again
    assert await news.count_recipients(place, Segment()) == 6
    # A follow cut after its first write is handled again: the user is unblocked already, and
    # the registrations are cleared all the same.
    await storage.registrations.col.update_many({"user_id": blocked}, {"$set": {"blocked": True}})
    await storage.users.follow(blocked, now)
    assert await news.count_recipients(place, Segment()) == 6
    # The quick replies stop this topic from this place, and list the past news.
    message = lab.emulator.users[osaka_premium[0]].inbox[-1].message
    items = message["quickReply"]["items"]
    assert [i["action"]["label"] for i in items] == ["配信停止", "お知らせ一覧"]
    assert items[0]["action"]["data"] == f"action=news_stop&place={place}&topic=news"
    assert "関東と近畿の皆さまへ" in message["text"] and "今月のお知らせです。" in message["text"]


async def test_quiet_hours_defer_and_the_daily_cap_moves_the_excess_to_tomorrow(
    lab: Lab,
) -> None:
    place = await lab.unused_place()
    users = await lab.seed(place, 3)
    lab.set_time(at_jst(1, 22))  # 22:00: quiet hours
    titles = [f"お知らせその{n}" for n in range(1, 5)]
    items = [await lab.approved(place, title) for title in titles]
    await lab.deliver_all()
    assert not lab.requests()  # nothing in quiet hours
    # Caps are counted when planning: three items wait for 08:00, one for the day after.
    reports = [await lab.news.report(place, item.id) for item in items]
    assert sorted(r.pending for r in reports) == [0, 3, 3, 3]
    assert sorted(r.deferred for r in reports) == [0, 0, 0, 3]
    assert all(r.sent == 0 and balanced(r) for r in reports)

    lab.set_time(at_jst(2, 8, 5))  # 08:05 the next morning
    await lab.deliver_all()
    # Three pushes a day per person: three of the four items arrive, the fourth waits.
    got = [lab.received(users, title) for title in titles]
    assert sum(1 for counts in got if counts == dict.fromkeys(users, 1)) == 3
    waiting = next(n for n, counts in enumerate(got) if not counts)
    report = await lab.news.report(place, items[waiting].id)
    assert report.skipped == {"deferred_cap": 3} and report.deferred == 3
    assert report.sent == 0 and report.state == "waiting" and balanced(report)
    assert report.progress == 0

    lab.set_time(at_jst(2, 20))  # later the same day: still capped
    await lab.deliver_all()
    assert not lab.received(users, titles[waiting])

    lab.set_time(at_jst(3, 8, 1))  # the next day: delivered, once
    await lab.deliver_all()
    assert lab.received(users, titles[waiting]) == dict.fromkeys(users, 1)
    report = await lab.news.report(place, items[waiting].id)
    assert (report.sent, report.skipped, report.deferred, report.state) == (3, {}, 3, "done")
    for title in titles:
        assert lab.received(users, title) == dict.fromkeys(users, 1)


async def test_recurring_news_goes_out_every_quarter(lab: Lab) -> None:
    place = await lab.unused_place()
    users = await lab.seed(place, 2)
    start = lab.clock.now().replace(microsecond=0)  # the database keeps milliseconds
    schedule = Schedule(kind="recurring", at=start, every_months=3)
    item = await lab.approved(place, "季刊ふるさと便り", schedule=schedule)
    await lab.deliver_all()
    after_first = await lab.news.get(place, item.id)
    assert after_first is not None and after_first.runs == 1
    assert after_first.status is Status.APPROVED
    assert after_first.next_run_at == schedule.next_after(start)
    lab.set_time(after_first.next_run_at + timedelta(minutes=1))
    await lab.deliver_all()
    assert lab.received(users, "季刊ふるさと便り") == dict.fromkeys(users, 2)
    report = await lab.news.report(place, item.id)
    assert report.run == 2 and report.sent == 2


async def test_a_late_batch_goes_today_and_one_tried_over_a_day_ago_fails(lab: Lab) -> None:
    place = await lab.unused_place()
    users = await lab.seed(place, 2)
    lab.set_time(at_jst(1, 9, 30))
    planned_early = await lab.approved(
        place, "前日に準備したお知らせ", schedule=Schedule("at", at_jst(1, 10))
    )
    await lab.deliver_all()  # planned an hour ahead, not due yet
    assert not lab.requests()
    lab.set_time(at_jst(1, 10, 30))
    lab.emulator.faults.add(Fault(MULTICAST, 500, 6, 0.0))  # every retry of the pass fails
    await lab.deliver()
    assert lab.requests() == {"500": 6}
    lab.set_time(at_jst(2, 10, 31))  # more than a day after the first attempt
    await lab.deliver_all()
    report = await lab.news.report(place, planned_early.id)
    assert report.failed == {"retry_window": 2} and report.state == "done"
    assert not lab.received(users, "前日に準備したお知らせ")

    lab.set_time(at_jst(3, 9, 30))
    item = await lab.approved(place, "遅れて届くお知らせ", schedule=Schedule("at", at_jst(3, 10)))
    await lab.deliver_all()  # planned for 10:00 on day 3…
    lab.set_time(at_jst(4, 12))  # …and the worker only comes back on day 4: sent then, once
    await lab.deliver_all()
    assert lab.received(users, "遅れて届くお知らせ") == dict.fromkeys(users, 1)
    assert (await lab.news.report(place, item.id)).sent == 2
    day4 = at_jst(4, 12).date().isoformat()
    assert await lab.storage.news_caps.col.count_documents({"day": day4}) == 2


async def test_a_batch_sent_but_not_marked_before_a_crash_is_not_delivered_again(
    lab: Lab,
) -> None:
    place = await lab.unused_place()
    users = await lab.seed(place, 3)
    item = await lab.approved(place, "一度だけ届くお知らせ")
    await lab.deliver_all()
    # What a worker killed between LINE's answer and the database writes leaves behind.
    storage = lab.storage
    await storage.sends.col.update_many(
        {"_id": {"$regex": f"^news:{item.id}:"}}, {"$set": {"status": "pending"}}
    )
    await storage.news_batches.col.update_many({"news_id": item.id}, {"$set": {"status": "ready"}})
    await storage.news_runs.col.update_many({"news_id": item.id}, {"$set": {"status": "planned"}})
    await storage.news.set(item.id, {"status": "sending"}, lab.clock.now())
    await lab.deliver_all()
    assert lab.requests() == {"200": 1, "409": 1}  # the stored retry key: LINE refuses it
    assert lab.received(users, "一度だけ届くお知らせ") == dict.fromkeys(users, 1)
    report = await lab.news.report(place, item.id)
    assert (report.sent, report.state) == (3, "done")


async def test_cap_slots_claimed_at_planning_survive_a_crash_before_sending(lab: Lab) -> None:
    place = await lab.unused_place()
    users = await lab.seed(place, 3)
    lab.set_time(at_jst(1, 9, 30))
    item = await lab.approved(
        place, "前もって数えるお知らせ", schedule=Schedule("at", at_jst(1, 10))
    )
    await lab.deliver("planner")  # planned half an hour ahead: the cap slots are taken now
    caps = lab.storage.news_caps.col
    day = at_jst(1, 10).date().isoformat()
    assert await caps.count_documents({"day": day}) == 3 and not lab.requests()
    # A planner killed after claiming the slots but before inserting its batch: planned again.
    await lab.storage.news_batches.col.delete_many({"news_id": item.id})
    await lab.storage.news_runs.col.update_many(
        {"news_id": item.id}, {"$set": {"status": "planning"}}
    )
    await lab.deliver("another planner")
    assert await caps.count_documents({"day": day}) == 3  # the same slots, found again
    lab.set_time(at_jst(1, 10, 1))
    await lab.deliver_all()  # a different worker sends
    assert lab.received(users, "前もって数えるお知らせ") == dict.fromkeys(users, 1)
    assert await caps.count_documents({"day": day}) == 3
    report = await lab.news.report(place, item.id)
    assert (report.sent, report.skipped, report.state) == (3, {}, "done") and balanced(report)


async def test_blocks_and_opt_outs_after_planning_are_honoured_when_sending(lab: Lab) -> None:
    place = await lab.unused_place()
    users = await lab.seed(place, 4)
    lab.set_time(at_jst(1, 9, 30))
    item = await lab.approved(place, "直前に止めたお知らせ", schedule=Schedule("at", at_jst(1, 10)))
    await lab.deliver()  # planned with everyone in it
    assert (await lab.news.report(place, item.id)).pending == 4
    lab.set_time(at_jst(1, 9, 45))
    await lab.storage.preferences.set(users[0], place, Topic.NEWS, False, lab.clock.now())
    await lab.storage.users.block(users[1], lab.clock.now())
    lab.set_time(at_jst(1, 10, 1))
    await lab.deliver_all()
    assert lab.received(users, "直前に止めたお知らせ") == dict.fromkeys(users[2:], 1)
    report = await lab.news.report(place, item.id)
    assert report.sent == 2 and report.skipped == {"opted_out": 1, "blocked": 1}
    assert balanced(report)


async def test_people_who_delete_their_data_after_planning_are_taken_out_of_their_batch(
    lab: Lab,
) -> None:
    place = await lab.unused_place()
    users = sorted(await lab.seed(place, 5))
    lab.set_time(at_jst(1, 9, 30))
    item = await lab.approved(place, "削除後のお知らせ", schedule=Schedule("at", at_jst(1, 10)))
    await lab.deliver()  # one batch of all five
    gone = [users[0], users[2]]  # the lowest id too: the batch's span of ids moves with it
    for user in gone:
        await delete_person(lab.storage, user)
    people = await lab.storage.news_people.col.find_one({"run_id": f"{item.id}:1"})
    assert people is not None and gone[0] not in str(people) and gone[1] not in str(people)
    assert people["first"] == users[1]
    lab.set_time(at_jst(1, 10, 1))
    await lab.deliver_all()
    assert lab.received(users, "削除後のお知らせ") == {users[1]: 1, users[3]: 1, users[4]: 1}
    assert (await lab.news.report(place, item.id)).sent == 3


async def test_cancel_stops_unsent_batches(lab: Lab) -> None:
    place = await lab.unused_place()
    users = await lab.seed(place, 2)
    lab.set_time(at_jst(1, 23))
    item = await lab.approved(place, "取り消すお知らせ")
    await lab.deliver_all()  # planned, held back by quiet hours
    await lab.news.cancel(place, item.id, "admin@example.jp", lab.clock.now())
    lab.set_time(at_jst(2, 9))
    await lab.deliver_all()
    assert not lab.received(users, "取り消すお知らせ")
    report = await lab.news.report(place, item.id)
    assert report.state == "cancelled" and report.skipped == {"cancelled": 2}


async def test_send_test_pushes_once_outside_reports(lab: Lab) -> None:
    place = await lab.unused_place()
    [staff_line] = await lab.seed(await lab.unused_place([place]), 1)
    bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [
        {"type": "text", "text": "牡蠣まつりのご案内"}]}}  # fmt: skip
    flex = Content(
        kind="flex", flex=bubble, alt_text="牡蠣まつり", image_url="https://example.jp/k.jpg"
    )
    item = await lab.approved(place, "試しに送るお知らせ", content=flex)
    assert await lab.news.send_test(place, item.id, staff_line, lab.clock.now())
    inbox = [entry.message for entry in lab.emulator.users[staff_line].inbox]
    assert [m["type"] for m in inbox] == ["image", "flex"]  # the image first
    assert inbox[1]["altText"] == "牡蠣まつり" and "quickReply" in inbox[1]
    assert (await lab.news.report(place, item.id)).sent == 0


def balanced(report: NewsReport) -> bool:
    """Everyone targeted is accounted for exactly once."""
    accounted = report.sent + sum(report.skipped.values()) + sum(report.failed.values())
    return report.targeted == accounted + report.pending


# --- a worker killed with SIGKILL, or the database stopped, mid-delivery --------------------------


async def start_worker(
    lab: Lab, mongo_uri: str, db_name: str, log: Path
) -> asyncio.subprocess.Process:
    """`python -m bot worker` against the lab's emulator, sending 2 batches a second (20 batches
    take ~10 s: time to break something), its output appended to `log`."""
    env = {
        **os.environ,
        **make_env(mongo_uri, db_name, LINE_API_BASE_URL=lab.url),
        "LINE_CHANNEL_SECRET": SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
        "NEWS_QUIET_HOURS": "off",  # the worker runs on the real clock
        "NEWS_MULTICAST_PER_SECOND": "2",
        "NEWS_LEASE_SECONDS": "2",
        "LOG_LEVEL": "INFO",
    }
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "worker", env=env, cwd=ROOT, stdout=out, stderr=out
        )


async def stop_worker(worker: asyncio.subprocess.Process, log: Path) -> None:
    """SIGTERM; a worker that has not exited within 90 s (its jobs get 60) fails the test."""
    if worker.returncode is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(worker.wait(), 90)
    except TimeoutError:
        worker.kill()
        await worker.wait()
        pytest.fail(f"the worker did not stop on SIGTERM; its log ends:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


async def delivered_once_each(
    lab: Lab, place: str, news_id: str, users: list[str], log: Path
) -> None:
    """Wait until the delivery is done; then everyone got the news exactly once."""

    async def finished() -> bool:
        return (await lab.news.report(place, news_id)).state == "done"

    try:
        await _until_async(finished, 90)
    except AssertionError:
        pytest.fail(f"the delivery did not finish; the worker's log ends:\n{_tail(log)}")
    item = await lab.news.report(place, news_id)
    received = lab.received(users, "再起動をまたぐお知らせ")
    assert len(received) == len(users) and set(received.values()) == {1}
    assert (item.targeted, item.sent, item.pending) == (len(users), len(users), 0)


async def test_sigkill_mid_delivery_then_restart_sends_each_exactly_once(
    storage: Storage, mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    async with open_lab(storage) as lab:
        place = await lab.unused_place()
        users = await lab.seed(place, 10_000)
        item = await lab.approved(place, "再起動をまたぐお知らせ")
        worker = await start_worker(lab, mongo_uri, db_name, log)
        try:
            await _until(lambda: lab.requests()["200"] >= 3, 90)
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
            killed_at = lab.requests()["200"]
            assert killed_at < 20  # killed mid-delivery
            midway = await lab.news.report(place, item.id)
            assert midway.state in ("planning", "sending") and 0 < midway.targeted <= 10_000
            assert midway.pending > 0 and midway.progress < 1 and balanced(midway)
            worker = await start_worker(lab, mongo_uri, db_name, log)
            await delivered_once_each(lab, place, item.id, users, log)
        finally:
            await stop_worker(worker, log)


@pytest.mark.slow
async def test_database_stopped_mid_delivery_then_back_sends_each_exactly_once(
    tmp_path: Path,
) -> None:
    ferret = LocalFerret(tmp_path / "db")  # of this test's own: stopping it disturbs no other
    await ferret.start_and_wait()
    mongo = Mongo(ferret.uri, "news_outage")
    log = tmp_path / "worker.log"
    try:
        storage = Storage(mongo)
        await storage.ensure_indexes()
        async with open_lab(storage) as lab:
            place = await lab.unused_place()
            users = await lab.seed(place, 10_000)
            item = await lab.approved(place, "再起動をまたぐお知らせ")
            worker = await start_worker(lab, ferret.uri, "news_outage", log)
            try:
                await _until(lambda: lab.requests()["200"] >= 3, 90)
                await asyncio.to_thread(ferret.stop)
                stopped_at = lab.requests()["200"]
                await asyncio.sleep(OUTAGE_S)
                assert stopped_at < 20, _tail(log)  # stopped mid-delivery
                assert worker.returncode is None, _tail(log)  # the worker rides the outage out
                await ferret.start_and_wait()
                await delivered_once_each(lab, place, item.id, users, log)
            finally:
                await stop_worker(worker, log)
    finally:
        await mongo.close()
        ferret.stop()


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _until_async(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)
