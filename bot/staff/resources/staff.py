"""Staff accounts of the tenant (admins only): `/api/v1/staff` and the console's スタッフ page."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from bot.staff import console
from bot.staff.accounts import StaffError, add_staff, email_problem, normalize_email, remove_staff
from bot.staff.api import ApiError, ApiModel, ApiRoutes, not_found
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.passwords import MAX_LENGTH, MIN_LENGTH
from bot.staff.tenancy import Role
from bot.storage.db import Document

routes = ApiRoutes("staff", "スタッフアカウント（管理者のみ）")
pages = Pages()

console.NOTICES.update({"staff_removed": "スタッフを削除しました。"})


class StaffOut(BaseModel):
    id: str
    email: str
    role: Role
    created_at: datetime
    last_login_at: datetime | None
    must_change_password: bool

    @classmethod
    def of(cls, doc: Document) -> StaffOut:
        return cls(
            id=str(doc["_id"]),
            email=str(doc["email"]),
            role=Role(str(doc["role"])),
            created_at=doc["created_at"],
            last_login_at=doc.get("last_login_at"),
            must_change_password=bool(doc.get("must_change_password")),
        )


class StaffList(BaseModel):
    items: list[StaffOut]


class StaffCreate(ApiModel):
    email: str = Field(max_length=254, description="ログインに使うメールアドレス")
    role: Role = Field(description="admin（管理者）・editor（編集者）・viewer（閲覧者）")
    password: str | None = Field(
        default=None,
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description="省略すると初期パスワードを発行します（初回ログイン時に変更が必要）",
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = normalize_email(value)
        if (problem := email_problem(value)) is not None:
            raise ValueError(problem)
        return value


class StaffCreated(BaseModel):
    staff: StaffOut
    initial_password: str | None = Field(
        description="発行した初期パスワード（この応答でのみ表示）。指定した場合は null"
    )


def _api_error(exc: StaffError) -> ApiError:
    status = 409 if exc.code in ("email_taken", "cannot_remove_self") else 422
    return ApiError(status, exc.code, exc.message, exc.field)


@routes.get("/staff", response=StaffList, role=Role.ADMIN, summary="スタッフの一覧")
async def list_staff(call: Call) -> StaffList:
    docs = await call.storage.staff_accounts.list_for(call.tenant)
    return StaffList(items=[StaffOut.of(doc) for doc in docs])


@routes.get("/staff/{staff_id}", response=StaffOut, role=Role.ADMIN, summary="スタッフを1人取得")
async def get_staff(call: Call) -> StaffOut:
    doc = await call.storage.staff_accounts.get_for(call.tenant, call.param("staff_id"))
    if doc is None:
        raise not_found()
    return StaffOut.of(doc)


@routes.post(
    "/staff",
    body=StaffCreate,
    response=StaffCreated,
    status=201,
    role=Role.ADMIN,
    summary="スタッフを追加",
)
async def create_staff(call: Call, body: StaffCreate) -> StaffCreated:
    try:
        doc, generated = await add_staff(
            call.storage,
            call.now(),
            tenant_code=call.tenant.code,
            email=body.email,
            role=body.role,
            password=body.password,
            actor=call.actor,
            ip=call.ip,
        )
    except StaffError as exc:
        raise _api_error(exc) from None
    return StaffCreated(staff=StaffOut.of(doc), initial_password=generated)


@routes.delete(
    "/staff/{staff_id}", role=Role.ADMIN, summary="スタッフを削除（ログイン中のセッションも終了）"
)
async def delete_staff(call: Call) -> None:
    try:
        doc = await remove_staff(
            call.storage, call.now(), call.principal, call.param("staff_id"), call.ip
        )
    except StaffError as exc:
        raise _api_error(exc) from None
    if doc is None:
        raise not_found()


# --- console --------------------------------------------------------------------------------------

LABELS = {"email": "メールアドレス", "role": "権限"}


async def _render(
    call: PageCall,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    created: tuple[Document, str | None] | None = None,
) -> web.Response:
    docs = await call.storage.staff_accounts.list_for(call.tenant)
    return call.render(
        "staff.html",
        status=status,
        title="スタッフ",
        staff=[StaffOut.of(doc) for doc in docs],
        roles=list(Role),
        errors=errors or {},
        values=values or {"email": "", "role": Role.VIEWER.value},
        created=created,
        me=call.principal.id,
    )


@pages.get("/staff", role=Role.ADMIN, nav="スタッフ", order=50)
async def staff_page(call: PageCall) -> web.StreamResponse:
    return await _render(call)


@pages.post("/staff", role=Role.ADMIN)
async def staff_add(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    values = {"email": form.get("email", ""), "role": form.get("role", "")}
    body, errors = await call.form_model(StaffCreate, LABELS)
    if body is None:
        return await _render(call, status=422, errors=errors, values=values)
    try:
        doc, generated = await add_staff(
            call.storage,
            call.now(),
            tenant_code=call.tenant.code,
            email=body.email,
            role=body.role,
            actor=call.actor,
            ip=call.ip,
        )
    except StaffError as exc:
        return await _render(
            call, status=422, errors={exc.field or "email": exc.message}, values=values
        )
    return await _render(call, status=201, created=(doc, generated))


@pages.post("/staff/{staff_id}/delete", role=Role.ADMIN)
async def staff_delete(call: PageCall) -> web.StreamResponse:
    try:
        doc = await remove_staff(
            call.storage, call.now(), call.principal, call.param("staff_id"), call.ip
        )
    except StaffError as exc:
        return console.forbidden_page(call.request, exc.message)
    if doc is None:
        return console.not_found_page(call.request)
    raise call.redirect("/admin/staff", notice="staff_removed")
