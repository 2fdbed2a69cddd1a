"""滞在予定 through the emulator: add stays in the chat, see the garbage days inside them (or the
fallback), get exactly one reminder when the clock reaches the evening before."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import aiohttp

from bot.clock import JST
from bot.domain.gomi5374 import export_5374
from bot.domain.stays import Stay
from bot.garbage import demo_calendar, feed_token
from bot.jobs.reminders import reminder_job, run_reminders
from bot.jobs.worker import Worker
from bot.services import make_pipeline
from bot.storage.preferences import Topic
from bot.storage.stays import ReminderSettings
from tests.stack import Chat, Stack, message_texts
from tests.test_staff_support import Site, add_registration

CODE = "042056"


async def registered_chat(stack: Stack, name: str) -> Chat:
    chat = await stack.user(name)
    await add_registration(stack.services.storage, user_id=chat.user_id, place_code=CODE)
    return chat


def today(stack: Stack) -> date:
    return stack.clock.now_jst().date()


def set_clock(stack: Stack, moment: datetime) -> None:
    stack.clock.offset = timedelta()
    stack.clock.offset = moment - datetime.now(UTC)


async def reminders(stack: Stack, chat: Chat) -> int:
    services = stack.services
    return await run_reminders(
        services, services.line, services.renderer, stack.clock, users={chat.user_id}
    )


async def test_weekly_stay_in_the_chat_and_exactly_one_reminder(stack: Stack) -> None:
    storage = stack.services.storage
    await storage.garbage_calendars.put(demo_calendar(CODE), stack.clock.now())
    try:
        chat = await registered_chat(stack, "二地域さん")
        await chat.send("滞在予定")
        assert "宮城県気仙沼市の滞在予定です" in chat.last_text  # one place: asked no more
        await chat.tap("滞在を追加")
        await chat.tap("毎週くりかえし")
        await chat.send("毎週火曜")  # not a pattern it can read…
        assert "読み取れませんでした" not in chat.last_text  # 「毎週火曜」 is fine: Tuesdays
        await chat.send("やめる")

        await chat.send("滞在予定")
        await chat.tap("滞在を追加")
        await chat.tap("毎週くりかえし")
        await chat.send("毎週なんとなく")
        assert "読み取れませんでした" in chat.last_text
        await chat.send("毎週土日")
        until = today(stack) + timedelta(days=60)
        await chat.send(f"{until.year}-{until.month:02d}-{until.day:02d}")
        assert "位置情報で選ぶ" in chat.texts
        await chat.tap("唐桑地区")  # 燃やすごみ: Tuesdays and Saturdays
        assert "滞在予定を登録しました" in chat.last_text
        assert "滞在中のごみの日" in chat.last_text
        stays = await storage.stays.for_user(chat.user_id)
        assert len(stays) == 1 and stays[0].stay.area == "唐桑地区"

        # The same days again: refused as an overlap, asked again.
        await chat.send("滞在予定")
        await chat.tap("滞在を追加")
        await chat.tap("毎週くりかえし")
        await chat.send("土曜")
        await chat.send(f"{until.year}-{until.month:02d}-{until.day:02d}")
        await chat.tap("唐桑地区")
        assert "重なっています" in chat.last_text
        await chat.send("やめる")
        assert len(await storage.stays.for_user(chat.user_id)) == 1

        # A Saturday in the stay, not in the year-end suspension, two days ahead at least.
        saturday = today(stack) + timedelta(days=2)
        while saturday.weekday() != 5 or (saturday.month, saturday.day) in {
            (12, 31),
            (1, 1),
            (1, 2),
            (1, 3),
        }:
            saturday += timedelta(days=1)
        friday_evening = datetime.combine(saturday - timedelta(days=1), time(19, 55), JST)
        set_clock(stack, friday_evening)
        assert await reminders(stack, chat) == 0  # not yet
        await chat.inbox(wait=0)  # skip what the chat said so far

        set_clock(stack, friday_evening + timedelta(minutes=10))  # 20:05 the evening before
        assert await reminders(stack, chat) == 1
        assert await reminders(stack, chat) == 0  # never twice
        set_clock(stack, friday_evening + timedelta(minutes=40))
        assert await reminders(stack, chat) == 0
        received = await chat.inbox(wait=2)
        texts = message_texts([entry["message"] for entry in received])
        assert len(received) == 1, texts
        assert "燃やすごみ" in texts[0] and "生ごみ" in texts[0] and "朝8時" in texts[0]

        # Tuesday is a collection day in 唐桑地区 too, but not a stay day: nothing.
        tuesday = saturday + timedelta(days=3)
        set_clock(stack, datetime.combine(tuesday - timedelta(days=1), time(20, 5), JST))
        assert await reminders(stack, chat) == 0
        # ごみ・滞在 switched off for the place: nothing.
        await storage.preferences.set(chat.user_id, CODE, Topic.GARBAGE, False, stack.clock.now())
        set_clock(stack, friday_evening + timedelta(days=7, minutes=10))
        assert await reminders(stack, chat) == 0
        await storage.preferences.set(chat.user_id, CODE, Topic.GARBAGE, True, stack.clock.now())
        # Quiet hours: nothing, even for a collection day inside the stay.
        set_clock(stack, datetime.combine(saturday + timedelta(days=6), time(22, 0), JST))
        assert await reminders(stack, chat) == 0
        assert await chat.inbox(wait=0.5) == []
    finally:
        stack.clock.offset = timedelta()
        await storage.garbage_calendars.remove(CODE)


FIVE_AREA_DAYS = "地名,センター,燃やすごみ,資源ごみ\nテスト地区,テストセンター,水,金1\n"
FIVE_CENTER = "名称,休止開始日,休止終了日\nテストセンター,,\n"
FIVE_EXTENSIONS = (
    "kind,subject,detail,value\n"
    "center,テストセンター,hours,土日 9:00〜12:00\n"
    "center,テストセンター,address,テスト市1-1\n"
    "calendar,,fallback,シールを貼って集積所へ。\n"
)


async def test_imported_calendar_dates_and_the_fallback(stack: Stack) -> None:
    storage = stack.services.storage
    site = Site(stack)
    try:
        staff = await site.staff(CODE, "editor")
        files = {
            "area_days.csv": FIVE_AREA_DAYS,
            "center.csv": FIVE_CENTER,
            "furusato_extensions.csv": FIVE_EXTENSIONS,
        }
        status, body = await staff.api("PUT", "/garbage", {"files": files})
        assert status == 200, body

        chat = await registered_chat(stack, "短期さん")
        wednesday = today(stack) + timedelta(days=1)
        while wednesday.weekday() != 2 or wednesday.day <= 7:  # not the 1st week: no 金1
            wednesday += timedelta(days=1)
        await chat.send("滞在予定")
        await chat.tap("滞在を追加")
        await chat.tap("日付を指定")
        await chat.send(f"{wednesday.month}/{wednesday.day}〜{wednesday.month}/{wednesday.day}")
        # one area: chosen without asking
        text = chat.last_text
        assert "滞在予定を登録しました" in text
        label = f"{wednesday.month}月{wednesday.day}日("
        assert "✓ 燃やすごみ" in text and label in text
        assert "× 資源ごみ" in text and "滞在中に収集日はありません" in text
        assert "シールを貼って集積所へ。" in text  # the fallback
        assert "テストセンター" in text and "土日 9:00〜12:00" in text
        assert "本人確認" in text

        # A past range is refused with the reason.
        await chat.send("滞在予定")
        await chat.tap("滞在を追加")
        await chat.tap("日付を指定")
        past = today(stack) - timedelta(days=3)
        await chat.send(f"{past.isoformat()}から{today(stack).isoformat()}")
        assert "過去の日付" in chat.last_text
        await chat.send("やめる")

        # 一覧, then 削除.
        await chat.send("滞在予定")
        await chat.tap("滞在の一覧")
        assert label in chat.last_text
        await chat.send("滞在予定")
        await chat.tap("滞在を削除")
        await chat.tap(chat.replies[-1]["quickReply"]["items"][0]["action"]["label"])
        await chat.tap("削除する")
        assert "削除しました" in chat.last_text
        assert await storage.stays.for_user(chat.user_id) == []
    finally:
        await storage.garbage_calendars.remove(CODE)
        await site.close()


async def test_area_by_location_and_the_calendar_feed(stack: Stack) -> None:
    storage = stack.services.storage
    await storage.garbage_calendars.put(demo_calendar(CODE), stack.clock.now())
    try:
        chat = await registered_chat(stack, "位置さん")
        start = today(stack) + timedelta(days=1)
        end = start + timedelta(days=9)
        await chat.send("滞在予定")
        await chat.tap("滞在を追加")
        await chat.tap("日付を指定")
        await chat.send(f"{start.isoformat()}から{end.isoformat()}")
        await chat.tap("位置情報で選ぶ")
        await chat.location("唐桑", "宮城県気仙沼市唐桑町", 38.94, 141.66)
        assert "滞在予定を登録しました" in chat.last_text and "唐桑地区" in chat.last_text

        settings = stack.settings
        url = f"{stack.bot_url}/stays/{feed_token(settings.card_signing_secret, chat.user_id)}.ics"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 200
                assert response.content_type == "text/calendar"
                body = await response.text()
            async with http.get(url.replace(".ics", "x.ics")) as response:
                assert response.status == 404
        assert "BEGIN:VCALENDAR" in body and f"DTSTART;VALUE=DATE:{start:%Y%m%d}" in body
        assert "ごみ: 燃やすごみ" in body
        assert body.count("SUMMARY:滞在") == 1
        assert export_5374(demo_calendar(CODE))  # the demo calendar exports
    finally:
        await storage.garbage_calendars.remove(CODE)


async def test_reminder_time_edit_and_quiet_hours(stack: Stack) -> None:
    storage = stack.services.storage
    await storage.garbage_calendars.put(demo_calendar(CODE), stack.clock.now())
    try:
        chat = await registered_chat(stack, "早め派さん")
        await chat.send("滞在予定")
        await chat.tap("お知らせの時刻")
        assert "前日の20:00" in chat.last_text
        await chat.tap("前日の18時")
        assert "前日の18:00にしました" in chat.last_text

        first = today(stack) + timedelta(days=2)
        while first.weekday() != 0:  # a Monday: 燃やすごみ in 本庁地区
            first += timedelta(days=1)
        await chat.send("滞在予定")
        await chat.tap("滞在を追加")
        await chat.tap("日付を指定")
        await chat.send(f"{first.isoformat()}から{(first + timedelta(days=1)).isoformat()}")
        await chat.tap("唐桑地区")  # Tuesdays and Saturdays: the Tuesday is in the stay
        # Changed to 本庁地区 (Mondays and Thursdays).
        await chat.send("滞在予定")
        await chat.tap("滞在を変更")
        await chat.tap(chat.replies[-1]["quickReply"]["items"][0]["action"]["label"])
        await chat.tap("日付を指定")
        await chat.send(f"{first.isoformat()}から{(first + timedelta(days=1)).isoformat()}")
        await chat.tap("本庁地区")
        assert "滞在予定を変更しました" in chat.last_text
        stays = await storage.stays.for_user(chat.user_id)
        assert [s.stay.area for s in stays] == ["本庁地区"]
        await chat.inbox(wait=0.2)

        sunday = first - timedelta(days=1)
        set_clock(stack, datetime.combine(sunday, time(17, 55), JST))
        assert await reminders(stack, chat) == 0
        set_clock(stack, datetime.combine(sunday, time(18, 5), JST))
        assert await reminders(stack, chat) == 1
        received = await chat.inbox(wait=2)
        assert len(received) == 1

        # A reminder time in quiet hours (22:00) is sent at 20:59 instead.
        await storage.stays.set_reminder_settings(
            chat.user_id, ReminderSettings(time(22, 0)), stack.clock.now()
        )
        wednesday = first + timedelta(days=2)  # the evening before Thursday: not a stay day
        set_clock(stack, datetime.combine(wednesday, time(20, 59), JST))
        assert await reminders(stack, chat) == 0
        await storage.stays.add(
            chat.user_id,
            Stay(CODE, first + timedelta(days=3), first + timedelta(days=3), area="本庁地区"),
            stack.clock.now(),
        )
        set_clock(stack, datetime.combine(wednesday, time(20, 58), JST))
        assert await reminders(stack, chat) == 0
        set_clock(stack, datetime.combine(wednesday, time(20, 59), JST))
        assert await reminders(stack, chat) == 1
    finally:
        stack.clock.offset = timedelta()
        await storage.garbage_calendars.remove(CODE)


async def test_the_worker_schedules_the_reminders(stack: Stack) -> None:
    services = stack.services
    worker = Worker(services.storage, stack.clock, make_pipeline(services, None), services.renderer)
    worker.add_standard_jobs()
    assert "garbage-reminders" in {job.id for job in worker.scheduler.get_jobs()}
    assert callable(
        reminder_job(services.storage, lambda: services.line, services.renderer, stack.clock)
    )
