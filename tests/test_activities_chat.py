"""Bearer activities end to end: staff post an activity, residents apply in the chat at the same
time (capacity 2 for 5 people), a cancellation moves the head of the waiting list up (and tells
them), the day-before reminder goes once, attendance by the code shown on site and by staff."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any

from bot.clock import JST
from bot.domain.activities import Activity, ActivityKind
from bot.jobs.activity_reminders import run_activity_reminders
from tests.stack import Chat, Stack
from tests.test_staff_support import Site, add_registration

PLACE = "042056"


def move_to(stack: Stack, when: datetime) -> None:
    stack.clock.offset = when - datetime.now(UTC)


async def resident(stack: Stack, name: str) -> tuple[Chat, dict[str, Any]]:
    chat = await stack.user(name)
    reg = await add_registration(
        stack.services.storage, user_id=chat.user_id, place_code=PLACE, nickname=name
    )
    return chat, reg


async def apply_in_chat(chat: Chat, label: str) -> str:
    await chat.send("活動")
    assert "何をしますか" in chat.last_text, chat.last_text
    await chat.tap("活動を探す")
    assert "募集中の活動" in chat.last_text, chat.last_text
    await chat.tap(label)
    assert "申し込みますか" in chat.last_text, chat.last_text
    await chat.tap("申し込む")
    return chat.last_text


async def test_apply_cancel_move_up_remind_and_attend(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    try:
        staff = await site.staff(PLACE, "editor")
        day = datetime.now(JST).date() + timedelta(days=5)
        starts = datetime.combine(day, time(9, 0), JST)
        status, body = await staff.api(
            "POST",
            "/activities",
            {
                "title": "浜の清掃",
                "kind": "volunteer",
                "starts_at": starts.replace(tzinfo=None).isoformat(),
                "ends_at": (starts + timedelta(hours=3)).replace(tzinfo=None).isoformat(),
                "place": "気仙沼港 集合",
                "capacity": 2,
                "description": "軍手をご持参ください。",
            },
        )
        assert status == 201, body
        activity_id = body["id"]
        assert len(body["attendance_code"]) == 6
        label = f"{day.month}/{day.day} 浜の清掃"

        people = [await resident(stack, f"担い手{i}") for i in range(5)]
        said = await asyncio.gather(*(apply_in_chat(chat, label) for chat, _ in people))
        confirmed = [
            p for p, text in zip(people, said, strict=True) if "受け付けました。\n" in text
        ]
        assert sum("参加を受け付けました" in text for text in said) == 2, said
        assert sum("キャンセル待ち" in text for text in said) == 3, said
        status, detail = await staff.api("GET", f"/activities/{activity_id}")
        assert status == 200
        assert len(detail["participants"]) == 2 and len(detail["waiting_list"]) == 3
        assert all("user_id" not in p for p in detail["participants"])  # no LINE ids for staff
        head_number = detail["waiting_list"][0]["number"]
        head = next(p for p in people if p[1]["number"] == head_number)

        # A confirmed resident cancels; the head of the waiting list moves up and is told.
        leaver = next(p for p in people if p[1]["number"] == detail["participants"][0]["number"])
        chat = leaver[0]
        await chat.send("活動")
        await chat.tap("申し込みの確認")
        assert "参加確定" in chat.last_text
        await chat.tap(label)
        assert "取り消しますか" in chat.last_text
        await chat.tap("取り消す")
        assert "取り消しました" in chat.last_text
        pushed = await head[0].inbox()
        assert any("参加が決まりました" in str(e["message"].get("text")) for e in pushed)
        status, detail = await staff.api("GET", f"/activities/{activity_id}")
        numbers = {p["number"] for p in detail["participants"]}
        assert head_number in numbers and leaver[1]["number"] not in numbers
        assert len(detail["waiting_list"]) == 2

        # The evening before: one reminder each to those taking part, once.
        services = stack.services
        move_to(stack, datetime.combine(day - timedelta(days=1), time(18, 30), JST))
        sent = await run_activity_reminders(storage, services.line, services.renderer, stack.clock)
        assert sent >= 2
        taking_part = [p for p in people if p[1]["number"] in numbers]
        for chat, _ in taking_part:
            entries = await chat.inbox()
            assert any("あしたは「浜の清掃」" in str(e["message"].get("text")) for e in entries)
        await run_activity_reminders(storage, services.line, services.renderer, stack.clock)
        for chat, _ in taking_part:
            assert await chat.inbox(wait=0.3) == []

        # On the day: the code shown on site, typed in the chat.
        move_to(stack, starts + timedelta(minutes=5))
        attendee_chat, attendee_reg = taking_part[0]
        await attendee_chat.send("出席")
        assert "出席コード" in attendee_chat.last_text
        await attendee_chat.send("ZZZZZZ" if detail["attendance_code"] != "ZZZZZZ" else "YYYYYY")
        assert "違うようです" in attendee_chat.last_text
        await attendee_chat.send(detail["attendance_code"].lower())
        assert "出席を記録しました" in attendee_chat.last_text
        await attendee_chat.send("活動")
        assert "この1年間の参加：宮城県気仙沼市 1回" in attendee_chat.last_text
        await attendee_chat.send("やめる")
        # A waiting resident has nothing to attend today.
        waiting_chat = next(p for p in people if p not in taking_part and p is not leaver)[0]
        await waiting_chat.send("出席")
        assert "きょう参加が決まっている活動はありません" in waiting_chat.last_text

        # Staff mark the other participant in the console (their session lives in real time).
        stack.clock.offset = timedelta()
        other_reg = taking_part[1][1]
        status, html = await staff.page(f"/admin/activities/{activity_id}")
        assert status == 200 and detail["attendance_code"] in html and "出席済み" in html
        status, _, _ = await staff.post(
            f"/admin/activities/{activity_id}/attendance",
            {"registration_id": str(other_reg["_id"])},
        )
        assert status == 303
        status, detail = await staff.api("GET", f"/activities/{activity_id}")
        assert [p["attended"] for p in detail["participants"]] == [True, True]
        year = day.year
        counts = await storage.attendance.counts_for_place(PLACE, year)
        assert counts[attendee_chat.user_id] == 1 and counts[taking_part[1][0].user_id] == 1
        status, body = await staff.api("GET", "/activity-counts", params={"year": str(year)})
        assert status == 200, body
        by_number = {row["number"]: row["count"] for row in body["items"]}
        assert by_number[attendee_reg["number"]] == 1 and by_number[other_reg["number"]] == 1
        assert "user_id" not in str(body)
        status, _ = await staff.api("GET", "/activity-counts", params={"year": "20x"})
        assert status == 422
        assert confirmed  # the two first confirmed were told so in the chat
        assert attendee_reg["place_code"] == PLACE
    finally:
        stack.clock.offset = timedelta()
        await site.close()


async def test_staff_console_posts_and_guards(stack: Stack) -> None:
    site = Site(stack)
    try:
        editor = await site.staff(PLACE, "editor")
        status, html = await editor.page("/admin/activities")
        assert status == 200 and "活動を登録" in html
        status, html, _ = await editor.post(
            "/admin/activities",
            {
                "title": "<b>稲刈り</b>",
                "kind": "side_job",
                "starts_at": "2031-09-20T09:00",
                "ends_at": "2031-09-20T08:00",
                "place": "田んぼ",
                "capacity": "3",
            },
        )
        assert status == 422 and "終了日時は開始日時より後" in html
        status, _, response = await editor.post(
            "/admin/activities",
            {
                "title": "<b>稲刈り</b>",
                "kind": "side_job",
                "starts_at": "2031-09-20T09:00",
                "ends_at": "2031-09-20T15:00",
                "place": "田んぼ",
                "capacity": "3",
            },
        )
        assert status == 303
        location = response.headers["Location"]
        status, html = await editor.page(location.split("?")[0])
        assert status == 200 and "&lt;b&gt;稲刈り&lt;/b&gt;" in html
        assert "9月20日（土）09:00〜15:00" in html
        activity_id = location.split("?")[0].rsplit("/", 1)[1]

        # Another municipality neither sees nor changes it.
        other = await site.staff("072133", "admin")
        status, _ = await other.api("GET", f"/activities/{activity_id}")
        assert status == 404
        status, _ = await other.api("PUT", f"/activities/{activity_id}/capacity", {"capacity": 9})
        assert status == 404

        # Only an admin sets the renewal requirement; editors may not.
        status, _ = await editor.api("PUT", "/activity-settings", {"renewal_required": 4})
        assert status == 403
        admin = await site.staff(PLACE, "admin")
        status, body = await admin.api("PUT", "/activity-settings", {"renewal_required": 4})
        assert status == 200 and body["renewal_required"] == 4
        status, body = await admin.api("GET", "/activity-settings")
        assert body["renewal_required"] == 4
        status, _ = await admin.api("PUT", "/activity-settings", {"renewal_required": 0})
        assert status == 422
    finally:
        await stack.services.storage.activity_settings.col.delete_one({"_id": PLACE})
        await site.close()


async def one_seat_two_people(stack: Stack, title: str, days: int) -> tuple[Activity, Chat, Chat]:
    """An activity `days` ahead with one seat: one resident holds it, another waits."""
    storage = stack.services.storage
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    activity = await storage.activities.add(
        Activity(
            "new",
            PLACE,
            title,
            ActivityKind.VOLUNTEER,
            starts,
            starts + timedelta(hours=2),
            "山",
            1,
        ),
        datetime.now(UTC),
    )
    (holder, _), (waiting, _) = await resident(stack, "先"), await resident(stack, "後")
    now = datetime.now(UTC)
    assert (await storage.rosters.apply(activity, holder.user_id, now)).outcome == "confirmed"
    assert (await storage.rosters.apply(activity, waiting.user_id, now)).outcome == "waitlisted"
    return activity, holder, waiting


async def test_a_seat_freed_by_data_deletion_goes_to_the_waiting_list(stack: Stack) -> None:
    from bot.storage.privacy import delete_person

    storage = stack.services.storage
    services = stack.services
    activity, first, second = await one_seat_two_people(stack, "植樹", days=20)
    await delete_person(storage, first.user_id)
    await run_activity_reminders(storage, services.line, services.renderer, stack.clock)
    entries = await second.inbox()
    assert any("「植樹」に空きが出た" in str(e["message"].get("text")) for e in entries)
    assert await storage.rosters.status(activity.id, second.user_id) == ("confirmed", None)


async def test_a_withdrawal_run_again_after_a_crash_tells_who_moved_up_once(stack: Stack) -> None:
    """The process died after the withdrawal, before telling the head of the waiting list."""
    from bot.dialog.engine import DialogEngine
    from bot.line.incoming import Incoming
    from bot.line.webhook import PIPELINE
    from bot.router import Router

    storage = stack.services.storage
    activity, leaver, waiting = await one_seat_two_people(stack, "草刈り", days=10)
    starts = activity.starts_at.astimezone(JST)
    await leaver.send("活動")
    await leaver.tap("申し込みの確認")
    await leaver.tap(f"{starts.month}/{starts.day} 草刈り")
    await leaver.tap("取り消す")
    assert "取り消しました" in leaver.last_text
    told = [e for e in await waiting.inbox() if "参加が決まりました" in str(e["message"])]
    assert len(told) == 1
    [promotion] = await storage.rosters.promotions(activity.id)
    assert promotion.user_id == waiting.user_id
    # What a crash right after the withdrawal leaves: the move up never told.
    await storage.sends.col.delete_many({"_id": {"$regex": promotion.token}})

    committed = await storage.conversations.load(leaver.user_id)
    assert committed.completing is not None and committed.event_id
    # The same webhook event (its body is not kept once handled: only its id matters here).
    incoming = Incoming(leaver.user_id, "postback", stack.clock.now(), committed.event_id)
    pipeline = stack.bot_app[PIPELINE]
    assert isinstance(pipeline.handler, Router)
    assert isinstance(pipeline.handler.dialog, DialogEngine)
    answer = await pipeline.handler.dialog.handle(incoming)  # the survivor runs it again
    assert "取り消しました" in str(answer[0].to_dict())
    told = [e for e in await waiting.inbox() if "参加が決まりました" in str(e["message"])]
    assert len(told) == 1
    await pipeline.handler.dialog.handle(incoming)  # and again: told before, not sent again
    assert await waiting.inbox(wait=0.5) == []
