"""The texts the bot speaks, edited per municipality: `/api/v1/templates` and the console's
テンプレート page (editor with a live LINE preview, history with diffs, rollback, reset).

A tenant's own version of a template is used for the residents who register with that place
(or manage that registration); every other place keeps the default file. Only templates the
catalogue marks as said about a place (`templates/catalogue.yaml`, `place: true`) can be edited;
the others are shown read-only. Every save is checked first (`bot/template_check.py`): syntax,
unknown variables, sandbox escapes, and every sample rendered to messages LINE accepts; the
problems come back in Japanese, naming the line. Saves, rollbacks and resets are versioned
(`bot/storage/templates.py`), audited, and reach the bot without a restart
(`bot/templates_overrides.py`: at once in this process, within ~2 s in the others).

Template names have a slash (`register/done`), so the paths are `/templates/{area}/{name}`.
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from bot.app import SERVICES
from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, error_response, not_found
from bot.staff.audit import Action
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role
from bot.storage.db import Document
from bot.storage.templates import VersionAction, VersionConflict
from bot.template_check import (
    MAX_SOURCE,
    CheckResult,
    Entry,
    TemplateChecker,
    default_source,
    entries,
    entry,
    variables,
)
from bot.templates_overrides import StoredOverrides

routes = ApiRoutes(
    "templates",
    "メッセージのテンプレート（自治体ごとの文面・履歴・プレビュー）",
)
pages = Pages()

console.NOTICES.update(
    {
        "template_saved": "保存しました。この自治体に登録する住民に、新しい文面が届きます。",
        "template_unchanged": "文面に変更はありませんでした。",
        "template_rolled_back": "以前の版に戻しました。",
        "template_reset": "標準の文面に戻しました。",
        "template_already_default": "すでに標準の文面です。",
    }
)

ACTION_LABELS = {"save": "保存", "rollback": "以前の版に戻す", "reset": "標準に戻す"}
KIND_LABELS = {"txt": "テキスト", "json": "JSON（LINEメッセージ）"}

# The editor page runs its own script (the live preview) and fetches the preview API.
EDITOR_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data: https:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


# --- models ---------------------------------------------------------------------------------------


class TemplateSummary(BaseModel):
    name: str = Field(description="テンプレート名（例: register/done）")
    area: str
    area_title: str
    title: str = Field(description="どんな文面か")
    kind: Literal["txt", "json"] = Field(description="txt（テキスト1通）か json（LINEメッセージ）")
    editable: bool = Field(description="自治体ごとに変更できるか（場所についての文面）")
    overridden: bool = Field(description="この自治体の文面を使っているか")
    version: int | None = Field(description="最新の版（変更したことがなければ null）")
    updated_at: datetime | None
    updated_by: str | None

    @classmethod
    def of(cls, e: Entry, latest: Document | None) -> TemplateSummary:
        return cls(
            name=e.name,
            area=e.area,
            area_title=e.area_title,
            title=e.title,
            kind="json" if e.kind == "json" else "txt",
            editable=e.place,
            overridden=bool(latest and latest.get("source") is not None),
            version=int(latest["version"]) if latest else None,
            updated_at=latest.get("at") if latest else None,
            updated_by=str(latest.get("actor", "")) if latest else None,
        )


class TemplateList(BaseModel):
    items: list[TemplateSummary]


class OverrideOut(BaseModel):
    version: int
    source: str
    updated_at: datetime
    updated_by: str


class TemplateDetail(TemplateSummary):
    default_source: str = Field(description="標準の文面")
    override: OverrideOut | None = Field(description="この自治体の文面（なければ null）")
    source: str = Field(description="いま住民に届く文面")
    variables: dict[str, Any] = Field(description="使える変数とサンプルの値")


class TemplateSave(ApiModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    source: str = Field(min_length=1, max_length=MAX_SOURCE, description="新しい文面（Jinja2）")
    base_version: int | None = Field(
        default=None,
        ge=0,
        description="編集を始めたときの版（0: 標準の文面）。ほかの人が先に保存していれば 409",
    )


class PreviewIn(ApiModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    source: str | None = Field(
        default=None, max_length=MAX_SOURCE, description="確かめる文面（省略: いまの文面）"
    )


class ProblemOut(BaseModel):
    kind: str = Field(description="syntax, variable, security, forbidden, line, json, timeout…")
    message: str = Field(description="職員向けの説明（行番号つき）")
    line: int | None
    column: int | None
    sample: int | None = Field(description="問題が出たサンプルの番号（1から）")


class SampleOut(BaseModel):
    number: int
    messages: list[dict[str, Any]] = Field(description="LINEに送るメッセージ（JSON）")
    problems: list[ProblemOut]


class PreviewOut(BaseModel):
    ok: bool = Field(description="保存できるか")
    problems: list[ProblemOut]
    samples: list[SampleOut]

    @classmethod
    def of(cls, result: CheckResult) -> PreviewOut:
        return cls(
            ok=result.ok,
            problems=[ProblemOut(**p.to_dict()) for p in result.problems],
            samples=[
                SampleOut(
                    number=number,
                    messages=sample.messages,
                    problems=[ProblemOut(**p.to_dict()) for p in sample.problems],
                )
                for number, sample in enumerate(result.samples, start=1)
            ],
        )


class VersionOut(BaseModel):
    version: int
    action: str = Field(description="save（保存）, rollback（以前の版に戻す）, reset（標準に戻す）")
    source: str | None = Field(description="その版の文面（null: 標準の文面）")
    from_version: int | None = Field(description="戻したときの元の版")
    at: datetime
    actor: str
    current: bool

    @classmethod
    def of(cls, doc: Document, current: int) -> VersionOut:
        source = doc.get("source")
        return cls(
            version=int(doc["version"]),
            action=str(doc.get("action", "save")),
            source=source if isinstance(source, str) else None,
            from_version=doc.get("from_version"),
            at=doc["at"],
            actor=str(doc.get("actor", "")),
            current=int(doc["version"]) == current,
        )


class HistoryOut(BaseModel):
    items: list[VersionOut]


class RollbackIn(ApiModel):
    version: int = Field(ge=1, description="戻す版")


# --- the work, shared by API and console ------------------------------------------------------


def _entry(call: Call) -> Entry:
    found = entry(f"{call.param('area')}/{call.param('name')}")
    if found is None:
        raise not_found()
    return found


def _checker(call: Call) -> TemplateChecker:
    checker = call.request.config_dict[SERVICES].template_checker
    if checker is None:
        raise ApiError(503, "unavailable", "いまは文面を確認できません。")
    return checker


def _overrides(call: Call) -> StoredOverrides | None:
    return call.request.config_dict[SERVICES].overrides


def _place_code(call: Call) -> str | None:
    return None if call.tenant.is_platform else call.tenant.code


def _may_edit(call: Call, e: Entry) -> None:
    """Raise unless this caller may change this tenant's version of the template."""
    if call.tenant.is_platform:
        raise ApiError(
            403,
            "forbidden",
            "運営アカウントでは文面を変更できません。自治体のアカウントで変更してください。",
        )
    if not e.place:
        raise ApiError(
            422,
            "not_editable",
            f"「{e.title}」は全国共通の文面のため、自治体ごとには変更できません。",
            field="name",
        )


def _source_of(latest: Document | None, name: str) -> str:
    source = latest.get("source") if latest else None
    return source if isinstance(source, str) else default_source(name)


def _normalise(source: str) -> str:
    """Form posts send CRLF; keep LF like the files."""
    return source.replace("\r\n", "\n").replace("\r", "\n")


async def _detail(call: Call, e: Entry) -> TemplateDetail:
    latest = await call.storage.template_versions.current(call.tenant, e.name)
    override = None
    if latest is not None and isinstance(latest.get("source"), str):
        override = OverrideOut(
            version=int(latest["version"]),
            source=latest["source"],
            updated_at=latest["at"],
            updated_by=str(latest.get("actor", "")),
        )
    summary = TemplateSummary.of(e, latest)
    return TemplateDetail(
        **summary.model_dump(),
        default_source=default_source(e.name),
        override=override,
        source=_source_of(latest, e.name),
        variables=variables(e.name),
    )


class Refused(Exception):
    """The text cannot be saved: its problems."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__("template refused")
        self.result = result


async def _insert(
    call: Call,
    e: Entry,
    source: str | None,
    action: VersionAction,
    *,
    expected: int | None = None,
    from_version: int | None = None,
) -> Document:
    doc = await call.storage.template_versions.add(
        call.tenant,
        e.name,
        source,
        action=action,
        now=call.now(),
        actor_kind=call.actor.kind,
        actor_id=call.actor.id,
        actor=call.actor.label,
        expected=expected,
        from_version=from_version,
    )
    overrides = _overrides(call)
    if overrides is not None:
        overrides.apply(doc)  # this process uses the new text at once; the others within ~2 s
    audit = {
        "save": Action.TEMPLATE_SAVED,
        "rollback": Action.TEMPLATE_ROLLED_BACK,
        "reset": Action.TEMPLATE_RESET,
    }[action]
    details: dict[str, Any] = {"version": doc["version"]}
    if from_version is not None:
        details["from_version"] = from_version
    await call.audit(audit, target=e.name, **details)
    return doc


async def save(call: Call, e: Entry, source: str, base_version: int | None) -> Document | None:
    """Check and save a new text; None when it is the current text already.
    Raises `Refused` (problems) or `VersionConflict` (someone saved meanwhile)."""
    _may_edit(call, e)
    source = _normalise(source)
    latest = await call.storage.template_versions.current(call.tenant, e.name)
    current = int(latest["version"]) if latest else 0
    if base_version is not None and base_version != current:
        raise VersionConflict(current)
    if latest is not None and latest.get("source") == source:
        return None
    result = await _checker(call).check(e.name, source, _place_code(call))
    if not result.ok:
        raise Refused(result)
    return await _insert(call, e, source, "save", expected=current)


async def rollback(call: Call, e: Entry, version: int) -> Document | None:
    """A new version with the text of `version`; None when that text is current already."""
    _may_edit(call, e)
    store = call.storage.template_versions
    old = await store.version(call.tenant, e.name, version)
    if old is None:
        raise not_found()
    latest = await store.current(call.tenant, e.name)
    assert latest is not None  # `old` exists
    source = old.get("source")
    if latest.get("source") == source:
        return None
    if isinstance(source, str):  # the samples may have changed since: check once more
        result = await _checker(call).check(e.name, source, _place_code(call))
        if not result.ok:
            raise Refused(result)
    return await _insert(
        call,
        e,
        source if isinstance(source, str) else None,
        "rollback",
        expected=int(latest["version"]),
        from_version=version,
    )


async def reset(call: Call, e: Entry) -> Document | None:
    """Back to the default file (a new version without text); None when it is already."""
    _may_edit(call, e)
    latest = await call.storage.template_versions.current(call.tenant, e.name)
    if latest is None or latest.get("source") is None:
        return None
    return await _insert(call, e, None, "reset", expected=int(latest["version"]))


async def preview(call: Call, e: Entry, source: str | None) -> CheckResult:
    if source is None:
        latest = await call.storage.template_versions.current(call.tenant, e.name)
        source = _source_of(latest, e.name)
    return await _checker(call).check(e.name, _normalise(source), _place_code(call))


def _refused_response(result: CheckResult) -> web.Response:
    first = result.problems[0].message if result.problems else "保存できません。"
    return error_response(
        422,
        "template_invalid",
        f"この文面は保存できません。{first}",
        "source",
        problems=[p.to_dict() for p in result.problems],
    )


def _conflict(exc: VersionConflict) -> ApiError:
    return ApiError(
        409,
        "conflict",
        f"ほかの人が先にこのテンプレートを保存しました（いまは第{exc.current}版です）。"
        "開き直して、最新の文面から編集してください。",
    )


# --- API ------------------------------------------------------------------------------------------


@routes.get(
    "/templates", response=TemplateList, summary="テンプレートの一覧（この自治体の変更の有無つき）"
)
async def list_templates(call: Call) -> TemplateList:
    latest = await call.storage.template_versions.current_for(call.tenant)
    return TemplateList(items=[TemplateSummary.of(e, latest.get(e.name)) for e in entries()])


@routes.get(
    "/templates/{area}/{name}",
    response=TemplateDetail,
    summary="テンプレートを1件取得（標準の文面・この自治体の文面・使える変数）",
)
async def get_template(call: Call) -> TemplateDetail:
    return await _detail(call, _entry(call))


@routes.put(
    "/templates/{area}/{name}",
    body=TemplateSave,
    response=TemplateDetail,
    role=Role.EDITOR,
    summary="この自治体の文面を保存（確認して問題があれば 422、problems に行番号つきの理由）",
)
async def put_template(call: Call, body: TemplateSave) -> TemplateDetail | web.Response:
    e = _entry(call)
    try:
        await save(call, e, body.source, body.base_version)
    except Refused as exc:
        return _refused_response(exc.result)
    except VersionConflict as exc:
        raise _conflict(exc) from None
    return await _detail(call, e)


@routes.post(
    "/templates/{area}/{name}/preview",
    body=PreviewIn,
    response=PreviewOut,
    summary="文面を確認し、サンプルのデータでLINEのメッセージにする（保存しない）",
)
async def preview_template(call: Call, body: PreviewIn) -> PreviewOut:
    return PreviewOut.of(await preview(call, _entry(call), body.source))


@routes.get(
    "/templates/{area}/{name}/history",
    response=HistoryOut,
    summary="この自治体の文面の履歴（新しい順）",
)
async def template_history(call: Call) -> HistoryOut:
    e = _entry(call)
    docs = await call.storage.template_versions.history(call.tenant, e.name)
    current = int(docs[0]["version"]) if docs else 0
    return HistoryOut(items=[VersionOut.of(doc, current) for doc in docs])


@routes.post(
    "/templates/{area}/{name}/rollback",
    body=RollbackIn,
    response=TemplateDetail,
    role=Role.EDITOR,
    summary="以前の版に戻す（その版の文面で新しい版を作ります）",
)
async def rollback_template(call: Call, body: RollbackIn) -> TemplateDetail | web.Response:
    e = _entry(call)
    try:
        await rollback(call, e, body.version)
    except Refused as exc:
        return _refused_response(exc.result)
    except VersionConflict as exc:
        raise _conflict(exc) from None
    return await _detail(call, e)


@routes.delete(
    "/templates/{area}/{name}",
    role=Role.EDITOR,
    summary="標準の文面に戻す（履歴は残ります）",
)
async def reset_template(call: Call) -> None:
    e = _entry(call)
    try:
        await reset(call, e)
    except VersionConflict as exc:
        raise _conflict(exc) from None


# --- console --------------------------------------------------------------------------------------


def _page_entry(call: PageCall) -> Entry | None:
    return entry(f"{call.param('area')}/{call.param('name')}")


def _path(e: Entry) -> str:
    return f"/admin/templates/{e.name}"


def diff_table(before: str, after: str, before_label: str, after_label: str) -> Markup:
    """Two texts side by side, changed lines marked (difflib's HTML table, content escaped)."""
    table = difflib.HtmlDiff(tabsize=4, wrapcolumn=48).make_table(
        before.splitlines(),
        after.splitlines(),
        before_label,
        after_label,
        context=True,
        numlines=2,
    )
    return Markup(table.replace(' nowrap="nowrap"', ""))


def _version_label(version: int, source: str | None) -> str:
    return f"第{version}版" + ("（標準の文面）" if source is None else "")


def _diff_for(name: str, docs: list[Document], version: int) -> tuple[str, Markup] | None:
    """The change `version` made, against the version before it (or the default)."""
    by_number = {int(doc["version"]): doc for doc in docs}
    doc = by_number.get(version)
    if doc is None:
        return None
    previous = by_number.get(version - 1)
    default = default_source(name)
    before = _text(previous, default)
    after = _text(doc, default)
    before_label = _version_label(version - 1, previous.get("source")) if previous else "標準の文面"
    title = f"{before_label} → {_version_label(version, doc.get('source'))}"
    if before == after:
        return title, Markup('<p class="hint">文面の違いはありません。</p>')
    return title, diff_table(
        before, after, before_label, _version_label(version, doc.get("source"))
    )


def _text(doc: Document | None, default: str) -> str:
    source = doc.get("source") if doc else None
    return source if isinstance(source, str) else default


async def _editor(
    call: PageCall,
    e: Entry,
    *,
    status: int = 200,
    source: str | None = None,
    base_version: int | None = None,
    result: CheckResult | None = None,
    errors: list[str] | None = None,
) -> web.Response:
    store = call.storage.template_versions
    docs = await store.history(call.tenant, e.name)
    latest = docs[0] if docs else None
    current = int(latest["version"]) if latest else 0
    effective = _source_of(latest, e.name)
    shown = source if source is not None else effective
    if result is None:
        result = await _checker(call).check(e.name, _normalise(shown), _place_code(call))
    diff = None
    wanted = call.request.query.get("diff", "")
    if wanted.isdigit():
        diff = _diff_for(e.name, docs, int(wanted))
    can_edit = call.principal.can(Role.EDITOR) and e.place and not call.tenant.is_platform
    preview = PreviewOut.of(result)
    response = call.render(
        "template.html",
        status=status,
        title=f"テンプレート: {e.title}",
        entry=e,
        kind_label=KIND_LABELS.get(e.kind, e.kind),
        source=shown,
        default=default_source(e.name),
        overridden=bool(latest and latest.get("source") is not None),
        current=current,
        base_version=current if base_version is None else base_version,
        history=[VersionOut.of(doc, current) for doc in docs],
        action_labels=ACTION_LABELS,
        variables=[
            (k, json.dumps(v, ensure_ascii=False, default=str))
            for k, v in variables(e.name).items()
        ],
        preview=preview,
        preview_data=preview.model_dump(mode="json"),
        errors=errors or [],
        diff=diff,
        can_edit=can_edit,
        platform=call.tenant.is_platform,
        max_source=MAX_SOURCE,
    )
    response.headers["Content-Security-Policy"] = EDITOR_CSP
    return response


@pages.get("/templates", nav="テンプレート", order=40)
async def templates_page(call: PageCall) -> web.StreamResponse:
    latest = await call.storage.template_versions.current_for(call.tenant)
    items = [TemplateSummary.of(e, latest.get(e.name)) for e in entries()]
    groups: list[tuple[str, list[TemplateSummary]]] = []
    for item in items:
        if not groups or groups[-1][0] != item.area_title:
            groups.append((item.area_title, []))
        groups[-1][1].append(item)
    return call.render(
        "templates.html",
        title="テンプレート",
        groups=groups,
        overridden=sum(1 for item in items if item.overridden),
        platform=call.tenant.is_platform,
    )


@pages.get("/templates/{area}/{name}")
async def template_page(call: PageCall) -> web.StreamResponse:
    e = _page_entry(call)
    if e is None:
        return console.not_found_page(call.request)
    return await _editor(call, e)


async def _form_source(call: PageCall) -> tuple[str, int | None]:
    form = await call.form()
    raw = form.get("base_version", "")
    return _normalise(form.get("source", "")), int(raw) if raw.isdigit() else None


@pages.post("/templates/{area}/{name}", role=Role.EDITOR)
async def template_save(call: PageCall) -> web.StreamResponse:
    e = _page_entry(call)
    if e is None:
        return console.not_found_page(call.request)
    source, base_version = await _form_source(call)
    if not source.strip():
        return await _editor(
            call,
            e,
            status=422,
            source=source,
            base_version=base_version,
            errors=["文面が空です。標準に戻すときは「標準の文面に戻す」を使ってください。"],
        )
    try:
        saved = await save(call, e, source, base_version)
    except Refused as exc:
        return await _editor(
            call,
            e,
            status=422,
            source=source,
            base_version=base_version,
            result=exc.result,
            errors=["この文面は保存できません。下の問題を直してください。"],
        )
    except VersionConflict as exc:
        return await _editor(
            call,
            e,
            status=409,
            source=source,
            base_version=base_version,
            errors=[_conflict(exc).message],
        )
    except ApiError as exc:
        return console.error_page(call.request, exc.status, "保存できません", exc.message)
    raise call.redirect(_path(e), notice="template_saved" if saved else "template_unchanged")


@pages.post("/templates/{area}/{name}/preview")
async def template_preview(call: PageCall) -> web.StreamResponse:
    """The preview without JavaScript: the page again, with this text checked and shown."""
    e = _page_entry(call)
    if e is None:
        return console.not_found_page(call.request)
    source, base_version = await _form_source(call)
    result = await preview(call, e, source)
    return await _editor(call, e, source=source, base_version=base_version, result=result)


@pages.post("/templates/{area}/{name}/rollback", role=Role.EDITOR)
async def template_rollback(call: PageCall) -> web.StreamResponse:
    e = _page_entry(call)
    if e is None:
        return console.not_found_page(call.request)
    raw = (await call.form()).get("version", "")
    if not raw.isdigit():
        return console.not_found_page(call.request)
    try:
        done = await rollback(call, e, int(raw))
    except Refused as exc:
        return await _editor(
            call,
            e,
            status=422,
            result=exc.result,
            errors=[f"第{raw}版は、いまのデータでは使えないため戻せません。"],
        )
    except VersionConflict as exc:
        return await _editor(call, e, status=409, errors=[_conflict(exc).message])
    except ApiError as exc:
        if exc.status == 404:
            return console.not_found_page(call.request)
        return console.error_page(call.request, exc.status, "戻せません", exc.message)
    raise call.redirect(_path(e), notice="template_rolled_back" if done else "template_unchanged")


@pages.post("/templates/{area}/{name}/reset", role=Role.EDITOR)
async def template_reset(call: PageCall) -> web.StreamResponse:
    e = _page_entry(call)
    if e is None:
        return console.not_found_page(call.request)
    try:
        done = await reset(call, e)
    except VersionConflict as exc:
        return await _editor(call, e, status=409, errors=[_conflict(exc).message])
    except ApiError as exc:
        return console.error_page(call.request, exc.status, "戻せません", exc.message)
    raise call.redirect(_path(e), notice="template_reset" if done else "template_already_default")
