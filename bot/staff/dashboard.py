"""The ダッシュボード: 実人数 (people) and 延べ人数 (registrations) of the tenant, from the counters.

The figures come from `bot.storage.stats` (kept up to date as registrations change; a few
documents per view, whatever the number of registrations) and the daily snapshots (the trend):

- a municipality: its own registrations (there 実人数 = 延べ人数: one registration per person);
- a prefecture: everything within it (its own registrations and its municipalities'), its own
  registrations, and its municipalities side by side (table + chart);
- operators: the nation, against the government's targets (10,000,000 people / 100,000,000
  registrations), and the prefectures side by side.

Breakdowns: by tier, relationship type, prefecture of residence (top 10 + その他), age band and
connection. `GET /api/v1/stats` and `GET /api/v1/stats/trend` give the same figures as JSON;
`GET /api/v1/summary` (the first version of this API) is kept and computed from them too. The
scope is always the caller's tenant: no parameter selects another place.

Charts are drawn on the server: inline SVG shapes with HTML labels, no script (the console's CSP
allows none), readable on a tablet; every chart has its figures in text or a table as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from bot.clock import JST
from bot.domain.places import get_place
from bot.domain.stats import (
    AGE,
    AREA,
    CONNECTION,
    NATION,
    PLACE,
    RESIDENCE,
    TARGET_PEOPLE,
    TARGET_REGISTRATIONS,
    TIER,
    TYPE,
    Count,
    Figures,
    place_scope,
    pref_scope,
    top,
)
from bot.staff.api import ApiModel, ApiRoutes
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Tenant

routes = ApiRoutes("summary", "集計（実人数・延べ人数）")
pages = Pages()

TOP_PLACES = 10
TOP_RESIDENCES = 10
TOP_CHART = 15  # places in the chart of a prefecture or of the nation (the table has them all)
TREND_DAYS = (30, 90, 365)


# --- figures ----------------------------------------------------------------------------------


def scope_of(tenant: Tenant) -> str:
    if tenant.is_platform:
        return NATION
    if tenant.kind == "prefecture":
        return pref_scope(tenant.code)
    return place_scope(tenant.code)


class Breakdown(BaseModel):
    value: str = Field(description="値（コード）")
    label: str = Field(description="表示名")
    people: int = Field(description="実人数")
    registrations: int = Field(description="延べ人数")

    @classmethod
    def of(cls, count: Count) -> Breakdown:
        return cls(
            value=count.value,
            label=count.label,
            people=count.people,
            registrations=count.registrations,
        )


class PlaceFigure(BaseModel):
    code: str
    name: str
    people: int = Field(description="実人数")
    registrations: int = Field(description="延べ人数")


class Target(BaseModel):
    label: str
    value: int
    target: int
    ratio: float = Field(description="達成率（0〜1）")


class Stats(BaseModel):
    scope: str = Field(description="集計の範囲（自治体名、または全国）")
    scope_code: str = Field(description="団体コード（全国は platform）")
    kind: Literal["municipality", "prefecture", "platform"]
    people: int = Field(description="実人数（重複を除いた人数）")
    registrations: int = Field(description="延べ人数（登録の件数）")
    own_registrations: int | None = Field(
        default=None, description="都道府県: 都道府県そのものへの登録の件数"
    )
    by_tier: list[Breakdown]
    by_type: list[Breakdown] = Field(description="関わり方別（1件で複数を選べます）")
    by_residence_prefecture: list[Breakdown] = Field(description="お住まいの都道府県別")
    by_age_band: list[Breakdown]
    by_connection: list[Breakdown]
    places: list[PlaceFigure] = Field(
        default_factory=list, description="都道府県: 都道府県と管内市区町村ごとの登録"
    )
    prefectures: list[PlaceFigure] = Field(
        default_factory=list, description="運営: 都道府県（管内を含む）ごと"
    )
    targets: list[Target] = Field(default_factory=list, description="運営: 国の目標と達成率")


class TrendPoint(BaseModel):
    day: date
    people: int
    registrations: int
    live: bool = Field(default=False, description="今日の値（記録ではなく現在の値）")


class Trend(BaseModel):
    scope: str
    days: int
    points: list[TrendPoint]


class TrendQuery(ApiModel):
    days: int = Field(default=30, ge=1, le=366, description="さかのぼる日数")


@dataclass(frozen=True)
class Loaded:
    tenant: Tenant
    figures: Figures
    own: Figures | None  # a prefecture's own place scope


async def load(call: Call) -> Loaded:
    tenant = call.tenant
    scope = scope_of(tenant)
    if tenant.kind == "prefecture":
        both = await call.storage.stats.figures_of([scope, place_scope(tenant.code)])
        return Loaded(tenant, both[scope], both[place_scope(tenant.code)])
    return Loaded(tenant, await call.storage.stats.figures(scope), None)


def _place_figures(figures: Figures, dimension: str) -> list[PlaceFigure]:
    out = []
    for count in figures.breakdown(dimension):
        place = get_place(count.value)
        out.append(
            PlaceFigure(
                code=count.value,
                name=place.name if place else count.label,
                people=count.people,
                registrations=count.registrations,
            )
        )
    out.sort(key=lambda p: (-p.registrations, -p.people, p.code))
    return out


def stats_of(loaded: Loaded) -> Stats:
    tenant, figures = loaded.tenant, loaded.figures
    result = Stats(
        scope="全国" if tenant.is_platform else tenant.name,
        scope_code=tenant.code,
        kind=tenant.kind,
        people=figures.people,
        registrations=figures.registrations,
        by_tier=[Breakdown.of(c) for c in figures.breakdown(TIER)],
        by_type=[Breakdown.of(c) for c in figures.breakdown(TYPE)],
        by_residence_prefecture=[Breakdown.of(c) for c in figures.breakdown(RESIDENCE)],
        by_age_band=[Breakdown.of(c) for c in figures.breakdown(AGE)],
        by_connection=[Breakdown.of(c) for c in figures.breakdown(CONNECTION)],
    )
    if loaded.own is not None:
        result.own_registrations = loaded.own.registrations
        result.places = _place_figures(figures, PLACE)
    if tenant.is_platform:
        result.prefectures = _place_figures(figures, AREA)
        result.targets = [
            Target(
                label="実人数",
                value=figures.people,
                target=TARGET_PEOPLE,
                ratio=figures.people / TARGET_PEOPLE,
            ),
            Target(
                label="延べ人数",
                value=figures.registrations,
                target=TARGET_REGISTRATIONS,
                ratio=figures.registrations / TARGET_REGISTRATIONS,
            ),
        ]
    return result


async def trend(call: Call, days: int, stats: Stats | None = None) -> Trend:
    """The snapshots of the last `days` days, and today's figures as the last point."""
    today = call.now().astimezone(JST).date()
    since = today - timedelta(days=days)
    scope = scope_of(call.tenant)
    docs = await call.storage.stats.snapshots.trend(scope, since)
    points = [
        TrendPoint(
            day=date.fromisoformat(str(doc["day"])),
            people=int(doc.get("people", 0)),
            registrations=int(doc.get("registrations", 0)),
        )
        for doc in docs
    ]
    points = [p for p in points if p.day < today]
    current = stats or stats_of(await load(call))
    points.append(
        TrendPoint(day=today, people=current.people, registrations=current.registrations, live=True)
    )
    return Trend(scope=current.scope, days=days, points=points)


@routes.get(
    "/stats",
    response=Stats,
    summary="実人数・延べ人数と内訳（区分・関わり方・居住都道府県・年代・きっかけ）",
    description=(
        "ログインした自治体の範囲の集計です。都道府県は管内市区町村を含み、`places` に内訳が"
        "入ります。運営アカウントは全国の集計と国の目標（`targets`）、都道府県別（`prefectures`）。"
    ),
)
async def get_stats(call: Call) -> Stats:
    return stats_of(await load(call))


@routes.get(
    "/stats/trend",
    response=Trend,
    query=TrendQuery,
    summary="実人数・延べ人数の推移（日ごと）",
    description="毎日0時5分（日本時間）に前日分を記録します。最後の点は現在の値です。",
)
async def get_trend(call: Call, query: TrendQuery) -> Trend:
    return await trend(call, query.days)


# --- the first version of the API: /summary ------------------------------------------------------


class PlaceCount(BaseModel):
    code: str
    name: str
    registrations: int


class Summary(BaseModel):
    scope: str = Field(description="集計の範囲（自治体名、または全国）")
    people: int = Field(description="実人数（重複を除いた人数）")
    registrations: int = Field(description="延べ人数（登録の件数）")
    by_tier: dict[str, int]
    by_type: dict[str, int]
    own_registrations: int | None = Field(
        default=None, description="都道府県: 都道府県そのものへの登録の件数"
    )
    top_places: list[PlaceCount] = Field(
        default_factory=list, description="都道府県: 登録の多い管内市区町村"
    )


def _registrations(counts: list[Breakdown]) -> dict[str, int]:
    return {c.value: c.registrations for c in counts if c.registrations}


def summary_of(stats: Stats) -> Summary:
    result = Summary(
        scope=stats.scope,
        people=stats.people,
        registrations=stats.registrations,
        by_tier=_registrations(stats.by_tier),
        by_type=_registrations(stats.by_type),
        own_registrations=stats.own_registrations,
    )
    if stats.kind == "prefecture":
        ranked = [p for p in stats.places if p.code != stats.scope_code][:TOP_PLACES]
        result.top_places = [
            PlaceCount(
                code=p.code,
                name=place.name if (place := get_place(p.code)) else p.name,
                registrations=p.registrations,
            )
            for p in ranked
        ]
    return result


@routes.get("/summary", response=Summary, summary="実人数・延べ人数と内訳（簡易版）")
async def get_summary(call: Call) -> Summary:
    return summary_of(stats_of(await load(call)))


# --- the page -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    people: int
    registrations: int
    people_width: float  # 0..100, of the widest bar of the chart
    registrations_width: float
    note: str = ""


def bars(rows: list[tuple[str, int, int]]) -> list[Bar]:
    """(label, people, registrations) rows as bars, scaled to the largest figure."""
    widest = max((max(p, r) for _, p, r in rows), default=0) or 1
    return [
        Bar(
            label=label,
            people=p,
            registrations=r,
            people_width=round(100 * p / widest, 2),
            registrations_width=round(100 * r / widest, 2),
        )
        for label, p, r in rows
    ]


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    note: str = ""


@dataclass(frozen=True)
class LineChart:
    """A trend drawn in a 1000×300 box (stretched to the card's width)."""

    people: str  # polyline points
    registrations: str
    top: int  # the value at the top of the box
    first: str  # first and last day, as labels
    last: str
    points: list[TrendPoint]


def _nice(value: int) -> int:
    """A round number ≥ value for the top of the axis (1, 2, 5 × 10ⁿ)."""
    if value <= 0:
        return 10
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def _day_label(day: date) -> str:
    return f"{day.month}月{day.day}日"


def line_chart(points: list[TrendPoint], days: int, today: date) -> LineChart | None:
    if len(points) < 2:
        return None
    start = today - timedelta(days=days)
    span = max(1, (today - start).days)
    top_value = _nice(max(max(p.people, p.registrations) for p in points))

    def polyline(values: list[tuple[date, int]]) -> str:
        return " ".join(
            f"{1000 * (d - start).days / span:.1f},{300 - 290 * v / top_value:.1f}"
            for d, v in values
        )

    return LineChart(
        people=polyline([(p.day, p.people) for p in points]),
        registrations=polyline([(p.day, p.registrations) for p in points]),
        top=top_value,
        first=_day_label(start),
        last=_day_label(today),
        points=points,
    )


def _rows(counts: list[Breakdown] | list[Count]) -> list[tuple[str, int, int]]:
    return [(c.label, c.people, c.registrations) for c in counts]


def _place_rows(places: list[PlaceFigure]) -> list[tuple[str, int, int]]:
    return [(p.name, p.people, p.registrations) for p in places]


def charts(stats: Stats) -> list[Chart]:
    residences = top(
        [Count(b.value, b.label, b.people, b.registrations) for b in stats.by_residence_prefecture],
        TOP_RESIDENCES,
    )
    return [
        Chart("区分別", bars(_rows(stats.by_tier))),
        Chart(
            "関わり方別",
            bars(_rows(stats.by_type)),
            "1件の登録で複数を選べるため、合計は延べ人数と一致しません。",
        ),
        Chart(
            "お住まいの都道府県別",
            bars(_rows(residences)),
            f"多い順に{TOP_RESIDENCES}都道府県と、それ以外の合計（その他）です。"
            if len(stats.by_residence_prefecture) > TOP_RESIDENCES
            else "",
        ),
        Chart("年代別", bars(_rows(stats.by_age_band))),
        Chart("きっかけ別", bars(_rows(stats.by_connection))),
    ]


def percent(ratio: float) -> str:
    """「12.3%」; tiny shares as 「0.01%未満」 rather than 0%."""
    pct = 100 * ratio
    if pct == 0:
        return "0%"
    if pct < 0.01:
        return "0.01%未満"
    if pct < 10:
        return f"{pct:.2f}%"
    return f"{pct:.1f}%"


def _days(raw: str | None) -> int:
    try:
        value = int(raw or "")
    except ValueError:
        return TREND_DAYS[0]
    return value if value in TREND_DAYS else TREND_DAYS[0]


@pages.get("/", nav="ダッシュボード", order=10)
async def dashboard_page(call: PageCall) -> web.StreamResponse:
    stats = stats_of(await load(call))
    days = _days(call.request.query.get("days"))
    series = await trend(call, days, stats)
    today = call.now().astimezone(JST).date()
    places = [p for p in stats.places if p.code != stats.scope_code]
    return call.render(
        "dashboard.html",
        title="ダッシュボード",
        stats=stats,
        summary=summary_of(stats),
        kind=call.tenant.kind,
        both_measures=stats.kind != "municipality",
        charts=charts(stats),
        trend=series,
        line=line_chart(series.points, days, today),
        days=days,
        day_options=TREND_DAYS,
        places=places,
        place_bars=bars(_place_rows(places[:TOP_CHART])),
        prefecture_bars=bars(_place_rows(stats.prefectures[:TOP_CHART])),
        top_chart=TOP_CHART,
        percent=percent,
        as_of=call.now().astimezone(JST),
    )
