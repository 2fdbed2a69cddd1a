"""The worker speaks with each municipality's own templates: a garbage reminder edited by one
municipality's staff reaches its residents from a worker process opened like `run_worker`, while
another municipality's residents get the standard text."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from bot.clock import JST
from bot.domain.stays import Stay
from bot.garbage import demo_calendar
from bot.jobs.worker import Worker
from bot.services import make_pipeline, open_services
from tests.stack import Chat, Stack, message_texts
from tests.test_staff_support import Site, add_registration

OWN = "042021"  # 石巻市 edits the reminder
OTHER = "042030"  # 塩竈市 keeps the standard text
OWN_TEXT = "【石巻市からのお知らせ】{{ day_label }}は{% for c in categories %}{{ c.name }}{% endfor %}の日です。"


def next_monday(today: date) -> date:
    """A Monday two days ahead at least, outside the demo calendar's year-end suspension."""
    day = today + timedelta(days=2)
    while day.weekday() != 0 or (day.month, day.day) in {(12, 31), (1, 1), (1, 2), (1, 3)}:
        day += timedelta(days=1)
    return day


async def resident(stack: Stack, code: str, day: date) -> Chat:
    """A resident registered with `code`, staying in 本庁地区 (燃やすごみ on Mondays) on `day`."""
    chat = await stack.user(f"滞在者{code}")
    storage = stack.services.storage
    await add_registration(storage, user_id=chat.user_id, place_code=code)
    await storage.stays.add(chat.user_id, Stay(code, day, day, area="本庁地区"), stack.clock.now())
    await chat.inbox(wait=0)
    return chat


async def test_the_worker_reminds_with_the_municipality_s_own_template(stack: Stack) -> None:
    storage = stack.services.storage
    site = Site(stack)
    editor = await site.staff(OWN, "editor")
    path = "/templates/stays/reminder"
    try:
        for code in (OWN, OTHER):
            await storage.garbage_calendars.put(demo_calendar(code), stack.clock.now())
        status, body = await editor.api("PUT", path, {"source": OWN_TEXT, "base_version": 0})
        assert status == 200, body

        monday = next_monday(stack.clock.now_jst().date())
        own, other = await resident(stack, OWN, monday), await resident(stack, OTHER, monday)
        evening = datetime.combine(monday - timedelta(days=1), time(20, 5), JST)
        stack.clock.offset = evening - datetime.now(UTC)

        # A worker process of its own, built as `run_worker` builds it.
        async with open_services(stack.settings, stack.clock) as services:
            worker = Worker(
                services.storage, stack.clock, make_pipeline(services, None), services.renderer
            )
            worker.add_standard_jobs()
            job = worker.scheduler.get_job("garbage-reminders")
            assert job is not None
            await job.func()

        own_texts = message_texts([e["message"] for e in await own.inbox(wait=5)])
        label = f"{monday.month}月{monday.day}日"
        assert len(own_texts) == 1, own_texts
        assert own_texts[0].startswith("【石巻市からのお知らせ】明日 " + label)
        assert own_texts[0].endswith("は燃やすごみの日です。")
        other_texts = message_texts([e["message"] for e in await other.inbox(wait=5)])
        assert len(other_texts) == 1, other_texts
        assert "塩竈市（本庁地区）のごみの日のお知らせです。" in other_texts[0]
        assert "石巻市からのお知らせ" not in other_texts[0]
    finally:
        stack.clock.offset = timedelta()
        await editor.api("DELETE", path)
        for code in (OWN, OTHER):
            await storage.garbage_calendars.remove(code)
        await site.close()
