"""Benefits (特典) a place offers its registrants, who may use them, and paging for carousels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Generic, TypeVar

from bot.domain.places import get_place, prefecture_of
from bot.domain.programs import FUKUSHIMA_FAN_CLUB, KAERU_TABI, KESENNUMA_FAN_CLUB
from bot.domain.registration import AgeBand, RelationshipType, Tier

CAROUSEL_MAX_BUBBLES = 12  # LINE's limit for one Flex carousel
DEFAULT_HOW_TO_USE = "登録証を提示してください"


class BenefitKind(StrEnum):
    """What a benefit is; the order is the display order."""

    SHOP_DISCOUNT = "shop_discount"
    FACILITY = "facility"
    SUBSIDY = "subsidy"
    LODGING = "lodging"
    GARBAGE = "garbage"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Japanese label."""
        return {
            BenefitKind.SHOP_DISCOUNT: "店舗割引",
            BenefitKind.FACILITY: "施設",
            BenefitKind.SUBSIDY: "補助金",
            BenefitKind.LODGING: "宿泊",
            BenefitKind.GARBAGE: "ごみ",
            BenefitKind.OTHER: "その他",
        }[self]

    @property
    def order(self) -> int:
        """Position in the display order."""
        return list(BenefitKind).index(self)


@dataclass(frozen=True)
class Eligibility:
    """Who may use a benefit. Every condition must hold; empty collections mean "anyone"."""

    tiers: frozenset[Tier] = frozenset(Tier)
    types: frozenset[RelationshipType] = frozenset()  # any of these
    outside_prefecture: bool = False  # must live outside the benefit's prefecture
    min_days_registered: int = 0
    program_id: str | None = None  # a linked program membership is required
    program_name: str = ""  # its name, for the message (「ふくしまファンクラブ」)
    age_bands: frozenset[AgeBand] = frozenset()  # any of these

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("at least one tier must be eligible")
        if self.min_days_registered < 0:
            raise ValueError("min_days_registered must be >= 0")


@dataclass(frozen=True)
class PartnerShop:
    """A shop or facility where the benefit can be used."""

    name: str
    address: str = ""


@dataclass(frozen=True)
class Benefit:
    """A benefit published by a municipality or prefecture."""

    id: str
    municipality_code: str
    title: str
    description: str
    kind: BenefitKind
    eligibility: Eligibility = field(default_factory=Eligibility)
    valid_from: date | None = None  # first day (inclusive)
    valid_until: date | None = None  # last day (inclusive)
    partner_shops: tuple[PartnerShop, ...] = ()
    how_to_use: str = DEFAULT_HOW_TO_USE

    def __post_init__(self) -> None:
        if get_place(self.municipality_code) is None:
            raise ValueError(f"unknown place code {self.municipality_code!r}")
        if not self.id or not self.title.strip():
            raise ValueError("a benefit needs an id and a title")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError("valid_from must not be after valid_until")


@dataclass(frozen=True)
class Holder:
    """What we know about one registrant at one place (the place the benefits belong to)."""

    place_code: str
    tier: Tier
    types: frozenset[RelationshipType]
    residence_code: str | None  # 住所地; None when not told
    registered_since: date
    program_ids: frozenset[str] = frozenset()  # programs whose member number is linked
    age_band: AgeBand | None = None


class Condition(StrEnum):
    """A condition of a benefit that can be unmet."""

    PLACE = "place"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    TIER = "tier"
    TYPE = "type"
    OUTSIDE_PREFECTURE = "outside_prefecture"
    DAYS_REGISTERED = "days_registered"
    PROGRAM = "program"
    AGE_BAND = "age_band"


@dataclass(frozen=True)
class Unmet:
    """An unmet condition and a short Japanese reason."""

    condition: Condition
    reason: str


@dataclass(frozen=True)
class EligibilityResult:
    """Eligible, or the unmet conditions (in a fixed order)."""

    unmet: tuple[Unmet, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every condition is met."""
        return not self.unmet

    @property
    def conditions(self) -> frozenset[Condition]:
        """The unmet conditions."""
        return frozenset(u.condition for u in self.unmet)

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons, to show the resident."""
        return tuple(u.reason for u in self.unmet)


def _jdate(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _labels(labels: Iterable[str]) -> str:
    return "・".join(labels)


def _outside_prefecture(benefit: Benefit, holder: Holder) -> Unmet | None:
    place = get_place(benefit.municipality_code)
    assert place is not None  # checked when the benefit was made
    prefecture = prefecture_of(place)
    reason = f"{prefecture.name}外にお住まいの方が対象です"
    residence = get_place(holder.residence_code) if holder.residence_code else None
    if residence is None:
        return Unmet(
            Condition.OUTSIDE_PREFECTURE, reason + "（お住まいの市区町村をご登録ください）"
        )
    if residence.prefecture_code == prefecture.code:
        return Unmet(Condition.OUTSIDE_PREFECTURE, reason)
    return None


def is_eligible(benefit: Benefit, holder: Holder, today: date) -> EligibilityResult:
    """Check every condition of a benefit for a holder on a Japan date; report all unmet ones."""
    rule = benefit.eligibility
    unmet: list[Unmet] = []
    if holder.place_code != benefit.municipality_code:
        place = get_place(benefit.municipality_code)
        assert place is not None
        unmet.append(Unmet(Condition.PLACE, f"{place.display_name}にご登録の方が対象です"))
    if benefit.valid_from and today < benefit.valid_from:
        unmet.append(
            Unmet(Condition.NOT_STARTED, f"{_jdate(benefit.valid_from)}からご利用いただけます")
        )
    if benefit.valid_until and today > benefit.valid_until:
        unmet.append(Unmet(Condition.ENDED, f"{_jdate(benefit.valid_until)}で終了しました"))
    if holder.tier not in rule.tiers:
        tiers = [tier.label for tier in Tier if tier in rule.tiers]
        unmet.append(Unmet(Condition.TIER, f"{_labels(tiers)}の方が対象です"))
    if rule.types and not holder.types & rule.types:
        types = [f"「{t.short_label}」" for t in RelationshipType if t in rule.types]
        unmet.append(Unmet(Condition.TYPE, f"{_labels(types)}の関わりがある方が対象です"))
    if rule.outside_prefecture and (problem := _outside_prefecture(benefit, holder)):
        unmet.append(problem)
    days = (today - holder.registered_since).days
    if days < rule.min_days_registered:
        unmet.append(
            Unmet(
                Condition.DAYS_REGISTERED,
                f"登録から{rule.min_days_registered}日以上の方が対象です"
                f"（あと{rule.min_days_registered - days}日）",
            )
        )
    if rule.program_id is not None and rule.program_id not in holder.program_ids:
        name = rule.program_name or "対象のプログラム"
        unmet.append(
            Unmet(Condition.PROGRAM, f"{name}の会員の方が対象です（会員番号の連携が必要です）")
        )
    if rule.age_bands and holder.age_band not in rule.age_bands:
        bands = [band.label for band in AgeBand if band in rule.age_bands]
        unmet.append(Unmet(Condition.AGE_BAND, f"{_labels(bands)}の方が対象です"))
    return EligibilityResult(tuple(unmet))


def _display_key(benefit: Benefit) -> tuple[bool, date, int, str, str]:
    """Ending soonest first, open-ended last; then by kind, title and id."""
    until = benefit.valid_until
    return (until is None, until or date.max, benefit.kind.order, benefit.title, benefit.id)


def open_benefits(benefits: Iterable[Benefit], holder: Holder, today: date) -> list[Benefit]:
    """The benefits this holder can use today, ending soonest first, then by kind."""
    return sorted(
        (b for b in benefits if is_eligible(b, holder, today).ok),
        key=_display_key,
    )


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One carousel: its items, and whether a "next page" bubble follows them."""

    items: tuple[T, ...]
    index: int  # 0-based
    start: int  # offset of the first item in the whole list
    total: int  # items in the whole list
    page_count: int

    @property
    def has_next(self) -> bool:
        """True when a next-page bubble closes this page."""
        return self.index + 1 < self.page_count

    @property
    def next_index(self) -> int | None:
        """The index of the next page, for the next-page bubble's postback."""
        return self.index + 1 if self.has_next else None

    @property
    def remaining(self) -> int:
        """Items after this page (for 「ほか12件」)."""
        return self.total - self.start - len(self.items)

    @property
    def bubble_count(self) -> int:
        """Bubbles in the carousel: the items plus the next-page bubble, if any."""
        return len(self.items) + (1 if self.has_next else 0)


def benefit_pages(items: Sequence[T], page_size: int = CAROUSEL_MAX_BUBBLES) -> list[Page[T]]:
    """Split items into carousels of at most `page_size` bubbles.

    A page that is not the last holds `page_size - 1` items and a next-page bubble; the last
    page holds up to `page_size` items. No items, no pages.
    """
    if not 2 <= page_size <= CAROUSEL_MAX_BUBBLES:
        raise ValueError(f"page_size must be between 2 and {CAROUSEL_MAX_BUBBLES}")
    slices: list[tuple[int, int]] = []
    start = 0
    while start < len(items):
        end = len(items) if len(items) - start <= page_size else start + page_size - 1
        slices.append((start, end))
        start = end
    return [
        Page(tuple(items[a:b]), index, a, len(items), len(slices))
        for index, (a, b) in enumerate(slices)
    ]


def slide5_benefits() -> tuple[Benefit, ...]:
    """Demo benefits: the four examples of the MIC slide 5 (2025-08-22)."""
    kesennuma = Eligibility(program_id=KESENNUMA_FAN_CLUB, program_name="気仙沼ファンクラブ")
    fukushima = Eligibility(
        outside_prefecture=True, program_id=FUKUSHIMA_FAN_CLUB, program_name="ふくしまファンクラブ"
    )
    fukushima_costs = (
        "対象経費は宿泊費（飲食代を除く）・交通費・コワーキングスペース等の利用料・"
        "レンタカー代（燃料代を除く）です。"
    )
    return (
        Benefit(
            id="kesennuma-card",
            municipality_code="042056",
            title="気仙沼ファンクラブ会員証とお便り",
            description="手作り木製の会員証をお届けし、ふるさと納税のご案内などのお便りを"
            "年4回お送りします。",
            kind=BenefitKind.OTHER,
            eligibility=kesennuma,
            how_to_use="特別な手続きは不要です",
        ),
        Benefit(
            id="kesennuma-shops",
            municipality_code="042056",
            title="気仙沼市内74店舗での会員特典",
            description="対応店舗74店で、会員証または登録証の提示により割引などの特典を"
            "受けられます。",
            kind=BenefitKind.SHOP_DISCOUNT,
            eligibility=kesennuma,
        ),
        Benefit(
            id="kesennuma-museums",
            municipality_code="042056",
            title="美術館などの入館料割引",
            description="美術館などの入館料が割引になります。",
            kind=BenefitKind.FACILITY,
            eligibility=kesennuma,
        ),
        Benefit(
            id="minamiuonuma-kaeru-tabi",
            municipality_code="152269",
            title="「帰る旅」宿泊料免除",
            description="なりわいとする家業・事業のお手伝いと自室の清掃をしていただくと、"
            "宿泊料が免除になります。",
            kind=BenefitKind.LODGING,
            eligibility=Eligibility(program_id=KAERU_TABI, program_name="「帰る旅」メンバーシップ"),
            how_to_use="宿泊先で登録証を提示し、お手伝いの内容をご相談ください",
        ),
        Benefit(
            id="yamagata-side-job",
            municipality_code="212156",
            title="地域活性化起業人としての副業",
            description="山県市と契約し、月4日以上かつ月20時間以上、報酬と旅費が支払われる副業として"
            "地域の事業者を支援します（月1日以上の市内滞在が条件です）。",
            kind=BenefitKind.OTHER,
            eligibility=Eligibility(types=frozenset({RelationshipType.BEARER})),
            how_to_use="市の窓口にお問い合わせください",
        ),
        Benefit(
            id="fukushima-long-telework",
            municipality_code="070009",
            title="ふくしま“ロング・テレワーク”体験コース",
            description="福島県内に滞在してテレワークを行う費用の3/4を補助します"
            "（1人あたり上限30万円）。" + fukushima_costs,
            kind=BenefitKind.SUBSIDY,
            eligibility=fukushima,
            how_to_use="県の窓口に申請してください",
        ),
        Benefit(
            id="fukushima-short-telework",
            municipality_code="070009",
            title="ふくしま“ショート・テレワーク”体験コース",
            description="福島県内に滞在してテレワークを行う費用の1/2を補助します"
            "（1人1泊あたり上限1万円）。" + fukushima_costs,
            kind=BenefitKind.SUBSIDY,
            eligibility=fukushima,
            how_to_use="県の窓口に申請してください",
        ),
    )
