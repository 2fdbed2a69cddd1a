"""Publishing a benefit tells exactly the eligible residents who allow 「特典」 notices, once, in
batches, and never in quiet hours (21:00–08:00 Japan time): checked in the emulator, with the
worker job run in-process after moving the clock."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.benefits import NoticeRun, plan_notices
from bot.clock import JST
from bot.domain.benefits import Benefit, BenefitKind, Eligibility
from bot.domain.programs import Program
from bot.jobs.benefit_notices import benefit_notices
from bot.storage import Storage
from bot.storage.preferences import Topic
from tests.stack import Chat, Stack
from tests.test_staff_support import Site, add_registration

YUBARI = "012092"  # 北海道夕張市
SAPPORO = "011002"  # 北海道札幌市
CLUB = "yubari-melon-club"


def at_jst(stack: Stack, days: int, hour: int, minute: int = 0) -> datetime:
    """Move the clock to `hour:minute` Japan time, `days` days from today."""
    target = (datetime.now(JST) + timedelta(days=days)).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )
    stack.clock.offset = target - datetime.now(UTC)
    return target


async def run(stack: Stack) -> NoticeRun:
    services = stack.services
    return await benefit_notices(services.storage, stack.clock, services.line, services.renderer)


async def notices(chat: Chat, wait: float = 1.0) -> list[dict[str, Any]]:
    return [entry["message"] for entry in await chat.inbox(wait=wait)]


@pytest.fixture
async def place(stack: Stack) -> AsyncIterator[Storage]:
    """夕張市 to ourselves: no registrations or benefits of earlier tests."""
    storage = stack.services.storage
    for store in (storage.registrations, storage.benefits):
        await store.col.delete_many({"place_code": YUBARI})
    await storage.programs.put(
        Program(CLUB, YUBARI, "夕張メロン倶楽部", "NNNNNN"), datetime.now(UTC)
    )
    yield storage
    for store in (storage.registrations, storage.benefits):
        await store.col.delete_many({"place_code": YUBARI})
    await storage.programs.col.delete_one({"_id": CLUB})
    stack.clock.offset = timedelta()


async def resident(stack: Stack, name: str, *, member: bool, place: str = YUBARI) -> Chat:
    chat = await stack.user(name)
    storage = stack.services.storage
    await add_registration(storage, user_id=chat.user_id, place_code=place)
    if member:
        program = (await storage.programs.get(CLUB)).program  # type: ignore[union-attr]
        number = f"{secrets.randbelow(10**6):06d}"
        await storage.program_links.link(program, chat.user_id, number, datetime.now(UTC))
    return chat


async def test_publishing_tells_exactly_the_eligible_residents_once(
    stack: Stack, place: Storage
) -> None:
    storage = place
    site = Site(stack)
    benefit_id = f"melon-{secrets.token_hex(3)}"
    try:
        at_jst(stack, 1, 10)
        member = await resident(stack, "会員さん", member=True)
        member_muted = await resident(stack, "通知オフの会員さん", member=True)
        await storage.preferences.set(
            member_muted.user_id, YUBARI, Topic.BENEFITS, False, stack.clock.now()
        )
        member_news_off = await resident(stack, "お知らせだけオフ", member=True)
        await storage.preferences.set(
            member_news_off.user_id, YUBARI, Topic.NEWS, False, stack.clock.now()
        )
        not_member = await resident(stack, "会員でない人", member=False)
        elsewhere = await resident(stack, "札幌の人", member=False, place=SAPPORO)

        staff = await site.staff(YUBARI, "editor")
        body = {
            "title": "夕張メロン直売所 5%引き",
            "description": "会員の方は直売所で5%引きになります。",
            "kind": "shop_discount",
            "eligibility": {"program_id": CLUB},
        }
        status, answer = await staff.api("PUT", f"/benefits/{benefit_id}", body)
        assert status == 200, answer
        assert (await run(stack)).planned == 0  # a draft tells nobody

        status, answer = await staff.api("POST", f"/benefits/{benefit_id}/publish")
        assert status == 200, answer
        done = await run(stack)
        assert done.planned == 2 and done.sent_to == 2 and done.batches == 1

        for chat in (member, member_news_off):
            received = await notices(chat)
            assert len(received) == 1, received
            text = received[0]["text"]
            assert "夕張メロン直売所 5%引き" in text and "北海道夕張市" in text
            labels = [item["action"]["label"] for item in received[0]["quickReply"]["items"]]
            assert labels == ["詳しく見る", "特典一覧"]
        for chat in (member_muted, not_member, elsewhere):
            assert await notices(chat, wait=0.3) == []

        # 「詳しく見る」 opens the benefit.
        await member.tap("詳しく見る")
        assert "会員の方は直売所で5%引きになります。" in member.last_text

        # Running again, editing, unpublishing and publishing again: nobody is told twice.
        assert (await run(stack)).sent_to == 0
        status, _ = await staff.api("PUT", f"/benefits/{benefit_id}", body | {"title": "7%引き"})
        await staff.api("POST", f"/benefits/{benefit_id}/unpublish")
        await staff.api("POST", f"/benefits/{benefit_id}/publish")
        again = await run(stack)
        assert again.planned == 0 and again.sent_to == 0
        assert await notices(member, wait=0.3) == []

        # Someone who becomes eligible later is told at the next publication.
        program = (await storage.programs.get(CLUB)).program  # type: ignore[union-attr]
        await storage.program_links.link(program, not_member.user_id, "777777", stack.clock.now())
        await staff.api("POST", f"/benefits/{benefit_id}/publish")
        late = await run(stack)
        assert late.planned == 1 and late.sent_to == 1
        assert len(await notices(not_member)) == 1
        assert await notices(member, wait=0.3) == []

        status, answer = await staff.api("GET", f"/benefits/{benefit_id}")
        assert answer["notified"] == 3
    finally:
        await site.close()


async def test_quiet_hours_defer_the_notice_to_eight(stack: Stack, place: Storage) -> None:
    storage = place
    evening = at_jst(stack, 1, 22, 30)
    chat = await resident(stack, "夜の人", member=False)
    benefit = Benefit("night", YUBARI, "夜に公開した特典", "説明", BenefitKind.OTHER)
    await storage.benefits.put(benefit, stack.clock.now())
    await storage.benefits.publish(YUBARI, "night", stack.clock.now())

    done = await run(stack)
    assert done.planned == 1 and done.deferred and done.sent_to == 0
    [batch] = await storage.benefit_notice_batches.for_benefit(f"{YUBARI}:night")
    not_before = batch["not_before"].replace(tzinfo=UTC).astimezone(JST)
    assert not_before == (evening + timedelta(days=1)).replace(hour=8, minute=0)
    assert await notices(chat, wait=0.3) == []

    at_jst(stack, 2, 7, 59)
    assert (await run(stack)).sent_to == 0
    assert await notices(chat, wait=0.3) == []

    at_jst(stack, 2, 8, 0)
    assert (await run(stack)).sent_to == 1
    received = await notices(chat)
    assert len(received) == 1 and "夜に公開した特典" in received[0]["text"]
    assert (await run(stack)).sent_to == 0


async def test_large_places_are_sent_in_batches_of_500_and_planners_never_double(
    stack: Stack, place: Storage
) -> None:
    storage = place
    at_jst(stack, 1, 12)
    now = stack.clock.now()
    users = [f"U{secrets.token_hex(16)}" for _ in range(1203)]
    docs = [
        {
            "user_id": user_id,
            "place_code": YUBARI,
            "tier": "basic",
            "status": "active",
            "types": ["visit"],
            "residence_code": "131016",
            "age_band": "30s",
            "since": now - timedelta(days=3),
            "created_at": now,
        }
        for user_id in users
    ]
    await storage.registrations.col.insert_many(docs)
    benefit = Benefit("everyone", YUBARI, "みんなの特典", "説明", BenefitKind.OTHER, Eligibility())
    stored = await storage.benefits.put(benefit, now)
    stored = await storage.benefits.publish(YUBARI, "everyone", now)
    assert stored is not None

    # Two planners at once (two workers): every resident is claimed exactly once.
    first, second = await asyncio.gather(
        plan_notices(storage, stored, now), plan_notices(storage, stored, now)
    )
    assert first.planned + second.planned == 1203
    key = f"{YUBARI}:everyone"
    assert await storage.benefit_notices.count_for(key) == 1203
    batches = await storage.benefit_notice_batches.for_benefit(key)
    members = [await storage.benefit_notices.users_of_batch(str(b["_id"])) for b in batches]
    assert all(1 <= len(m) <= 500 for m in members)
    assert sorted(u for m in members for u in m) == sorted(users)

    sent = await run(stack)
    assert sent.sent_to == 1203 and sent.sent_batches == len(batches)
    sends = await storage.sends.col.count_documents(
        {"_id": {"$in": [f"benefit-notice:{b['_id']}" for b in batches]}, "status": "sent"}
    )
    assert sends == len(batches)
    await storage.benefit_notices.col.delete_many({"benefit_key": key})
    await storage.benefit_notice_batches.col.delete_many({"benefit_key": key})
