"""The Premium stores and rules on the real database: one waiting application per place, a
decision made exactly once however many callers race (FerretDB 1.24 lets racing conditional
updates all match: the insert-claim decides), eligibility and the photo check."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from bot.clock import Clock
from bot.domain.registration import Refusal
from bot.premium import (
    PENDING_REASON,
    DocumentRejected,
    Standing,
    check_application,
    eligibility,
    sniff_image,
)
from bot.storage import Storage
from bot.storage.premium import APPROVED, PENDING, REJECTED
from tests.test_premium_support import GIF, JPEG, png
from tests.test_staff_support import add_registration

NOW = datetime(2027, 1, 9, 3, 0, tzinfo=UTC)


def user() -> str:
    return "U" + uuid.uuid4().hex


# --- the photo ------------------------------------------------------------------------------------


def test_sniff_image_takes_jpeg_and_png_only() -> None:
    assert sniff_image(png()) == "image/png"
    assert sniff_image(JPEG) == "image/jpeg"
    for content, template in (
        (b"", "premium/document_empty"),
        (GIF, "premium/document_type"),
        (b"\xff\xd8 not really a jpeg", "premium/document_type"),
        (b"%PDF-1.7", "premium/document_type"),
        (JPEG + b"\0" * (10 * 1024 * 1024), "premium/document_too_large"),
    ):
        with pytest.raises(DocumentRejected) as caught:
            sniff_image(content)
        assert caught.value.template == template
    assert sniff_image(JPEG + b"\0" * (10 * 1024 * 1024 - len(JPEG))) == "image/jpeg"


# --- eligibility (pure) ---------------------------------------------------------------------------


def reg(
    place: str, tier: str = "basic", types: tuple[str, ...] = ("bearer",), **kw: object
) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "place_code": place,
        "tier": tier,
        "status": "active",
        "types": list(types),
        "residence_code": "131016",
        "valid_until": NOW + timedelta(days=100) if tier == "premium" else None,
        **kw,
    }


def standing(
    *regs: dict[str, Any], pending: tuple[str, ...] = (), residence: str = "131016"
) -> Standing:
    return Standing(
        registrations=list(regs),
        active_premium=frozenset(r["place_code"] for r in regs if r["tier"] == "premium"),
        pending=frozenset(pending),
        residence=residence,
    )


def test_eligibility_reasons() -> None:
    three = [reg("302015", "premium"), reg("352012", "premium"), reg("442011", "premium")]
    fourth = standing(*three, reg("452017"))
    refused = eligibility(fourth, "452017")
    assert refused.reason == Refusal.PREMIUM_LIMIT and "3か所まで" in refused.message

    # Waiting applications hold a place: two Premium + one waiting + a fourth is full.
    held = standing(*three[:2], reg("442011"), reg("452017"), pending=("442011",))
    refused = eligibility(held, "452017")
    assert refused.reason == Refusal.PREMIUM_LIMIT and refused.counted_pending == 1
    assert eligibility(held, "442011").reason == PENDING_REASON

    assert eligibility(standing(*three), "302015").reason == Refusal.ALREADY_PREMIUM
    own = eligibility(standing(reg("131016")), "131016")
    assert own.reason == Refusal.OWN_RESIDENCE and "お住まい" in own.message
    visit = eligibility(standing(reg("302015", types=("visit", "economic"))), "302015")
    assert visit.reason == Refusal.NOT_ELIGIBLE_TYPE and "担い手" in visit.message
    assert eligibility(standing(reg("302015", types=("dual_residence",))), "302015").ok
    assert eligibility(standing(reg("302015")), "070009").reason == Refusal.UNKNOWN_PLACE
    prefecture = eligibility(standing(reg("300004", via="302015")), "300004")
    assert prefecture.ok


async def test_expired_premium_does_not_count_and_designated_types(storage: Storage) -> None:
    someone = user()
    now = Clock().now()
    for place in ("352012", "442011"):
        await add_registration(
            storage,
            user_id=someone,
            place_code=place,
            tier="premium",
            types=["bearer"],
            valid_until=now + timedelta(days=30),
        )
    await add_registration(
        storage,
        user_id=someone,
        place_code="452017",
        tier="premium",
        types=["bearer"],
        valid_until=now - timedelta(days=1),
    )
    await add_registration(storage, user_id=someone, place_code="302015", types=["bearer"])
    assert (await check_application(storage, someone, "302015", now)).ok

    # A municipality may designate other types (its directory document's `premium_types`).
    visitor = user()
    await add_registration(storage, user_id=visitor, place_code="462012", types=["visit"])
    assert not (await check_application(storage, visitor, "462012", now)).ok
    await storage.municipalities.col.update_one(
        {"_id": "462012"}, {"$set": {"premium_types": ["visit"]}}, upsert=True
    )
    try:
        assert (await check_application(storage, visitor, "462012", now)).ok
    finally:
        await storage.municipalities.col.update_one(
            {"_id": "462012"}, {"$unset": {"premium_types": ""}}
        )


# --- applications and decisions -------------------------------------------------------------------


async def test_one_waiting_application_per_place(storage: Storage) -> None:
    apps = storage.premium_applications
    someone = user()
    first = await apps.submit(someone, "302015", ObjectId(), "staff_review", NOW)
    assert first.application is not None and not first.already_pending
    assert (await apps.submit(someone, "302015", ObjectId(), "staff_review", NOW)).already_pending
    racing = await asyncio.gather(
        *(apps.submit(someone, "352012", ObjectId(), "staff_review", NOW) for _ in range(8))
    )
    assert sum(1 for r in racing if r.application is not None) == 1

    # Once decided, the resident may apply again.
    decided = await apps.decide(str(first.application["_id"]), REJECTED, "a@example.jp", "x", NOW)
    assert decided is not None and decided["status"] == REJECTED
    again = await apps.submit(someone, "302015", ObjectId(), "staff_review", NOW)
    assert again.application is not None
    assert {d["place_code"] for d in await apps.pending_for_user(someone)} == {"302015", "352012"}


async def test_racing_decisions_make_exactly_one(storage: Storage) -> None:
    apps = storage.premium_applications
    someone = user()
    submitted = await apps.submit(someone, "302015", ObjectId(), "staff_review", NOW)
    assert submitted.application is not None
    app_id = str(submitted.application["_id"])
    results = await asyncio.gather(
        *(
            apps.decide(app_id, APPROVED if i % 2 else REJECTED, f"s{i}@example.jp", "r", NOW)
            for i in range(20)
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await apps.get(app_id)
    assert stored is not None and stored["status"] == winners[0]["status"]
    assert stored["decided_by"] == winners[0]["decided_by"]
    assert await apps.decisions.col.count_documents({"_id": ObjectId(app_id)}) == 1
    assert await apps.decide(app_id, APPROVED, "late@example.jp", "", NOW) is None
    assert await apps.decide("not-an-id", APPROVED, "x", "", NOW) is None
    assert await apps.decide(str(ObjectId()), APPROVED, "x", "", NOW) is None
    with pytest.raises(ValueError):
        await apps.decide(app_id, PENDING, "x", "", NOW)


async def test_a_claim_whose_winner_died_still_leaves_the_queue(storage: Storage) -> None:
    apps = storage.premium_applications
    submitted = await apps.submit(user(), "302015", ObjectId(), "staff_review", NOW)
    assert submitted.application is not None
    oid = submitted.application["_id"]
    # The winner claimed, then died before updating the application.
    await apps.decisions.col.insert_one(
        {
            "_id": oid,
            "user_id": submitted.application["user_id"],
            "place_code": "302015",
            "status": APPROVED,
            "decided_by": "gone@example.jp",
            "reason": "",
            "decided_at": NOW,
        }
    )
    assert await apps.decide(str(oid), REJECTED, "other@example.jp", "r", NOW) is None
    stored = await apps.get(oid)
    assert stored is not None and stored["status"] == APPROVED
    assert stored["decided_by"] == "gone@example.jp"
    assert oid not in {d["_id"] for d in await apps.pending_for(["302015"])}


async def test_documents_are_kept_until_discarded_and_tenant_lookups(storage: Storage) -> None:
    apps = storage.premium_applications
    someone = user()
    submitted = await apps.submit(someone, "302015", ObjectId(), "staff_review", NOW)
    assert submitted.application is not None
    oid = submitted.application["_id"]
    await storage.identity_documents.put(oid, someone, png(), "image/png", NOW)
    assert await storage.identity_documents.get(oid) == (png(), "image/png")
    assert await storage.identity_documents.exists(oid)
    assert await apps.get_for({"302015"}, str(oid)) is not None
    assert await apps.get_for({"352012"}, str(oid)) is None
    assert await apps.get_for(set(), str(oid)) is None
    await storage.identity_documents.discard(oid)
    assert await storage.identity_documents.get(oid) is None

    await apps.decide(str(oid), APPROVED, "a@example.jp", "", NOW + timedelta(days=3650))
    assert [d["_id"] for d in await apps.decided_for({"302015"}, APPROVED)][:1] == [oid]
    assert await apps.delete_for_user(someone) == 1
    assert await apps.decisions.get(oid) is None
