"""The pieces a flow is made of, and what Python hooks may return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

InputKind = Literal[
    "choice",
    "multi_choice",
    "text",
    "number",
    "date",
    "date_range",
    "confirm",
    "image",
    "location",
    "place_search",
    "questions",
]
INPUT_KINDS: tuple[str, ...] = (
    "choice",
    "multi_choice",
    "text",
    "number",
    "date",
    "date_range",
    "confirm",
    "image",
    "location",
    "place_search",
    "questions",
)

# Special `next` targets.
MISSING = "@missing"  # the first required step (in file order) whose answer is still missing
COMPLETE = "@complete"  # the flow is done: state dropped, then the flow's `on_complete` runs
CANCEL = "@cancel"  # leave the flow, nothing saved (as the キャンセル interrupt)
END = "@end"  # leave the flow, nothing saved, saying the step's `end_template`
EDIT = "@edit"  # the answer names an editable step: clear it and ask it again
TARGETS = (MISSING, COMPLETE, CANCEL, END, EDIT)

# Postback choice values of the engine's own buttons.
DONE = "__done"
YES = "__yes"
NO = "__no"
SKIP = "__skip"
PICK = "__pick"


class ParseError(Exception):
    """Input a step cannot take: answered with `template` (default: the step's retry template).

    `context` is passed to the template. The conversation state stays as it was.
    """

    def __init__(self, template: str | None = None, /, **context: Any) -> None:
        super().__init__(template or "retry")
        self.template = template
        self.context = context


@dataclass(frozen=True)
class Choice:
    """A choice: `value` is stored; `label` is the button (≤ 20 chars); `text` the long form."""

    value: str
    label: str
    text: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def long(self) -> str:
        return self.text or self.label


@dataclass(frozen=True)
class Condition:
    """When a step applies: a named Python condition, or an answer test from the flow file."""

    name: str = ""  # registered condition
    step: str = ""  # or: the answer of this step…
    equals: tuple[str, ...] = ()  # …is one of these values

    def describe(self) -> str:
        return self.name or f"{self.step} in {list(self.equals)}"


@dataclass(frozen=True)
class Step:
    name: str
    prompt: str
    input: InputKind
    parser: str
    retry: str
    help: str
    title: str = ""
    choices: tuple[Choice, ...] = ()
    choices_provider: str = ""
    next: str | Mapping[str, str] = MISSING
    on_enter: str = ""
    on_complete: str = ""
    required: bool = True
    when: Condition | None = None
    save: bool = True
    editable: bool = False
    depends_on: tuple[str, ...] = ()
    end_template: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def next_targets(self) -> list[str]:
        if isinstance(self.next, str):
            return [self.next]
        return list(self.next.values())

    def option(self, name: str, default: Any) -> Any:
        return self.options.get(name, default)


@dataclass(frozen=True)
class Flow:
    name: str
    version: int
    title: str
    start: str
    steps: Mapping[str, Step]  # in file order (the order `@missing` follows)
    help: str
    on_complete: str = ""
    on_start: str = ""
    context: str = ""
    municipality: str = ""  # answer holding the municipality code for template overrides
    path: Path | None = None

    def step(self, name: str) -> Step | None:
        return self.steps.get(name)


# --- what hooks may return ---------------------------------------------------------------------


@dataclass(frozen=True)
class EndFlow:
    """Leave the flow, nothing saved, saying this template."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Goto:
    """Go to this step (or special target) instead of the step's `next`."""

    step: str


@dataclass(frozen=True)
class Skip:
    """`on_enter`: answer the step with this value without asking."""

    value: Any


@dataclass(frozen=True)
class Prefill:
    """`on_enter`: the current value, shown and pre-selected (e.g. when changing it)."""

    value: Any


Outcome = EndFlow | Goto | Skip | Prefill | None


def answer_key(value: Any) -> str:
    """How an answer is matched against the keys of a `next:` mapping."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
