"""Existing programs (既存の取組, e.g. a fan club): `/api/v1/programs` and the console page.

A municipality registers its program with a member-number format; residents link their member
number in the chat (「会員番号」); staff import the existing member list from CSV (all rows or
none, every bad row reported with its line) and see how many members have linked.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import unquote

from aiohttp import web
from aiohttp.web_request import FileField
from pydantic import BaseModel, Field

from bot.domain.programs import (
    MAX_FORMAT_LENGTH,
    MemberFormatError,
    MemberListProblems,
    Program,
    parse_member_csv,
)
from bot.staff import console
from bot.staff.api import ApiError, ApiModel, ApiRoutes, error_response, not_found
from bot.staff.audit import Action
from bot.staff.console import PageCall, Pages
from bot.staff.context import Call
from bot.staff.tenancy import Role
from bot.storage import Storage
from bot.storage.programs import ProgramTaken, StoredProgram

routes = ApiRoutes("programs", "既存の取組（ファンクラブ等）と会員名簿", municipal_only=True)
pages = Pages(municipal_only=True)

PROGRAM_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
MAX_CSV_BYTES = 5 * 1024 * 1024
PROGRAM_ID_HINT = "取組IDは半角の英小文字・数字・- で40文字までです（先頭は英数字）。"

console.NOTICES.update(
    {
        "program_saved": "既存の取組を保存しました。",
        "members_imported": "会員名簿を取り込みました。",
    }
)


class ProgramIn(ApiModel):
    name: str = Field(
        min_length=1, max_length=100, description="取組の名前（例: 気仙沼ファンクラブ）"
    )
    member_number_format: str = Field(
        min_length=1,
        max_length=MAX_FORMAT_LENGTH,
        description="会員番号の形式: N=数字, A=英字, X=英数字（例: KF-NNNNN）、または ^…$ の正規表現",
    )


class ProgramOut(BaseModel):
    program_id: str
    name: str
    member_number_format: str
    example: str = Field(description="形式に合う会員番号の例")
    member_count: int = Field(description="取り込んだ名簿の会員数")
    imported_at: datetime | None
    linked: int = Field(description="会員番号を連携した登録者の数")
    linked_in_list: int = Field(description="そのうち名簿にある会員番号の数")


class ProgramList(BaseModel):
    items: list[ProgramOut]


class ImportOut(BaseModel):
    imported: int
    program: ProgramOut


async def program_out(storage: Storage, stored: StoredProgram) -> ProgramOut:
    program = stored.program
    numbers = await storage.program_links.numbers(program.id)
    in_list = await storage.program_members.numbers_in(program.id, stored.current_import, numbers)
    return ProgramOut(
        program_id=program.id,
        name=program.name,
        member_number_format=program.member_number_format,
        example=program.member_format.example,
        member_count=stored.member_count,
        imported_at=stored.imported_at,
        linked=len(numbers),
        linked_in_list=len(in_list),
    )


async def _own_program(call: Call) -> StoredProgram:
    place = call.tenant.code
    stored = await call.storage.programs.get(call.param("program_id"))
    if stored is None or stored.program.place_code != place:
        raise not_found()
    return stored


def _program(place: str, program_id: str, name: str, member_format: str) -> Program:
    if not PROGRAM_ID.fullmatch(program_id):
        raise ApiError(422, "invalid_program_id", PROGRAM_ID_HINT, "program_id")
    if not name.strip():
        raise ApiError(422, "invalid_name", "取組の名前を入力してください。", "name")
    try:
        return Program(program_id, place, name.strip(), member_format.strip())
    except MemberFormatError as exc:
        raise ApiError(
            422, "invalid_member_number_format", exc.message, "member_number_format"
        ) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_program", str(exc), "program_id") from None


async def _save(call: Call, program_id: str, body: ProgramIn) -> StoredProgram:
    program = _program(call.tenant.code, program_id, body.name, body.member_number_format)
    try:
        stored = await call.storage.programs.put(program, call.now())
    except ProgramTaken:
        raise ApiError(
            409, "program_id_taken", "この取組IDはほかの自治体が使っています。", "program_id"
        ) from None
    await call.audit(Action.PROGRAM_SAVED, program_id)
    return stored


async def import_members(
    storage: Storage, stored: StoredProgram, data: bytes, now: datetime, file: str
) -> int:
    """Replace the program's member list with the CSV: all rows or none (MemberListProblems)."""
    rows = parse_member_csv(data, stored.program, file=file)
    program_id = stored.program.id
    import_id = await storage.program_members.write_generation(program_id, rows)
    await storage.programs.switch_import(program_id, import_id, len(rows), now)
    await storage.program_members.drop_other_generations(program_id, import_id)
    return len(rows)


@routes.get("/programs", response=ProgramList, role=Role.VIEWER, summary="既存の取組の一覧")
async def list_programs(call: Call) -> ProgramList:
    items = await call.storage.programs.for_place(call.tenant.code)
    return ProgramList(items=[await program_out(call.storage, s) for s in items])


@routes.get(
    "/programs/{program_id}",
    response=ProgramOut,
    role=Role.VIEWER,
    summary="既存の取組と連携数",
)
async def get_program(call: Call) -> ProgramOut:
    return await program_out(call.storage, await _own_program(call))


@routes.put(
    "/programs/{program_id}",
    body=ProgramIn,
    response=ProgramOut,
    role=Role.EDITOR,
    summary="既存の取組を登録・変更",
)
async def put_program(call: Call, body: ProgramIn) -> ProgramOut:
    return await program_out(call.storage, await _save(call, call.param("program_id"), body))


@routes.post(
    "/programs/{program_id}/members",
    response=ImportOut,
    role=Role.EDITOR,
    summary="会員名簿をCSVで取り込む（本文はCSVそのもの。全件か0件）",
    description=(
        "本文はCSV（UTF-8またはShift_JIS）。1行目は見出し: 会員番号（必須）, 氏名, メール。"
        "1行でも誤りがあれば何も取り込まず、422 で error.problems に行番号と理由を返します。"
        "取り込むと、それまでの名簿と置き換わります。"
    ),
)
async def import_program_members(call: Call) -> ImportOut | web.Response:
    stored = await _own_program(call)
    data = await call.request.read()
    if len(data) > MAX_CSV_BYTES:
        raise ApiError(413, "payload_too_large", "CSVは5MBまでにしてください。")
    try:
        count = await import_members(call.storage, stored, data, call.now(), "members.csv")
    except MemberListProblems as exc:
        return error_response(
            422,
            "invalid_member_list",
            exc.message,
            problems=[{"line": p.line, "message": p.reason} for p in exc.problems],
        )
    await call.audit(Action.PROGRAM_MEMBERS_IMPORTED, stored.program.id, count=count)
    refreshed = await call.storage.programs.get(stored.program.id)
    assert refreshed is not None
    return ImportOut(imported=count, program=await program_out(call.storage, refreshed))


# --- console --------------------------------------------------------------------------------------


async def _render(
    call: PageCall,
    *,
    status: int = 200,
    error: str = "",
    problems: list[str] | None = None,
    values: dict[str, str] | None = None,
) -> web.Response:
    items = [
        await program_out(call.storage, s)
        for s in await call.storage.programs.for_place(call.tenant.code)
    ]
    return call.render(
        "programs.html",
        status=status,
        title="既存の取組",
        items=items,
        error=error,
        problems=problems or [],
        values=values or {"program_id": "", "name": "", "member_number_format": ""},
        can_edit=call.principal.can(Role.EDITOR),
    )


@pages.get("/programs", role=Role.VIEWER, nav="既存の取組", order=46)
async def programs_page(call: PageCall) -> web.StreamResponse:
    return await _render(call)


@pages.post("/programs", role=Role.EDITOR)
async def programs_save(call: PageCall) -> web.StreamResponse:
    form = await call.form()
    values = {k: form.get(k, "").strip() for k in ("program_id", "name", "member_number_format")}
    try:
        body = ProgramIn(name=values["name"], member_number_format=values["member_number_format"])
        await _save(call, values["program_id"], body)
    except ApiError as exc:
        return await _render(call, status=422, values=values, error=exc.message)
    except ValueError:
        return await _render(
            call, status=422, values=values, error="名前と会員番号の形式を入力してください。"
        )
    raise call.redirect("/admin/programs", notice="program_saved")


@pages.post("/programs/{program_id}/members", role=Role.EDITOR)
async def programs_import(call: PageCall) -> web.StreamResponse:
    try:
        stored = await _own_program(call)
    except ApiError:
        return console.not_found_page(call.request)
    form = await call.request.post()
    upload = form.get("file")
    if not isinstance(upload, FileField):
        return await _render(call, status=422, error="CSVファイルを選んでください。")
    data = upload.file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        return await _render(call, status=422, error="CSVは5MBまでにしてください。")
    name = unquote(upload.filename or "") or "members.csv"  # some clients percent-encode it
    try:
        count = await import_members(call.storage, stored, data, call.now(), name)
    except MemberListProblems as exc:
        first = exc.message.splitlines()[0]
        return await _render(call, status=422, error=first, problems=[str(p) for p in exc.problems])
    await call.audit(Action.PROGRAM_MEMBERS_IMPORTED, stored.program.id, count=count)
    raise call.redirect("/admin/programs", notice="members_imported")
