"""The tenant's audit log (admins only): `GET /api/v1/audit` and the console's 操作履歴 page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from bot.staff.api import ApiModel, ApiRoutes
from bot.staff.audit import ACTION_LABELS
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role
from bot.storage.db import Document

routes = ApiRoutes("audit", "操作履歴（管理者のみ）")
pages = Pages()


class AuditEntry(BaseModel):
    id: str
    at: datetime
    action: str
    actor_kind: str
    actor: str
    target: str
    ip: str
    details: dict[str, Any]

    @classmethod
    def of(cls, doc: Document) -> AuditEntry:
        return cls(
            id=str(doc["_id"]),
            at=doc["at"],
            action=str(doc["action"]),
            actor_kind=str(doc.get("actor_kind", "")),
            actor=str(doc.get("actor", "")),
            target=str(doc.get("target", "")),
            ip=str(doc.get("ip", "")),
            details=dict(doc.get("details") or {}),
        )


class AuditList(BaseModel):
    items: list[AuditEntry]


class AuditQuery(ApiModel):
    limit: int = Field(default=100, ge=1, le=500, description="件数（新しい順）")


@routes.get("/audit", query=AuditQuery, response=AuditList, role=Role.ADMIN, summary="操作履歴")
async def list_audit(call: Call, query: AuditQuery) -> AuditList:
    docs = await call.storage.audit.list_for(call.tenant, query.limit)
    return AuditList(items=[AuditEntry.of(doc) for doc in docs])


@pages.get("/audit", role=Role.ADMIN, nav="操作履歴", order=70)
async def audit_page(call: PageCall) -> web.StreamResponse:
    docs = await call.storage.audit.list_for(call.tenant, 200)
    return call.render(
        "audit.html",
        title="操作履歴",
        entries=[AuditEntry.of(doc) for doc in docs],
        labels=ACTION_LABELS,
    )
