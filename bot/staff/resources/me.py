"""`GET /api/v1/me`: who is calling, for which tenant, with which role."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from bot.staff.api import ApiRoutes
from bot.staff.context import Call
from bot.staff.tenancy import Role, Tenant, TenantKind

routes = ApiRoutes("me", "ログイン中のスタッフ・APIキー")


class TenantOut(BaseModel):
    code: str
    name: str
    kind: TenantKind

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        return cls(code=tenant.code, name=tenant.name, kind=tenant.kind)


class MeOut(BaseModel):
    id: str
    auth: Literal["session", "api_key"]
    label: str  # the staff member's e-mail, or the API key's name
    role: Role
    tenant: TenantOut
    csrf_token: str | None = None  # sessions only: send it as X-CSRF-Token on changes


@routes.get("/me", response=MeOut, summary="自分（ログイン中のスタッフまたはAPIキー）の情報")
async def get_me(call: Call) -> MeOut:
    p = call.principal
    return MeOut(
        id=p.id,
        auth=p.kind,
        label=p.label,
        role=p.role,
        tenant=TenantOut.of(p.tenant),
        csrf_token=p.csrf_token,
    )
