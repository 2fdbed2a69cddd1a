"""API keys of the tenant (admins only): `/api/v1/api-keys` and the console's APIキー page."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from bot.staff import console
from bot.staff.accounts import StaffError
from bot.staff.api import ApiError, ApiModel, ApiRoutes, not_found
from bot.staff.apikeys import MAX_NAME, create_api_key, revoke_api_key
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role
from bot.storage.db import Document

routes = ApiRoutes("api-keys", "APIキー（管理者のみ）")
pages = Pages()

console.NOTICES.update({"api_key_revoked": "APIキーを無効にしました。"})


class ApiKeyOut(BaseModel):
    id: str
    name: str
    role: Role
    prefix: str = Field(description="キーの先頭（見分けるため）")
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, doc: Document) -> ApiKeyOut:
        return cls(
            id=str(doc["_id"]),
            name=str(doc["name"]),
            role=Role(str(doc["role"])),
            prefix=str(doc["prefix"]),
            created_by=str(doc.get("created_by", "")),
            created_at=doc["created_at"],
            last_used_at=doc.get("last_used_at"),
            revoked_at=doc.get("revoked_at"),
        )


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


class ApiKeyCreate(ApiModel):
    name: str = Field(min_length=1, max_length=MAX_NAME, description="用途がわかる名前")
    role: Literal["viewer", "editor"] = Field(default="viewer", description="キーの権限")


class ApiKeyCreated(BaseModel):
    api_key: ApiKeyOut
    key: str = Field(description="APIキー（この応答でのみ表示。保存されるのはハッシュだけ）")


@routes.get("/api-keys", response=ApiKeyList, role=Role.ADMIN, summary="APIキーの一覧")
async def list_api_keys(call: Call) -> ApiKeyList:
    docs = await call.storage.api_keys.list_for(call.tenant)
    return ApiKeyList(items=[ApiKeyOut.of(doc) for doc in docs])


@routes.get("/api-keys/{key_id}", response=ApiKeyOut, role=Role.ADMIN, summary="APIキーを1件取得")
async def get_api_key(call: Call) -> ApiKeyOut:
    doc = await call.storage.api_keys.get_for(call.tenant, call.param("key_id"))
    if doc is None:
        raise not_found()
    return ApiKeyOut.of(doc)


@routes.post(
    "/api-keys",
    body=ApiKeyCreate,
    response=ApiKeyCreated,
    status=201,
    role=Role.ADMIN,
    summary="APIキーを発行（キーはこの応答でのみ表示）",
)
async def create_key(call: Call, body: ApiKeyCreate) -> ApiKeyCreated:
    try:
        doc, key = await create_api_key(
            call.storage, call.now(), call.principal, body.name, body.role, call.ip
        )
    except StaffError as exc:
        raise ApiError(422, exc.code, exc.message, exc.field) from None
    return ApiKeyCreated(api_key=ApiKeyOut.of(doc), key=key)


@routes.delete("/api-keys/{key_id}", role=Role.ADMIN, summary="APIキーを無効化")
async def revoke_key(call: Call) -> None:
    doc = await revoke_api_key(
        call.storage, call.now(), call.principal, call.param("key_id"), call.ip
    )
    if doc is None:
        raise not_found()


# --- console --------------------------------------------------------------------------------------

LABELS = {"name": "名前", "role": "権限"}


async def _render(
    call: PageCall,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    created: tuple[Document, str] | None = None,
) -> web.Response:
    docs = await call.storage.api_keys.list_for(call.tenant)
    return call.render(
        "api_keys.html",
        status=status,
        title="APIキー",
        keys=[ApiKeyOut.of(doc) for doc in docs],
        roles=[Role.VIEWER, Role.EDITOR],
        errors=errors or {},
        values=values or {"name": "", "role": Role.VIEWER.value},
        created=created,
    )


@pages.get("/api-keys", role=Role.ADMIN, nav="APIキー", order=60)
async def api_keys_page(call: PageCall) -> web.StreamResponse:
    return await _render(call)


@pages.post("/api-keys", role=Role.ADMIN)
async def api_keys_create(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    values = {"name": form.get("name", ""), "role": form.get("role", "viewer")}
    body, errors = await call.form_model(ApiKeyCreate, LABELS)
    if body is None:
        return await _render(call, status=422, errors=errors, values=values)
    try:
        created = await create_api_key(
            call.storage, call.now(), call.principal, body.name, body.role, call.ip
        )
    except StaffError as exc:
        return await _render(
            call, status=422, errors={exc.field or "name": exc.message}, values=values
        )
    return await _render(call, status=201, created=created)


@pages.post("/api-keys/{key_id}/revoke", role=Role.ADMIN)
async def api_keys_revoke(call: PageCall) -> web.StreamResponse:
    doc = await revoke_api_key(
        call.storage, call.now(), call.principal, call.param("key_id"), call.ip
    )
    if doc is None:
        return console.not_found_page(call.request)
    raise call.redirect("/admin/api-keys", notice="api_key_revoked")
