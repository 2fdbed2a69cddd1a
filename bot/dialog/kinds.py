"""Input kinds: how a step reads what the resident sent, which buttons it offers, and how it
keeps working data (candidates, the selection so far) in the step's scratch.

A kind's `take` returns `Accepted(value)` when the step is answered, `None` when it stays on the
step (it has said what comes next, e.g. the candidates of a place search), or raises
`ParseError` for bad input (the engine answers with the step's retry template and keeps the state
as it was).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.dialog.model import DONE, NO, PICK, SKIP, YES, Choice, ParseError, Step
from bot.dialog.text import has_control, key, normalize, small_number
from bot.dialog.turn import ButtonSpec, Registry, Turn, UserInput
from bot.domain.places import Place, SearchStatus, get_place, search_places
from bot.render import MAX_LABEL, MAX_QUICK_REPLIES
from bot.storage.questions import Question

MAX_QUERY = 60

YES_WORDS = {
    key(w)
    for w in (
        "はい",
        "yes",
        "y",
        "ok",
        "おk",
        "うん",
        "ええ",
        "そうです",
        "はいそうです",
        "同意",
        "同意する",
        "同意します",
        "お願いします",
        "おねがいします",
        "大丈夫",
        "だいじょうぶ",
    )
}
NO_WORDS = {
    key(w)
    for w in (
        "いいえ",
        "no",
        "n",
        "いや",
        "ちがう",
        "違う",
        "ちがいます",
        "違います",
        "しない",
        "同意しない",
        "同意しません",
        "だめ",
        "ダメ",
    )
}
DONE_WORDS = {
    key(w)
    for w in (
        "決定",
        "けってい",
        "完了",
        "かんりょう",
        "ok",
        "これで決定",
        "次へ",
        "つぎへ",
        "以上",
    )
}
SKIP_WORDS = {key(w) for w in ("回答しない", "スキップ", "skip", "なし", "特になし", "とくになし")}
_SEPARATORS = re.compile(r"[\s,、・/と&＆]+")


@dataclass(frozen=True)
class Accepted:
    value: Any


class KindOps(Protocol):
    """What kinds need of the engine."""

    registry: Registry

    async def choices(self, turn: Turn, step: Step) -> list[Choice]: ...

    async def parse(self, turn: Turn, step: Step, raw: Any) -> Any: ...

    async def prompt(self, turn: Turn, step: Step, *, page: int = 0) -> None: ...


def wrong_kind(got: str) -> ParseError:
    return ParseError(None, reason="wrong_kind", got=got)


def helper_buttons() -> list[ButtonSpec]:
    """For steps answered by typing: ヘルプ and やめる (they send the interrupt words)."""
    return [ButtonSpec("ヘルプ", "message", "ヘルプ"), ButtonSpec("やめる", "message", "やめる")]


def paged(
    buttons: Sequence[ButtonSpec], page: int, fixed: Sequence[ButtonSpec] = ()
) -> list[ButtonSpec]:
    """At most 13 quick replies: a page of `buttons`, 「ほかの候補」 when there are more, `fixed`."""
    room = MAX_QUICK_REPLIES - len(fixed)
    if len(buttons) <= room:
        return [*buttons, *fixed]
    size = room - 1
    pages = (len(buttons) + size - 1) // size
    page %= pages
    chunk = list(buttons[page * size : (page + 1) * size])
    return [*chunk, ButtonSpec("ほかの候補", "page", page=(page + 1) % pages), *fixed]


def short_label(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def match_choice(text: str, choices: Sequence[Choice]) -> Choice | None:
    """The choice a typed text means: its value, label, long text or alias, its number (「2」「②」),
    or the only choice whose label contains the text."""
    folded = key(text)
    if not folded:
        return None
    for choice in choices:
        forms = {key(choice.value), key(choice.label), key(choice.long), *map(key, choice.aliases)}
        if folded in forms:
            return choice
    number = small_number(text)
    if number is not None and 1 <= number <= len(choices):
        return choices[number - 1]
    if len(folded) >= 2:
        partial = [c for c in choices if folded in key(c.label) or folded in key(c.long)]
        if len(partial) == 1:
            return partial[0]
    return None


class Kind:
    """Base: a kind answered by typed text (text, number, date)."""

    async def enter(self, ops: KindOps, turn: Turn, step: Step) -> Accepted | None:
        """Called on entering the step; may answer it at once (e.g. no questions to ask)."""
        return None

    def template(self, turn: Turn, step: Step) -> str:
        """The template asking for the input in the step's current sub-state."""
        return step.prompt

    async def context(self, ops: KindOps, turn: Turn, step: Step) -> dict[str, Any]:
        return {}

    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        return helper_buttons()

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        if inp.kind == "postback" and inp.value is not None and inp.value not in (PICK,):
            return Accepted(await ops.parse(turn, step, inp.value))
        if not inp.is_text:
            raise wrong_kind(inp.kind)
        return Accepted(await ops.parse(turn, step, inp.text))


class DateKind(Kind):
    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        return [ButtonSpec("日付を選ぶ", "picker", PICK, mode="date"), *helper_buttons()]

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        if inp.kind == "postback" and inp.value == PICK and inp.params.get("date"):
            return Accepted(await ops.parse(turn, step, inp.params["date"]))
        return await super().take(ops, turn, step, inp)


class DateRangeKind(Kind):
    """Typed 「1/9〜1/12」, or two taps on the date picker (start, then end)."""

    def template(self, turn: Turn, step: Step) -> str:
        if turn.conv and turn.conv.scratch.get("start"):
            return str(step.option("end_date_template", "common/date_range_end"))
        return step.prompt

    async def context(self, ops: KindOps, turn: Turn, step: Step) -> dict[str, Any]:
        return {"start": turn.conv.scratch.get("start") if turn.conv else None}

    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        started = bool(turn.conv and turn.conv.scratch.get("start"))
        label = "終了日を選ぶ" if started else "開始日を選ぶ"
        return [ButtonSpec(label, "picker", PICK, mode="date"), *helper_buttons()]

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        if inp.kind == "postback" and inp.value == PICK and inp.params.get("date"):
            picked = inp.params["date"]
            start = turn.scratch.get("start")
            if not start:
                await ops.parse(turn, step, {"start": picked, "end": picked})  # validates
                turn.scratch["start"] = picked
                await ops.prompt(turn, step)
                return None
            return Accepted(await ops.parse(turn, step, {"start": start, "end": picked}))
        return await super().take(ops, turn, step, inp)


class ChoiceKind(Kind):
    async def context(self, ops: KindOps, turn: Turn, step: Step) -> dict[str, Any]:
        choices = await ops.choices(turn, step)
        return {"choices": [{"value": c.value, "label": c.label, "text": c.long} for c in choices]}

    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        choices = await ops.choices(turn, step)
        return paged([ButtonSpec(c.label, "answer", c.value, c.long) for c in choices], page)

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        choices = await ops.choices(turn, step)
        if inp.kind == "postback" and inp.value is not None:
            chosen = next((c for c in choices if c.value == inp.value), None)
        elif inp.is_text:
            chosen = match_choice(inp.text, choices)
        else:
            raise wrong_kind(inp.kind)
        if chosen is None:
            raise ParseError(None, reason="unknown", got=inp.kind)
        return Accepted(await ops.parse(turn, step, chosen.value))


class MultiChoiceKind(Kind):
    """Chips that toggle (✓) and 「決定」; typed numbers or labels toggle too."""

    def _selected(self, turn: Turn) -> list[str]:
        if turn.conv is None:
            return []
        selected = turn.conv.scratch.get("selected")
        if selected is None:
            previous = turn.conv.scratch.get("previous")
            selected = list(previous) if isinstance(previous, list) else []
        return [str(v) for v in selected]

    async def context(self, ops: KindOps, turn: Turn, step: Step) -> dict[str, Any]:
        choices = await ops.choices(turn, step)
        selected = set(self._selected(turn))
        return {
            "choices": [
                {
                    "value": c.value,
                    "label": c.label,
                    "text": c.long,
                    "selected": c.value in selected,
                }
                for c in choices
            ],
            "selected": [c.label for c in choices if c.value in selected],
        }

    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        choices = await ops.choices(turn, step)
        selected = set(self._selected(turn))
        chips = [
            ButtonSpec(
                ("✓" if c.value in selected else "") + c.label,
                "answer",
                c.value,
                ("✓ " if c.value not in selected else "✕ ") + c.long,
            )
            for c in choices
        ]
        return paged(chips, page, fixed=[ButtonSpec("決定", "answer", DONE, "決定")])

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        choices = await ops.choices(turn, step)
        order = [c.value for c in choices]
        selected = self._selected(turn)
        if inp.kind == "postback" and inp.value is not None:
            if inp.value == DONE:
                return await self._done(ops, turn, step, selected, order)
            if inp.value not in order:
                raise ParseError(None, reason="unknown", got=inp.kind)
            toggled = [inp.value]
            replace = False
        elif inp.is_text:
            if key(inp.text) in DONE_WORDS:
                return await self._done(ops, turn, step, selected, order)
            parts = [part for part in _SEPARATORS.split(inp.text) if part]
            found = [match_choice(part, choices) for part in parts]
            matched = [m for m in found if m is not None]
            if not parts or len(matched) != len(parts):
                whole = match_choice(inp.text, choices)
                if whole is None:
                    raise ParseError(None, reason="unknown", got=inp.kind)
                matched = [whole]
            toggled = [m.value for m in matched]
            replace = len(toggled) > 1
        else:
            raise wrong_kind(inp.kind)
        new = set(toggled) if replace else set(selected) ^ set(toggled)
        limit = step.option("max_selected", None)
        if limit is not None and len(new) > int(limit):
            raise ParseError(None, reason="too_many", max_selected=int(limit))
        turn.scratch["selected"] = [value for value in order if value in new]
        await ops.prompt(turn, step)
        return None

    async def _done(
        self, ops: KindOps, turn: Turn, step: Step, selected: list[str], order: list[str]
    ) -> Accepted:
        minimum = int(step.option("min_selected", 1))
        if len(selected) < minimum:
            raise ParseError(None, reason="empty", min_selected=minimum)
        ordered = [value for value in order if value in selected]
        return Accepted(await ops.parse(turn, step, ordered))


class ConfirmKind(Kind):
    def _labels(self, step: Step) -> tuple[str, str]:
        return str(step.option("yes_label", "はい")), str(step.option("no_label", "いいえ"))

    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        yes, no = self._labels(step)
        return [ButtonSpec(yes, "answer", YES), ButtonSpec(no, "answer", NO)]

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        yes, no = self._labels(step)
        if inp.kind == "postback" and inp.value in (YES, NO):
            answer = inp.value == YES
        elif inp.is_text:
            folded = key(inp.text)
            if folded in YES_WORDS or folded == key(yes):
                answer = True
            elif folded in NO_WORDS or folded == key(no):
                answer = False
            else:
                raise ParseError(None, reason="unknown", got=inp.kind)
        else:
            raise wrong_kind(inp.kind)
        return Accepted(await ops.parse(turn, step, answer))


class ImageKind(Kind):
    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        return [
            ButtonSpec("カメラ", "camera"),
            ButtonSpec("写真を選ぶ", "camera_roll"),
            ButtonSpec("やめる", "message", "やめる"),
        ]

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        if inp.kind != "image" or not inp.message_id:
            raise wrong_kind(inp.kind)
        return Accepted(await ops.parse(turn, step, inp.message_id))


class LocationKind(Kind):
    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        return [ButtonSpec("位置情報を送る", "location"), ButtonSpec("やめる", "message", "やめる")]

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        if inp.kind != "location" or inp.location is None:
            raise wrong_kind(inp.kind)
        loc = inp.location
        raw = {
            "title": loc.title,
            "address": loc.address,
            "latitude": loc.latitude,
            "longitude": loc.longitude,
        }
        return Accepted(await ops.parse(turn, step, raw))


class PlaceSearchKind(Kind):
    """Type a name: a unique hit is confirmed (はい/ちがう), several are offered as buttons
    (「東京都府中市」「広島県府中市」), none gives the closest places: never a dead end."""

    def template(self, turn: Turn, step: Step) -> str:
        scratch = turn.conv.scratch if turn.conv else {}
        if scratch.get("pending"):
            return str(step.option("confirm_template", "common/place_confirm"))
        if scratch.get("candidates"):
            if scratch.get("found") == "not_found":
                return str(step.option("not_found_template", "common/place_not_found"))
            return str(step.option("candidates_template", "common/place_candidates"))
        if scratch.get("again"):
            return str(step.option("again_template", "common/place_again"))
        return step.prompt

    async def context(self, ops: KindOps, turn: Turn, step: Step) -> dict[str, Any]:
        scratch = turn.conv.scratch if turn.conv else {}
        pending = get_place(str(scratch.get("pending") or ""))
        candidates = [p for c in scratch.get("candidates") or [] if (p := get_place(str(c)))]
        return {
            "pending_name": pending.display_name if pending else None,
            "candidates": [p.display_name for p in candidates],
            "query": scratch.get("query", ""),
        }

    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        scratch = turn.conv.scratch if turn.conv else {}
        if scratch.get("pending"):
            return [ButtonSpec("はい", "answer", YES), ButtonSpec("ちがう", "answer", NO)]
        candidates = [p for c in scratch.get("candidates") or [] if (p := get_place(str(c)))]
        if candidates:
            buttons = [ButtonSpec(p.display_name, "answer", p.code) for p in candidates]
            return paged(buttons, page)
        return helper_buttons()

    def _allowed(self, step: Step, place: Place) -> bool:
        allow = step.option("allow", "any")
        if allow == "municipality":
            return not place.is_prefecture
        if allow == "prefecture":
            return place.is_prefecture
        return True

    def _check(self, step: Step, place: Place) -> None:
        if not self._allowed(step, place):
            raise ParseError(
                None, reason=f"{step.option('allow', 'any')}_only", place_name=place.display_name
            )

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        scratch = turn.scratch
        pending = scratch.get("pending")
        if inp.kind == "postback" and inp.value is not None:
            if inp.value == YES and pending:
                return Accepted(pending)
            if inp.value == NO:
                await self._again(ops, turn, step)
                return None
            place = get_place(inp.value)
            if place is None or inp.value not in (scratch.get("candidates") or []):
                raise ParseError(None, reason="unknown", got=inp.kind)
            self._check(step, place)
            return Accepted(await ops.parse(turn, step, place.code))
        if not inp.is_text:
            raise wrong_kind(inp.kind)
        folded = key(inp.text)
        if pending and folded in YES_WORDS:
            return Accepted(pending)
        if pending and folded in NO_WORDS:
            await self._again(ops, turn, step)
            return None
        if len(inp.text) > MAX_QUERY:
            raise ParseError(None, reason="too_long", got=inp.kind)
        candidates = scratch.get("candidates") or []
        if candidates:
            by_name = [
                p for c in candidates if (p := get_place(str(c))) and key(p.display_name) == folded
            ]
            if len(by_name) == 1:  # typed one of the offered names in full
                self._check(step, by_name[0])
                return Accepted(await ops.parse(turn, step, by_name[0].code))
        await self._search(ops, turn, step, inp.text)
        return None

    def _reset(self, turn: Turn, scratch: dict[str, Any]) -> None:
        if turn.conv is None:
            raise RuntimeError("no conversation")
        turn.conv.scratch = scratch

    async def _again(self, ops: KindOps, turn: Turn, step: Step) -> None:
        self._reset(turn, {"again": True})
        await ops.prompt(turn, step)

    async def _search(self, ops: KindOps, turn: Turn, step: Step, query: str) -> None:
        result = search_places(query)
        if result.status is SearchStatus.EMPTY:
            raise ParseError(None, reason="empty", got="text")
        places = [p for p in result.places if self._allowed(step, p)]
        if result.status is SearchStatus.UNIQUE or len(places) == 1:
            place = result.place if result.status is SearchStatus.UNIQUE else places[0]
            assert place is not None
            self._check(step, place)
            code = await ops.parse(turn, step, place.code)
            self._reset(turn, {"pending": code, "query": query})
        elif places:
            self._reset(
                turn, {"candidates": [p.code for p in places], "found": "ambiguous", "query": query}
            )
        elif result.status is SearchStatus.AMBIGUOUS:
            raise ParseError(None, reason=f"{step.option('allow', 'any')}_only", place_name=query)
        else:
            suggestions = [p for p in result.suggestions if self._allowed(step, p)]
            self._reset(
                turn,
                {"candidates": [p.code for p in suggestions], "found": "not_found", "query": query},
            )
        await ops.prompt(turn, step)


class QuestionsKind(Kind):
    """A municipality's own questions (from the database), one after another."""

    async def _questions(self, ops: KindOps, turn: Turn, step: Step) -> list[Question]:
        provider = ops.registry.questions[str(step.option("questions", ""))]
        return await provider(turn, step)

    def _current(self, turn: Turn, questions: list[Question]) -> Question | None:
        index = int(turn.conv.scratch.get("qi", 0)) if turn.conv else 0
        return questions[index] if 0 <= index < len(questions) else None

    async def enter(self, ops: KindOps, turn: Turn, step: Step) -> Accepted | None:
        if not await self._questions(ops, turn, step):
            return Accepted(await ops.parse(turn, step, {}))
        return None

    async def context(self, ops: KindOps, turn: Turn, step: Step) -> dict[str, Any]:
        questions = await self._questions(ops, turn, step)
        current = self._current(turn, questions)
        if current is None:
            return {"question": None}
        return {
            "question": {
                "id": current.question_id,
                "prompt": current.prompt,
                "kind": current.kind,
                "choices": list(current.choices),
                "required": current.required,
                "max_length": current.max_length,
                "number": questions.index(current) + 1,
                "total": len(questions),
            }
        }

    async def buttons(self, ops: KindOps, turn: Turn, step: Step, page: int) -> list[ButtonSpec]:
        current = self._current(turn, await self._questions(ops, turn, step))
        if current is None:
            return helper_buttons()
        skip = (
            []
            if current.required
            else [ButtonSpec(str(step.option("skip_label", "回答しない")), "answer", SKIP)]
        )
        if current.kind == "choice":
            buttons = [
                ButtonSpec(label, "answer", str(i)) for i, label in enumerate(current.choices)
            ]
            return paged(buttons, page, fixed=skip)
        return [*skip, *helper_buttons()]

    async def take(self, ops: KindOps, turn: Turn, step: Step, inp: UserInput) -> Accepted | None:
        questions = await self._questions(ops, turn, step)
        current = self._current(turn, questions)
        answers: dict[str, Any] = dict(turn.scratch.get("qa") or {})
        if current is not None:
            answer = self._answer(current, inp)
            if answer is not None:
                answers[current.question_id] = answer
        index = int(turn.scratch.get("qi", 0)) + 1
        if index < len(questions):
            turn.scratch["qa"] = answers
            turn.scratch["qi"] = index
            await ops.prompt(turn, step)
            return None
        return Accepted(await ops.parse(turn, step, answers))

    def _answer(self, question: Question, inp: UserInput) -> str | None:
        """The answer, None when skipped; raises ParseError for bad input."""
        if inp.kind == "postback" and inp.value == SKIP and not question.required:
            return None
        if inp.is_text and not question.required and key(inp.text) in SKIP_WORDS:
            return None
        if question.kind == "choice":
            choices = [Choice(str(i), label) for i, label in enumerate(question.choices)]
            if inp.kind == "postback" and inp.value is not None:
                chosen = next((c for c in choices if c.value == inp.value), None)
            elif inp.is_text:
                chosen = match_choice(inp.text, choices)
            else:
                raise wrong_kind(inp.kind)
            if chosen is None:
                raise ParseError(None, reason="unknown", got=inp.kind)
            return chosen.label
        if not inp.is_text:
            raise wrong_kind(inp.kind)
        text = normalize(inp.text)
        if not text:
            raise ParseError(None, reason="empty", got=inp.kind)
        if has_control(text):
            raise ParseError(None, reason="control", got=inp.kind)
        if len(text) > question.max_length:
            raise ParseError(None, reason="too_long", max_length=question.max_length)
        return text


KINDS: dict[str, Kind] = {
    "text": Kind(),
    "number": Kind(),
    "date": DateKind(),
    "date_range": DateRangeKind(),
    "choice": ChoiceKind(),
    "multi_choice": MultiChoiceKind(),
    "confirm": ConfirmKind(),
    "image": ImageKind(),
    "location": LocationKind(),
    "place_search": PlaceSearchKind(),
    "questions": QuestionsKind(),
}
