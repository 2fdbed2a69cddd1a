"""News (お知らせ): `/api/v1/news` and the お知らせ console pages.

Editors draft an item (text or Flex, optional image, a segment of the municipality's
registrants, a schedule) and submit it; an admin approves it (the worker then delivers it at
its time, `bot/news.py`) or rejects it with a reason; viewers only read. The compose form counts
the recipients and previews the item as LINE shows it while the staff member types, and sends a
test to the staff member's own LINE account, linked once with a one-time code sent to the bot
in the chat (`bot/dialog/hooks/news.py`). The report of each item (targeted, sent, skipped and
failed by reason, progress) refreshes itself while the item is being sent.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError, model_validator

from bot.app import SERVICES
from bot.clock import JST
from bot.domain.news import (
    MAX_TEXT,
    MAX_TITLE,
    REGIONS,
    Content,
    Schedule,
    Segment,
    Status,
    transition,
)
from bot.domain.places import all_places
from bot.domain.registration import AgeBand, RelationshipType, Tier
from bot.news import NewsItem, NewsReport, NewsService, news_messages
from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, describe, not_found
from bot.staff.audit import Action
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.resources.templates import EDITOR_CSP
from bot.staff.tenancy import Role
from bot.storage.db import Document
from bot.storage.preferences import Topic
from bot.storage.staff import LINE_CODE_TTL, line_code_hash, new_line_code

routes = ApiRoutes(
    "news",
    "お知らせ（編集者が作成・承認依頼、管理者が承認して配信。配信レポートつき）",
    municipal_only=True,
)
pages = Pages(municipal_only=True)

M = TypeVar("M", bound=BaseModel)
NEWS_ID = re.compile(r"[0-9a-f]{8,32}")
MAX_REASON = 500
PREVIEW_ID = "preview"

console.NOTICES.update(
    {
        "news_saved": "お知らせを下書きとして保存しました。",
        "news_submitted": "承認を依頼しました。管理者が承認すると配信されます。",
        "news_approved": "承認しました。予定の日時に配信します。",
        "news_rejected": "差し戻しました。",
        "news_cancelled": "お知らせを取り消しました。",
        "news_test_sent": "テスト配信を送りました。ご自身のLINEをご確認ください。",
        "line_unlinked": "LINEとの連携を解除しました。",
    }
)

SCHEDULE_LABELS = {"now": "承認後すぐ", "at": "日時を指定", "recurring": "繰り返し"}
STATE_LABELS = {
    "scheduled": "配信前",
    "planning": "準備中",
    "sending": "配信中",
    "waiting": "翌日以降に配信",
    "done": "配信完了",
    "cancelled": "取り消し",
}
REASON_LABELS = {
    "blocked": "ブロックされている",
    "opted_out": "配信停止している",
    "deferred_cap": "1日の上限のため翌日以降に配信",
    "cancelled": "取り消しのため未配信",
    "retry_window": "24時間以内に送れなかった",
    "error": "エラー",
}


def reason_label(reason: str) -> str:
    """A reason of the report in words (`line_<status>`: LINE refused the request)."""
    if reason.startswith("line_"):
        return f"LINEが受け付けなかった（エラー{reason.removeprefix('line_')}）"
    return REASON_LABELS.get(reason, reason)


LIVE_STATES = frozenset({"planning", "sending", "waiting"})


def _prefecture_names() -> dict[str, str]:
    return {p.code[:2]: p.name for p in all_places() if p.is_prefecture}


# --- models ---------------------------------------------------------------------------------------


class SegmentIn(ApiModel):
    tiers: list[Tier] = Field(default_factory=list, description="登録区分（空ならすべて）")
    types: list[RelationshipType] = Field(
        default_factory=list, description="関わり方（どれか1つに当てはまる方。空ならどなたでも）"
    )
    prefectures: list[str] = Field(
        default_factory=list, description="居住都道府県コード 01〜47（空ならどこでも）"
    )
    regions: list[str] = Field(
        default_factory=list,
        description="居住地方: 北海道, 東北, 関東, 中部, 近畿, 中国, 四国, 九州・沖縄（空ならどこでも）",
    )
    age_bands: list[AgeBand] = Field(default_factory=list, description="年代（空なら全年代）")
    topic: Topic = Field(
        default=Topic.NEWS, description="種類（この種類を配信停止した方には届きません）"
    )

    def segment(self) -> Segment:
        return Segment(
            tiers=tuple(t.value for t in self.tiers),
            types=tuple(t.value for t in self.types),
            prefectures=tuple(self.prefectures),
            regions=tuple(self.regions),
            age_bands=tuple(a.value for a in self.age_bands),
            topic=self.topic.value,
        )


class ContentIn(ApiModel):
    kind: Literal["text", "flex"] = Field(default="text", description="text（テキスト）か flex")
    text: str = Field(default="", description=f"本文（テキストのとき。{MAX_TEXT}文字まで）")
    flex: dict[str, Any] | None = Field(
        default=None, description="Flexメッセージの contents（bubble か carousel）"
    )
    alt_text: str = Field(default="", description="通知に表示する代替テキスト（Flexのとき）")
    image_url: str | None = Field(default=None, description="先に送る画像のURL（https://、任意）")

    @model_validator(mode="after")
    def unwrap_message(self) -> ContentIn:
        """A whole Flex message pasted (`{"type": "flex", "altText", "contents"}`): its contents,
        and its altText when none was given."""
        flex = self.flex
        if (
            flex is not None
            and flex.get("type") == "flex"
            and isinstance(flex.get("contents"), dict)
        ):
            self.alt_text = self.alt_text or str(flex.get("altText") or "")
            self.flex = flex["contents"]
        return self

    def content(self) -> Content:
        return Content(
            kind=self.kind,
            text=self.text,
            flex=self.flex,
            alt_text=self.alt_text,
            image_url=self.image_url or None,
        )


class ScheduleIn(ApiModel):
    kind: Literal["now", "at", "recurring"] = Field(
        default="now", description="now（承認後すぐ）, at（日時を指定）, recurring（繰り返し）"
    )
    at: datetime | None = Field(
        default=None, description="配信日時（タイムゾーンがなければ日本時間）"
    )
    every_months: int | None = Field(
        default=None, ge=1, le=12, description="繰り返しの間隔（か月。3 = 四半期ごと）"
    )
    until: date | None = Field(default=None, description="繰り返しの終了日（任意）")

    def schedule(self) -> Schedule:
        at = self.at
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=JST)
        return Schedule(
            kind=self.kind,
            at=at if self.kind != "now" else None,
            every_months=self.every_months if self.kind == "recurring" else None,
            until=self.until if self.kind == "recurring" else None,
        )


class NewsIn(ApiModel):
    title: str = Field(min_length=1, max_length=MAX_TITLE, description="件名（一覧に表示）")
    content: ContentIn
    segment: SegmentIn = Field(default_factory=SegmentIn, description="配信先")
    schedule: ScheduleIn = Field(default_factory=ScheduleIn, description="配信のタイミング")


class PreviewIn(ApiModel):
    title: str = Field(default="", max_length=MAX_TITLE, description="件名")
    content: ContentIn
    topic: Topic = Field(default=Topic.NEWS, description="種類")


class RejectIn(ApiModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="差し戻しの理由")


class ContentOut(BaseModel):
    kind: str
    text: str
    flex: dict[str, Any] | None
    alt_text: str
    image_url: str | None


class SegmentOut(BaseModel):
    tiers: list[str]
    types: list[str]
    prefectures: list[str]
    regions: list[str]
    age_bands: list[str]
    topic: str


class ScheduleOut(BaseModel):
    kind: str
    at: datetime | None
    every_months: int | None
    until: date | None


class NewsOut(BaseModel):
    news_id: str
    title: str
    status: str = Field(description="draft, pending, approved, sending, sent, rejected, cancelled")
    status_label: str
    content: ContentOut
    segment: SegmentOut
    schedule: ScheduleOut
    created_by: str
    submitted_by: str | None
    approved_by: str | None
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None
    runs: int = Field(description="配信した回数（繰り返しでは回ごとに増えます）")
    last_sent_at: datetime | None

    @classmethod
    def of(cls, item: NewsItem) -> NewsOut:
        c, s, t = item.content, item.segment, item.schedule
        return cls(
            news_id=item.id,
            title=item.title,
            status=item.status.value,
            status_label=item.status.label,
            content=ContentOut(
                kind=c.kind, text=c.text, flex=c.flex, alt_text=c.alt_text, image_url=c.image_url
            ),
            segment=SegmentOut(
                tiers=list(s.tiers),
                types=list(s.types),
                prefectures=list(s.prefectures),
                regions=list(s.regions),
                age_bands=list(s.age_bands),
                topic=s.topic,
            ),
            schedule=ScheduleOut(kind=t.kind, at=t.at, every_months=t.every_months, until=t.until),
            created_by=item.created_by,
            submitted_by=item.submitted_by,
            approved_by=item.approved_by,
            reject_reason=item.reject_reason,
            created_at=item.created_at,
            updated_at=item.updated_at,
            next_run_at=item.next_run_at,
            runs=item.runs,
            last_sent_at=item.last_sent_at,
        )


class NewsList(BaseModel):
    items: list[NewsOut]


class CountOut(BaseModel):
    count: int = Field(description="いま配信すると届く人数（配信停止・ブロックの方を除く）")


class PreviewOut(BaseModel):
    ok: bool = Field(description="LINEが受け付ける内容か")
    message: str = Field(description="問題があるときの説明（日本語）")
    messages: list[dict[str, Any]] = Field(description="住民に届くLINEメッセージ（JSON）")


class ReportOut(BaseModel):
    targeted: int = Field(description="配信対象の人数")
    sent: int = Field(description="送った人数")
    skipped: dict[str, int] = Field(
        description="送らなかった人数（理由ごと: blocked, opted_out, deferred_cap, cancelled）"
    )
    failed: dict[str, int] = Field(description="送れなかった人数（理由ごと）")
    pending: int = Field(description="これから送る人数")
    deferred: int = Field(description="1日の上限で翌日以降に回した人数（配信済みを含む）")
    state: str = Field(description="scheduled, planning, sending, waiting, done, cancelled")
    state_label: str
    reasons: dict[str, str] = Field(description="skipped・failed の理由の日本語の説明")
    progress: float = Field(description="進み具合 0〜1")
    run: int = Field(description="何回目の配信か（0: まだ）")
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, report: NewsReport) -> ReportOut:
        return cls(
            targeted=report.targeted,
            sent=report.sent,
            skipped=dict(report.skipped),
            failed=dict(report.failed),
            pending=report.pending,
            deferred=report.deferred,
            state=report.state,
            state_label=STATE_LABELS.get(report.state, report.state),
            reasons={key: reason_label(key) for key in (*report.skipped, *report.failed)},
            progress=round(report.progress, 4),
            run=report.run,
            started_at=report.started_at,
            finished_at=report.finished_at,
        )


class LineLinkOut(BaseModel):
    linked: bool = Field(description="LINEアカウントが連携済みか")
    linked_at: datetime | None
    code: str | None = Field(description="発行したときだけ: LINEでボットに送る連携コード")
    expires_at: datetime | None = Field(description="連携コードの有効期限")


class TestSendOut(BaseModel):
    sent: bool


# --- the work, shared by API and console ------------------------------------------------------


def _service(call: Call) -> NewsService:
    news: NewsService = call.request.config_dict[SERVICES].news
    return news


async def _find_item(call: Call) -> NewsItem | None:
    """The caller's item named in the path, if any (a malformed id names none)."""
    news_id = call.param("news_id")
    if not NEWS_ID.fullmatch(news_id):
        return None
    return await _service(call).get(call.tenant.code, news_id)


async def _item(call: Call) -> NewsItem:
    item = await _find_item(call)
    if item is None:
        raise not_found()
    return item


def _invalid(message: str, field: str | None = None) -> ApiError:
    return ApiError(422, "invalid_news", message, field)


def _checked(body: NewsIn, now: datetime) -> tuple[Content, Segment, Schedule]:
    """The body as domain values (the service checks them), refusing what it does not check:
    a time in the past."""
    schedule = body.schedule.schedule()
    if schedule.at is not None and schedule.at <= now:
        raise _invalid(
            "配信日時が過ぎています。これから先の日時（日本時間）を指定してください。",
            "schedule.at",
        )
    return body.content.content(), body.segment.segment(), schedule


def _state_error(exc: ValueError) -> ApiError:
    return ApiError(409, "invalid_status", str(exc))


async def create(call: Call, body: NewsIn) -> NewsItem:
    content, segment, schedule = _checked(body, call.now())
    try:
        item = await _service(call).create(
            call.tenant.code, call.actor.label, body.title, content, segment, schedule, call.now()
        )
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    await call.audit(Action.NEWS_CREATED, item.id, title=item.title)
    return item


async def update(call: Call, body: NewsIn) -> NewsItem:
    item = await _item(call)
    try:
        transition(item.status, "update")
    except ValueError as exc:
        raise _state_error(exc) from None
    content, segment, schedule = _checked(body, call.now())
    try:
        item = await _service(call).update(
            item.municipality_code, item.id, body.title, content, segment, schedule, call.now()
        )
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    await call.audit(Action.NEWS_UPDATED, item.id, title=item.title)
    return item


Move = Literal["submit", "approve", "reject", "cancel"]
_MOVE_AUDIT = {
    "submit": Action.NEWS_SUBMITTED,
    "approve": Action.NEWS_APPROVED,
    "reject": Action.NEWS_REJECTED,
    "cancel": Action.NEWS_CANCELLED,
}


async def move(call: Call, action: Move, reason: str = "") -> NewsItem:
    """Submit, approve, reject or cancel; 409 when the status does not allow it. Cancelling an
    approved or running item needs an admin (it stops what an admin let go out)."""
    item = await _item(call)
    if (
        action == "cancel"
        and item.status in (Status.APPROVED, Status.SENDING)
        and not call.principal.can(Role.ADMIN)
    ):
        raise ApiError(403, "forbidden", "配信予定・配信中のお知らせは管理者だけが取り消せます。")
    service, place, now, by = _service(call), item.municipality_code, call.now(), call.actor.label
    try:
        if action == "submit":
            item = await service.submit(place, item.id, by, now)
        elif action == "approve":
            item = await service.approve(place, item.id, by, now)
        elif action == "reject":
            item = await service.reject(place, item.id, by, reason, now)
        else:
            item = await service.cancel(place, item.id, by, now)
    except ValueError as exc:
        raise _state_error(exc) from None
    details = {"reason": reason} if reason else {}
    await call.audit(_MOVE_AUDIT[action], item.id, title=item.title, **details)
    return item


async def _account(call: Call) -> Document:
    """The signed-in staff member's account (API keys have none)."""
    staff_id = call.principal.staff_id
    account = await call.storage.staff_accounts.get_for(call.tenant, staff_id) if staff_id else None
    if account is None:
        raise ApiError(  # an API key: no person, no LINE account
            403,
            "staff_only",
            "LINEとの連携とテスト配信は、管理画面にログインした職員だけが使えます。",
        )
    return account


async def send_test(call: Call) -> None:
    item = await _item(call)
    account = await _account(call)
    line_user_id = account.get("line_user_id")
    if not line_user_id:
        raise ApiError(
            409,
            "line_not_linked",
            "LINEアカウントが連携されていません。「LINEと連携する」から連携してください。",
        )
    sent = await _service(call).send_test(
        item.municipality_code, item.id, str(line_user_id), call.now()
    )
    if not sent:
        raise ApiError(
            409,
            "line_blocked",
            "連携したLINEアカウントがボットをブロックしているため、送れませんでした。",
        )
    await call.audit(Action.NEWS_TEST_SENT, item.id, title=item.title)


async def issue_line_code(call: Call) -> LineLinkOut:
    account = await _account(call)
    code = new_line_code()
    code_hash = line_code_hash(code)
    assert code_hash is not None  # our own codes always read back
    expires_at = call.now() + LINE_CODE_TTL
    await call.storage.staff_accounts.issue_line_code(account["_id"], code_hash, expires_at)
    await call.audit(Action.STAFF_LINE_CODE_ISSUED, str(account.get("email") or ""))
    return LineLinkOut(
        linked=bool(account.get("line_user_id")),
        linked_at=account.get("line_linked_at"),
        code=code,
        expires_at=expires_at,
    )


async def unlink_line(call: Call) -> None:
    account = await _account(call)
    await call.storage.staff_accounts.unlink_line(account["_id"])
    await call.audit(Action.STAFF_LINE_UNLINKED, str(account.get("email") or ""))


def _preview_item(place: str, title: str, content: Content, topic: str, now: datetime) -> NewsItem:
    """An unsaved item, to render as residents would receive it."""
    return NewsItem(
        id=PREVIEW_ID,
        municipality_code=place,
        title=title,
        content=content,
        segment=Segment(topic=topic),
        schedule=Schedule(),
        status=Status.DRAFT,
        created_by="",
        approved_by=None,
        reject_reason=None,
        created_at=now,
        updated_at=now,
        next_run_at=None,
        runs=0,
    )


def preview(call: Call, title: str, content: Content, topic: str) -> PreviewOut:
    try:
        content.validate()
    except ValueError as exc:
        return PreviewOut(ok=False, message=str(exc), messages=[])
    renderer = call.request.config_dict[SERVICES].renderer
    item = _preview_item(call.tenant.code, title, content, topic, call.now())
    return PreviewOut(
        ok=True, message="", messages=[m.to_dict() for m in news_messages(renderer, item)]
    )


# --- API ------------------------------------------------------------------------------------------


@routes.get("/news", response=NewsList, summary="お知らせの一覧（新しい順）")
async def list_news(call: Call) -> NewsList:
    items = await _service(call).list(call.tenant.code)
    return NewsList(items=[NewsOut.of(item) for item in items])


@routes.post(
    "/news",
    body=NewsIn,
    response=NewsOut,
    status=201,
    role=Role.EDITOR,
    summary="お知らせを下書きとして作成",
)
async def create_news(call: Call, body: NewsIn) -> NewsOut:
    return NewsOut.of(await create(call, body))


@routes.post(
    "/news/recipients",
    body=SegmentIn,
    response=CountOut,
    summary="配信先の条件で、いま届く人数を数える",
)
async def count_news_recipients(call: Call, body: SegmentIn) -> CountOut:
    segment = body.segment()
    try:
        segment.validate()
    except ValueError as exc:
        raise _invalid(str(exc), "segment") from None
    return CountOut(count=await _service(call).count_recipients(call.tenant.code, segment))


@routes.post(
    "/news/preview",
    body=PreviewIn,
    response=PreviewOut,
    summary="住民に届くLINEメッセージを作る（保存しない）",
)
async def preview_news(call: Call, body: PreviewIn) -> PreviewOut:
    return preview(call, body.title, body.content.content(), body.topic.value)


@routes.get("/news/{news_id}", response=NewsOut, summary="お知らせを1件取得")
async def get_news(call: Call) -> NewsOut:
    return NewsOut.of(await _item(call))


@routes.put(
    "/news/{news_id}",
    body=NewsIn,
    response=NewsOut,
    role=Role.EDITOR,
    summary="お知らせを編集（下書き・差し戻しのときだけ）",
)
async def update_news(call: Call, body: NewsIn) -> NewsOut:
    return NewsOut.of(await update(call, body))


@routes.post(
    "/news/{news_id}/submit",
    response=NewsOut,
    role=Role.EDITOR,
    summary="承認を依頼する",
)
async def submit_news(call: Call) -> NewsOut:
    return NewsOut.of(await move(call, "submit"))


@routes.post(
    "/news/{news_id}/approve",
    response=NewsOut,
    role=Role.ADMIN,
    summary="承認する（予定の日時に配信されます）",
)
async def approve_news(call: Call) -> NewsOut:
    return NewsOut.of(await move(call, "approve"))


@routes.post(
    "/news/{news_id}/reject",
    body=RejectIn,
    response=NewsOut,
    role=Role.ADMIN,
    summary="理由を添えて差し戻す",
)
async def reject_news(call: Call, body: RejectIn) -> NewsOut:
    return NewsOut.of(await move(call, "reject", body.reason))


@routes.post(
    "/news/{news_id}/cancel",
    response=NewsOut,
    role=Role.EDITOR,
    summary="取り消す（配信予定・配信中のものは管理者のみ。未配信の分は送りません）",
)
async def cancel_news(call: Call) -> NewsOut:
    return NewsOut.of(await move(call, "cancel"))


@routes.post(
    "/news/{news_id}/test",
    response=TestSendOut,
    role=Role.EDITOR,
    summary="自分のLINEアカウントにテスト配信する（レポートには数えません）",
)
async def test_news(call: Call) -> TestSendOut:
    await send_test(call)
    return TestSendOut(sent=True)


@routes.get(
    "/news/{news_id}/report",
    response=ReportOut,
    summary="配信レポート（対象・配信・理由ごとの未配信と失敗・進み具合）",
)
async def news_report(call: Call) -> ReportOut:
    item = await _item(call)
    return ReportOut.of(await _service(call).report(item.municipality_code, item.id))


# The staff member's own LINE account: the operator's staff have one too.
@routes.get(
    "/me/line",
    response=LineLinkOut,
    summary="自分のLINEアカウントの連携状況",
    municipal_only=False,
)
async def my_line(call: Call) -> LineLinkOut:
    account = await _account(call)
    return LineLinkOut(
        linked=bool(account.get("line_user_id")),
        linked_at=account.get("line_linked_at"),
        code=None,
        expires_at=None,
    )


@routes.post(
    "/me/line/code",
    response=LineLinkOut,
    role=Role.EDITOR,
    summary="LINE連携コードを発行（10分間・1回だけ有効。LINEで「職員連携」と送ってから入力）",
    municipal_only=False,
)
async def issue_my_line_code(call: Call) -> LineLinkOut:
    return await issue_line_code(call)


@routes.delete(
    "/me/line",
    role=Role.EDITOR,
    summary="自分のLINEアカウントの連携を解除",
    municipal_only=False,
)
async def unlink_my_line(call: Call) -> None:
    await unlink_line(call)


# --- console --------------------------------------------------------------------------------------

LABELS = {
    "title": "件名",
    "content.kind": "種類",
    "content.text": "本文",
    "content.flex": "Flexメッセージ",
    "content.alt_text": "代替テキスト",
    "content.image_url": "画像のURL",
    "segment.tiers": "登録区分",
    "segment.types": "関わり方",
    "segment.age_bands": "年代",
    "segment.topic": "種類",
    "schedule.kind": "配信のタイミング",
    "schedule.at": "配信日時",
    "schedule.every_months": "繰り返しの間隔",
    "schedule.until": "繰り返しの終了日",
}
LISTS = ("tiers", "types", "prefectures", "regions", "age_bands")


def _blank_values() -> dict[str, Any]:
    return {
        "title": "",
        "kind": "text",
        "text": "",
        "flex_json": "",
        "alt_text": "",
        "image_url": "",
        **{name: [] for name in LISTS},
        "topic": Topic.NEWS.value,
        "schedule_kind": "now",
        "at": "",
        "every_months": "3",
        "until": "",
    }


def _values_of(item: NewsItem) -> dict[str, Any]:
    c, s, t = item.content, item.segment, item.schedule
    return {
        "title": item.title,
        "kind": c.kind,
        "text": c.text,
        "flex_json": json.dumps(c.flex, ensure_ascii=False, indent=2) if c.flex else "",
        "alt_text": c.alt_text,
        "image_url": c.image_url or "",
        "tiers": list(s.tiers),
        "types": list(s.types),
        "prefectures": list(s.prefectures),
        "regions": list(s.regions),
        "age_bands": list(s.age_bands),
        "topic": s.topic,
        "schedule_kind": t.kind,
        "at": t.at.astimezone(JST).strftime("%Y-%m-%dT%H:%M") if t.at else "",
        "every_months": str(t.every_months or 3),
        "until": t.until.isoformat() if t.until else "",
    }


async def _form_values(call: PageCall) -> dict[str, Any]:
    form = await call.form()
    values = _blank_values()
    for key in values:
        if key in LISTS:
            values[key] = form.getall(key, [])
        else:
            values[key] = form.get(key, values[key] if key in ("kind", "topic") else "")
    values["text"] = str(values["text"]).replace("\r\n", "\n")
    return values


def _content_of(values: dict[str, Any]) -> dict[str, Any]:
    """The form's content as the API's; ApiError (422, Japanese) for a Flex JSON that cannot
    be read."""
    flex: Any = None
    if values["kind"] == "flex":
        raw = str(values["flex_json"]).strip()
        if not raw:
            raise _invalid("Flexメッセージ（JSON）を入力してください。", "content.flex")
        try:
            flex = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _invalid(
                f"Flexメッセージ（JSON）を読み取れません（{exc.lineno}行目・{exc.colno}文字目）。"
                "カンマ・かっこ・引用符をお確かめください。",
                "content.flex",
            ) from None
        if not isinstance(flex, dict):
            raise _invalid(
                "Flexメッセージは { で始まるJSON（bubble か carousel）で入力してください。",
                "content.flex",
            )
    return {
        "kind": values["kind"],
        "text": values["text"] if values["kind"] == "text" else "",
        "flex": flex,
        "alt_text": values["alt_text"] if values["kind"] == "flex" else "",
        "image_url": values["image_url"] or None,
    }


def _segment_of(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in (*LISTS, "topic")}


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, message = describe(exc.errors()[0], labels=LABELS)
        raise _invalid(message, field) from None


def _body_of(values: dict[str, Any]) -> NewsIn:
    """The form as the API's body; ApiError (422, Japanese) for what cannot be read."""
    kind = values["schedule_kind"]
    return _validated(
        NewsIn,
        {
            "title": values["title"],
            "content": _content_of(values),
            "segment": _segment_of(values),
            "schedule": {
                "kind": kind,
                "at": values["at"] or None if kind != "now" else None,
                "every_months": values["every_months"] or None if kind == "recurring" else None,
                "until": values["until"] or None if kind == "recurring" else None,
            },
        },
    )


async def _form_count(call: Call, values: dict[str, Any]) -> int | None:
    """How many the form's segment reaches now (None while it cannot be read)."""
    try:
        segment = _validated(SegmentIn, _segment_of(values)).segment()
        segment.validate()
    except (ApiError, ValueError):
        return None
    return await _service(call).count_recipients(call.tenant.code, segment)


def _form_preview(call: Call, values: dict[str, Any]) -> PreviewOut:
    if values["kind"] == "text" and not str(values["text"]).strip():
        return PreviewOut(ok=True, message="", messages=[])  # nothing typed yet
    try:
        content = _validated(ContentIn, _content_of(values)).content()
    except ApiError as exc:
        return PreviewOut(ok=False, message=exc.message, messages=[])
    return preview(call, str(values["title"]), content, str(values["topic"]))


def segment_summary(segment: Segment) -> str:
    """The segment in words, for staff: 「登録者全員」 or its conditions."""
    names = _prefecture_names()
    parts = [
        (label, values)
        for label, values in (
            ("登録区分", [Tier(v).label for v in segment.tiers]),
            ("関わり方", [RelationshipType(v).label for v in segment.types]),
            ("年代", [AgeBand(v).label for v in segment.age_bands]),
            ("お住まい", [*segment.regions, *(names.get(c, c) for c in segment.prefectures)]),
        )
        if values
    ]
    if not parts:
        return "登録者全員"
    return "、".join(f"{label}: {'・'.join(values)}" for label, values in parts)


def _choices() -> dict[str, Any]:
    names = _prefecture_names()
    return {
        "tiers": list(Tier),
        "types": list(RelationshipType),
        "age_bands": list(AgeBand),
        "topics": list(Topic),
        "regions": list(REGIONS),
        "prefectures": [(code, names.get(code, code)) for code in sorted(names)],
        "schedule_labels": SCHEDULE_LABELS,
        "max_title": MAX_TITLE,
        "max_text": MAX_TEXT,
    }


def _editor_headers(response: web.Response) -> web.Response:
    response.headers["Content-Security-Policy"] = EDITOR_CSP  # the editor's own script
    return response


async def _list_page(
    call: PageCall, *, status: int = 200, line_code: LineLinkOut | None = None, error: str = ""
) -> web.Response:
    items = await _service(call).list(call.tenant.code)
    account = None
    if call.principal.staff_id:
        account = await call.storage.staff_accounts.get_for(call.tenant, call.principal.staff_id)
    return call.render(
        "news.html",
        status=status,
        title="お知らせ",
        items=items,
        account=account,
        line_code=line_code,
        error=error,
        can_edit=call.principal.can(Role.EDITOR),
        schedule_labels=SCHEDULE_LABELS,
    )


async def _compose_page(
    call: PageCall,
    *,
    item: NewsItem | None,
    values: dict[str, Any],
    status: int = 200,
    error: str = "",
    error_field: str = "",
) -> web.Response:
    place = call.tenant.code
    service = _service(call)
    report = None
    if item is not None and item.runs > 0:
        report = ReportOut.of(await service.report(place, item.id))
    editable = item is None or item.status in (Status.DRAFT, Status.REJECTED)
    can_edit = call.principal.can(Role.EDITOR) and editable
    if item is None or can_edit:
        count, result = await _form_count(call, values), _form_preview(call, values)
    else:
        count = await service.count_recipients(place, item.segment)
        result = preview(call, item.title, item.content, item.segment.topic)
    account = None
    if call.principal.staff_id:
        account = await call.storage.staff_accounts.get_for(call.tenant, call.principal.staff_id)
    response = call.render(
        "news_item.html",
        status=status,
        title=item.title if item else "お知らせを作成",
        item=item,
        values=values,
        error=error,
        error_field=error_field,
        count=count,
        preview=result,
        preview_data=result.model_dump(mode="json"),
        report=report,
        report_live=report is not None and report.state in LIVE_STATES,
        can_edit=can_edit,
        is_editor=call.principal.can(Role.EDITOR),
        is_admin=call.principal.can(Role.ADMIN),
        linked=bool(account and account.get("line_user_id")),
        segment_summary=segment_summary(item.segment) if item else "",
        topic_label=Topic(item.segment.topic).label if item else "",
        **_choices(),
    )
    return _editor_headers(response)


@pages.get("/news", nav="お知らせ", order=47)
async def news_page(call: PageCall) -> web.StreamResponse:
    return await _list_page(call)


@pages.get("/news/new", role=Role.EDITOR)
async def news_new_page(call: PageCall) -> web.StreamResponse:
    return await _compose_page(call, item=None, values=_blank_values())


async def _save(call: PageCall, item: NewsItem | None) -> web.StreamResponse:
    """The form saved as a new draft, or as the changed `item`; the form again on a mistake."""
    values = await _form_values(call)
    try:
        body = _body_of(values)
        saved = await (update(call, body) if item else create(call, body))
    except ApiError as exc:
        return await _compose_page(
            call,
            item=item,
            values=values,
            status=exc.status,
            error=exc.message,
            error_field=exc.field or "",
        )
    raise call.redirect(f"/admin/news/{saved.id}", notice="news_saved")


@pages.post("/news/new", role=Role.EDITOR)
async def news_create(call: PageCall) -> web.StreamResponse:
    return await _save(call, None)


@pages.post("/news/line/code", role=Role.EDITOR)
async def news_line_code(call: PageCall) -> web.StreamResponse:
    try:
        issued = await issue_line_code(call)
    except ApiError as exc:
        return await _list_page(call, status=exc.status, error=exc.message)
    return await _list_page(call, line_code=issued)


@pages.post("/news/line/unlink", role=Role.EDITOR)
async def news_line_unlink(call: PageCall) -> web.StreamResponse:
    try:
        await unlink_line(call)
    except ApiError as exc:
        return await _list_page(call, status=exc.status, error=exc.message)
    raise call.redirect("/admin/news", notice="line_unlinked")


@pages.get("/news/{news_id}")
async def news_item_page(call: PageCall) -> web.StreamResponse:
    item = await _find_item(call)
    if item is None:
        return console.not_found_page(call.request)
    return await _compose_page(call, item=item, values=_values_of(item))


@pages.post("/news/{news_id}", role=Role.EDITOR)
async def news_update(call: PageCall) -> web.StreamResponse:
    item = await _find_item(call)
    if item is None:
        return console.not_found_page(call.request)
    return await _save(call, item)


_NOTICE = {
    "submit": "news_submitted",
    "approve": "news_approved",
    "reject": "news_rejected",
    "cancel": "news_cancelled",
    "test": "news_test_sent",
}


async def _act(call: PageCall, action: Move | Literal["test"]) -> web.StreamResponse:
    item = await _find_item(call)
    if item is None:
        return console.not_found_page(call.request)
    reason = ""
    try:
        if action == "test":
            await send_test(call)
        else:
            if action == "reject":
                reason = (await call.form()).get("reason", "").strip()
                if not reason:
                    raise _invalid("差し戻しの理由を入力してください。", "reason")
                if len(reason) > MAX_REASON:
                    raise _invalid(
                        f"差し戻しの理由は{MAX_REASON}文字以内にしてください。", "reason"
                    )
            await move(call, action, reason)
    except ApiError as exc:
        if exc.status == 404:
            return console.not_found_page(call.request)
        current = await _find_item(call) or item
        return await _compose_page(
            call, item=current, values=_values_of(current), status=exc.status, error=exc.message
        )
    raise call.redirect(f"/admin/news/{item.id}", notice=_NOTICE[action])


@pages.post("/news/{news_id}/submit", role=Role.EDITOR)
async def news_submit(call: PageCall) -> web.StreamResponse:
    return await _act(call, "submit")


@pages.post("/news/{news_id}/approve", role=Role.ADMIN)
async def news_approve(call: PageCall) -> web.StreamResponse:
    return await _act(call, "approve")


@pages.post("/news/{news_id}/reject", role=Role.ADMIN)
async def news_reject(call: PageCall) -> web.StreamResponse:
    return await _act(call, "reject")


@pages.post("/news/{news_id}/cancel", role=Role.EDITOR)
async def news_cancel(call: PageCall) -> web.StreamResponse:
    return await _act(call, "cancel")


@pages.post("/news/{news_id}/test", role=Role.EDITOR)
async def news_test(call: PageCall) -> web.StreamResponse:
    return await _act(call, "test")
