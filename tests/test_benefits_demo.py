"""The demo data: slide 5's programs and benefits, loaded idempotently and published, and who
can use them (the Fukushima telework subsidy: members living outside Fukushima)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from bot.benefits import open_offers, seed_slide5
from bot.domain.benefits import slide5_benefits
from bot.domain.programs import FUKUSHIMA_FAN_CLUB, slide5_programs
from bot.storage import Storage
from tests.test_staff_support import add_registration


async def test_seed_is_idempotent_and_published(storage: Storage) -> None:
    now = datetime.now(UTC)
    await seed_slide5(storage, now)
    await seed_slide5(storage, now + timedelta(minutes=1))
    for program in slide5_programs():
        stored = await storage.programs.get(program.id)
        assert stored is not None and stored.program == program
    for benefit in slide5_benefits():
        stored_benefit = await storage.benefits.get(benefit.municipality_code, benefit.id)
        assert stored_benefit is not None
        assert stored_benefit.benefit == benefit
        assert stored_benefit.published and not stored_benefit.notices_pending
    codes = {b.municipality_code for b in slide5_benefits()}
    assert codes == {"042056", "152269", "212156", "070009"}


async def test_fukushima_subsidy_for_members_outside_fukushima(storage: Storage) -> None:
    now = datetime.now(UTC)
    await seed_slide5(storage, now)
    club = await storage.programs.get(FUKUSHIMA_FAN_CLUB)
    assert club is not None
    today = (now + timedelta(hours=9)).date()

    async def titles(residence: str, member: bool) -> list[str]:
        user_id = f"U{secrets.token_hex(16)}"
        await add_registration(
            storage,
            user_id=user_id,
            place_code="070009",
            residence_code=residence,
            since=now - timedelta(days=1),
        )
        if member:
            number = f"{secrets.randbelow(10**6):06d}"
            await storage.program_links.link(club.program, user_id, number, now)
        return [offer.benefit.id for offer in await open_offers(storage, user_id, today)]

    telework = ["fukushima-long-telework", "fukushima-short-telework"]
    assert sorted(await titles("131016", member=True)) == telework  # Tokyo, member
    assert await titles("131016", member=False) == []
    assert await titles("072133", member=True) == []  # lives in Fukushima
