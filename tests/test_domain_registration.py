"""Registration rules."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.places import get_place
from bot.domain.registration import (
    ALLOWED,
    PREMIUM_MAX_PLACES,
    PREMIUM_TYPES,
    PREMIUM_VALIDITY_DAYS,
    RENEWAL_MIN_ACTIVITIES,
    AgeBand,
    Connection,
    Refusal,
    RelationshipType,
    Renewal,
    Tier,
    check_basic,
    check_guardian_consent,
    check_premium,
    is_valid_registration_number,
    normalize_registration_number,
    places_to_register,
    premium_valid_until,
    registration_number,
    renewal_outcome,
)

KESENNUMA = "042056"
MIYAGI = "040002"
SENDAI = "041009"
FUKUSHIMA_PREF = "070009"
DATE_FUKUSHIMA = "072133"
MINAMIUONUMA = "152269"
YAMAGATA_GIFU = "212156"
SHINJUKU = "131041"

B = RelationshipType.BEARER
D = RelationshipType.DUAL_RESIDENCE
E = RelationshipType.ECONOMIC
V = RelationshipType.VISIT


def test_constants() -> None:
    assert PREMIUM_MAX_PLACES == 3
    assert PREMIUM_VALIDITY_DAYS == 365
    assert RENEWAL_MIN_ACTIVITIES == 3
    assert PREMIUM_TYPES == (B, D)


def test_places_used_here_exist() -> None:
    for code in (KESENNUMA, MIYAGI, SENDAI, FUKUSHIMA_PREF, DATE_FUKUSHIMA, MINAMIUONUMA):
        assert get_place(code) is not None, code
    for code in (YAMAGATA_GIFU, SHINJUKU):
        assert get_place(code) is not None, code


def test_labels() -> None:
    assert E.label == "経済的な関わり（特産品購入・ふるさと納税）"
    assert E.short_label == "経済"
    assert V.label == "訪問（観光・年に数回）"
    assert B.label == "担い手（副業・ボランティア）"
    assert D.short_label == "二地域居住"
    for kind in RelationshipType:
        assert 0 < len(kind.short_label) <= 20
        assert kind.label
    assert [c.label for c in Connection] == [
        "出身",
        "居住経験",
        "勤務・通学",
        "家族・親族",
        "応援・ファン",
        "災害ボランティア",
        "その他",
    ]
    assert [a.label for a in AgeBand] == [
        "18歳未満",
        "18〜29歳",
        "30代",
        "40代",
        "50代",
        "60代",
        "70歳以上",
    ]
    assert [a for a in AgeBand if a.is_minor] == [AgeBand.UNDER_18]
    assert Tier.BASIC.label == "ベーシック登録"
    assert Tier.PREMIUM.label == "プレミアム登録"
    assert RelationshipType("bearer") is B  # values are stable storage codes


@pytest.mark.parametrize(
    ("age_band", "consent", "reason"),
    [
        (AgeBand.UNDER_18, False, Refusal.GUARDIAN_CONSENT_REQUIRED),
        (AgeBand.UNDER_18, True, None),
        (AgeBand.FROM_18_TO_29, False, None),
        (AgeBand.SEVENTY_PLUS, False, None),
    ],
)
def test_minors_need_guardian_consent(
    age_band: AgeBand, consent: bool, reason: Refusal | None
) -> None:
    decision = check_guardian_consent(age_band, consent)
    assert decision.reason is reason
    assert decision.ok is (reason is None)
    if reason:
        assert "保護者" in decision.message


@pytest.mark.parametrize(
    ("place", "residence", "existing", "reason"),
    [
        (KESENNUMA, SHINJUKU, [], None),
        (KESENNUMA, None, [], None),  # residence unknown or abroad
        (KESENNUMA, KESENNUMA, [], Refusal.OWN_RESIDENCE),
        (KESENNUMA, SHINJUKU, [KESENNUMA, MIYAGI], Refusal.ALREADY_REGISTERED),
        (MIYAGI, SHINJUKU, [KESENNUMA, MIYAGI], Refusal.ALREADY_REGISTERED),
        (SENDAI, SHINJUKU, [KESENNUMA, MIYAGI], None),  # the prefecture is already there
        (MIYAGI, KESENNUMA, [], None),  # one's own prefecture is allowed
        (KESENNUMA, SENDAI, [], None),  # another municipality of one's prefecture
        ("999999", SHINJUKU, [], Refusal.UNKNOWN_PLACE),
        ("", SHINJUKU, [], Refusal.UNKNOWN_PLACE),
    ],
)
def test_check_basic(
    place: str, residence: str | None, existing: list[str], reason: Refusal | None
) -> None:
    decision = check_basic(place, residence, existing)
    assert decision.reason is reason
    assert decision.ok is (reason is None)
    assert bool(decision.message) is (reason is not None)


def test_basic_own_residence_can_be_allowed() -> None:
    assert check_basic(KESENNUMA, KESENNUMA, [], allow_own_residence=True).ok
    again = check_basic(KESENNUMA, KESENNUMA, [KESENNUMA], allow_own_residence=True)
    assert again.reason is Refusal.ALREADY_REGISTERED


def test_basic_messages_are_polite_japanese() -> None:
    own = check_basic(KESENNUMA, KESENNUMA, [])
    assert own.message == ("宮城県気仙沼市はお住まいの市区町村のため、ベーシック登録はできません。")
    again = check_basic(KESENNUMA, SHINJUKU, {KESENNUMA})
    assert "すでに" in again.message
    assert again.message.endswith("。")
    assert check_basic(KESENNUMA, SHINJUKU, []) == ALLOWED


@pytest.mark.parametrize(
    ("place", "residence", "types", "active", "reason"),
    [
        (KESENNUMA, SHINJUKU, [B], [], None),
        (KESENNUMA, SHINJUKU, [D], [], None),
        (KESENNUMA, SHINJUKU, [E, V, B], [], None),
        (KESENNUMA, SHINJUKU, [E, V], [], Refusal.NOT_ELIGIBLE_TYPE),
        (KESENNUMA, SHINJUKU, [], [], Refusal.NOT_ELIGIBLE_TYPE),
        (KESENNUMA, KESENNUMA, [B], [], Refusal.OWN_RESIDENCE),
        (FUKUSHIMA_PREF, DATE_FUKUSHIMA, [B], [], None),  # own prefecture, not own municipality
        (KESENNUMA, SHINJUKU, [B], [KESENNUMA], Refusal.ALREADY_PREMIUM),
        (KESENNUMA, SHINJUKU, [B], [MINAMIUONUMA, YAMAGATA_GIFU], None),  # the 3rd
        (
            KESENNUMA,
            SHINJUKU,
            [B],
            [MINAMIUONUMA, YAMAGATA_GIFU, FUKUSHIMA_PREF],
            Refusal.PREMIUM_LIMIT,
        ),  # the 4th
        ("000000", SHINJUKU, [B], [], Refusal.UNKNOWN_PLACE),
    ],
)
def test_check_premium(
    place: str,
    residence: str,
    types: list[RelationshipType],
    active: list[str],
    reason: Refusal | None,
) -> None:
    decision = check_premium(place, residence, types, active)
    assert decision.reason is reason
    assert decision.ok is (reason is None)


def test_fourth_premium_names_the_limit() -> None:
    decision = check_premium(
        KESENNUMA, SHINJUKU, [B], [MINAMIUONUMA, YAMAGATA_GIFU, FUKUSHIMA_PREF]
    )
    assert not decision.ok
    assert "3か所まで" in decision.message


def test_premium_own_residence_message() -> None:
    decision = check_premium(KESENNUMA, KESENNUMA, [B], [])
    assert decision.message == (
        "宮城県気仙沼市はお住まいの市区町村のため、プレミアム登録はできません。"
    )


def test_premium_designated_types() -> None:
    visit_ok = (*PREMIUM_TYPES, V)
    assert check_premium(KESENNUMA, SHINJUKU, [V], [], visit_ok).ok
    refused = check_premium(KESENNUMA, SHINJUKU, [E], [], visit_ok)
    assert refused.reason is Refusal.NOT_ELIGIBLE_TYPE
    assert "「担い手」・「二地域居住」・「訪問」" in refused.message
    only_bearer = check_premium(KESENNUMA, SHINJUKU, [D], [], (B,))
    assert only_bearer.reason is Refusal.NOT_ELIGIBLE_TYPE


def test_places_to_register() -> None:
    kesennuma = get_place(KESENNUMA)
    miyagi = get_place(MIYAGI)
    assert kesennuma is not None
    assert miyagi is not None
    assert places_to_register(kesennuma) == [KESENNUMA, MIYAGI]
    assert places_to_register(miyagi) == [MIYAGI]


@pytest.mark.parametrize(
    ("count", "required", "result"),
    [
        (0, 3, Renewal.DOWNGRADED),
        (2, 3, Renewal.DOWNGRADED),
        (3, 3, Renewal.RENEWED),
        (10, 3, Renewal.RENEWED),
        (3, 4, Renewal.DOWNGRADED),
        (1, 1, Renewal.RENEWED),
    ],
)
def test_renewal_outcome(count: int, required: int, result: Renewal) -> None:
    outcome = renewal_outcome(count, required)
    assert outcome.result is result
    assert f"{count}回" in outcome.message
    if result is Renewal.DOWNGRADED:
        assert "ベーシック登録" in outcome.message
        assert f"{required}回" in outcome.message
    else:
        assert "更新しました" in outcome.message


def test_renewal_default_and_bad_input() -> None:
    assert renewal_outcome(RENEWAL_MIN_ACTIVITIES).result is Renewal.RENEWED
    assert renewal_outcome(RENEWAL_MIN_ACTIVITIES - 1).result is Renewal.DOWNGRADED
    with pytest.raises(ValueError):
        renewal_outcome(-1)
    with pytest.raises(ValueError):
        renewal_outcome(3, 0)


@pytest.mark.parametrize(
    ("approved", "until"),
    [
        (date(2027, 1, 10), date(2028, 1, 9)),
        (date(2027, 4, 1), date(2028, 3, 30)),  # 2028 is a leap year: 365 days in all
        (date(2026, 12, 31), date(2027, 12, 30)),
    ],
)
def test_premium_valid_until(approved: date, until: date) -> None:
    assert premium_valid_until(approved) == until
    assert (until - approved).days + 1 == PREMIUM_VALIDITY_DAYS


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += sum(divmod(value, 10))
    return total % 10 == 0


def test_registration_number_format() -> None:
    assert registration_number(123, KESENNUMA) == "042056-000123-2"
    assert registration_number(1, FUKUSHIMA_PREF).startswith("070009-000001-")
    assert registration_number(12345678, KESENNUMA).startswith("042056-12345678-")
    for bad_seq, bad_code in [(0, KESENNUMA), (-1, KESENNUMA), (1, "42056"), (1, "04205６")]:
        with pytest.raises(ValueError):
            registration_number(bad_seq, bad_code)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("042056-000123-2", "042056-000123-2"),
        ("0420560001232", "042056-000123-2"),
        ("０４２０５６－０００１２３－２", "042056-000123-2"),
        ("０４２０５６ー０００１２３ー２", "042056-000123-2"),
        (" 042056 000123 2 ", "042056-000123-2"),
        ("042056-000123-3", None),  # wrong check digit
        ("042056-000132-2", None),  # swapped digits
        ("042056-00123-2", None),  # too short
        ("042056-0000123-2", None),  # not canonical
        ("999999-000123-0", None),  # no such place
        ("042056-000000-0", None),  # sequence starts at 1
        ("", None),
        ("abc", None),
        ("1" * 5000, None),
    ],
)
def test_normalize_registration_number(text: str, canonical: str | None) -> None:
    assert normalize_registration_number(text) == canonical
    assert is_valid_registration_number(text) is (canonical is not None)


@given(st.integers(min_value=1, max_value=10**9), st.sampled_from([KESENNUMA, MIYAGI, SHINJUKU]))
def test_registration_numbers_round_trip(seq: int, code: str) -> None:
    number = registration_number(seq, code)
    assert _luhn_ok(number.replace("-", ""))
    assert normalize_registration_number(number) == number
    assert is_valid_registration_number(number.replace("-", ""))
    place_part, seq_part, _ = number.split("-")
    assert (place_part, int(seq_part)) == (code, seq)


@given(st.integers(min_value=1, max_value=999_999), st.data())
def test_a_single_wrong_digit_is_caught(seq: int, data: st.DataObject) -> None:
    digits = registration_number(seq, KESENNUMA).replace("-", "")
    index = data.draw(st.integers(min_value=0, max_value=len(digits) - 1))
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != digits[index]]))
    assert not is_valid_registration_number(digits[:index] + other + digits[index + 1 :])


@given(st.text(max_size=40))
def test_any_text_is_checked_without_raising(text: str) -> None:
    assert isinstance(is_valid_registration_number(text), bool)
