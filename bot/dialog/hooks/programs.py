"""Hooks of 会員番号の連携 (`dialogs/programs.yaml`): a resident links the member number of an
existing fan-club program of a place they are registered with."""

from __future__ import annotations

from typing import Any

from bot.dialog.model import Choice, EndFlow, Outcome, ParseError, Skip, Step
from bot.dialog.text import normalize
from bot.dialog.turn import ButtonSpec, Registry, Turn
from bot.domain.places import get_place
from bot.domain.programs import check_member_number
from bot.storage.programs import LinkResult, StoredProgram

FLOW = "member_link"


def _place_name(code: str) -> str:
    place = get_place(code)
    return place.display_name if place else code


async def _programs(turn: Turn) -> list[StoredProgram]:
    """Programs of the places the resident is actively registered with."""
    codes = [
        str(doc["place_code"])
        for doc in await turn.storage.registrations.for_user(turn.user_id)
        if doc.get("status") == "active"
    ]
    return await turn.storage.programs.for_places(codes)


async def _chosen(turn: Turn) -> StoredProgram | None:
    program_id = str(turn.answers.get("program") or "")
    stored = await turn.storage.programs.get(program_id) if program_id else None
    if stored is None:
        return None
    codes = await turn.storage.registrations.place_codes(turn.user_id)
    return stored if stored.program.place_code in codes else None


async def member_link_start(turn: Turn) -> Outcome:
    if not await turn.storage.registrations.place_codes(turn.user_id):
        return EndFlow("my/none")
    if not await _programs(turn):
        return EndFlow("programs/none")
    return None


async def member_programs(turn: Turn, step: Step) -> list[Choice]:
    return [
        Choice(p.program.id, p.program.name[:20], p.program.name) for p in await _programs(turn)
    ]


async def member_program_only_one(turn: Turn) -> Outcome:
    programs = await _programs(turn)
    return Skip(programs[0].program.id) if len(programs) == 1 else None


async def member_link_context(turn: Turn) -> dict[str, Any]:
    stored = await _chosen(turn)
    current = (
        await turn.storage.program_links.number_of(stored.program.id, turn.user_id)
        if stored
        else None
    )
    programs = await _programs(turn)
    return {
        "programs": [
            {"name": p.program.name, "place_name": _place_name(p.program.place_code)}
            for p in programs
        ],
        "program_name": stored.program.name if stored else "",
        "place_name": _place_name(stored.program.place_code) if stored else "",
        "example": stored.program.member_format.example if stored else "",
        "current": current or "",
    }


async def parse_member_number(raw: Any, turn: Turn, step: Step) -> str:
    text = normalize(str(raw))
    stored = await _chosen(turn)
    if stored is None:
        raise ParseError(None, reason="no_program", message="")
    decision = check_member_number(stored.program, text)
    if not decision.ok:
        raise ParseError(None, reason=str(decision.reason), message=decision.message)
    return decision.number


async def link_member_number(turn: Turn) -> Outcome:
    """Claim the number for the resident (a unique insert: one resident per number)."""
    stored = await _chosen(turn)
    number = str(turn.answers.get("number") or "")
    if stored is None or not number:
        return EndFlow("programs/none")
    program = stored.program
    link = await turn.storage.program_links.link(program, turn.user_id, number, turn.now)
    buttons = [ButtonSpec("特典を見る", "cmd", "benefits"), ButtonSpec("メニュー", "cmd", "menu")]
    context = {
        "program_name": program.name,
        "number": number,
        "previous": link.previous or "",
        "result": link.result.value,
    }
    if link.result is LinkResult.TAKEN:
        turn.say("programs/taken", buttons=buttons, **context)
    else:
        turn.say("programs/linked", buttons=buttons, **context)
    return None


def register(registry: Registry) -> None:
    add = registry.add
    add("action", "member_link_start")(member_link_start)
    add("choices", "member_programs")(member_programs)
    add("action", "member_program_only_one")(member_program_only_one)
    add("context", "member_link_context")(member_link_context)
    add("parser", "member_number")(parse_member_number)
    add("action", "link_member_number")(link_member_number)
