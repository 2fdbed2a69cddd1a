"""Benefits: eligibility, ordering, carousel paging and the slide 5 demo data."""

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.benefits import (
    CAROUSEL_MAX_BUBBLES,
    DEFAULT_HOW_TO_USE,
    Benefit,
    BenefitKind,
    Condition,
    Eligibility,
    Holder,
    benefit_pages,
    is_eligible,
    open_benefits,
    slide5_benefits,
)
from bot.domain.places import get_place
from bot.domain.programs import FUKUSHIMA_FAN_CLUB, KAERU_TABI, KESENNUMA_FAN_CLUB
from bot.domain.registration import AgeBand, RelationshipType, Tier

KESENNUMA = "042056"
SENDAI = "041009"
FUKUSHIMA_PREF = "070009"
DATE_FUKUSHIMA = "072133"
MINAMIUONUMA = "152269"
YAMAGATA_GIFU = "212156"
SHINJUKU = "131041"
TODAY = date(2027, 4, 1)

B = RelationshipType.BEARER
D = RelationshipType.DUAL_RESIDENCE
E = RelationshipType.ECONOMIC
V = RelationshipType.VISIT


def holder(**changes: object) -> Holder:
    base = Holder(
        place_code=KESENNUMA,
        tier=Tier.BASIC,
        types=frozenset({E}),
        residence_code=SHINJUKU,
        registered_since=date(2027, 1, 10),
        program_ids=frozenset(),
        age_band=AgeBand.THIRTIES,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def benefit(eligibility: Eligibility | None = None, **changes: object) -> Benefit:
    base = Benefit(
        id="b1",
        municipality_code=KESENNUMA,
        title="店舗割引",
        description="市内の店舗で割引",
        kind=BenefitKind.SHOP_DISCOUNT,
        eligibility=eligibility or Eligibility(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_kind_labels() -> None:
    assert [k.label for k in BenefitKind] == [
        "店舗割引",
        "施設",
        "補助金",
        "宿泊",
        "ごみ",
        "その他",
    ]


def test_defaults_anyone_is_eligible() -> None:
    b = benefit()
    assert b.how_to_use == DEFAULT_HOW_TO_USE == "登録証を提示してください"
    result = is_eligible(b, holder(), TODAY)
    assert result.ok and result.unmet == () and result.reasons == ()


PREMIUM_ONLY = Eligibility(tiers=frozenset({Tier.PREMIUM}))
BEARER_OR_DUAL = Eligibility(types=frozenset({B, D}))
OUTSIDE = Eligibility(outside_prefecture=True)
DAYS_30 = Eligibility(min_days_registered=30)
MEMBERS = Eligibility(program_id=KESENNUMA_FAN_CLUB, program_name="気仙沼ファンクラブ")
YOUNG = Eligibility(age_bands=frozenset({AgeBand.FROM_18_TO_29, AgeBand.THIRTIES}))


@pytest.mark.parametrize(
    ("rule", "facts", "ok", "reason"),
    [
        (PREMIUM_ONLY, {"tier": Tier.PREMIUM}, True, None),
        (PREMIUM_ONLY, {"tier": Tier.BASIC}, False, "プレミアム登録の方が対象です"),
        (BEARER_OR_DUAL, {"types": frozenset({B})}, True, None),
        (BEARER_OR_DUAL, {"types": frozenset({D, E})}, True, None),
        (BEARER_OR_DUAL, {"types": frozenset({E, V})}, False, "「担い手」・「二地域居住」の関わり"),
        (BEARER_OR_DUAL, {"types": frozenset()}, False, "関わりがある方が対象です"),
        (OUTSIDE, {"residence_code": SHINJUKU}, True, None),
        (OUTSIDE, {"residence_code": SENDAI}, False, "宮城県外にお住まいの方が対象です"),
        (OUTSIDE, {"residence_code": None}, False, "お住まいの市区町村をご登録ください"),
        (DAYS_30, {"registered_since": TODAY - timedelta(days=30)}, True, None),
        (DAYS_30, {"registered_since": TODAY - timedelta(days=29)}, False, "あと1日"),
        (DAYS_30, {"registered_since": TODAY}, False, "登録から30日以上の方が対象です"),
        (MEMBERS, {"program_ids": frozenset({KESENNUMA_FAN_CLUB})}, True, None),
        (
            MEMBERS,
            {"program_ids": frozenset({FUKUSHIMA_FAN_CLUB})},
            False,
            "気仙沼ファンクラブの会員",
        ),
        (YOUNG, {"age_band": AgeBand.THIRTIES}, True, None),
        (YOUNG, {"age_band": AgeBand.SIXTIES}, False, "18〜29歳・30代の方が対象です"),
        (YOUNG, {"age_band": None}, False, "18〜29歳・30代の方が対象です"),
    ],
)
def test_each_condition(
    rule: Eligibility, facts: dict[str, object], ok: bool, reason: str | None
) -> None:
    result = is_eligible(benefit(rule), holder(**facts), TODAY)
    assert result.ok is ok
    if reason is None:
        assert result.unmet == ()
    else:
        assert len(result.unmet) == 1
        assert reason in result.reasons[0]


ALL_RULES = Eligibility(
    tiers=frozenset({Tier.PREMIUM}),
    types=frozenset({B}),
    outside_prefecture=True,
    min_days_registered=30,
    program_id=KESENNUMA_FAN_CLUB,
    program_name="気仙沼ファンクラブ",
    age_bands=frozenset({AgeBand.FORTIES}),
)
MEETS_ALL: dict[str, object] = {
    "tier": Tier.PREMIUM,
    "types": frozenset({B}),
    "residence_code": SHINJUKU,
    "registered_since": TODAY - timedelta(days=100),
    "program_ids": frozenset({KESENNUMA_FAN_CLUB}),
    "age_band": AgeBand.FORTIES,
}
BREAKS: dict[Condition, dict[str, object]] = {
    Condition.TIER: {"tier": Tier.BASIC},
    Condition.TYPE: {"types": frozenset({V})},
    Condition.OUTSIDE_PREFECTURE: {"residence_code": SENDAI},
    Condition.DAYS_REGISTERED: {"registered_since": TODAY - timedelta(days=3)},
    Condition.PROGRAM: {"program_ids": frozenset()},
    Condition.AGE_BAND: {"age_band": AgeBand.FIFTIES},
}


@given(st.sets(st.sampled_from(sorted(BREAKS))))
def test_every_combination_of_unmet_conditions_is_reported(broken: set[Condition]) -> None:
    facts = dict(MEETS_ALL)
    for condition in broken:
        facts.update(BREAKS[condition])
    result = is_eligible(benefit(ALL_RULES), holder(**facts), TODAY)
    assert result.conditions == broken
    assert result.ok is (not broken)
    assert len(result.reasons) == len(broken)
    assert all(reason.endswith(("です", "）")) for reason in result.reasons)


def test_all_unmet_reasons_in_fixed_order() -> None:
    facts = dict(MEETS_ALL)
    for change in BREAKS.values():
        facts.update(change)
    result = is_eligible(benefit(ALL_RULES), holder(**facts), TODAY)
    assert [u.condition for u in result.unmet] == list(BREAKS)
    assert result.reasons[0] == "プレミアム登録の方が対象です"
    assert result.reasons[2] == "宮城県外にお住まいの方が対象です"


def test_place_and_validity_window() -> None:
    b = benefit(valid_from=date(2027, 4, 1), valid_until=date(2027, 4, 30))
    assert is_eligible(b, holder(), date(2027, 4, 1)).ok
    assert is_eligible(b, holder(), date(2027, 4, 30)).ok
    early = is_eligible(b, holder(), date(2027, 3, 31))
    assert early.conditions == {Condition.NOT_STARTED}
    assert early.reasons == ("2027年4月1日からご利用いただけます",)
    late = is_eligible(b, holder(), date(2027, 5, 1))
    assert late.conditions == {Condition.ENDED}
    assert late.reasons == ("2027年4月30日で終了しました",)
    elsewhere = is_eligible(b, holder(place_code=MINAMIUONUMA), TODAY)
    assert elsewhere.conditions == {Condition.PLACE}
    assert elsewhere.reasons == ("宮城県気仙沼市にご登録の方が対象です",)


def test_invalid_definitions_are_refused() -> None:
    with pytest.raises(ValueError):
        Eligibility(tiers=frozenset())
    with pytest.raises(ValueError):
        Eligibility(min_days_registered=-1)
    with pytest.raises(ValueError):
        benefit(municipality_code="999999")
    with pytest.raises(ValueError):
        benefit(valid_from=date(2027, 5, 1), valid_until=date(2027, 4, 1))
    with pytest.raises(ValueError):
        benefit(title=" ")


# --- the Fukushima telework subsidy -------------------------------------------------------

FUKUSHIMA_SUBSIDIES = [b for b in slide5_benefits() if b.municipality_code == FUKUSHIMA_PREF]


def fukushima_holder(**changes: object) -> Holder:
    return holder(place_code=FUKUSHIMA_PREF, **changes)


@pytest.mark.parametrize("subsidy", FUKUSHIMA_SUBSIDIES, ids=lambda b: b.id)
@pytest.mark.parametrize(
    ("residence", "programs", "expected"),
    [
        (SHINJUKU, {FUKUSHIMA_FAN_CLUB}, set()),
        (DATE_FUKUSHIMA, {FUKUSHIMA_FAN_CLUB}, {Condition.OUTSIDE_PREFECTURE}),
        (SHINJUKU, set(), {Condition.PROGRAM}),
        (SHINJUKU, {KESENNUMA_FAN_CLUB}, {Condition.PROGRAM}),
        (DATE_FUKUSHIMA, set(), {Condition.OUTSIDE_PREFECTURE, Condition.PROGRAM}),
        (None, {FUKUSHIMA_FAN_CLUB}, {Condition.OUTSIDE_PREFECTURE}),
    ],
)
def test_fukushima_telework_subsidy(
    subsidy: Benefit, residence: str | None, programs: set[str], expected: set[Condition]
) -> None:
    h = fukushima_holder(residence_code=residence, program_ids=frozenset(programs))
    result = is_eligible(subsidy, h, TODAY)
    assert result.conditions == expected
    if Condition.OUTSIDE_PREFECTURE in expected and residence:
        assert "福島県外にお住まいの方が対象です" in result.reasons
    if Condition.PROGRAM in expected:
        assert any("ふくしまファンクラブの会員の方が対象です" in r for r in result.reasons)


def test_fukushima_subsidy_is_the_same_for_both_tiers() -> None:
    for tier in Tier:
        h = fukushima_holder(tier=tier, program_ids=frozenset({FUKUSHIMA_FAN_CLUB}))
        assert all(is_eligible(b, h, TODAY).ok for b in FUKUSHIMA_SUBSIDIES)


# --- slide 5 demo data --------------------------------------------------------------------


def test_slide5_covers_the_four_examples_with_real_codes() -> None:
    benefits = slide5_benefits()
    names = {get_place(b.municipality_code).display_name for b in benefits}  # type: ignore[union-attr]
    assert names == {"宮城県気仙沼市", "新潟県南魚沼市", "岐阜県山県市", "福島県"}
    assert len({b.id for b in benefits}) == len(benefits)
    text = "".join(b.title + b.description for b in benefits)
    for fact in (
        "74",
        "年4回",
        "宿泊料",
        "月4日以上",
        "月20時間以上",
        "3/4",
        "30万円",
        "1/2",
        "1万円",
    ):
        assert fact in text, fact
    kinds = {b.id: b.kind for b in benefits}
    assert kinds["kesennuma-shops"] is BenefitKind.SHOP_DISCOUNT
    assert kinds["minamiuonuma-kaeru-tabi"] is BenefitKind.LODGING
    assert kinds["fukushima-long-telework"] is BenefitKind.SUBSIDY


def test_slide5_who_gets_what() -> None:
    benefits = slide5_benefits()
    member = holder(program_ids=frozenset({KESENNUMA_FAN_CLUB}))
    assert [b.id for b in open_benefits(benefits, member, TODAY)] == [
        "kesennuma-shops",
        "kesennuma-museums",
        "kesennuma-card",
    ]
    assert open_benefits(benefits, holder(), TODAY) == []
    kaeru = holder(place_code=MINAMIUONUMA, program_ids=frozenset({KAERU_TABI}))
    assert [b.id for b in open_benefits(benefits, kaeru, TODAY)] == ["minamiuonuma-kaeru-tabi"]
    side_job = holder(place_code=YAMAGATA_GIFU, types=frozenset({B}))
    assert [b.id for b in open_benefits(benefits, side_job, TODAY)] == ["yamagata-side-job"]
    assert open_benefits(benefits, holder(place_code=YAMAGATA_GIFU), TODAY) == []


# --- ordering and paging ------------------------------------------------------------------


def test_open_benefits_sorted_by_validity_then_kind() -> None:
    items = [
        benefit(id="open-other", kind=BenefitKind.OTHER),
        benefit(id="open-shop", kind=BenefitKind.SHOP_DISCOUNT),
        benefit(id="may", kind=BenefitKind.OTHER, valid_until=date(2027, 5, 31)),
        benefit(id="april-lodging", kind=BenefitKind.LODGING, valid_until=date(2027, 4, 30)),
        benefit(id="april-facility", kind=BenefitKind.FACILITY, valid_until=date(2027, 4, 30)),
        benefit(id="ended", valid_until=date(2027, 3, 31)),
        benefit(id="premium", eligibility=PREMIUM_ONLY),
    ]
    assert [b.id for b in open_benefits(items, holder(), TODAY)] == [
        "april-facility",
        "april-lodging",
        "may",
        "open-shop",
        "open-other",
    ]


@pytest.mark.parametrize(
    ("count", "sizes", "bubbles"),
    [
        (0, [], []),
        (1, [1], [1]),
        (12, [12], [12]),
        (13, [11, 2], [12, 2]),
        (23, [11, 12], [12, 12]),
        (24, [11, 11, 2], [12, 12, 2]),
        (25, [11, 11, 3], [12, 12, 3]),
    ],
)
def test_pages(count: int, sizes: list[int], bubbles: list[int]) -> None:
    items = list(range(count))
    pages = benefit_pages(items)
    assert [len(p.items) for p in pages] == sizes
    assert [p.bubble_count for p in pages] == bubbles
    assert [x for p in pages for x in p.items] == items
    for number, page in enumerate(pages):
        assert page.index == number
        assert page.page_count == len(pages)
        assert page.total == count
        assert page.has_next is (number < len(pages) - 1)
        assert page.next_index == (number + 1 if page.has_next else None)
        assert page.remaining == count - page.start - len(page.items)
        assert items[page.start] == page.items[0]


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=2, max_value=12))
def test_pages_never_exceed_the_carousel_limit(count: int, page_size: int) -> None:
    items = list(range(count))
    pages = benefit_pages(items, page_size)
    assert [x for p in pages for x in p.items] == items
    assert all(1 <= p.bubble_count <= page_size <= CAROUSEL_MAX_BUBBLES for p in pages)
    assert all(p.has_next for p in pages[:-1]) and not any(p.has_next for p in pages[-1:])


@pytest.mark.parametrize("page_size", [0, 1, 13])
def test_page_size_limits(page_size: int) -> None:
    with pytest.raises(ValueError):
        benefit_pages([1, 2, 3], page_size)
