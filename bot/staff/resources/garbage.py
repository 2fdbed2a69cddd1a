"""The municipality's garbage calendar: `/api/v1/garbage` and the ごみカレンダー page.

Import and export use the 5374.jp CSV set (`bot.domain.gomi5374`). An import is all or nothing:
when any row is wrong nothing is saved, and every bad row is reported with its file, line and
reason. The fallback text (what a dual resident does when no collection day falls in their
stay), the notes and the collection centers can also be edited on their own.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import date
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField
from pydantic import BaseModel, Field

from bot.domain.garbage import Calendar, CollectionCenter, Suspension
from bot.domain.gomi5374 import (
    KNOWN_FILES,
    ImportProblems,
    Problem,
    export_5374,
    format_holiday_policy,
    parse_5374,
    parse_holiday_policy,
)
from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, dumps, not_found
from bot.staff.audit import Action
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role

routes = ApiRoutes("garbage", "ごみカレンダー（5374.jp 形式の取り込み・書き出し）")
pages = Pages()

MAX_FILE_BYTES = 2_000_000
HOLIDAY_RULES = {
    "collected": "祝日も収集",
    "skipped": "祝日は収集なし",
    "moved": "次の祝日・日曜でない日に振替",
    "moved:sundays": "次の祝日でない日に振替",
    "moved:+1": "翌日に振替",
    "moved:-1": "前日に振替",
}
MAX_TEXT = 2000

console.NOTICES.update(
    {
        "garbage_imported": "ごみカレンダーを取り込みました。",
        "garbage_updated": "ごみカレンダーを保存しました。",
        "garbage_removed": "ごみカレンダーを削除しました。",
    }
)


# --- models ---------------------------------------------------------------------------------------


class CenterModel(ApiModel):
    name: str = Field(min_length=1, max_length=100, description="センター名")
    address: str = Field(default="", max_length=200, description="住所")
    hours: str = Field(default="", max_length=200, description="受付時間")
    map_url: str = Field(default="", max_length=500, description="地図のURL")


class ImportIn(ApiModel):
    files: dict[str, str] = Field(
        description="ファイル名（area_days.csv など）→ 内容。base64 が true なら base64 の内容"
    )
    base64: bool = Field(default=False, description="内容が base64（Shift_JIS のファイルなど）")


class SuspensionIn(ApiModel):
    start: date = Field(description="休止の初日")
    end: date = Field(description="休止の最終日")
    area: str | None = Field(default=None, max_length=100, description="地区（省略: 全域）")
    center: str | None = Field(default=None, max_length=100, description="センターの地区だけ")


class SettingsIn(ApiModel):
    fallback: str | None = Field(
        default=None, max_length=MAX_TEXT, description="滞在中に収集日がないときの案内"
    )
    notes: list[str] | None = Field(default=None, max_length=20, description="お知らせ・注意事項")
    centers: list[CenterModel] | None = Field(
        default=None, max_length=20, description="収集センター（名前で地区と結びつきます）"
    )
    suspensions: list[SuspensionIn] | None = Field(
        default=None, max_length=50, description="収集休止（年末年始など）。すべて置き換え"
    )
    holidays: dict[str, str] | None = Field(
        default=None,
        description=(
            "分別ID → 祝日の扱い: collected（収集）, skipped（収集なし）, moved（翌日以降の"
            "祝日・日曜でない日）, moved:sundays, moved:+N / moved:-N（N日後・前）"
        ),
    )


class CategoryOut(BaseModel):
    id: str
    name: str
    holiday: str
    holiday_rule: str
    items: list[str]


class AreaOut(BaseModel):
    name: str
    center: str
    schedules: dict[str, str]
    lat: float | None = None
    lng: float | None = None


class SuspensionOut(BaseModel):
    start: str
    end: str
    scope: str
    area: str | None = None
    center: str | None = None


class CalendarOut(BaseModel):
    municipality_code: str
    categories: list[CategoryOut]
    areas: list[AreaOut]
    centers: list[dict[str, str]]
    suspensions: list[SuspensionOut]
    notes: list[str]
    fallback: str

    @classmethod
    def of(cls, calendar: Calendar) -> CalendarOut:
        names = {c.id: c.name for c in calendar.categories}
        return cls(
            municipality_code=calendar.municipality_code,
            categories=[
                CategoryOut(
                    id=c.id,
                    name=c.name,
                    holiday=c.holiday.label,
                    holiday_rule=format_holiday_policy(c.holiday),
                    items=[i.name for i in c.items],
                )
                for c in calendar.categories
            ],
            areas=[
                AreaOut(
                    name=a.name,
                    center=a.center,
                    schedules={names[s.category_id]: s.label for s in a.schedules},
                    lat=a.lat,
                    lng=a.lng,
                )
                for a in calendar.areas
            ],
            centers=[dataclasses.asdict(c) for c in calendar.centers],
            suspensions=[
                SuspensionOut(
                    start=s.start.isoformat(),
                    end=s.end.isoformat(),
                    scope=s.area or s.center or "全域",
                    area=s.area,
                    center=s.center,
                )
                for s in calendar.suspensions
            ],
            notes=list(calendar.notes),
            fallback=calendar.fallback,
        )


class ExportOut(BaseModel):
    files: dict[str, str]


# --- helpers --------------------------------------------------------------------------------------


def _own_place(call: Call) -> str:
    if call.tenant.is_platform:
        raise not_found()  # operators have no calendar of their own
    return call.tenant.code


def problems_response(problems: tuple[Problem, ...] | list[Problem], message: str) -> web.Response:
    body = {
        "error": {
            "code": "import_failed",
            "message": message,
            "problems": [
                {"file": p.file, "line": p.line, "column": p.column, "reason": p.reason}
                for p in problems
            ],
        }
    }
    return web.json_response(body, status=422, dumps=dumps)


def read_import(files: dict[str, bytes], code: str) -> Calendar:
    """The calendar of these 5374 files, for this municipality; `ImportProblems` otherwise."""
    if not files:
        raise ImportProblems([Problem("area_days.csv", 0, "ファイルがありません")])
    too_big = [name for name, data in files.items() if len(data) > MAX_FILE_BYTES]
    if too_big:
        raise ImportProblems([Problem(name, 0, "ファイルが大きすぎます") for name in too_big])
    return parse_5374(files, municipality_code=code)


async def _calendar(call: Call) -> Calendar:
    calendar = await call.storage.garbage_calendars.get(_own_place(call))
    if calendar is None:
        raise not_found()
    return calendar


def with_settings(calendar: Calendar, body: SettingsIn) -> Calendar:
    """The calendar with the given parts replaced; ValueError when it no longer holds together."""
    changes: dict[str, Any] = {}
    if body.fallback is not None:
        changes["fallback"] = body.fallback.strip()
    if body.notes is not None:
        changes["notes"] = tuple(n.strip() for n in body.notes if n.strip())
    if body.centers is not None:
        changes["centers"] = tuple(
            CollectionCenter(c.name, c.address, c.hours, c.map_url) for c in body.centers
        )
    if body.suspensions is not None:
        changes["suspensions"] = tuple(
            Suspension(s.start, s.end, center=s.center or None, area=s.area or None)
            for s in body.suspensions
        )
    if body.holidays is not None:
        known = {c.id for c in calendar.categories}
        categories = []
        for category in calendar.categories:
            text = body.holidays.get(category.id)
            policy = parse_holiday_policy(text) if text is not None else category.holiday
            if policy is None:
                raise ValueError(f"祝日の扱い「{text}」を読めません")
            categories.append(dataclasses.replace(category, holiday=policy))
        unknown = sorted(set(body.holidays) - known)
        if unknown:
            raise ValueError(f"分別ID {unknown[0]} はありません")
        changes["categories"] = tuple(categories)
    return dataclasses.replace(calendar, **changes)


# --- API ------------------------------------------------------------------------------------------


@routes.get("/garbage", response=CalendarOut, summary="ごみカレンダーを取得")
async def get_calendar(call: Call) -> CalendarOut:
    return CalendarOut.of(await _calendar(call))


@routes.put(
    "/garbage",
    body=ImportIn,
    response=CalendarOut,
    role=Role.EDITOR,
    summary="5374.jp 形式のCSVを取り込む（すべて正しいときだけ保存）",
    description=(
        "area_days.csv は必須。ほかに center.csv, target.csv, description.csv, remarks.csv, "
        "furusato_extensions.csv。誤りがあれば何も保存せず、422 で error.problems に"
        "ファイル・行・理由をすべて返します。"
    ),
)
async def import_calendar(call: Call, body: ImportIn) -> CalendarOut | web.Response:
    code = _own_place(call)
    files: dict[str, bytes] = {}
    for name, content in body.files.items():
        if body.base64:
            try:
                files[name] = base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                message = f"{name} の base64 が正しくありません。"
                raise ApiError(422, "invalid_base64", message, "files") from None
        else:
            files[name] = content.encode("utf-8")
    try:
        calendar = read_import(files, code)
    except ImportProblems as exc:
        return problems_response(exc.problems, exc.message)
    await call.storage.garbage_calendars.put(calendar, call.now(), by=call.actor.label)
    await call.audit(Action.GARBAGE_IMPORTED, code, areas=len(calendar.areas))
    return CalendarOut.of(calendar)


@routes.get("/garbage/export", response=ExportOut, summary="5374.jp 形式で書き出す")
async def export_calendar(call: Call) -> ExportOut:
    calendar = await _calendar(call)
    return ExportOut(files={k: v.decode("utf-8") for k, v in export_5374(calendar).items()})


@routes.patch(
    "/garbage",
    body=SettingsIn,
    response=CalendarOut,
    role=Role.EDITOR,
    summary="案内文・お知らせ・収集センターを変更",
)
async def update_calendar(call: Call, body: SettingsIn) -> CalendarOut:
    calendar = await _calendar(call)
    try:
        changed = with_settings(calendar, body)
    except ValueError as exc:
        raise ApiError(
            422,
            "invalid_calendar",
            f"カレンダーとして成り立ちません（{exc}）。地区が使う収集センターは消せません。",
        ) from None
    await call.storage.garbage_calendars.put(changed, call.now(), by=call.actor.label)
    await call.audit(Action.GARBAGE_UPDATED, changed.municipality_code)
    return CalendarOut.of(changed)


@routes.delete("/garbage", role=Role.EDITOR, summary="ごみカレンダーを削除")
async def delete_calendar(call: Call) -> None:
    code = _own_place(call)
    if not await call.storage.garbage_calendars.remove(code):
        raise not_found()
    await call.audit(Action.GARBAGE_REMOVED, code)


# --- console --------------------------------------------------------------------------------------


async def _render(
    call: PageCall,
    *,
    status: int = 200,
    problems: list[str] | None = None,
    error: str = "",
) -> web.Response:
    calendar = await call.storage.garbage_calendars.get(call.tenant.code)
    return call.render(
        "garbage.html",
        status=status,
        title="ごみカレンダー",
        calendar=CalendarOut.of(calendar) if calendar else None,
        holiday_rules=HOLIDAY_RULES,
        files=list(export_5374(calendar)) if calendar else [],
        known_files=KNOWN_FILES,
        problems=problems or [],
        error=error,
        can_edit=call.principal.can(Role.EDITOR),
    )


@pages.get("/garbage", role=Role.VIEWER, nav="ごみカレンダー", order=45)
async def garbage_page(call: PageCall) -> web.StreamResponse:
    if call.tenant.is_platform:
        return console.not_found_page(call.request)
    return await _render(call)


@pages.post("/garbage/import", role=Role.EDITOR)
async def garbage_import(call: PageCall) -> web.StreamResponse:
    if call.tenant.is_platform:
        return console.not_found_page(call.request)
    data = await call.request.post()
    files: dict[str, bytes] = {}
    for value in data.getall("files", []):
        if isinstance(value, FileField) and value.filename:
            files[value.filename.rsplit("/", 1)[-1]] = value.file.read(MAX_FILE_BYTES + 1)
    try:
        calendar = read_import(files, call.tenant.code)
    except ImportProblems as exc:
        return await _render(
            call,
            status=422,
            error=exc.message.splitlines()[0],
            problems=[str(p) for p in exc.problems],
        )
    await call.storage.garbage_calendars.put(calendar, call.now(), by=call.actor.label)
    await call.audit(Action.GARBAGE_IMPORTED, call.tenant.code, areas=len(calendar.areas))
    raise call.redirect("/admin/garbage", notice="garbage_imported")


@pages.post("/garbage/settings", role=Role.EDITOR)
async def garbage_settings(call: PageCall) -> web.StreamResponse:
    if call.tenant.is_platform:
        return console.not_found_page(call.request)
    calendar = await call.storage.garbage_calendars.get(call.tenant.code)
    if calendar is None:
        return console.not_found_page(call.request)
    form = await call.form()
    centers = [
        CenterModel(
            name=name,
            address=form.get(f"center_address_{i}", ""),
            hours=form.get(f"center_hours_{i}", ""),
            map_url=form.get(f"center_map_url_{i}", ""),
        )
        for i, name in enumerate(form.getall("center_name", []))
        if name.strip()
    ]
    suspensions: list[SuspensionIn] = []
    lines = form.get("suspensions", "").splitlines()
    for number, line in enumerate(lines, start=1):
        parts = [p.strip() for p in line.replace("，", ",").split(",")]
        if not line.strip():
            continue
        scope = parts[2] if len(parts) > 2 else ""
        try:
            suspensions.append(
                SuspensionIn(
                    start=date.fromisoformat(parts[0]),
                    end=date.fromisoformat(parts[1]),
                    area=scope if scope in calendar.area_names() else None,
                    center=scope if scope and scope not in calendar.area_names() else None,
                )
            )
        except (ValueError, IndexError):
            message = f"収集休止の{number}行目を読めません（例: 2026-12-31,2027-01-03）。"
            return await _render(call, status=422, error=message)
    holidays = {
        c.id: form[f"holiday_{c.id}"] for c in calendar.categories if f"holiday_{c.id}" in form
    }
    try:
        body = SettingsIn(
            fallback=form.get("fallback", "")[:MAX_TEXT],
            notes=[n for n in form.get("notes", "").splitlines() if n.strip()][:20],
            centers=centers,
            suspensions=suspensions[:50],
            holidays=holidays,
        )
        changed = with_settings(calendar, body)
    except ValueError as exc:
        message = _first_error(exc)
        return await _render(call, status=422, error=f"入力内容を確かめてください（{message}）。")
    await call.storage.garbage_calendars.put(changed, call.now(), by=call.actor.label)
    await call.audit(Action.GARBAGE_UPDATED, call.tenant.code)
    raise call.redirect("/admin/garbage", notice="garbage_updated")


@pages.get("/garbage/export/{name}", role=Role.VIEWER)
async def garbage_export_file(call: PageCall) -> web.StreamResponse:
    calendar = await call.storage.garbage_calendars.get(call.tenant.code)
    name = call.param("name")
    files = export_5374(calendar, bom=True) if calendar else {}
    if name not in files:
        return console.not_found_page(call.request)
    return web.Response(
        body=files[name],
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@pages.post("/garbage/delete", role=Role.EDITOR)
async def garbage_delete(call: PageCall) -> web.StreamResponse:
    if call.tenant.is_platform or not await call.storage.garbage_calendars.remove(call.tenant.code):
        return console.not_found_page(call.request)
    await call.audit(Action.GARBAGE_REMOVED, call.tenant.code)
    raise call.redirect("/admin/garbage", notice="garbage_removed")


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for error in errors():
            return str(error.get("msg", "")).removeprefix("Value error, ")
    return str(exc) or "地区が使うセンターは消せません"
