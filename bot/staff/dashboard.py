"""The ダッシュボード: the tenant's 実人数 (people) and 延べ人数 (registrations), by tier and type.

Counted from the `registrations` collection on each view (good enough until counters and charts
replace this module). A prefecture also sees its own registrations and the municipalities with
the most registrations; operators see national figures only. `GET /api/v1/summary` gives the
same figures as JSON.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from bot.domain.places import get_place
from bot.domain.registration import RelationshipType, Tier
from bot.staff.api import ApiRoutes
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.storage.registrants import RegistrantFilter

routes = ApiRoutes("summary", "集計（実人数・延べ人数）")
pages = Pages()

TOP_PLACES = 10


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


async def summary(call: Call) -> Summary:
    store = call.storage.registrants
    tenant = call.tenant
    if tenant.is_platform:
        totals = await store.national_totals()
        return Summary(
            scope="全国",
            people=totals.people,
            registrations=totals.registrations,
            by_tier=await store.national_count_by("tier"),
            by_type=await store.national_count_by("types"),
        )
    totals = await store.totals(tenant)
    result = Summary(
        scope=tenant.name,
        people=totals.people,
        registrations=totals.registrations,
        by_tier=await store.count_by(tenant, "tier"),
        by_type=await store.count_by(tenant, "types"),
    )
    if tenant.kind == "prefecture":
        own = await store.count(tenant, RegistrantFilter(place_code=tenant.code))
        per_place = await store.count_by(tenant, "place_code")
        per_place.pop(tenant.code, None)
        ranked = sorted(per_place.items(), key=lambda item: (-item[1], item[0]))[:TOP_PLACES]
        result.own_registrations = own
        result.top_places = [
            PlaceCount(code=code, name=p.name if (p := get_place(code)) else code, registrations=n)
            for code, n in ranked
        ]
    return result


@routes.get("/summary", response=Summary, summary="実人数・延べ人数と内訳")
async def get_summary(call: Call) -> Summary:
    return await summary(call)


def _labelled(counts: dict[str, int], labels: dict[str, str]) -> list[tuple[str, int]]:
    known = [(label, counts.get(value, 0)) for value, label in labels.items()]
    others = sum(n for value, n in counts.items() if value not in labels)
    return known + ([("その他", others)] if others else [])


@pages.get("/", nav="ダッシュボード", order=10)
async def dashboard_page(call: PageCall) -> web.StreamResponse:
    figures = await summary(call)
    return call.render(
        "dashboard.html",
        title="ダッシュボード",
        summary=figures,
        tiers=_labelled(figures.by_tier, {t.value: t.label for t in Tier}),
        types=_labelled(figures.by_type, {t.value: t.short_label for t in RelationshipType}),
        kind=call.tenant.kind,
    )
