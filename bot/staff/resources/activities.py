"""Bearer activities (担い手活動) for staff: `/api/v1/activities` and the 担い手活動 pages.

Staff post activities (date and time, place, capacity, description), see who takes part and who
waits (by registration number and nickname, never the LINE user id), show the day's attendance
code on site, mark attendance by hand, change the capacity (people move up from the waiting list
and are told), and set how many activities a Premium renewal needs (default 3).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from bot.activities import ActivityService, activity_context
from bot.clock import JST
from bot.domain.activities import Activity, ActivityKind
from bot.domain.registration import RENEWAL_MIN_ACTIVITIES
from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, not_found
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role
from bot.storage.activities import MAX_REQUIRED

routes = ApiRoutes("activities", "担い手活動（定員・キャンセル待ち・出席）", municipal_only=True)
pages = Pages(municipal_only=True)

console.NOTICES.update(
    {
        "activity_posted": "活動を登録しました。",
        "attendance_marked": "出席を記録しました。",
        "attendance_already": "出席はすでに記録されています。",
        "capacity_changed": "定員を変更しました。",
        "renewal_required_saved": "更新に必要な活動回数を保存しました。",
    }
)


# --- models ---------------------------------------------------------------------------------------


class ActivityIn(ApiModel):
    title: str = Field(min_length=1, max_length=60, description="活動名")
    kind: ActivityKind = Field(default=ActivityKind.VOLUNTEER, description="種類")
    starts_at: datetime = Field(description="開始日時（タイムゾーンなしは日本時間）")
    ends_at: datetime = Field(description="終了日時（タイムゾーンなしは日本時間）")
    place: str = Field(min_length=1, max_length=100, description="集合場所")
    capacity: int = Field(ge=1, le=10000, description="定員")
    description: str = Field(default="", max_length=1000, description="内容・持ち物など")

    @model_validator(mode="after")
    def times_in_order(self) -> ActivityIn:
        self.starts_at = _japan(self.starts_at)
        self.ends_at = _japan(self.ends_at)
        if self.ends_at <= self.starts_at:
            raise ValueError("終了日時は開始日時より後にしてください")
        return self


class CapacityIn(ApiModel):
    capacity: int = Field(ge=1, le=10000, description="新しい定員")


class AttendanceIn(ApiModel):
    registration_id: str = Field(min_length=1, max_length=40, description="登録のID")


class SettingsIn(ApiModel):
    renewal_required: int = Field(
        ge=1, le=MAX_REQUIRED, description="プレミアム更新に必要な1年間の活動回数"
    )


class Participant(BaseModel):
    registration_id: str
    number: str
    nickname: str
    attended: bool = False
    position: int | None = None


class ActivityOut(BaseModel):
    id: str
    title: str
    kind: ActivityKind
    starts_at: datetime
    ends_at: datetime
    place: str
    capacity: int
    description: str
    confirmed: int
    waiting: int
    attended: int


class ActivityDetail(ActivityOut):
    attendance_code: str
    participants: list[Participant]
    waiting_list: list[Participant]


class ActivityList(BaseModel):
    items: list[ActivityOut]


class SettingsOut(BaseModel):
    renewal_required: int


class MarkOut(BaseModel):
    recorded: bool


class CountRow(BaseModel):
    registration_id: str
    number: str
    nickname: str
    count: int


class Counts(BaseModel):
    year: int
    required: int
    items: list[CountRow]


def _japan(value: datetime) -> datetime:
    return value.replace(tzinfo=JST) if value.tzinfo is None else value


def _service(call: Call) -> ActivityService:
    from bot.app import SERVICES

    services = call.request.app.get(SERVICES)
    if services is not None:
        return ActivityService(
            call.storage, call.clock, call.settings, services.line, services.renderer
        )
    return ActivityService(call.storage, call.clock, call.settings)  # no LINE client: no pushes


async def _find_activity(call: Call) -> Activity | None:
    """The caller's activity named in the path, if any."""
    activity = await call.storage.activities.get(call.param("activity_id"))
    if activity is None or activity.municipality_code != call.tenant.code:
        return None
    return activity


async def _activity(call: Call) -> Activity:
    activity = await _find_activity(call)
    if activity is None:
        raise not_found()
    return activity


async def _summary(call: Call, activity: Activity) -> ActivityOut:
    view = await call.storage.rosters.view(activity.id, activity.capacity)
    attended = await call.storage.attendance.attended(activity.id)
    return ActivityOut(
        id=activity.id,
        title=activity.title,
        kind=activity.kind,
        starts_at=activity.starts_at,
        ends_at=activity.ends_at,
        place=activity.place,
        capacity=activity.capacity,
        description=activity.description,
        confirmed=len(view.confirmed),
        waiting=len(view.waiting),
        attended=len(attended),
    )


async def _people(
    call: Call, place_code: str, users: tuple[str, ...], attended: set[str], waiting: bool
) -> list[Participant]:
    people = []
    for index, user_id in enumerate(users, start=1):
        doc = await call.storage.registrations.find(user_id, place_code)
        people.append(
            Participant(
                registration_id=str(doc["_id"]) if doc else "",
                number=str((doc or {}).get("number", "（登録解除済み）")),
                nickname=str((doc or {}).get("nickname", "")),
                attended=user_id in attended,
                position=index if waiting else None,
            )
        )
    return people


async def _detail(call: Call, activity: Activity) -> ActivityDetail:
    summary = await _summary(call, activity)
    view = await call.storage.rosters.view(activity.id, activity.capacity)
    attended = await call.storage.attendance.attended(activity.id)
    code = activity.municipality_code
    return ActivityDetail(
        **summary.model_dump(),
        attendance_code=_service(call).code(activity),
        participants=await _people(call, code, view.confirmed, attended, False),
        waiting_list=await _people(call, code, view.waiting, attended, True),
    )


async def _post(call: Call, body: ActivityIn) -> Activity:
    draft = Activity(
        "new",
        call.tenant.code,
        body.title,
        body.kind,
        body.starts_at,
        body.ends_at,
        body.place,
        body.capacity,
        body.description,
    )
    return await call.storage.activities.add(draft, call.now(), created_by=call.actor.label)


async def _mark(call: Call, activity: Activity, registration_id: str) -> bool:
    registration = await call.storage.registrations.get(registration_id)
    if registration is None or registration.get("place_code") != activity.municipality_code:
        raise not_found()
    user_id = str(registration["user_id"])
    state, _ = await call.storage.rosters.status(activity.id, user_id)
    if state != "confirmed":
        raise ApiError(
            409, "not_confirmed", "参加が決まっている方だけ出席を記録できます。", "registration_id"
        )
    return await _service(call).mark(activity, user_id, call.actor.label)


# --- API ------------------------------------------------------------------------------------------


@routes.get("/activities", response=ActivityList, role=Role.VIEWER, summary="担い手活動の一覧")
async def list_activities(call: Call) -> ActivityList:
    found = await call.storage.activities.for_place(call.tenant.code)
    return ActivityList(items=[await _summary(call, a) for a in found])


@routes.post(
    "/activities",
    body=ActivityIn,
    response=ActivityDetail,
    status=201,
    role=Role.EDITOR,
    summary="担い手活動を登録",
)
async def post_activity(call: Call, body: ActivityIn) -> ActivityDetail:
    return await _detail(call, await _post(call, body))


@routes.get(
    "/activities/{activity_id}",
    response=ActivityDetail,
    role=Role.VIEWER,
    summary="担い手活動の詳細（参加者・キャンセル待ち・出席コード）",
)
async def get_activity(call: Call) -> ActivityDetail:
    return await _detail(call, await _activity(call))


@routes.put(
    "/activities/{activity_id}/capacity",
    body=CapacityIn,
    response=ActivityDetail,
    role=Role.EDITOR,
    summary="定員を変更（増やすとキャンセル待ちの方が繰り上がります）",
)
async def put_capacity(call: Call, body: CapacityIn) -> ActivityDetail:
    activity = await _activity(call)
    try:
        await _service(call).resize(activity, body.capacity)
    except ValueError:
        raise ApiError(
            409,
            "capacity_too_low",
            "参加が決まっている方より少ない定員にはできません。",
            "capacity",
        ) from None
    return await _detail(call, await _activity(call))


@routes.post(
    "/activities/{activity_id}/attendance",
    body=AttendanceIn,
    response=MarkOut,
    role=Role.EDITOR,
    summary="出席を記録（参加が決まっている方）",
)
async def mark_attendance(call: Call, body: AttendanceIn) -> MarkOut:
    return MarkOut(recorded=await _mark(call, await _activity(call), body.registration_id))


async def _counts(call: Call, year: int) -> Counts:
    place = call.tenant.code
    rows = []
    for user_id, count in (await call.storage.attendance.counts_for_place(place, year)).items():
        doc = await call.storage.registrations.find(user_id, place)
        if doc is None:
            continue  # registration removed: nobody to show
        rows.append(
            CountRow(
                registration_id=str(doc["_id"]),
                number=str(doc.get("number", "")),
                nickname=str(doc.get("nickname", "")),
                count=count,
            )
        )
    rows.sort(key=lambda r: (-r.count, r.number))
    required = await call.storage.activity_settings.required(place)
    return Counts(year=year, required=required, items=rows)


def _year(call: Call) -> int:
    raw = call.request.query.get("year", "")
    if not raw:
        return call.clock.now_jst().year
    if not raw.isdigit() or not 2000 <= int(raw) <= 2100:
        raise ApiError(422, "invalid_year", "年は西暦4桁で指定してください。", "year")
    return int(raw)


@routes.get(
    "/activity-counts",
    response=Counts,
    role=Role.VIEWER,
    summary="1年（日本時間の暦年、?year=）の参加回数（登録者ごと）",
)
async def get_counts(call: Call) -> Counts:
    return await _counts(call, _year(call))


@routes.get(
    "/activity-settings",
    response=SettingsOut,
    role=Role.VIEWER,
    summary="プレミアム更新に必要な活動回数",
)
async def get_settings(call: Call) -> SettingsOut:
    return SettingsOut(
        renewal_required=await call.storage.activity_settings.required(call.tenant.code)
    )


@routes.put(
    "/activity-settings",
    body=SettingsIn,
    response=SettingsOut,
    role=Role.ADMIN,
    summary="プレミアム更新に必要な活動回数を設定",
)
async def put_settings(call: Call, body: SettingsIn) -> SettingsOut:
    place = call.tenant.code
    await call.storage.activity_settings.set_required(place, body.renewal_required, call.now())
    return SettingsOut(renewal_required=body.renewal_required)


# --- console --------------------------------------------------------------------------------------

LABELS = {
    "title": "活動名",
    "kind": "種類",
    "starts_at": "開始日時",
    "ends_at": "終了日時",
    "place": "集合場所",
    "capacity": "定員",
    "description": "内容",
    "renewal_required": "更新に必要な回数",
}
EMPTY = {
    "title": "",
    "kind": "volunteer",
    "starts_at": "",
    "ends_at": "",
    "place": "",
    "capacity": "10",
    "description": "",
}


async def _render_list(
    call: PageCall,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> web.Response:
    place = call.tenant.code
    since = call.now() - timedelta(days=90)
    found = await call.storage.activities.for_place(place, since)
    items = [(a, await _summary(call, a), activity_context(a)) for a in found]
    counts = await _counts(call, call.clock.now_jst().year)
    return call.render(
        "activities.html",
        status=status,
        title="担い手活動",
        items=items,
        kinds=list(ActivityKind),
        errors=errors or {},
        values=values or EMPTY,
        required=await call.storage.activity_settings.required(place),
        default_required=RENEWAL_MIN_ACTIVITIES,
        counts=counts,
        can_edit=call.principal.can(Role.EDITOR),
        can_admin=call.principal.can(Role.ADMIN),
    )


@pages.get("/activities", role=Role.VIEWER, nav="担い手活動", order=45)
async def activities_page(call: PageCall) -> web.StreamResponse:
    return await _render_list(call)


@pages.post("/activities", role=Role.EDITOR)
async def activities_post(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    values = {key: form.get(key, "") for key in EMPTY}
    body, errors = await call.form_model(ActivityIn, LABELS)
    if body is None:
        return await _render_list(call, status=422, errors=errors, values=values)
    activity = await _post(call, body)
    raise call.redirect(f"/admin/activities/{activity.id}", notice="activity_posted")


@pages.post("/activities/settings", role=Role.ADMIN)
async def activities_settings(call: PageCall) -> web.StreamResponse:
    body, errors = await call.form_model(SettingsIn, LABELS)
    if body is None:
        return await _render_list(call, status=422, errors=errors)
    await call.storage.activity_settings.set_required(
        call.tenant.code, body.renewal_required, call.now()
    )
    raise call.redirect("/admin/activities", notice="renewal_required_saved")


async def _render_detail(
    call: PageCall, activity: Activity, *, status: int = 200, error: str = ""
) -> web.Response:
    return call.render(
        "activity.html",
        status=status,
        title=activity.title,
        activity=await _detail(call, activity),
        info=activity_context(activity),
        error=error,
        can_edit=call.principal.can(Role.EDITOR),
    )


@pages.get("/activities/{activity_id}", role=Role.VIEWER)
async def activity_page(call: PageCall) -> web.StreamResponse:
    activity = await _find_activity(call)
    if activity is None:
        return console.not_found_page(call.request)
    return await _render_detail(call, activity)


@pages.post("/activities/{activity_id}/attendance", role=Role.EDITOR)
async def activity_mark(call: PageCall) -> web.StreamResponse:
    activity = await _find_activity(call)
    if activity is None:
        return console.not_found_page(call.request)
    form = await call.form()
    try:
        recorded = await _mark(call, activity, form.get("registration_id", ""))
    except ApiError as exc:
        if exc.status == 404:
            return console.not_found_page(call.request)
        return await _render_detail(call, activity, status=exc.status, error=exc.message)
    notice = "attendance_marked" if recorded else "attendance_already"
    raise call.redirect(f"/admin/activities/{activity.id}", notice=notice)


@pages.post("/activities/{activity_id}/capacity", role=Role.EDITOR)
async def activity_capacity(call: PageCall) -> web.StreamResponse:
    activity = await _find_activity(call)
    if activity is None:
        return console.not_found_page(call.request)
    body, errors = await call.form_model(CapacityIn, {"capacity": "定員"})
    if body is None:
        message = next(iter(errors.values()), "定員を確かめてください。")
        return await _render_detail(call, activity, status=422, error=message)
    try:
        await _service(call).resize(activity, body.capacity)
    except ValueError:
        return await _render_detail(
            call, activity, status=409, error="参加が決まっている方より少ない定員にはできません。"
        )
    raise call.redirect(f"/admin/activities/{activity.id}", notice="capacity_changed")
