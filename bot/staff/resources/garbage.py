"""The municipality's garbage calendar: `/api/v1/garbage` and the ごみカレンダー page.

Import and export use the 5374.jp CSV set (`bot.domain.gomi5374`). An import is all or nothing:
when any row is wrong nothing is saved, and every bad row is reported with its file, line and
reason. The fallback text (what a dual resident does when no collection day falls in their
stay), the notes and the collection centers can also be edited on their own, and so can each
category, area and collection rule (`bot.domain.garbage` editing functions): staff choose the
kind of rule from a list instead of writing 5374 cells. A change is saved only when the whole
calendar reads back from storage unchanged.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField
from pydantic import BaseModel, Field

from bot.domain.garbage import (
    MAX_NTH,
    WEEKDAY_CHARS,
    Calendar,
    CalendarEditError,
    CollectionCenter,
    Rule,
    RuleFields,
    RuleKind,
    Suspension,
    Weekday,
    date_label,
    make_rule,
    next_collection_days,
    parse_weekday,
    put_area,
    put_category,
    put_schedule,
    remove_area,
    remove_category,
    remove_schedule,
    rule_fields,
)
from bot.domain.gomi5374 import (
    KNOWN_FILES,
    ImportProblems,
    Problem,
    export_5374,
    format_cell,
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

routes = ApiRoutes(
    "garbage", "ごみカレンダー（5374.jp 形式の取り込み・書き出し）", municipal_only=True
)
pages = Pages(municipal_only=True)

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
        "garbage_category_saved": "分別を保存しました。",
        "garbage_category_removed": "分別を削除しました。",
        "garbage_area_saved": "地区を保存しました。",
        "garbage_area_removed": "地区を削除しました。",
        "garbage_schedule_saved": "収集日を保存しました。下の「次の収集日」で確かめてください。",
        "garbage_schedule_removed": "この地区ではこの分別を収集しない設定にしました。",
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


class RuleItem(ApiModel):
    kind: RuleKind = Field(
        description="weekly（毎週 曜日）, nth（第n 曜日）, every_other_week（隔週、起点日の週から"
        "2週ごと）, date（特定の日付）"
    )
    weekday: str | None = Field(default=None, max_length=3, description="曜日: 月〜日")
    nth: int | None = Field(default=None, description=f"第n の n（1〜{MAX_NTH}）")
    day: date | None = Field(default=None, description="特定の日付、または隔週の起点日")


class ScheduleIn(ApiModel):
    rules: list[RuleItem] = Field(max_length=60, description="収集日の決まり（1つ以上）")
    months: list[int] = Field(
        default_factory=list, max_length=12, description="収集する月（空: 毎月）"
    )


class CategoryIn(ApiModel):
    name: str = Field(max_length=100, description="分別の名前（燃やすごみ など）")
    items: list[str] = Field(default_factory=list, max_length=200, description="主な品目")
    holiday: str = Field(
        default="collected",
        max_length=20,
        description="祝日の扱い: collected, skipped, moved, moved:sundays, moved:+N, moved:-N",
    )
    notes: str | None = Field(
        default=None, max_length=MAX_TEXT, description="出し方の注意（省略: いまのまま）"
    )


class AreaIn(ApiModel):
    name: str | None = Field(
        default=None, max_length=100, description="地区の新しい名前（省略: URLの名前のまま）"
    )
    center: str = Field(default="", max_length=100, description="収集センターの名前（空: なし）")
    lat: float | None = Field(default=None, description="緯度（位置情報で地区を選ぶとき）")
    lng: float | None = Field(default=None, description="経度")


class RuleOut(BaseModel):
    kind: str
    kind_label: str
    weekday: str | None
    nth: int | None
    day: date | None
    label: str


class ScheduleOut(BaseModel):
    category_id: str
    category: str
    label: str
    cell: str = Field(description="5374.jp 形式のセル（参考）")
    rules: list[RuleOut]
    months: list[int]
    next_days: list[date] = Field(description="次の収集日（最大3日、1年以内）")


class AreaOut(BaseModel):
    name: str
    center: str
    schedules: dict[str, str]
    lat: float | None = None
    lng: float | None = None
    schedule_rules: list[ScheduleOut] = Field(default_factory=list)


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
    def of(cls, calendar: Calendar, today: date) -> CalendarOut:
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
                    schedule_rules=[
                        ScheduleOut(
                            category_id=c.id,
                            category=c.name,
                            label=schedule.label,
                            cell=format_cell(schedule),
                            rules=[_rule_out(r) for r in schedule.rules],
                            months=sorted(schedule.months or ()),
                            next_days=next_collection_days(calendar, a, c.id, today),
                        )
                        for c in calendar.categories
                        if (schedule := a.schedule(c.id)) is not None
                    ],
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


def _rule_out(rule: Rule) -> RuleOut:
    fields = rule_fields(rule)
    return RuleOut(
        kind=fields.kind.value,
        kind_label=fields.kind.label,
        weekday=fields.weekday.label if fields.weekday is not None else None,
        nth=fields.nth,
        day=fields.day,
        label=rule.label,
    )


# --- helpers --------------------------------------------------------------------------------------


def _today(call: Call) -> date:
    return call.clock.now_jst().date()


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
    calendar = await call.storage.garbage_calendars.get(call.tenant.code)
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
    return CalendarOut.of(await _calendar(call), _today(call))


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
    code = call.tenant.code
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
    return CalendarOut.of(calendar, _today(call))


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
    return CalendarOut.of(changed, _today(call))


@routes.delete("/garbage", role=Role.EDITOR, summary="ごみカレンダーを削除")
async def delete_calendar(call: Call) -> None:
    code = call.tenant.code
    if not await call.storage.garbage_calendars.remove(code):
        raise not_found()
    await call.audit(Action.GARBAGE_REMOVED, code)


# --- editing one part: categories, areas, rules (shared by the API and the console) -------------


def rules_of(items: list[RuleItem]) -> list[Rule]:
    """The domain rules of the form's or the request's rows; `CalendarEditError` naming the row."""
    rules: list[Rule] = []
    for number, item in enumerate(items, start=1):
        weekday: Weekday | None = None
        if item.weekday:
            weekday = parse_weekday(item.weekday)
            if weekday is None:
                raise CalendarEditError(
                    f"{number}つ目の収集日: 曜日「{item.weekday}」を読めません"
                    f"（{'・'.join(WEEKDAY_CHARS)}から選んでください）。"
                )
        try:
            rules.append(make_rule(RuleFields(item.kind, weekday, item.nth, item.day)))
        except CalendarEditError as exc:
            raise CalendarEditError(f"{number}つ目の収集日: {exc}") from None
    return rules


def checked(calendar: Calendar) -> Calendar:
    """The calendar when it reads back from storage as it is; `CalendarEditError` otherwise."""
    try:
        stored = parse_5374(export_5374(calendar), municipality_code=calendar.municipality_code)
    except ImportProblems as exc:
        raise CalendarEditError(
            f"この内容では保存できません（{exc.problems[0].reason}）。"
        ) from None
    if stored != calendar:
        raise CalendarEditError("この内容では保存できません。名前や品目を見直してください。")
    return stored


async def _edit(
    call: Call,
    change: Callable[[Calendar], Calendar],
    action: Action,
    target: str,
    *,
    create: bool = False,
) -> Calendar:
    """Apply one change to the municipality's calendar, save it and audit it.

    KeyError when the calendar (unless `create`), area or category does not exist;
    `CalendarEditError` when the change is refused (nothing is saved then).
    """
    code = call.tenant.code
    calendar = await call.storage.garbage_calendars.get(code)
    if calendar is None:
        if not create:
            raise KeyError(code)
        calendar = Calendar(municipality_code=code)
    try:
        changed = checked(change(calendar))
    except ValueError as exc:
        if isinstance(exc, CalendarEditError):
            raise
        raise CalendarEditError(f"カレンダーとして成り立ちません（{exc}）。") from None
    await call.storage.garbage_calendars.put(changed, call.now(), by=call.actor.label)
    await call.audit(action, target)
    return changed


async def save_category(call: Call, category_id: str, body: CategoryIn) -> Calendar:
    policy = parse_holiday_policy(body.holiday)
    if policy is None:
        raise CalendarEditError(f"祝日の扱い「{body.holiday}」を読めません。")
    return await _edit(
        call,
        lambda c: put_category(c, category_id, body.name, body.items, policy, body.notes),
        Action.GARBAGE_CATEGORY_SAVED,
        category_id,
        create=True,  # the first category starts a calendar
    )


async def delete_category(call: Call, category_id: str) -> Calendar:
    return await _edit(
        call,
        lambda c: remove_category(c, category_id),
        Action.GARBAGE_CATEGORY_REMOVED,
        category_id,
    )


async def save_area(call: Call, current: str | None, name: str, body: AreaIn) -> Calendar:
    """Add the area `name` (`current` None), or change the area now called `current`."""
    return await _edit(
        call,
        lambda c: put_area(c, current, name, body.center, body.lat, body.lng),
        Action.GARBAGE_AREA_SAVED,
        name,
    )


async def delete_area(call: Call, name: str) -> Calendar:
    return await _edit(call, lambda c: remove_area(c, name), Action.GARBAGE_AREA_REMOVED, name)


async def save_schedule(call: Call, area: str, category_id: str, body: ScheduleIn) -> Calendar:
    rules = rules_of(body.rules)
    return await _edit(
        call,
        lambda c: put_schedule(c, area, category_id, rules, body.months),
        Action.GARBAGE_SCHEDULE_SAVED,
        f"{area}/{category_id}",
    )


async def delete_schedule(call: Call, area: str, category_id: str) -> Calendar:
    return await _edit(
        call,
        lambda c: remove_schedule(c, area, category_id),
        Action.GARBAGE_SCHEDULE_REMOVED,
        f"{area}/{category_id}",
    )


async def _api_edit(call: Call, edit: Awaitable[Calendar]) -> CalendarOut:
    try:
        return CalendarOut.of(await edit, _today(call))
    except KeyError:
        raise not_found() from None
    except CalendarEditError as exc:
        raise ApiError(422, "invalid_calendar_edit", str(exc)) from None


@routes.put(
    "/garbage/categories/{category_id}",
    body=CategoryIn,
    response=CalendarOut,
    role=Role.EDITOR,
    summary="分別を追加・変更（名前・主な品目・祝日の扱い）",
    description="カレンダーがまだなければ、この分別から新しく作ります。",
)
async def put_category_api(call: Call, body: CategoryIn) -> CalendarOut:
    return await _api_edit(call, save_category(call, call.param("category_id"), body))


@routes.delete(
    "/garbage/categories/{category_id}",
    response=CalendarOut,
    role=Role.EDITOR,
    summary="分別を削除（各地区のその分別の収集日も消えます）",
)
async def delete_category_api(call: Call) -> CalendarOut:
    return await _api_edit(call, delete_category(call, call.param("category_id")))


@routes.put(
    "/garbage/areas/{area}",
    body=AreaIn,
    response=CalendarOut,
    role=Role.EDITOR,
    summary="地区を追加・変更（名前・収集センター・位置）",
    description="ない地区なら追加します。name を送ると地区の名前を変えます。",
)
async def put_area_api(call: Call, body: AreaIn) -> CalendarOut:
    area = call.param("area")
    calendar = await call.storage.garbage_calendars.get(call.tenant.code)
    current = area if calendar is not None and area in calendar.area_names() else None
    return await _api_edit(call, save_area(call, current, body.name or area, body))


@routes.delete(
    "/garbage/areas/{area}",
    response=CalendarOut,
    role=Role.EDITOR,
    summary="地区を削除（その地区の収集日・収集休止も消えます）",
)
async def delete_area_api(call: Call) -> CalendarOut:
    return await _api_edit(call, delete_area(call, call.param("area")))


@routes.put(
    "/garbage/areas/{area}/schedules/{category_id}",
    body=ScheduleIn,
    response=CalendarOut,
    role=Role.EDITOR,
    summary="地区の分別の収集日を設定（毎週・第n・隔週・特定の日付、月の指定）",
)
async def put_schedule_api(call: Call, body: ScheduleIn) -> CalendarOut:
    area, category_id = call.param("area"), call.param("category_id")
    return await _api_edit(call, save_schedule(call, area, category_id, body))


@routes.delete(
    "/garbage/areas/{area}/schedules/{category_id}",
    response=CalendarOut,
    role=Role.EDITOR,
    summary="地区でその分別を収集しない設定にする",
)
async def delete_schedule_api(call: Call) -> CalendarOut:
    area, category_id = call.param("area"), call.param("category_id")
    return await _api_edit(call, delete_schedule(call, area, category_id))


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
        calendar=CalendarOut.of(calendar, _today(call)) if calendar else None,
        holiday_rules=HOLIDAY_RULES,
        files=list(export_5374(calendar)) if calendar else [],
        known_files=KNOWN_FILES,
        problems=problems or [],
        error=error,
        can_edit=call.principal.can(Role.EDITOR),
        date_label=date_label,
    )


@pages.get("/garbage", role=Role.VIEWER, nav="ごみカレンダー", order=45)
async def garbage_page(call: PageCall) -> web.StreamResponse:
    return await _render(call)


@pages.post("/garbage/import", role=Role.EDITOR)
async def garbage_import(call: PageCall) -> web.StreamResponse:
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
    if not await call.storage.garbage_calendars.remove(call.tenant.code):
        return console.not_found_page(call.request)
    await call.audit(Action.GARBAGE_REMOVED, call.tenant.code)
    raise call.redirect("/admin/garbage", notice="garbage_removed")


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for error in errors():
            return str(error.get("msg", "")).removeprefix("Value error, ")
    return str(exc) or "地区が使うセンターは消せません"


# --- console: editing one category, area or rule --------------------------------------------------

BLANK_RULE_ROWS = 3
MONTHS = tuple(range(1, 13))


def _holiday_rules(current: str) -> dict[str, str]:
    """The holiday choices, with the category's own rule when it is not one of them."""
    rules = dict(HOLIDAY_RULES)
    if current not in rules:
        policy = parse_holiday_policy(current)
        rules[current] = policy.label if policy else current
    return rules


def _rule_row(fields: RuleFields | None = None) -> dict[str, str]:
    if fields is None:
        return {"kind": "", "weekday": "", "nth": "", "day": ""}
    return {
        "kind": fields.kind.value,
        "weekday": fields.weekday.label if fields.weekday is not None else "",
        "nth": str(fields.nth or ""),
        "day": fields.day.isoformat() if fields.day else "",
    }


async def _edit_page(
    call: PageCall, form: str, values: dict[str, Any], *, status: int = 200, error: str = ""
) -> web.Response:
    calendar = await call.storage.garbage_calendars.get(call.tenant.code)
    titles = {"category": "分別の編集", "area": "地区の編集", "schedule": "収集日の編集"}
    return call.render(
        "garbage_edit.html",
        status=status,
        title=titles[form],
        form=form,
        values=values,
        error=error,
        holiday_rules=_holiday_rules(str(values.get("holiday", "collected"))),
        centers=[c.name for c in calendar.centers] if calendar else [],
        kinds=list(RuleKind),
        weekdays=list(WEEKDAY_CHARS),
        nths=list(range(1, MAX_NTH + 1)),
        months=MONTHS,
    )


def _console_error(exc: Exception) -> str:
    if isinstance(exc, CalendarEditError):
        return str(exc)
    return _first_error(exc) if isinstance(exc, ValueError) else "入力内容を確かめてください。"


@pages.get("/garbage/category", role=Role.EDITOR)
async def garbage_category_page(call: PageCall) -> web.StreamResponse:
    category_id = call.request.query.get("id", "")
    values: dict[str, Any] = {"new": True, "category_id": "", "name": "", "items": "", "notes": ""}
    values["holiday"] = "collected"
    if category_id:
        calendar = await call.storage.garbage_calendars.get(call.tenant.code)
        found = (
            next((c for c in calendar.categories if c.id == category_id), None)
            if calendar
            else None
        )
        if found is None:
            return console.not_found_page(call.request)
        values = {
            "new": False,
            "category_id": found.id,
            "name": found.name,
            "items": "\n".join(i.name for i in found.items),
            "holiday": format_holiday_policy(found.holiday),
            "notes": found.notes,
        }
    return await _edit_page(call, "category", values)


@pages.post("/garbage/category", role=Role.EDITOR)
async def garbage_category_save(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    values: dict[str, Any] = {
        key: form.get(key, "") for key in ("category_id", "name", "items", "holiday", "notes")
    }
    values["new"] = form.get("new") == "1"
    try:
        body = CategoryIn(
            name=values["name"],
            items=[line for line in values["items"].splitlines() if line.strip()],
            holiday=values["holiday"] or "collected",
            notes=values["notes"],
        )
        await save_category(call, values["category_id"].strip(), body)
    except KeyError:
        return console.not_found_page(call.request)
    except ValueError as exc:
        return await _edit_page(call, "category", values, status=422, error=_console_error(exc))
    raise call.redirect("/admin/garbage", notice="garbage_category_saved")


@pages.post("/garbage/category/delete", role=Role.EDITOR)
async def garbage_category_delete(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    removal = delete_category(call, form.get("category_id", ""))
    return await _console_removal(call, removal, "garbage_category_removed")


async def _console_removal(
    call: PageCall, removal: Awaitable[Calendar], notice: str
) -> web.StreamResponse:
    """A removal posted from the main page: back to it with the notice, or the reason."""
    try:
        await removal
    except KeyError:
        return console.not_found_page(call.request)
    except CalendarEditError as exc:
        return await _render(call, status=422, error=str(exc))
    raise call.redirect("/admin/garbage", notice=notice)


@pages.get("/garbage/area", role=Role.EDITOR)
async def garbage_area_page(call: PageCall) -> web.StreamResponse:
    calendar = await call.storage.garbage_calendars.get(call.tenant.code)
    if calendar is None:
        return console.not_found_page(call.request)
    name = call.request.query.get("name", "")
    values: dict[str, Any] = {"current": "", "name": "", "center": "", "lat": "", "lng": ""}
    if name:
        if name not in calendar.area_names():
            return console.not_found_page(call.request)
        area = calendar.area(name)
        values = {
            "current": area.name,
            "name": area.name,
            "center": area.center,
            "lat": "" if area.lat is None else repr(area.lat),
            "lng": "" if area.lng is None else repr(area.lng),
        }
    return await _edit_page(call, "area", values)


@pages.post("/garbage/area", role=Role.EDITOR)
async def garbage_area_save(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    values = {key: form.get(key, "").strip() for key in ("current", "name", "center", "lat", "lng")}
    try:
        body = AreaIn(
            center=values["center"],
            lat=_number(values["lat"], "緯度"),
            lng=_number(values["lng"], "経度"),
        )
        await save_area(call, values["current"] or None, values["name"], body)
    except KeyError:
        return console.not_found_page(call.request)
    except ValueError as exc:
        return await _edit_page(call, "area", values, status=422, error=_console_error(exc))
    raise call.redirect("/admin/garbage", notice="garbage_area_saved")


def _number(text: str, label: str) -> float | None:
    if not text:
        return None
    try:
        return float(text.replace("，", ".").replace("．", "."))
    except ValueError:
        raise CalendarEditError(f"{label}は数で入力してください（例: 38.9081）。") from None


@pages.post("/garbage/area/delete", role=Role.EDITOR)
async def garbage_area_delete(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    removal = delete_area(call, form.get("name", ""))
    return await _console_removal(call, removal, "garbage_area_removed")


@pages.get("/garbage/schedule", role=Role.EDITOR)
async def garbage_schedule_page(call: PageCall) -> web.StreamResponse:
    calendar = await call.storage.garbage_calendars.get(call.tenant.code)
    query = call.request.query
    area, category_id = query.get("area", ""), query.get("category", "")
    known = {c.id for c in calendar.categories} if calendar else set()
    if calendar is None or area not in calendar.area_names() or category_id not in known:
        return console.not_found_page(call.request)
    found, category = calendar.area(area), calendar.category(category_id)
    schedule = found.schedule(category_id)
    rows = [_rule_row(rule_fields(r)) for r in schedule.rules] if schedule else []
    values = {
        "area": area,
        "category": category_id,
        "category_name": category.name,
        "rows": rows + [_rule_row()] * BLANK_RULE_ROWS,
        "months": sorted(schedule.months or ()) if schedule else [],
        "exists": schedule is not None,
    }
    return await _edit_page(call, "schedule", values)


@pages.post("/garbage/schedule", role=Role.EDITOR)
async def garbage_schedule_save(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    area, category_id = form.get("area", ""), form.get("category", "")
    rows = [
        {"kind": kind, "weekday": weekday, "nth": nth, "day": day}
        for kind, weekday, nth, day in zip(
            form.getall("kind", []),
            form.getall("weekday", []),
            form.getall("nth", []),
            form.getall("day", []),
            strict=False,
        )
    ]
    values: dict[str, Any] = {
        "area": area,
        "category": category_id,
        "category_name": form.get("category_name", ""),
        "rows": rows,
        "months": [int(m) for m in form.getall("months", []) if m.isdigit()],
        "exists": form.get("exists") == "1",
    }
    try:
        items = []
        for number, row in enumerate((r for r in rows if r["kind"]), start=1):
            try:
                items.append(RuleItem.model_validate({k: v for k, v in row.items() if v}))
            except ValueError as exc:
                raise CalendarEditError(f"{number}つ目の収集日: {_first_error(exc)}") from None
        body = ScheduleIn(rules=items, months=values["months"])
        await save_schedule(call, area, category_id, body)
    except KeyError:
        return console.not_found_page(call.request)
    except ValueError as exc:
        return await _edit_page(call, "schedule", values, status=422, error=_console_error(exc))
    raise call.redirect("/admin/garbage", notice="garbage_schedule_saved")


@pages.post("/garbage/schedule/delete", role=Role.EDITOR)
async def garbage_schedule_delete(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    area, category_id = form.get("area", ""), form.get("category", "")
    removal = delete_schedule(call, area, category_id)
    return await _console_removal(call, removal, "garbage_schedule_removed")
