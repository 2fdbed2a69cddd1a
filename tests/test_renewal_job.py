"""Premium renewal through the worker job, run in-process after moving the clock: reminders 30
and 7 days before (with the count, once each), then renewal at exactly 2, 3 and 4 activities
(and a municipality requiring 5); the expired card on the verification page."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from bot.cards import verify_url
from bot.clock import JST
from bot.domain.activities import Activity, ActivityKind
from bot.jobs.renewals import run_renewals
from bot.storage.activities import end_of_day
from tests.stack import Chat, Stack
from tests.test_staff_support import add_registration

PLACE = "042056"


def move_to(stack: Stack, day: date, at: time = time(12, 0)) -> None:
    """Move the stack's clock to `at` on this Japan date."""
    target = datetime.combine(day, at, JST).astimezone(UTC)
    stack.clock.offset = target - datetime.now(UTC)


async def attended(stack: Stack, user_id: str, place: str, days: list[date]) -> None:
    storage = stack.services.storage
    for day in days:
        starts = datetime.combine(day, time(9, 0), JST)
        activity = await storage.activities.add(
            Activity(
                "new",
                place,
                "清掃",
                ActivityKind.VOLUNTEER,
                starts,
                starts + timedelta(hours=2),
                "港",
                5,
            ),
            datetime.now(UTC),
        )
        assert await storage.attendance.record(activity, user_id, "staff", datetime.now(UTC))


async def premium_member(
    stack: Stack, name: str, last_day: date, count: int, place: str = PLACE
) -> tuple[Chat, dict[str, object]]:
    chat = await stack.user(name)
    await chat.inbox(wait=0.5)
    reg = await add_registration(
        stack.services.storage,
        user_id=chat.user_id,
        place_code=place,
        tier="premium",
        types=["bearer"],
        valid_until=end_of_day(last_day),
    )
    # `count` activities inside the year, one more than a year before (it does not count).
    days = [last_day - timedelta(days=40 + 20 * i) for i in range(count)]
    await attended(stack, chat.user_id, place, [*days, last_day - timedelta(days=400)])
    return chat, reg


async def run(stack: Stack) -> int:
    services = stack.services
    return await run_renewals(services.storage, services.line, services.renderer, stack.clock)


async def texts(chat: Chat, wait: float = 3.0) -> str:
    entries = await chat.inbox(wait=wait)
    return "\n".join(str(e["message"].get("text", "")) for e in entries)


async def test_reminders_then_renewal_at_two_three_and_four(stack: Stack) -> None:
    storage = stack.services.storage
    today = datetime.now(JST).date()
    last_day = today + timedelta(days=60)
    members = {n: await premium_member(stack, f"会員{n}", last_day, n) for n in (2, 3, 4)}
    try:
        move_to(stack, last_day - timedelta(days=30))
        await run(stack)
        for n, (chat, _) in members.items():
            said = await texts(chat)
            assert "あと30日" in said and f"参加は{n}回" in said, said
            if n < 3:
                assert "あと1回" in said
            else:
                assert "自動で1年間更新" in said
        await run(stack)  # the same day again: nothing new
        for chat, _ in members.values():
            assert await texts(chat, wait=0.3) == ""

        move_to(stack, last_day - timedelta(days=7))
        await run(stack)
        for n, (chat, _) in members.items():
            said = await texts(chat)
            assert "あと7日" in said and f"参加は{n}回" in said, said

        move_to(stack, last_day)  # the last valid day: still Premium
        await run(stack)
        for _, reg in members.values():
            doc = await storage.registrations.get(str(reg["_id"]))
            assert doc is not None and doc["tier"] == "premium"

        move_to(stack, last_day + timedelta(days=1), time(0, 30))
        await run(stack)
        await run(stack)  # a second run (or a second worker) decides nothing new
        for n, (chat, reg) in members.items():
            doc = await storage.registrations.get(str(reg["_id"]))
            assert doc is not None
            said = await texts(chat)
            assert doc["card_version"] == 2  # changed once
            if n == 2:
                assert doc["tier"] == "basic" and doc["valid_until"] is None
                assert "2回" in said and "必要な3回に届かなかった" in said
                assert "ベーシック登録に戻りました" in said
            else:
                new_last = last_day + timedelta(days=365)
                assert doc["tier"] == "premium"
                assert doc["valid_until"].astimezone(JST).date() == new_last
                assert "更新しました" in said and f"{n}回" in said
                assert f"{new_last.year}年{new_last.month}月{new_last.day}日" in said
            assert await texts(chat, wait=0.3) == ""
    finally:
        stack.clock.offset = timedelta()


async def test_a_municipality_requiring_five(stack: Stack) -> None:
    storage = stack.services.storage
    place = "202142"  # 茅野市
    await storage.activity_settings.set_required(place, 5, datetime.now(UTC))
    today = datetime.now(JST).date()
    last_day = today + timedelta(days=10)
    four, reg4 = await premium_member(stack, "四回", last_day, 4, place)
    five, reg5 = await premium_member(stack, "五回", last_day, 5, place)
    try:
        move_to(stack, last_day - timedelta(days=7))
        await run(stack)
        assert "更新には5回以上" in await texts(four)
        assert "必要な5回に達している" in await texts(five)
        move_to(stack, last_day + timedelta(days=1))
        await run(stack)
        doc4 = await storage.registrations.get(str(reg4["_id"]))
        doc5 = await storage.registrations.get(str(reg5["_id"]))
        assert doc4 is not None and doc4["tier"] == "basic"
        assert doc5 is not None and doc5["tier"] == "premium"
        assert "必要な5回に届かなかった" in await texts(four)
        assert "更新しました" in await texts(five)
    finally:
        stack.clock.offset = timedelta()
        await storage.activity_settings.col.delete_one({"_id": place})


async def test_expired_premium_shows_as_expired_on_the_verification_page(stack: Stack) -> None:
    storage = stack.services.storage
    today = datetime.now(JST).date()
    reg = await add_registration(
        storage,
        tier="premium",
        types=["bearer"],
        valid_until=end_of_day(today - timedelta(days=1)),
    )
    url = verify_url(reg, stack.settings)
    async with stack.http.get(url) as response:
        html = await response.text()
    assert response.status == 200
    assert "有効期限切れ" in html and "プレミアム" in html
    # Still within its validity: 有効.
    fresh = await add_registration(
        storage, tier="premium", types=["bearer"], valid_until=end_of_day(today)
    )
    async with stack.http.get(verify_url(fresh, stack.settings)) as response:
        html = await response.text()
    assert "有効期限切れ" not in html and "有効" in html
