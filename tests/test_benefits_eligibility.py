"""Eligibility as the service sees it: registrations documents → holders → open benefits, over a
matrix of cases (pure functions, no database), and the stored form of a benefit round-trips."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from bot.benefits import holder_of
from bot.domain.benefits import (
    Benefit,
    BenefitKind,
    Condition,
    Eligibility,
    PartnerShop,
    is_eligible,
    slide5_benefits,
)
from bot.domain.programs import FUKUSHIMA_FAN_CLUB, KESENNUMA_FAN_CLUB
from bot.domain.registration import AgeBand, RelationshipType, Tier
from bot.storage.benefits import benefit_document, benefit_from, eligibility_from

TODAY = date(2027, 4, 1)
KESENNUMA = "042056"
FUKUSHIMA = "070009"


def registration(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "place_code": KESENNUMA,
        "tier": "basic",
        "status": "active",
        "types": ["visit"],
        "residence_code": "131016",  # 東京都千代田区
        "age_band": "30s",
        # 2027-03-01 09:00 JST
        "since": datetime(2027, 3, 1, 0, 0, tzinfo=UTC),
    }
    doc.update(overrides)
    return doc


def test_holder_of_reads_a_registration_document() -> None:
    holder = holder_of(registration(types=["visit", "bearer", "retired-type"]), ["x"], TODAY)
    assert holder.place_code == KESENNUMA
    assert holder.tier is Tier.BASIC
    assert holder.types == {RelationshipType.VISIT, RelationshipType.BEARER}  # unknown dropped
    assert holder.residence_code == "131016"
    assert holder.registered_since == date(2027, 3, 1)
    assert holder.program_ids == {"x"}
    assert holder.age_band is AgeBand.THIRTIES


def test_registered_since_is_the_japan_date() -> None:
    # 2027-02-28 16:00 UTC is already 2027-03-01 in Japan
    late = registration(since=datetime(2027, 2, 28, 16, 0, tzinfo=UTC))
    assert holder_of(late, [], TODAY).registered_since == date(2027, 3, 1)
    missing = registration(since=None, created_at=None, residence_code="", age_band="?")
    holder = holder_of(missing, [], TODAY)
    assert holder.registered_since == TODAY
    assert holder.residence_code is None and holder.age_band is None


def benefit(rule: Eligibility, place: str = KESENNUMA, **kw: Any) -> Benefit:
    return Benefit("b", place, "特典", "説明", BenefitKind.OTHER, rule, **kw)


CASES: list[tuple[str, Eligibility, dict[str, Any], list[str], set[Condition]]] = [
    ("anyone", Eligibility(), {}, [], set()),
    ("premium only, basic", Eligibility(tiers=frozenset({Tier.PREMIUM})), {}, [], {Condition.TIER}),
    (
        "premium only, premium",
        Eligibility(tiers=frozenset({Tier.PREMIUM})),
        {"tier": "premium"},
        [],
        set(),
    ),
    (
        "bearer only, visitor",
        Eligibility(types=frozenset({RelationshipType.BEARER})),
        {},
        [],
        {Condition.TYPE},
    ),
    (
        "bearer or visit, visitor",
        Eligibility(types=frozenset({RelationshipType.BEARER, RelationshipType.VISIT})),
        {},
        [],
        set(),
    ),
    ("outside, Tokyo", Eligibility(outside_prefecture=True), {}, [], set()),
    (
        "outside, Sendai",
        Eligibility(outside_prefecture=True),
        {"residence_code": "041009"},
        [],
        {Condition.OUTSIDE_PREFECTURE},
    ),
    (
        "outside, unknown residence",
        Eligibility(outside_prefecture=True),
        {"residence_code": None},
        [],
        {Condition.OUTSIDE_PREFECTURE},
    ),
    ("31 days, 31 days in", Eligibility(min_days_registered=31), {}, [], set()),
    (
        "32 days, 31 days in",
        Eligibility(min_days_registered=32),
        {},
        [],
        {Condition.DAYS_REGISTERED},
    ),
    (
        "program, not linked",
        Eligibility(program_id=KESENNUMA_FAN_CLUB),
        {},
        ["other"],
        {Condition.PROGRAM},
    ),
    (
        "program, linked",
        Eligibility(program_id=KESENNUMA_FAN_CLUB),
        {},
        [KESENNUMA_FAN_CLUB],
        set(),
    ),
    (
        "age 60s, 30s",
        Eligibility(age_bands=frozenset({AgeBand.SIXTIES})),
        {},
        [],
        {Condition.AGE_BAND},
    ),
    (
        "everything unmet",
        Eligibility(
            tiers=frozenset({Tier.PREMIUM}),
            types=frozenset({RelationshipType.BEARER}),
            outside_prefecture=True,
            min_days_registered=100,
            program_id=KESENNUMA_FAN_CLUB,
            age_bands=frozenset({AgeBand.SIXTIES}),
        ),
        {"residence_code": "042021"},  # 石巻市: inside 宮城県
        [],
        {
            Condition.TIER,
            Condition.TYPE,
            Condition.OUTSIDE_PREFECTURE,
            Condition.DAYS_REGISTERED,
            Condition.PROGRAM,
            Condition.AGE_BAND,
        },
    ),
]


@pytest.mark.parametrize(
    ("rule", "overrides", "programs", "unmet"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_matrix(
    rule: Eligibility, overrides: dict[str, Any], programs: list[str], unmet: set[Condition]
) -> None:
    holder = holder_of(registration(**overrides), programs, TODAY)
    result = is_eligible(benefit(rule), holder, TODAY)
    assert result.conditions == unmet
    assert result.ok == (not unmet)
    assert len(result.reasons) == len(unmet)


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "unmet"),
    [
        (None, None, set()),
        (TODAY, TODAY, set()),
        (date(2027, 4, 2), None, {Condition.NOT_STARTED}),
        (None, date(2027, 3, 31), {Condition.ENDED}),
    ],
)
def test_validity_period(
    valid_from: date | None, valid_until: date | None, unmet: set[Condition]
) -> None:
    rule = benefit(Eligibility(), valid_from=valid_from, valid_until=valid_until)
    holder = holder_of(registration(), [], TODAY)
    assert is_eligible(rule, holder, TODAY).conditions == unmet


def test_a_benefit_of_another_place_is_not_open() -> None:
    holder = holder_of(registration(place_code="072133"), [], TODAY)
    assert is_eligible(benefit(Eligibility()), holder, TODAY).conditions == {Condition.PLACE}


@pytest.mark.parametrize(
    ("residence", "programs", "ok"),
    [
        ("131016", [FUKUSHIMA_FAN_CLUB], True),  # Tokyo, member
        ("131016", [], False),  # Tokyo, not a member
        ("072133", [FUKUSHIMA_FAN_CLUB], False),  # 伊達市 (Fukushima), member
    ],
)
def test_fukushima_telework_subsidy_for_members_living_outside(
    residence: str, programs: list[str], ok: bool
) -> None:
    subsidy = next(b for b in slide5_benefits() if b.id == "fukushima-long-telework")
    holder = holder_of(
        registration(place_code=FUKUSHIMA, residence_code=residence), programs, TODAY
    )
    assert is_eligible(subsidy, holder, TODAY).ok is ok


@pytest.mark.parametrize("item", slide5_benefits(), ids=lambda b: b.id)
def test_stored_form_round_trips(item: Benefit) -> None:
    assert benefit_from(benefit_document(item)) == item


def test_stored_form_round_trips_every_field() -> None:
    full = benefit(
        Eligibility(
            tiers=frozenset({Tier.PREMIUM}),
            types=frozenset({RelationshipType.BEARER, RelationshipType.VISIT}),
            outside_prefecture=True,
            min_days_registered=30,
            program_id=KESENNUMA_FAN_CLUB,
            program_name="気仙沼ファンクラブ",
            age_bands=frozenset({AgeBand.SIXTIES}),
        ),
        valid_from=date(2027, 1, 1),
        valid_until=date(2027, 12, 31),
        partner_shops=(PartnerShop("喫茶みなと", "宮城県気仙沼市港町1"), PartnerShop("魚市場")),
    )
    assert benefit_from(benefit_document(full)) == full


def test_unreadable_stored_eligibility_falls_back_to_safe_defaults() -> None:
    rule = eligibility_from({"tiers": ["gold"], "types": ["x"], "min_days_registered": -3})
    assert rule.tiers == frozenset(Tier) and rule.types == frozenset()
    assert rule.min_days_registered == 0
