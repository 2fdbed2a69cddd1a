"""Registration rules: relationship types, tiers, eligibility, renewal and registration numbers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from bot.domain.places import Place, get_place

PREMIUM_MAX_PLACES = 3
PREMIUM_VALIDITY_DAYS = 365
RENEWAL_MIN_ACTIVITIES = 3


class RelationshipType(StrEnum):
    """How a person relates to a place (multi-select)."""

    ECONOMIC = "economic"
    VISIT = "visit"
    BEARER = "bearer"
    DUAL_RESIDENCE = "dual_residence"

    @property
    def label(self) -> str:
        """Full Japanese label."""
        return {
            RelationshipType.ECONOMIC: "経済的な関わり（特産品購入・ふるさと納税）",
            RelationshipType.VISIT: "訪問（観光・年に数回）",
            RelationshipType.BEARER: "担い手（副業・ボランティア）",
            RelationshipType.DUAL_RESIDENCE: "二地域居住（滞在拠点・公共サービス利用）",
        }[self]

    @property
    def short_label(self) -> str:
        """Label for buttons and quick replies (at most 20 characters)."""
        return {
            RelationshipType.ECONOMIC: "経済",
            RelationshipType.VISIT: "訪問",
            RelationshipType.BEARER: "担い手",
            RelationshipType.DUAL_RESIDENCE: "二地域居住",
        }[self]


PREMIUM_TYPES = (RelationshipType.BEARER, RelationshipType.DUAL_RESIDENCE)


class Connection(StrEnum):
    """Where the relationship comes from."""

    HOMETOWN = "hometown"
    FORMER_RESIDENT = "former_resident"
    WORK_OR_SCHOOL = "work_or_school"
    FAMILY = "family"
    FAN = "fan"
    DISASTER_VOLUNTEER = "disaster_volunteer"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Japanese label."""
        return {
            Connection.HOMETOWN: "出身",
            Connection.FORMER_RESIDENT: "居住経験",
            Connection.WORK_OR_SCHOOL: "勤務・通学",
            Connection.FAMILY: "家族・親族",
            Connection.FAN: "応援・ファン",
            Connection.DISASTER_VOLUNTEER: "災害ボランティア",
            Connection.OTHER: "その他",
        }[self]


class AgeBand(StrEnum):
    """Age band asked at registration."""

    UNDER_18 = "under_18"
    FROM_18_TO_29 = "18_29"
    THIRTIES = "30s"
    FORTIES = "40s"
    FIFTIES = "50s"
    SIXTIES = "60s"
    SEVENTY_PLUS = "70_plus"

    @property
    def label(self) -> str:
        """Japanese label."""
        return {
            AgeBand.UNDER_18: "18歳未満",
            AgeBand.FROM_18_TO_29: "18〜29歳",
            AgeBand.THIRTIES: "30代",
            AgeBand.FORTIES: "40代",
            AgeBand.FIFTIES: "50代",
            AgeBand.SIXTIES: "60代",
            AgeBand.SEVENTY_PLUS: "70歳以上",
        }[self]

    @property
    def is_minor(self) -> bool:
        """Under 18: a guardian's consent is required."""
        return self is AgeBand.UNDER_18


class Tier(StrEnum):
    """Registration tier."""

    BASIC = "basic"
    PREMIUM = "premium"

    @property
    def label(self) -> str:
        """Japanese label."""
        return {Tier.BASIC: "ベーシック登録", Tier.PREMIUM: "プレミアム登録"}[self]


class Refusal(StrEnum):
    """Machine reason for refusing a registration."""

    UNKNOWN_PLACE = "unknown_place"
    OWN_RESIDENCE = "own_residence"
    ALREADY_REGISTERED = "already_registered"
    ALREADY_PREMIUM = "already_premium"
    PREMIUM_LIMIT = "premium_limit"
    NOT_ELIGIBLE_TYPE = "not_eligible_type"
    GUARDIAN_CONSENT_REQUIRED = "guardian_consent_required"


@dataclass(frozen=True)
class Decision:
    """Allowed, or refused with a reason and a message ready to show the resident."""

    reason: Refusal | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when allowed."""
        return self.reason is None


ALLOWED = Decision()


def check_guardian_consent(age_band: AgeBand, guardian_consent: bool) -> Decision:
    """Minors may register with a guardian's consent."""
    if age_band.is_minor and not guardian_consent:
        return Decision(
            Refusal.GUARDIAN_CONSENT_REQUIRED,
            "18歳未満の方の登録には、保護者の方の同意が必要です。",
        )
    return ALLOWED


def _check_place(place_code: str, residence_code: str | None, tier: Tier) -> Decision | Place:
    place = get_place(place_code)
    if place is None:
        return Decision(
            Refusal.UNKNOWN_PLACE, "登録先が見つかりませんでした。もう一度お選びください。"
        )
    if place.code == residence_code:
        return Decision(
            Refusal.OWN_RESIDENCE,
            f"{place.display_name}はお住まいの市区町村のため、{tier.label}はできません。",
        )
    return place


def check_basic(
    place_code: str,
    residence_code: str | None,
    existing_place_codes: Collection[str],
    *,
    allow_own_residence: bool = False,
) -> Decision:
    """Basic registration: not twice, and by default not with one's residence municipality.

    `existing_place_codes` holds every place the person is registered with, including the
    prefectures registered together with a municipality.
    """
    place = _check_place(place_code, None if allow_own_residence else residence_code, Tier.BASIC)
    if isinstance(place, Decision):
        return place
    if place.code in existing_place_codes:
        return Decision(
            Refusal.ALREADY_REGISTERED,
            f"{place.display_name}にはすでにご登録いただいています。ありがとうございます。",
        )
    return ALLOWED


def check_premium(
    place_code: str,
    residence_code: str | None,
    types: Iterable[RelationshipType],
    active_premium_codes: Collection[str],
    designated_types: Collection[RelationshipType] = PREMIUM_TYPES,
) -> Decision:
    """Premium registration: a qualifying type, never the residence municipality, at most 3.

    `designated_types` are the relationship types that qualify at this place (by default
    担い手 and 二地域居住; a municipality may designate others).
    """
    place = _check_place(place_code, residence_code, Tier.PREMIUM)
    if isinstance(place, Decision):
        return place
    if place.code in active_premium_codes:
        return Decision(
            Refusal.ALREADY_PREMIUM,
            f"{place.display_name}にはすでにプレミアム登録をいただいています。",
        )
    if len(active_premium_codes) >= PREMIUM_MAX_PLACES:
        return Decision(
            Refusal.PREMIUM_LIMIT,
            f"プレミアム登録は同時に{PREMIUM_MAX_PLACES}か所までです。"
            "いずれかを終了してからお申し込みください。",
        )
    if not set(types) & set(designated_types):
        labels = "・".join(f"「{t.short_label}」" for t in designated_types)
        return Decision(
            Refusal.NOT_ELIGIBLE_TYPE,
            f"{place.display_name}のプレミアム登録は、{labels}の関わりがある方が対象です。",
        )
    return ALLOWED


def places_to_register(place: Place) -> list[str]:
    """Codes registered together: a municipality and its prefecture, or a prefecture alone."""
    return [place.code] if place.is_prefecture else [place.code, place.prefecture_code]


class Renewal(StrEnum):
    """Result of the yearly Premium renewal."""

    RENEWED = "renewed"
    DOWNGRADED = "downgraded"


@dataclass(frozen=True)
class RenewalOutcome:
    """Renewal result and the message for the resident."""

    result: Renewal
    message: str


def renewal_outcome(activity_count: int, required: int = RENEWAL_MIN_ACTIVITIES) -> RenewalOutcome:
    """Renew Premium with enough bearer activities in the past year, else fall back to Basic."""
    if activity_count < 0 or required < 1:
        raise ValueError("activity_count must be >= 0 and required >= 1")
    if activity_count >= required:
        return RenewalOutcome(
            Renewal.RENEWED,
            f"この1年間の担い手活動{activity_count}回を確認しました。"
            "プレミアム登録を1年間更新しました。",
        )
    return RenewalOutcome(
        Renewal.DOWNGRADED,
        f"この1年間の担い手活動は{activity_count}回で、更新に必要な{required}回に"
        "届きませんでした。ベーシック登録に切り替えました。",
    )


def premium_valid_until(approved_at: date) -> date:
    """Last valid day (inclusive) of a Premium registration approved on this Japan date."""
    return approved_at + timedelta(days=PREMIUM_VALIDITY_DAYS - 1)


_PLACE_CODE = re.compile(r"[0-9]{6}")
_NUMBER_DIGITS = re.compile(r"[0-9]{13,20}")
_SEPARATORS = str.maketrans("", "", "-‐‑‒–—―−ー")


def _luhn_check_digit(digits: str) -> int:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def registration_number(seq: int, place_code: str) -> str:
    """「042056-000123-7」: place code, sequence per place (6+ digits), Luhn check digit."""
    if seq < 1 or not _PLACE_CODE.fullmatch(place_code):
        raise ValueError("seq must be >= 1 and place_code 6 digits")
    body = f"{place_code}{seq:06d}"
    return f"{place_code}-{seq:06d}-{_luhn_check_digit(body)}"


def normalize_registration_number(text: str) -> str | None:
    """The canonical form of a typed registration number, or None if it is not valid.

    Accepts full-width digits, spaces, and missing or odd hyphens.
    """
    digits = "".join(unicodedata.normalize("NFKC", text).translate(_SEPARATORS).split())
    if not _NUMBER_DIGITS.fullmatch(digits) or get_place(digits[:6]) is None:
        return None
    seq = int(digits[6:-1])
    if seq < 1:
        return None
    canonical = registration_number(seq, digits[:6])
    return canonical if canonical.replace("-", "") == digits else None


def is_valid_registration_number(text: str) -> bool:
    """True when the text is a well-formed registration number with a correct check digit."""
    return normalize_registration_number(text) is not None
