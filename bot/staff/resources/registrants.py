"""Registrants of the tenant, pseudonymous: `/api/v1/registrants` (list, one, CSV) and the
console's 登録者 page.

Staff see the registration number, place, tier, types, residence prefecture (not the
municipality), age band, connection, nickname (it is printed on the card anyway), dates and
status; never the LINE user id. A prefecture sees its own registrations and its municipalities';
operators see none (their figures are national counts on the dashboard).

The CSV export is audited, streamed, UTF-8 with a BOM (so Excel reads the Japanese), and safe
against formula injection: a cell starting with = + - @ tab or CR gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from bot.clock import JST
from bot.domain.places import get_place
from bot.domain.registration import AgeBand, Connection, RelationshipType, Tier
from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, not_found, validate_query
from bot.staff.audit import Action
from bot.staff.console import PageCall, Pages
from bot.staff.context import STREAMING, Call
from bot.storage.db import Document
from bot.storage.registrants import RegistrantFilter

routes = ApiRoutes("registrants", "登録者（仮名化。LINEのユーザーIDは含みません）")
pages = Pages()

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


# --- models ---------------------------------------------------------------------------------------


class RegistrantQuery(ApiModel):
    place_code: str | None = Field(
        default=None, pattern=r"^[0-9]{6}$", description="登録先（都道府県が管内の市区町村で絞る）"
    )
    tier: Tier | None = Field(default=None, description="区分")
    type: RelationshipType | None = Field(default=None, description="関わり方（いずれかを含む）")
    residence_prefecture: str | None = Field(
        default=None, description="居住都道府県のコード（例: 130001 東京都）"
    )
    age_band: AgeBand | None = Field(default=None, description="年代")
    connection: Connection | None = Field(default=None, description="きっかけ")
    since_from: date | None = Field(default=None, description="登録日（日本時間）がこの日以降")
    since_to: date | None = Field(default=None, description="登録日（日本時間）がこの日以前")

    @field_validator("residence_prefecture")
    @classmethod
    def _prefecture(cls, value: str | None) -> str | None:
        if value is None:
            return None
        place = get_place(value)
        if place is None or not place.is_prefecture:
            raise ValueError("都道府県の6桁コード（例: 130001）を指定してください。")
        return value

    def to_filter(self) -> RegistrantFilter:
        return RegistrantFilter(
            place_code=self.place_code,
            tier=self.tier.value if self.tier else None,
            type=self.type.value if self.type else None,
            residence_prefecture=self.residence_prefecture,
            age_band=self.age_band.value if self.age_band else None,
            connection=self.connection.value if self.connection else None,
            since_from=_jst_midnight(self.since_from) if self.since_from else None,
            since_until=(
                _jst_midnight(self.since_to + timedelta(days=1)) if self.since_to else None
            ),
        )

    def active(self) -> dict[str, str]:
        """The filters given, as query parameters."""
        return {
            k: str(v.value if hasattr(v, "value") else v)
            for k, v in self.model_dump(exclude_none=True).items()
        }


class RegistrantListQuery(RegistrantQuery):
    limit: int = Field(default=PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="1ページの件数")
    cursor: str | None = Field(default=None, description="前のページの next_cursor")


def _jst_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=JST)


class Registrant(BaseModel):
    id: str
    number: str = Field(description="登録番号")
    place_code: str
    place_name: str
    tier: str
    types: list[str]
    residence_prefecture: str | None = Field(description="居住都道府県のコード")
    residence_prefecture_name: str | None
    age_band: str | None
    connection: str | None
    nickname: str | None
    since: date | None = Field(description="登録日（日本時間）")
    valid_until: date | None
    status: str

    @classmethod
    def of(cls, doc: Document) -> Registrant:
        place = get_place(str(doc.get("place_code", "")))
        residence = get_place(str(doc.get("residence_code") or ""))
        prefecture = get_place(residence.prefecture_code) if residence else None
        return cls(
            id=str(doc["_id"]),
            number=str(doc.get("number", "")),
            place_code=str(doc.get("place_code", "")),
            place_name=place.display_name if place else "",
            tier=str(doc.get("tier", "")),
            types=[str(t) for t in doc.get("types") or []],
            residence_prefecture=prefecture.code if prefecture else None,
            residence_prefecture_name=prefecture.name if prefecture else None,
            age_band=doc.get("age_band"),
            connection=doc.get("connection"),
            nickname=doc.get("nickname"),
            since=_jst_day(doc.get("since")),
            valid_until=_jst_day(doc.get("valid_until")),
            status=str(doc.get("status", "")),
        )


def _jst_day(value: Any) -> date | None:
    return value.astimezone(JST).date() if isinstance(value, datetime) else None


class RegistrantPage(BaseModel):
    items: list[Registrant]
    total: int = Field(description="条件に合う件数")
    next_cursor: str | None = Field(description="次のページ（なければ null）")


# --- labels ---------------------------------------------------------------------------------------


def _label(enum: Any, value: str | None) -> str:
    try:
        return str(enum(value).label) if value is not None else ""
    except ValueError:
        return value or ""


def type_labels(types: list[str]) -> str:
    out = []
    for t in types:
        try:
            out.append(RelationshipType(t).short_label)
        except ValueError:
            out.append(t)
    return "・".join(out)


STATUS_LABELS = {"active": "有効", "revoked": "失効", "expired": "期限切れ"}


def labelled(r: Registrant) -> dict[str, str]:
    """A registrant as staff read it (labels in Japanese)."""
    return {
        "number": r.number,
        "place_code": r.place_code,
        "place_name": r.place_name,
        "tier": _label(Tier, r.tier),
        "tier_short": _label(Tier, r.tier).removesuffix("登録"),
        "place_short": p.name if (p := get_place(r.place_code)) else r.place_code,
        "types": type_labels(r.types),
        "residence_prefecture": r.residence_prefecture_name or "",
        "age_band": _label(AgeBand, r.age_band),
        "connection": _label(Connection, r.connection),
        "nickname": r.nickname or "",
        "since": r.since.isoformat() if r.since else "",
        "valid_until": r.valid_until.isoformat() if r.valid_until else "",
        "status": STATUS_LABELS.get(r.status, r.status),
    }


# --- CSV ------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    ("number", "登録番号"),
    ("place_code", "登録先コード"),
    ("place_name", "登録先"),
    ("tier", "区分"),
    ("types", "関わり方"),
    ("residence_prefecture", "居住都道府県"),
    ("age_band", "年代"),
    ("connection", "きっかけ"),
    ("nickname", "ニックネーム"),
    ("since", "登録日"),
    ("valid_until", "有効期限"),
    ("status", "状態"),
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FLUSH_AT = 64 * 1024


def safe_cell(value: str) -> str:
    """Neutralise spreadsheet formulas: a leading apostrophe makes the cell plain text."""
    return "'" + value if value.startswith(_FORMULA_START) else value


async def csv_response(call: Call, query: RegistrantQuery) -> web.StreamResponse:
    """Stream the tenant's registrants matching `query` as CSV; the export is audited first."""
    filters = query.active()
    await call.audit(Action.REGISTRANTS_EXPORTED, target="registrants", filters=filters)
    stamp = call.clock.now_jst().strftime("%Y%m%d-%H%M")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="registrants-{call.tenant.code}-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await response.prepare(call.request)
    call.request[STREAMING] = True
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([label for _, label in CSV_COLUMNS])
    async for doc in call.storage.registrants.stream(call.tenant, query.to_filter()):
        row = labelled(Registrant.of(doc))
        writer.writerow([safe_cell(row[key]) for key, _ in CSV_COLUMNS])
        if buffer.tell() >= _FLUSH_AT:
            await response.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode("utf-8"))
    await response.write_eof()
    return response


# --- API ------------------------------------------------------------------------------------------


async def _page(call: Call, query: RegistrantListQuery) -> RegistrantPage:
    registrants = call.storage.registrants
    filters = query.to_filter()
    docs, cursor = await registrants.page(
        call.tenant, filters, limit=query.limit, after=query.cursor
    )
    total = await registrants.count(call.tenant, filters)
    return RegistrantPage(items=[Registrant.of(d) for d in docs], total=total, next_cursor=cursor)


@routes.get(
    "/registrants",
    query=RegistrantListQuery,
    response=RegistrantPage,
    summary="登録者の一覧（新しい順、絞り込み・ページ送り）",
)
async def list_registrants(call: Call, query: RegistrantListQuery) -> RegistrantPage:
    return await _page(call, query)


@routes.get(
    "/registrants.csv",
    query=RegistrantQuery,
    produces="text/csv",
    summary="登録者のCSV出力（UTF-8 BOM付き、操作履歴に記録）",
)
async def export_registrants(call: Call, query: RegistrantQuery) -> web.StreamResponse:
    return await csv_response(call, query)


@routes.get("/registrants/{registrant_id}", response=Registrant, summary="登録者を1件取得")
async def get_registrant(call: Call) -> Registrant:
    doc = await call.storage.registrants.get_for(call.tenant, call.param("registrant_id"))
    if doc is None:
        raise not_found()
    return Registrant.of(doc)


# --- console --------------------------------------------------------------------------------------


def _choices() -> dict[str, list[tuple[str, str]]]:
    from bot.domain.places import all_places

    return {
        "tier": [(t.value, t.label) for t in Tier],
        "type": [(t.value, t.short_label) for t in RelationshipType],
        "age_band": [(a.value, a.label) for a in AgeBand],
        "connection": [(c.value, c.label) for c in Connection],
        "residence_prefecture": [(p.code, p.name) for p in all_places() if p.is_prefecture],
    }


def _places(call: Call) -> list[tuple[str, str]]:
    """Places a prefecture may narrow down to (empty for a municipality)."""
    if call.tenant.kind != "prefecture":
        return []
    places = [get_place(code) for code in sorted(call.tenant.registrant_places)]
    return [(p.code, p.display_name) for p in places if p is not None]


@pages.get("/registrants", nav="登録者", order=20)
async def registrants_page(call: PageCall) -> web.StreamResponse:
    errors: dict[str, str] = {}
    try:
        query = validate_query(RegistrantListQuery, call.request)
    except ApiError as exc:  # a hand-edited URL: show what is wrong, list without filters
        errors["query"] = exc.message
        query = RegistrantListQuery()
    page = await _page(call, query)
    filters = {k: v for k, v in query.active().items() if k != "cursor"}
    next_url = (
        "/admin/registrants?" + urlencode({**filters, "cursor": page.next_cursor})
        if page.next_cursor
        else ""
    )
    return call.render(
        "registrants.html",
        next_url=next_url,
        first_query=urlencode(filters),
        title="登録者",
        page=page,
        rows=[(r.id, labelled(r)) for r in page.items],
        query=query.active(),
        choices=_choices(),
        places=_places(call),
        errors=errors,
        operator=call.tenant.is_platform,
    )


@pages.get("/registrants/{registrant_id}")
async def registrant_page(call: PageCall) -> web.StreamResponse:
    doc = await call.storage.registrants.get_for(call.tenant, call.param("registrant_id"))
    if doc is None:
        return console.not_found_page(call.request)
    registrant = Registrant.of(doc)
    return call.render(
        "registrant.html",
        title=f"登録者 {registrant.number}",
        registrant=registrant,
        row=labelled(registrant),
    )


@pages.post("/registrants/export")
async def registrants_export(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    fields = RegistrantQuery.model_fields
    data = {k: v for k, v in form.items() if k in fields and v != ""}
    try:
        query = RegistrantQuery.model_validate(data)
    except ValueError:
        return console.error_page(
            call.request, 422, "CSVを出力できません", "絞り込みの条件が正しくありません。"
        )
    return await csv_response(call, query)
