"""Flow files (`dialogs/<flow>.yaml`): loading and the start-up check.

A flow file:

    flow: register                 # name (a-z, 0-9, _)
    version: 1                     # bump when answers change meaning (older conversations restart)
    title: ふるさと住民登録          # shown in "cancelled" and "expired" notices
    start: place                   # first step
    help: register/help            # default help template of the steps (else common/help_step)
    context: register_context      # optional: named context provider for every template
    municipality: place            # optional: answer holding the code for template overrides
    on_start: some_action          # optional: action run when the flow starts
    on_complete: create_basic_registration   # action run after the flow's state is dropped
    steps:
      place:                       # steps have names; `@missing` follows file order
        prompt: register/place     # template asking for the input
        input: place_search        # choice, multi_choice, text, number, date, date_range,
                                   # confirm, image, location, place_search, questions
        parser: furusato_place     # registered parser (default: the input kind's)
        retry: register/place_retry  # template for bad input (default: common/retry_<input>)
        help: register/place_help  # template for ヘルプ (default: the flow's help)
        title: 登録先               # label in the summary and the edit menu (≤ 20 chars)
        choices: [...]             # choice steps: a list of {value, label, text?, aliases?}
                                   # or the name of a registered choice provider
        next: "@missing"           # a step, or {answer: step, else: step}, or a target:
                                   # @missing (default), @complete, @cancel, @end, @edit
        on_enter: action           # action run on entering the step (may skip or end)
        on_complete: action        # action run after the answer was taken (may redirect)
        required: true             # false: only reached by `next`, never by @missing
        when: minor                # condition name, or {step: age_band, is: under_18}
        save: true                 # false: the answer only picks `next`, it is not kept
        editable: false            # offered by @edit (the confirmation's 修正)
        depends_on: [place]        # answers cleared when one of these steps is edited
        end_template: t            # what @end says
        # input options: max_length (text); min, max (number); min_days, max_days (date,
        # date_range; days from today); max_span (date_range); min_selected, max_selected
        # (multi_choice); yes_label, no_label (confirm); allow: any|municipality|prefecture
        # (place_search); questions: provider, skip_label (questions); *_template overrides.

`load_flows()` raises `FlowError` naming the file, flow and step of every problem found: an
unknown template, parser, action, provider or condition, an unknown `next` step, an unreachable
step, an unknown key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from bot.dialog.model import (
    CANCEL,
    COMPLETE,
    EDIT,
    END,
    INPUT_KINDS,
    MISSING,
    TARGETS,
    Choice,
    Condition,
    Flow,
    InputKind,
    Step,
)
from bot.dialog.turn import Registry
from bot.render import MAX_LABEL, Renderer

DIALOGS_DIR = Path(__file__).resolve().parent.parent.parent / "dialogs"
COMMANDS_FILE = "commands.yaml"
DEFAULT_STEP_HELP = "common/help_step"

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_VALUE = re.compile(r"[^&=\s]{1,60}")
_FLOW_KEYS = {
    "flow",
    "version",
    "title",
    "start",
    "help",
    "context",
    "municipality",
    "on_start",
    "on_complete",
    "steps",
}
_STEP_KEYS = {
    "prompt",
    "input",
    "parser",
    "retry",
    "help",
    "title",
    "choices",
    "next",
    "on_enter",
    "on_complete",
    "required",
    "when",
    "save",
    "editable",
    "depends_on",
    "end_template",
}
_OPTION_KEYS: dict[str, set[str]] = {
    "choice": set(),
    "multi_choice": {"min_selected", "max_selected"},
    "text": {"max_length"},
    "number": {"min", "max"},
    "date": {"min_days", "max_days"},
    "date_range": {"min_days", "max_days", "max_span", "end_date_template"},
    "confirm": {"yes_label", "no_label"},
    "image": set(),
    "location": set(),
    "place_search": {
        "allow",
        "confirm_template",
        "candidates_template",
        "not_found_template",
        "again_template",
    },
    "questions": {"questions", "skip_label"},
}
_HOOK_LABELS = {
    "choices": "choice provider",
    "questions": "question provider",
    "context": "context provider",
}
_DEFAULT_PARSERS = {kind: kind for kind in INPUT_KINDS} | {"place_search": "place"}


class FlowError(Exception):
    """One or more problems in the flow files; the message lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def default_parser(kind: str) -> str:
    return _DEFAULT_PARSERS.get(kind, kind)


def default_retry(kind: str) -> str:
    return f"common/retry_{kind}"


class _Checker:
    def __init__(self, path: Path, registry: Registry, renderer: Renderer) -> None:
        self.path = path
        self.registry = registry
        self.renderer = renderer
        self.problems: list[str] = []
        self.flow_name = "?"

    def fail(self, message: str, step: str | None = None) -> None:
        where = f"{self.path.name}: flow {self.flow_name!r}"
        if step:
            where += f", step {step!r}"
        self.problems.append(f"{where}: {message}")

    def template(self, name: Any, what: str, step: str | None) -> str:
        if not isinstance(name, str) or not name:
            self.fail(f"{what} must be a template name", step)
            return ""
        if not self.renderer.exists(name):
            self.fail(f"unknown template {name!r} ({what})", step)
        return name

    def hook(self, kind: Any, name: Any, what: str, step: str | None) -> str:
        if not isinstance(name, str) or not name:
            self.fail(f"{what} must be a name", step)
            return ""
        if name not in self.registry.table(kind):
            label = _HOOK_LABELS.get(kind, kind)
            self.fail(f"unknown {label} {name!r} ({what})", step)
        return name


def _as_str_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_flows(
    directory: Path = DIALOGS_DIR, *, registry: Registry, renderer: Renderer
) -> dict[str, Flow]:
    """Every flow in `directory`, checked; raises `FlowError` listing every problem."""
    problems: list[str] = []
    flows: dict[str, Flow] = {}
    paths = sorted(p for p in directory.glob("*.yaml") if p.name != COMMANDS_FILE)
    if not paths:
        raise FlowError([f"{directory}: no flow files"])
    for path in paths:
        checker = _Checker(path, registry, renderer)
        try:
            data = _load_yaml(path)
        except yaml.YAMLError as exc:
            problems.append(f"{path.name}: not valid YAML: {exc}")
            continue
        flow = _flow(data, checker)
        problems += checker.problems
        if flow is not None:
            if flow.name in flows:
                problems.append(f"{path.name}: flow {flow.name!r} is defined twice")
            flows[flow.name] = flow
    if problems:
        raise FlowError(problems)
    return flows


def _flow(data: Any, c: _Checker) -> Flow | None:
    if not isinstance(data, dict):
        c.fail("the file must hold a mapping")
        return None
    name = data.get("flow")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        c.fail("`flow` must be a name of a-z, 0-9 and _")
        return None
    c.flow_name = name
    for unknown in sorted(set(map(str, data)) - _FLOW_KEYS):
        c.fail(f"unknown key {unknown!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        c.fail("`version` must be a whole number ≥ 1")
        version = 1
    title = data.get("title", name)
    if not isinstance(title, str) or not title:
        c.fail("`title` must be text")
        title = name
    help_template = c.template(data.get("help", DEFAULT_STEP_HELP), "help", None)
    context = c.hook("context", data["context"], "context", None) if "context" in data else ""
    on_start = c.hook("action", data["on_start"], "on_start", None) if "on_start" in data else ""
    on_complete = (
        c.hook("action", data["on_complete"], "on_complete", None) if "on_complete" in data else ""
    )
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        c.fail("`steps` must be a non-empty mapping")
        return None
    names = [str(key) for key in raw_steps]
    steps: dict[str, Step] = {}
    for key, raw in raw_steps.items():
        step = _step(str(key), raw, c, help_template, names)
        if step is not None:
            steps[step.name] = step
    municipality = data.get("municipality", "")
    if municipality and municipality not in names:
        c.fail(f"`municipality` names unknown step {municipality!r}")
    start = data.get("start")
    if not isinstance(start, str) or start not in steps:
        c.fail(f"`start` must name a step, got {start!r}")
        return None
    flow = Flow(
        name=name,
        version=version,
        title=title,
        start=start,
        steps=steps,
        help=help_template,
        on_complete=on_complete,
        on_start=on_start,
        context=context,
        municipality=str(municipality),
        path=c.path,
    )
    if len(steps) == len(names):
        for unreachable in unreachable_steps(flow):
            c.fail("unreachable step (no `next` leads here)", unreachable)
    return flow


def _choices(raw: Any, kind: str, c: _Checker, step: str) -> tuple[tuple[Choice, ...], str]:
    if isinstance(raw, str):
        return (), c.hook("choices", raw, "choices", step)
    if not isinstance(raw, list) or not raw:
        c.fail("`choices` must be a list or the name of a choice provider", step)
        return (), ""
    limit = MAX_LABEL - 1 if kind == "multi_choice" else MAX_LABEL  # room for the ✓ mark
    choices: list[Choice] = []
    for item in raw:
        if isinstance(item, str | int) and not isinstance(item, bool):
            item = {"value": str(item), "label": str(item)}
        if not isinstance(item, dict) or "value" not in item or "label" not in item:
            c.fail("each choice needs `value` and `label`", step)
            continue
        unknown = set(map(str, item)) - {"value", "label", "text", "aliases"}
        if unknown:
            c.fail(f"unknown choice key(s) {sorted(unknown)}", step)
        value, label = str(item["value"]), str(item["label"])
        if not _VALUE.fullmatch(value) or value.startswith("__"):
            c.fail(f"choice value {value!r} must be 1-60 characters without spaces, & or =", step)
        if not 1 <= len(label) <= limit:
            c.fail(f"choice label {label!r} must be 1 to {limit} characters", step)
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list):
            c.fail("choice `aliases` must be a list", step)
            aliases = []
        choices.append(
            Choice(value, label, str(item.get("text", "")), tuple(str(a) for a in aliases))
        )
    values = [choice.value for choice in choices]
    if len(set(values)) != len(values):
        c.fail("choice values must differ", step)
    return tuple(choices), ""


def _when(raw: Any, c: _Checker, step: str, names: list[str]) -> Condition | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return Condition(name=c.hook("condition", raw, "when", step))
    if isinstance(raw, dict) and "step" in raw and ("is" in raw or "in" in raw):
        other = str(raw["step"])
        if other not in names:
            c.fail(f"`when` names unknown step {other!r}", step)
        values = raw["in"] if "in" in raw else [raw["is"]]
        if not isinstance(values, list):
            c.fail("`when.in` must be a list", step)
            values = []
        return Condition(step=other, equals=tuple(_as_str_key(v) for v in values))
    c.fail("`when` must be a condition name or {step: …, is: …} / {step: …, in: […]}", step)
    return None


def _step(name: str, raw: Any, c: _Checker, flow_help: str, names: list[str]) -> Step | None:
    if not _NAME.fullmatch(name):
        c.fail("step names are a-z, 0-9 and _ (starting with a letter)", name)
    if not isinstance(raw, dict):
        c.fail("a step must be a mapping", name)
        return None
    kind = raw.get("input")
    if kind not in INPUT_KINDS:
        c.fail(f"`input` must be one of {', '.join(INPUT_KINDS)}, got {kind!r}", name)
        return None
    allowed = _STEP_KEYS | _OPTION_KEYS[kind]
    for unknown in sorted(set(map(str, raw)) - allowed):
        c.fail(f"unknown key {unknown!r} for input {kind}", name)
    options = {k: v for k, v in raw.items() if k in _OPTION_KEYS[kind]}
    for option, value in options.items():
        if option.endswith("_template"):
            c.template(value, option, name)
    prompt = c.template(raw.get("prompt"), "prompt", name)
    retry = c.template(raw.get("retry", default_retry(kind)), "retry", name)
    help_template = c.template(raw.get("help", flow_help), "help", name)
    parser = c.hook("parser", raw.get("parser", default_parser(kind)), "parser", name)
    on_enter = c.hook("action", raw["on_enter"], "on_enter", name) if "on_enter" in raw else ""
    on_complete = (
        c.hook("action", raw["on_complete"], "on_complete", name) if "on_complete" in raw else ""
    )
    choices: tuple[Choice, ...] = ()
    provider = ""
    if kind in ("choice", "multi_choice"):
        if "choices" not in raw:
            c.fail(f"input {kind} needs `choices`", name)
        else:
            choices, provider = _choices(raw["choices"], kind, c, name)
    elif "choices" in raw:
        c.fail(f"input {kind} takes no `choices`", name)
    if kind == "questions":
        c.hook("questions", options.get("questions"), "questions", name)
    title = raw.get("title", "")
    if not isinstance(title, str) or len(title) > MAX_LABEL:
        c.fail(f"`title` must be text of at most {MAX_LABEL} characters", name)
        title = ""
    editable = bool(raw.get("editable", False))
    if editable and not title:
        c.fail("an editable step needs a `title` (the edit menu shows it)", name)
    depends_on = raw.get("depends_on", [])
    if not isinstance(depends_on, list) or any(str(d) not in names for d in depends_on):
        c.fail(f"`depends_on` must list steps of this flow, got {depends_on!r}", name)
        depends_on = []
    end_template = ""
    if "end_template" in raw:
        end_template = c.template(raw["end_template"], "end_template", name)
    next_ = _next(raw.get("next", MISSING), kind, choices, provider, c, name, names)
    targets = [next_] if isinstance(next_, str) else list(next_.values())
    if END in targets and not end_template:
        c.fail("`next` uses @end but the step has no `end_template`", name)
    if EDIT in targets and kind != "choice":
        c.fail("@edit needs a choice step whose answers are step names", name)
    return Step(
        name=name,
        prompt=prompt,
        input=cast(InputKind, kind),
        parser=parser,
        retry=retry,
        help=help_template,
        title=title,
        choices=choices,
        choices_provider=provider,
        next=next_,
        on_enter=on_enter,
        on_complete=on_complete,
        required=bool(raw.get("required", True)),
        when=_when(raw.get("when"), c, name, names),
        save=bool(raw.get("save", True)),
        editable=editable,
        depends_on=tuple(str(d) for d in depends_on),
        end_template=end_template,
        options=options,
    )


def _next(
    raw: Any,
    kind: str,
    choices: tuple[Choice, ...],
    provider: str,
    c: _Checker,
    step: str,
    names: list[str],
) -> str | dict[str, str]:
    def target(value: Any) -> str:
        text = str(value)
        if text not in names and text not in TARGETS:
            c.fail(f"`next` names unknown step {text!r}", step)
        return text

    if isinstance(raw, str):
        return target(raw)
    if not isinstance(raw, dict) or not raw:
        c.fail("`next` must be a step, a target or a mapping answer → step", step)
        return MISSING
    mapping = {_as_str_key(key): target(value) for key, value in raw.items()}
    keys = set(mapping) - {"else"}
    if kind == "confirm":
        known = {"true", "false"}
    elif kind == "choice" and not provider:
        known = {choice.value for choice in choices}
    else:
        known = set()
    if known:
        for unknown in sorted(keys - known):
            c.fail(f"`next` maps {unknown!r}, which is not an answer of this step", step)
        if "else" not in mapping and known - keys:
            c.fail(f"`next` has no step for {sorted(known - keys)} (add them or `else`)", step)
    elif "else" not in mapping:
        c.fail("`next` mapping needs an `else` entry", step)
    return mapping


def unreachable_steps(flow: Flow) -> list[str]:
    """Steps no path from `start` leads to."""
    seen = {flow.start}
    todo = [flow.start]
    while todo:
        step = flow.steps[todo.pop()]
        for target in _successors(flow, step.next_targets()):
            if target not in seen and target in flow.steps:
                seen.add(target)
                todo.append(target)
    return [name for name in flow.steps if name not in seen]


def _successors(flow: Flow, targets: Iterable[str]) -> Iterable[str]:
    for target in targets:
        if target == MISSING:
            yield from (s.name for s in flow.steps.values() if s.required)
        elif target == EDIT:
            yield from (s.name for s in flow.steps.values() if s.editable)
        elif target not in (COMPLETE, CANCEL, END):
            yield target


# --- commands.yaml ---------------------------------------------------------------------------


def load_yaml_mapping(path: Path) -> Mapping[str, Any]:
    try:
        data = _load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise FlowError([f"{path.name}: cannot read: {exc}"]) from exc
    if not isinstance(data, dict):
        raise FlowError([f"{path.name}: the file must hold a mapping"])
    return data
