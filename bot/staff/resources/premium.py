"""The Premium review queue: `/api/v1/premium-applications` and the console's プレミアム審査 page.

A tenant reviews the applications for its own place: a municipality those for the municipality,
a prefecture those for the prefecture (Premium and its support are granted by the place itself;
a prefecture does not decide for its municipalities). Anything else is 404, as for any record
outside the tenant. Everyone may look (viewers too); editors and admins decide.

The identity document is served with `Cache-Control: no-store` and only while the application
waits; every view of it, every approval and every rejection is in the audit log (ids and the
place only: never the reason, which may describe the resident). The resident hears the decision
in the chat (`PremiumService`), exactly once however many staff decide at the same moment.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from aiohttp import web
from bson import ObjectId
from pydantic import BaseModel, Field, field_validator

from bot.app import SERVICES
from bot.clock import JST
from bot.domain.places import get_place
from bot.domain.registration import AgeBand, RelationshipType, Tier
from bot.premium import Decision, PremiumService, ReviewRefused
from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, not_found
from bot.staff.audit import ACTION_LABELS, Actor
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role, Tenant
from bot.storage.db import Document
from bot.storage.premium import PENDING, STATUSES

routes = ApiRoutes(
    "premium-applications",
    "プレミアム登録の審査（本人確認書類の確認と承認・不承認。承認・不承認は編集者以上）",
)
pages = Pages()

REASON_MAX = 200
LIST_LIMIT = 100

# Audit actions of this module (stored as `action` like those of `bot.staff.audit.Action`).
DOCUMENT_VIEWED = "premium_document_viewed"
APPROVED = "premium_approved"
REJECTED = "premium_rejected"
ACTION_LABELS.update(
    {
        DOCUMENT_VIEWED: "プレミアム審査書類の閲覧",
        APPROVED: "プレミアム登録の承認",
        REJECTED: "プレミアム登録の不承認",
    }
)
console.NOTICES.update(
    {
        "premium_approved": "承認しました。申請者にLINEでお知らせしました。",
        "premium_rejected": "承認しないことにしました。理由を申請者にLINEでお知らせしました。",
        "premium_not_notified": (
            "審査結果を記録しましたが、申請者へのLINEのお知らせは届いていません"
            "（ブロックされているか、送信に失敗しました）。"
        ),
        "premium_already_decided": "この申請は、すでに審査が終わっています。",
    }
)

STATUS_LABELS = {
    "pending": "審査待ち",
    "approved": "承認",
    "rejected": "不承認",
    "withdrawn": "取り下げ",
}
VERIFIER_LABELS = {"staff_review": "書類の確認（職員）"}

Status = Literal["pending", "approved", "rejected", "withdrawn"]


def review_places(tenant: Tenant) -> frozenset[str]:
    """The places whose Premium applications this tenant reviews: its own place only."""
    return frozenset() if tenant.is_platform else frozenset({tenant.code})


# --- models ---------------------------------------------------------------------------------------


class ApplicationOut(BaseModel):
    id: str
    status: Status = Field(description="pending（審査待ち）・approved・rejected・withdrawn")
    place_code: str
    place_name: str
    registration_number: str | None = Field(description="登録番号（登録が解除されていれば null）")
    tier: str | None = Field(description="登録の現在の区分")
    valid_until: date | None = Field(description="プレミアム登録の有効期限（日本時間）")
    types: list[str] = Field(description="関わり方")
    age_band: str | None
    nickname: str | None
    verifier: str = Field(description="本人確認の方法")
    submitted_at: datetime
    has_document: bool = Field(description="書類の写真を見られるか（審査が終わると削除）")
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None = Field(description="承認しなかった理由（申請者に伝えた文）")
    notified: bool | None = Field(
        default=None, description="承認・不承認の直後のみ: 申請者にLINEで伝えられたか"
    )


class ApplicationList(BaseModel):
    items: list[ApplicationOut]


class ApplicationQuery(ApiModel):
    status: Status = Field(default="pending", description="状態（既定: 審査待ち）")
    limit: int = Field(default=LIST_LIMIT, ge=1, le=200, description="件数")


class RejectIn(ApiModel):
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX,
        description="承認しない理由（申請者にそのまま伝わります。1〜200文字）",
    )

    @field_validator("reason")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any((ord(c) < 32 and c != "\n") or ord(c) == 127 for c in value):
            raise ValueError("制御文字は使えません。")
        return value


def _jst_day(value: Any) -> date | None:
    return value.astimezone(JST).date() if isinstance(value, datetime) else None


async def _out(call: Call, app: Document, notified: bool | None = None) -> ApplicationOut:
    registration = await call.storage.registrations.get(str(app.get("registration_id")))
    if registration is not None and registration.get("user_id") != app.get("user_id"):
        registration = None
    place = get_place(str(app["place_code"]))
    oid = app["_id"]
    has_document = (
        app.get("status") == PENDING
        and isinstance(oid, ObjectId)
        and await call.storage.identity_documents.exists(oid)
    )
    reg = registration or {}
    return ApplicationOut(
        id=str(oid),
        status=app["status"] if app.get("status") in STATUSES else "pending",
        place_code=str(app["place_code"]),
        place_name=place.display_name if place else str(app["place_code"]),
        registration_number=str(reg["number"]) if reg.get("number") else None,
        tier=str(reg["tier"]) if reg.get("tier") else None,
        valid_until=_jst_day(reg.get("valid_until")),
        types=[str(t) for t in reg.get("types") or []],
        age_band=reg.get("age_band"),
        nickname=reg.get("nickname"),
        verifier=str(app.get("verifier", "")),
        submitted_at=app["submitted_at"],
        has_document=has_document,
        decided_by=app.get("decided_by"),
        decided_at=app.get("decided_at"),
        reason=app.get("reason") or None,
        notified=notified,
    )


# --- the operations, shared by the API and the console --------------------------------------------


def _service(call: Call) -> PremiumService:
    return call.request.config_dict[SERVICES].premium


async def _find(call: Call, application_id: str) -> Document | None:
    return await call.storage.premium_applications.get_for(
        review_places(call.tenant), application_id
    )


async def _audit(call: Call, action: str, app: Document) -> None:
    """An audit entry shaped like `bot.staff.audit.record`'s (ids and the place, no reason)."""
    actor = Actor.of(call.principal)
    await call.storage.audit.insert(
        {
            "_id": ObjectId(),
            "at": call.now(),
            "tenant": call.tenant.code,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor": actor.label[:254],
            "action": action,
            "target": str(app["_id"]),
            "ip": call.ip,
            "details": {"place_code": str(app["place_code"])},
        }
    )


async def _document(call: Call, app: Document) -> web.Response | None:
    found = await _service(call).document(app) if app.get("status") == PENDING else None
    if found is None:
        return None
    content, content_type = found
    await _audit(call, DOCUMENT_VIEWED, app)
    extension = "png" if content_type == "image/png" else "jpg"
    return web.Response(
        body=content,
        content_type=content_type,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="premium-{app["_id"]}.{extension}"',
        },
    )


class AlreadyDecided(Exception):
    pass


async def _approve(call: Call, app: Document) -> Decision:
    """Raises `ReviewRefused` or `AlreadyDecided`."""
    decision = await _service(call).approve(str(app["_id"]), call.principal.label)
    if decision is None:
        raise AlreadyDecided
    await _audit(call, APPROVED, app)
    return decision


async def _reject(call: Call, app: Document, reason: str) -> Decision:
    """Raises `ReviewRefused` or `AlreadyDecided`."""
    decision = await _service(call).reject(str(app["_id"]), call.principal.label, reason)
    if decision is None:
        raise AlreadyDecided
    await _audit(call, REJECTED, app)
    return decision


def _already_decided() -> ApiError:
    return ApiError(409, "already_decided", "この申請は、すでに審査が終わっています。")


# --- API ------------------------------------------------------------------------------------------


@routes.get(
    "/premium-applications",
    query=ApplicationQuery,
    response=ApplicationList,
    summary="プレミアム登録の申請一覧（既定は審査待ち、古い順）",
)
async def list_premium_applications(call: Call, query: ApplicationQuery) -> ApplicationList:
    store = call.storage.premium_applications
    places = review_places(call.tenant)
    if query.status == PENDING:
        docs = await store.pending_for(places, query.limit)
    else:
        docs = await store.decided_for(places, query.status, query.limit)
    return ApplicationList(items=[await _out(call, doc) for doc in docs])


@routes.get(
    "/premium-applications/{application_id}",
    response=ApplicationOut,
    summary="プレミアム登録の申請を1件取得",
)
async def get_premium_application(call: Call) -> ApplicationOut:
    app = await _find(call, call.param("application_id"))
    if app is None:
        raise not_found()
    return await _out(call, app)


@routes.get(
    "/premium-applications/{application_id}/document",
    produces="image/*",
    summary="本人確認書類の写真（審査待ちの間だけ。閲覧は操作履歴に記録）",
)
async def get_premium_document(call: Call) -> web.StreamResponse:
    app = await _find(call, call.param("application_id"))
    if app is None:
        raise not_found()
    response = await _document(call, app)
    if response is None:
        raise ApiError(
            404, "document_gone", "書類の写真はありません（審査が終わると削除されます）。"
        )
    return response


@routes.post(
    "/premium-applications/{application_id}/approve",
    response=ApplicationOut,
    role=Role.EDITOR,
    summary="承認する（1年間のプレミアム登録。申請者にLINEで通知）",
    description="すでに審査が終わっている申請は409（already_decided）。",
)
async def approve_premium_application(call: Call) -> ApplicationOut:
    app = await _find(call, call.param("application_id"))
    if app is None:
        raise not_found()
    try:
        decision = await _approve(call, app)
    except AlreadyDecided:
        raise _already_decided() from None
    except ReviewRefused as refused:
        raise ApiError(409, refused.code, refused.message) from None
    return await _out(call, decision.application, decision.notified)


@routes.post(
    "/premium-applications/{application_id}/reject",
    body=RejectIn,
    response=ApplicationOut,
    role=Role.EDITOR,
    summary="承認しない（理由は申請者にLINEでそのまま伝わります）",
    description="すでに審査が終わっている申請は409（already_decided）。",
)
async def reject_premium_application(call: Call, body: RejectIn) -> ApplicationOut:
    app = await _find(call, call.param("application_id"))
    if app is None:
        raise not_found()
    try:
        decision = await _reject(call, app, body.reason)
    except AlreadyDecided:
        raise _already_decided() from None
    except ReviewRefused as refused:
        raise ApiError(409, refused.code, refused.message) from None
    return await _out(call, decision.application, decision.notified)


# --- console --------------------------------------------------------------------------------------


def labelled(item: ApplicationOut) -> dict[str, str]:
    def label(enum: Any, value: str | None) -> str:
        try:
            return str(enum(value).label) if value else ""
        except ValueError:
            return value or ""

    types = []
    for t in item.types:
        try:
            types.append(RelationshipType(t).short_label)
        except ValueError:
            types.append(t)
    return {
        "place_name": item.place_name,
        "number": item.registration_number or "（登録解除済み）",
        "tier": label(Tier, item.tier),
        "types": "・".join(types),
        "age_band": label(AgeBand, item.age_band),
        "nickname": item.nickname or "",
        "status": STATUS_LABELS.get(item.status, item.status),
        "verifier": VERIFIER_LABELS.get(item.verifier, item.verifier),
        "valid_until": item.valid_until.isoformat() if item.valid_until else "",
    }


@pages.get("/premium", nav="プレミアム審査", order=25)
async def premium_page(call: PageCall) -> web.StreamResponse:
    places = review_places(call.tenant)
    store = call.storage.premium_applications
    pending = [await _out(call, doc) for doc in await store.pending_for(places, LIST_LIMIT)]
    decided = [await _out(call, doc) for doc in await store.decided_for(places, limit=20)]
    return call.render(
        "premium.html",
        title="プレミアム審査",
        pending=[(item, labelled(item)) for item in pending],
        decided=[(item, labelled(item)) for item in decided],
        operator=call.tenant.is_platform,
    )


async def _detail(
    call: PageCall,
    app: Document,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    reason: str = "",
) -> web.Response:
    item = await _out(call, app)
    return call.render(
        "premium_application.html",
        status=status,
        title="プレミアム審査",
        item=item,
        row=labelled(item),
        can_decide=call.principal.can(Role.EDITOR) and item.status == PENDING,
        errors=errors or {},
        reason=reason,
        reason_max=REASON_MAX,
    )


@pages.get("/premium/{application_id}")
async def premium_application_page(call: PageCall) -> web.StreamResponse:
    app = await _find(call, call.param("application_id"))
    if app is None:
        return console.not_found_page(call.request)
    return await _detail(call, app)


@pages.get("/premium/{application_id}/document")
async def premium_document_page(call: PageCall) -> web.StreamResponse:
    app = await _find(call, call.param("application_id"))
    response = await _document(call, app) if app is not None else None
    if response is None:
        return console.not_found_page(call.request)
    return response


def _after(decision: Decision, notice: str) -> web.HTTPSeeOther:
    target = f"/admin/premium/{decision.application['_id']}"
    return web.HTTPSeeOther(
        f"{target}?notice={notice if decision.notified else 'premium_not_notified'}"
    )


@pages.post("/premium/{application_id}/approve", role=Role.EDITOR)
async def premium_approve(call: PageCall) -> web.StreamResponse:
    app = await _find(call, call.param("application_id"))
    if app is None:
        return console.not_found_page(call.request)
    try:
        decision = await _approve(call, app)
    except AlreadyDecided:
        raise call.redirect(
            f"/admin/premium/{app['_id']}", notice="premium_already_decided"
        ) from None
    except ReviewRefused as refused:
        fresh = await _find(call, str(app["_id"])) or app
        return await _detail(call, fresh, status=409, errors={"decide": refused.message})
    raise _after(decision, "premium_approved")


LABELS = {"reason": "承認しない理由"}


@pages.post("/premium/{application_id}/reject", role=Role.EDITOR)
async def premium_reject(call: PageCall) -> web.StreamResponse:
    app = await _find(call, call.param("application_id"))
    if app is None:
        return console.not_found_page(call.request)
    typed = (await call.form()).get("reason", "")
    body, errors = await call.form_model(RejectIn, LABELS)
    if body is None:
        if not typed.strip():
            errors["reason"] = "「承認しない理由」を入力してください（申請者に伝わります）。"
        return await _detail(call, app, status=422, errors=errors, reason=typed[:1000])
    try:
        decision = await _reject(call, app, body.reason)
    except AlreadyDecided:
        raise call.redirect(
            f"/admin/premium/{app['_id']}", notice="premium_already_decided"
        ) from None
    except ReviewRefused as refused:
        fresh = await _find(call, str(app["_id"])) or app
        return await _detail(call, fresh, status=409, errors={"decide": refused.message})
    raise _after(decision, "premium_rejected")
