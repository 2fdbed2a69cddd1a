"""The default parser of every input kind (a step names another with `parser:`).

A parser turns what the kind read into the answer kept in the conversation (JSON-able) or raises
`ParseError` with a `reason` the step's retry template can speak to.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from bot.dialog.model import ParseError, Step
from bot.dialog.text import has_control, normalize, parse_date, parse_int, split_range
from bot.dialog.turn import Registry, Turn
from bot.domain.places import get_place

DEFAULT_MAX_LENGTH = 200


async def parse_text(raw: Any, turn: Turn, step: Step) -> str:
    text = normalize(str(raw))
    if not text:
        raise ParseError(None, reason="empty")
    limit = int(step.option("max_length", DEFAULT_MAX_LENGTH))
    if len(text) > limit:
        raise ParseError(None, reason="too_long", max_length=limit)
    if has_control(text.replace("\n", "")):
        raise ParseError(None, reason="control")
    return text


async def parse_number(raw: Any, turn: Turn, step: Step) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        value: int | None = raw
    else:
        value = parse_int(str(raw))
    if value is None:
        raise ParseError(None, reason="not_number")
    low, high = step.option("min", None), step.option("max", None)
    if (low is not None and value < int(low)) or (high is not None and value > int(high)):
        raise ParseError(None, reason="out_of_range", min=low, max=high)
    return value


def _bounds(turn: Turn, step: Step) -> tuple[date | None, date | None]:
    low, high = step.option("min_days", None), step.option("max_days", None)
    today = turn.today
    return (
        today + timedelta(days=int(low)) if low is not None else None,
        today + timedelta(days=int(high)) if high is not None else None,
    )


def _one_date(text: str, turn: Turn, step: Step) -> date:
    found = parse_date(text, turn.today)
    if found is None:
        raise ParseError(None, reason="not_date")
    low, high = _bounds(turn, step)
    if (low and found < low) or (high and found > high):
        raise ParseError(
            None,
            reason="out_of_range",
            min=low.isoformat() if low else None,
            max=high.isoformat() if high else None,
        )
    return found


async def parse_date_answer(raw: Any, turn: Turn, step: Step) -> str:
    return _one_date(str(raw), turn, step).isoformat()


async def parse_date_range(raw: Any, turn: Turn, step: Step) -> dict[str, str]:
    if isinstance(raw, dict):
        start_text, end_text = str(raw.get("start", "")), str(raw.get("end", ""))
    else:
        parts = split_range(str(raw))
        if parts is None:
            raise ParseError(None, reason="not_range")
        start_text, end_text = parts
    start, end = _one_date(start_text, turn, step), _one_date(end_text, turn, step)
    if end < start:
        raise ParseError(None, reason="reversed")
    span = int(step.option("max_span", 31))
    if (end - start).days + 1 > span:
        raise ParseError(None, reason="too_long", max_span=span)
    return {"start": start.isoformat(), "end": end.isoformat()}


async def identity(raw: Any, turn: Turn, step: Step) -> Any:
    return raw


async def parse_place(raw: Any, turn: Turn, step: Step) -> str:
    place = get_place(str(raw))
    if place is None:
        raise ParseError(None, reason="unknown")
    return place.code


def register_defaults(registry: Registry) -> None:
    parsers = {
        "text": parse_text,
        "number": parse_number,
        "date": parse_date_answer,
        "date_range": parse_date_range,
        "choice": identity,
        "multi_choice": identity,
        "confirm": identity,
        "image": identity,
        "location": identity,
        "place": parse_place,
        "questions": identity,
    }
    for name, parser in parsers.items():
        registry.add("parser", name)(parser)
