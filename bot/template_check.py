"""Checks a staff-edited template before it is saved, and renders its live preview.

A municipality's text must be safe and must work for every branch before residents see it:

- it parses (a syntax error names its line);
- it uses only the variables its sample data has (`templates/samples.yaml`; an unknown variable
  is named, with its line), no names starting with `_` (`''.__class__`, `lipsum.__globals__`:
  the way out of a sandbox), and no `{% include %}`, `{% import %}` or `{% extends %}`;
- every sample renders in the sandbox under `StrictUndefined` and gives messages LINE accepts
  (text ≤ 5,000 characters, no empty Flex bubble, JSON that parses: its line and column).

Rendering runs in a child process (`python -m bot.template_check`, started once per web
process and reused): a template such as `{{ 9 ** 9 ** 9 }}` or nested `range(100000)` loops would
otherwise stop the web process. The child has a memory limit and is killed after `timeout`
seconds; the template is then refused as too slow. Problems are Japanese sentences for staff.

The catalogue (`templates/catalogue.yaml`: a short description per template and whether it is
said about a place, i.e. editable per municipality) and the sample data are read here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from bot.domain.places import get_place
from bot.render import _FILTERS, TEMPLATES_DIR, Renderer, RenderError  # same filters as the bot

log = logging.getLogger(__name__)

MAX_SOURCE = 20_000  # characters of one template
CHECK_TIMEOUT_S = 3.0
CHILD_START_TIMEOUT_S = 60.0
CHILD_MEMORY_BYTES = 1536 * 1024 * 1024
_READY = "ready"
_ROOT = Path(__file__).resolve().parent.parent  # where `python -m bot…` finds the package
_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace"})


# --- catalogue and sample data -------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A template as staff see it in the console."""

    name: str
    title: str
    area: str
    area_title: str
    place: bool  # said about one place: editable per municipality

    @property
    def kind(self) -> str:
        return _renderer().kind(self.name)


@cache
def _catalogue_file() -> dict[str, Any]:
    data = yaml.safe_load((TEMPLATES_DIR / "catalogue.yaml").read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


@cache
def _samples_file() -> dict[str, Any]:
    data = yaml.safe_load((TEMPLATES_DIR / "samples.yaml").read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


@cache
def _renderer() -> Renderer:
    return Renderer()


def catalogue_names() -> list[str]:
    """The names the catalogue describes (for its test)."""
    return [name for name in _catalogue_file() if not name.startswith("_")]


def entry(name: str) -> Entry | None:
    """The template's catalogue entry, or None when no such template exists."""
    if not _renderer().exists(name):
        return None
    data = _catalogue_file().get(name) or {}
    area = name.split("/", 1)[0]
    areas = _catalogue_file().get("_areas") or {}
    return Entry(
        name=name,
        title=str(data.get("title") or name),
        area=area,
        area_title=str(areas.get(area, area)),
        place=bool(data.get("place", False)),
    )


def entries() -> list[Entry]:
    """Every template the bot renders, in catalogue order (areas in the catalogue's order)."""
    areas = list((_catalogue_file().get("_areas") or {}).keys())
    found = [e for name in _renderer().names() if (e := entry(name)) is not None]
    return sorted(
        found, key=lambda e: (areas.index(e.area) if e.area in areas else len(areas), e.name)
    )


def default_source(name: str) -> str:
    kind = _renderer().kind(name)
    return (TEMPLATES_DIR / f"{name}.{kind}").read_text(encoding="utf-8")


def _localise(context: dict[str, Any], place_code: str | None) -> dict[str, Any]:
    """The sample as the tenant's own: 宮城県気仙沼市 in the samples becomes the tenant's place."""
    place = get_place(place_code) if place_code else None
    if place is None or context.get("place_name") != "宮城県気仙沼市":
        return context
    localised = dict(context)
    localised["place_name"] = place.display_name
    if context.get("prefecture_name"):
        prefecture = get_place(place.prefecture_code)
        localised["prefecture_name"] = (
            "" if place.is_prefecture or prefecture is None else prefecture.display_name
        )
    if "prefecture_new" in context and place.is_prefecture:
        localised["prefecture_new"] = False
    return localised


def sample_contexts(name: str, place_code: str | None = None) -> list[dict[str, Any]]:
    """The sample contexts of a template (one per branch), for this tenant's place."""
    raw = _samples_file().get(name)
    if raw is None:
        return [{}]
    items = raw if isinstance(raw, list) else [raw]
    return [_localise(copy.deepcopy(dict(item)), place_code) for item in items]


def variables(name: str) -> dict[str, Any]:
    """The variables a template may use, each with its first sample value."""
    found: dict[str, Any] = {}
    for context in sample_contexts(name):
        for key, value in context.items():
            found.setdefault(key, value)
    return found


# --- problems --------------------------------------------------------------------------------------


@dataclass
class Problem:
    kind: str  # syntax, variable, security, forbidden, line, json, timeout, size, error
    message: str  # Japanese, for staff; starts with the line when there is one
    line: int | None = None
    column: int | None = None
    sample: int | None = None  # 1-based sample number for rendering problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "sample": self.sample,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        return cls(
            kind=str(data.get("kind", "error")),
            message=str(data.get("message", "")),
            line=data.get("line"),
            column=data.get("column"),
            sample=data.get("sample"),
        )


@dataclass
class Sample:
    messages: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class CheckResult:
    problems: list[Problem] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "problems": [p.to_dict() for p in self.problems],
            "samples": [
                {"messages": s.messages, "problems": [p.to_dict() for p in s.problems]}
                for s in self.samples
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(
            problems=[Problem.from_dict(p) for p in data.get("problems") or []],
            samples=[
                Sample(
                    messages=list(s.get("messages") or []),
                    problems=[Problem.from_dict(p) for p in s.get("problems") or []],
                )
                for s in data.get("samples") or []
            ],
        )


def _at(line: int | None) -> str:
    return f"{line}行目: " if line else ""


# --- the check itself (runs in the child process) ------------------------------------------------


class _Candidate:
    """Overrides for the checking renderer: the one source being checked."""

    def __init__(self) -> None:
        self.name = ""
        self.place = ""
        self.text = ""

    def source(self, name: str, municipality_code: str) -> str | None:
        if name == self.name and municipality_code == self.place:
            return self.text
        return None


_CHECK_PLACE = "000000"  # a code no place has: the candidate is looked up under it


@cache
def _checking() -> tuple[Renderer, _Candidate]:
    candidate = _Candidate()
    return Renderer(overrides=candidate), candidate


@cache
def _parser() -> SandboxedEnvironment:
    """Parses like the renderer's environments (the same block and whitespace settings)."""
    env = SandboxedEnvironment(
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
    )
    env.filters.update(_FILTERS)
    return env


def _line_of_name(tree: nodes.Node, name: str) -> int | None:
    lines = [n.lineno for n in tree.find_all(nodes.Name) if getattr(n, "name", None) == name]
    return min(lines) if lines else None


def _line_of_attribute(tree: nodes.Node, attribute: str) -> int | None:
    lines = [
        n.lineno for n in tree.find_all(nodes.Getattr) if getattr(n, "attr", None) == attribute
    ]
    for item in tree.find_all(nodes.Getitem):
        arg = getattr(item, "arg", None)
        if isinstance(arg, nodes.Const) and arg.value == attribute:
            lines.append(item.lineno)
    return min(lines) if lines else None


_SYNTAX_HINTS = (
    ("endif", "「{% if %}」に対応する「{% endif %}」があるか確かめてください。"),
    ("endfor", "「{% for %}」に対応する「{% endfor %}」があるか確かめてください。"),
    ("end of print statement", "「{{」と「}}」の組み合わせを確かめてください。"),
    ("end of statement block", "「{%」と「%}」の組み合わせを確かめてください。"),
    ("unexpected '}'", "「{{」と「}}」の組み合わせを確かめてください。"),
    (
        "unexpected end of template",
        "閉じていない「{{」「{%」や「{% if %}」がないか確かめてください。",
    ),
)


_BLOCKS = frozenset({"if", "for", "macro", "call", "filter", "with", "block", "raw"})


def _unclosed_block(source: str) -> tuple[str, int] | None:
    """The innermost block tag (`if`, `for`, …) opened but never closed, with its line."""
    stack: list[tuple[str, int]] = []
    after_begin = False
    try:
        for line, token, value in _parser().lex(source):
            if token == "whitespace":
                continue
            if token == "block_begin":
                after_begin = True
                continue
            if after_begin and token == "name":
                if value in _BLOCKS:
                    stack.append((value, line))
                elif value.startswith("end") and stack and stack[-1][0] == value[3:]:
                    stack.pop()
            after_begin = False
    except TemplateSyntaxError:
        return None
    return stack[-1] if stack else None


def _syntax_problem(exc: TemplateSyntaxError, source: str = "") -> Problem:
    detail = exc.message or str(exc)
    if match := re.match(r"No (filter|test) named '([^']+)'", detail):
        what = "フィルター" if match.group(1) == "filter" else "テスト"
        return Problem(
            "syntax",
            f"{_at(exc.lineno)}「{match.group(2)}」という{what}はありません。",
            line=exc.lineno,
        )
    if "end of template" in detail.lower() and (unclosed := _unclosed_block(source)):
        tag, line = unclosed
        return Problem(
            "syntax",
            f"{line}行目: 「{{% {tag} %}}」が閉じられていません。"
            f"対応する「{{% end{tag} %}}」を書いてください。",
            line=line,
        )
    hint = next((text for key, text in _SYNTAX_HINTS if key in detail.lower()), "")
    message = f"{_at(exc.lineno)}テンプレートの書き方に誤りがあります（{detail}）。{hint}"
    return Problem("syntax", message.strip(), line=exc.lineno)


def _static_problems(name: str, tree: nodes.Template) -> list[Problem]:
    problems: list[Problem] = []
    forbidden = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
    for statement in tree.find_all(forbidden):
        tag = {
            nodes.Include: "include",
            nodes.Import: "import",
            nodes.FromImport: "from",
            nodes.Extends: "extends",
        }[type(statement)]
        problems.append(
            Problem(
                "forbidden",
                f"{_at(statement.lineno)}「{{% {tag} %}}」（ほかのファイルの読み込み）は使えません。",
                line=statement.lineno,
            )
        )
    seen: set[tuple[int, str]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            attribute = str(node.attr)
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            if not isinstance(arg, nodes.Const) or not isinstance(arg.value, str):
                continue
            attribute = arg.value
        else:
            continue
        if attribute.startswith("_") and (node.lineno, attribute) not in seen:
            seen.add((node.lineno, attribute))
            problems.append(
                Problem(
                    "security",
                    f"{_at(node.lineno)}「{attribute}」は安全のため使えません"
                    "（「_」で始まる名前は使えません）。",
                    line=node.lineno,
                )
            )
    allowed = set(variables(name))
    unknown = sorted(meta.find_undeclared_variables(tree) - allowed - _GLOBALS)
    for variable in unknown:
        line = _line_of_name(tree, variable)
        problems.append(
            Problem(
                "variable",
                f"{_at(line)}「{variable}」という変数はありません。"
                f"使える変数: {_variable_list(allowed)}",
                line=line,
            )
        )
    return sorted(problems, key=lambda p: (p.line or 0, p.kind))


def _variable_list(allowed: set[str]) -> str:
    return "、".join(sorted(allowed)) if allowed else "（なし）"


def _template_line(exc: BaseException) -> int | None:
    """The template line the exception happened on (Jinja rewrites tracebacks to it)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>":
            line = frame.lineno
    return line


_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"has no attribute '([^']+)'")
_NO_ELEMENT = re.compile(r"has no element (.+)$")
_UNSAFE = re.compile(r"access to attribute '([^']+)'")


@dataclass(frozen=True)
class _Failure:
    """Why one sample failed, before the samples with the same failure are merged."""

    kind: str
    text: str  # the sentence without line or sample
    line: int | None = None
    column: int | None = None
    per_sample: bool = True  # the sentence names the samples it happens with


def _failure(exc: BaseException, tree: nodes.Template, name: str) -> _Failure:
    """Why rendering a sample failed, in Japanese."""
    cause = exc.__cause__ if isinstance(exc, RenderError) and exc.__cause__ else exc
    if isinstance(cause, TemplateSyntaxError):
        problem = _syntax_problem(cause)
        return _Failure("syntax", problem.message, cause.lineno, per_sample=False)
    if isinstance(cause, SecurityError):
        match = _UNSAFE.search(str(cause))
        attribute = match.group(1) if match else ""
        line = _line_of_attribute(tree, attribute) if attribute else _template_line(cause)
        shown = f"「{attribute}」" if attribute else "この書き方"
        return _Failure("security", f"{shown}は安全のため使えません。", line, per_sample=False)
    if isinstance(cause, UndefinedError):
        text = str(cause)
        if match := _UNDEFINED.match(text):
            variable = match.group(1)
            return _Failure(
                "variable",
                f"「{variable}」という変数はありません。"
                f"使える変数: {_variable_list(set(variables(name)))}",
                _line_of_name(tree, variable) or _template_line(cause),
                per_sample=False,
            )
        if match := _NO_ATTRIBUTE.search(text):
            attribute = match.group(1)
            line = _line_of_attribute(tree, attribute) or _template_line(cause)
            return _Failure("variable", f"「{attribute}」という項目が見つかりません。", line)
        if match := _NO_ELEMENT.search(text):
            return _Failure(
                "variable", f"{match.group(1)}番目の項目が見つかりません。", _template_line(cause)
            )
        return _Failure("variable", text, _template_line(cause))
    if isinstance(cause, json.JSONDecodeError):
        lines = cause.doc.splitlines() or [""]
        near = lines[min(cause.lineno, len(lines)) - 1].strip()
        near = near if len(near) <= 60 else near[:57] + "…"
        return _Failure(
            "json",
            "JSONとして正しくない出力になります"
            f"（出力の{cause.lineno}行目・{cause.colno}文字目: {_json_reason(cause.msg)}。"
            f"出力のその行: {near}）。"
            '「{{ }}」は必ず「"」で囲んだ文字列の中に書いてください。',
            cause.lineno,
            cause.colno,
        )
    if isinstance(cause, MemoryError):
        return _Failure("size", "出力が大きすぎます。")
    if isinstance(cause, RecursionError):
        return _Failure("error", "処理が深くなりすぎます。")
    if isinstance(exc, RenderError) and (
        exc.__cause__ is None or "not a valid LINE message" in str(exc)
    ):
        return _Failure("line", _line_reason(str(exc)))
    return _Failure(
        "error", f"エラーになります（{type(cause).__name__}: {cause}）。", _template_line(cause)
    )


def _samples_phrase(numbers: list[int], total: int) -> str:
    if total == 1:
        return "表示すると、"
    if len(numbers) == total:
        return "どのサンプルでも、"
    return "・".join(f"サンプル{n}" for n in numbers) + "の表示で、"


def _merged(failures: list[tuple[int, _Failure]], total: int) -> list[Problem]:
    """One problem per distinct failure, naming the samples it happens with."""
    groups: dict[_Failure, list[int]] = {}
    for number, failure in failures:
        groups.setdefault(failure, []).append(number)
    problems = []
    for failure, numbers in groups.items():
        if failure.kind == "syntax":
            problems.append(Problem("syntax", failure.text, line=failure.line))
            continue
        # JSON positions are in the output, not the template: no 「N行目」 in front.
        at = "" if failure.kind == "json" else _at(failure.line)
        phrase = _samples_phrase(numbers, total) if failure.per_sample else ""
        problems.append(
            Problem(
                failure.kind,
                f"{at}{phrase}{failure.text}",
                line=failure.line,
                column=failure.column,
                sample=numbers[0],
            )
        )
    return problems


def _json_reason(message: str) -> str:
    reasons = {
        "Expecting value": "値がありません",
        "Expecting ',' delimiter": "「,」がありません",
        "Expecting ':' delimiter": "「:」がありません",
        "Expecting property name enclosed in double quotes": '項目名は「"」で囲んでください',
        "Unterminated string starting at": "文字列が閉じていません",
        "Invalid control character at": "文字列の中に改行などの制御文字があります",
        "Extra data": "余分な文字があります",
        "Invalid \\escape": "「\\」の使い方が正しくありません",
    }
    for key, text in reasons.items():
        if message.startswith(key):
            return text
    return message


_LINE_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"rendered to an empty text"),
        "メッセージが空になります（LINEでは空のメッセージは送れません）。",
    ),
    (
        re.compile(r"text is longer than (\d+) characters"),
        "テキストが5,000文字を超えます。LINEでは1通5,000文字までです。",
    ),
    (
        re.compile(r"text must be 1 to (\d+) characters"),
        "テキストは1〜5,000文字にしてください（空のテキストや長すぎるテキストは送れません）。",
    ),
    (re.compile(r"must give 1 to (\d+) messages"), "メッセージは1〜5通にしてください。"),
    (
        re.compile(r"every message must be a JSON object"),
        "メッセージは1通ずつ「{ }」のJSONオブジェクトで書いてください。",
    ),
    (re.compile(r"altText must be"), "Flexメッセージの altText は1〜1,500文字にしてください。"),
    (
        re.compile(r"flex contents must be an object"),
        "Flexメッセージの contents はJSONオブジェクトにしてください。",
    ),
    (re.compile(r"a carousel needs bubbles"), "カルーセルにはバブルが1つ以上必要です。"),
    (
        re.compile(r"a flex bubble is empty"),
        "Flexメッセージのバブルが空です（header・hero・body・footer のどれかが必要です）。",
    ),
    (re.compile(r"unknown field\(s\) (.+)$"), "LINEのメッセージにない項目があります: {0}"),
    (re.compile(r"quick-reply"), "クイックリプライがLINEの制限を超えます。"),
    (
        re.compile(r"not a valid LINE message: ?(.*)$", re.S),
        "LINEのメッセージとして正しくありません（種類や項目名を確かめてください）。",
    ),
)


def _line_reason(message: str) -> str:
    for pattern, text in _LINE_REASONS:
        if match := pattern.search(message):
            return text.format(*match.groups())
    return f"LINEが受け付けないメッセージになります（{message}）。"


def check(name: str, source: str, place_code: str | None = None) -> CheckResult:
    """Check `source` as the text of template `name` and render every sample (in-process)."""
    renderer, candidate = _checking()
    if not renderer.exists(name):
        return CheckResult([Problem("error", f"テンプレート「{name}」はありません。")])
    if len(source) > MAX_SOURCE:
        return CheckResult([_too_long()])
    if not source.strip():
        return CheckResult([Problem("line", "テンプレートが空です。")])
    try:
        tree = _parser().parse(source)
    except TemplateSyntaxError as exc:
        return CheckResult([_syntax_problem(exc, source)])
    try:
        problems = _static_problems(name, tree)
    except TemplateSyntaxError as exc:  # e.g. an unknown filter, found while compiling
        return CheckResult([_syntax_problem(exc, source)])
    if problems:
        return CheckResult(problems)
    result = CheckResult()
    contexts = sample_contexts(name, place_code)
    candidate.name, candidate.place, candidate.text = name, _CHECK_PLACE, source
    failures: list[tuple[int, _Failure]] = []
    for number, context in enumerate(contexts, start=1):
        sample = Sample()
        try:
            messages = renderer.render(name, context, municipality=_CHECK_PLACE)
            sample.messages = [message.to_dict() for message in messages]
        except (RenderError, MemoryError, RecursionError) as exc:
            failure = _failure(exc, tree, name)
            failures.append((number, failure))
            sample.problems = _merged([(number, failure)], 1)
        result.samples.append(sample)
    result.problems = _merged(failures, len(contexts))
    return result


def _too_long() -> Problem:
    return Problem("size", f"テンプレートが長すぎます（{MAX_SOURCE:,}文字まで）。")


# --- the child process -----------------------------------------------------------------------------


def _limit_memory() -> None:
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))


def main() -> None:
    """The child: one JSON request a line on stdin, one JSON result a line on stdout."""
    _limit_memory()
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but results on the real stdout
    _checking()
    out.write(_READY + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            result = check(
                str(request["name"]), str(request["source"]), request.get("place") or None
            ).to_dict()
        except MemoryError:
            result = CheckResult([Problem("size", "出力が大きすぎます。")]).to_dict()
        except Exception as exc:  # the checker must answer whatever happens
            result = CheckResult(
                [Problem("error", f"確認中にエラーが発生しました（{type(exc).__name__}）。")]
            ).to_dict()
        out.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
        out.flush()


# --- the parent side -------------------------------------------------------------------------------


class TemplateChecker:
    """Runs `check` in a child process, one request at a time, killed when it takes too long.

    Created with the process's services; the child starts on first use (or `warm()`).
    """

    def __init__(self, timeout: float = CHECK_TIMEOUT_S) -> None:
        self.timeout = timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._warming: asyncio.Task[None] | None = None

    async def _start(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.template_check",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            cwd=str(_ROOT),
            env=_child_environment(),
            limit=32 * 1024 * 1024,
        )
        assert proc.stdout is not None
        try:
            ready = await asyncio.wait_for(proc.stdout.readline(), CHILD_START_TIMEOUT_S)
        except TimeoutError:
            ready = b""
        if ready.decode().strip() != _READY:
            await _kill(proc)
            raise RuntimeError("the template checker did not start")
        self._proc = proc
        return proc

    def warm(self) -> None:
        """Start the child in the background (the editor page is open: a preview will come)."""
        if self._proc is not None or (self._warming is not None and not self._warming.done()):
            return

        async def start() -> None:
            async with self._lock:
                with contextlib.suppress(Exception):
                    await self._start()

        self._warming = asyncio.get_running_loop().create_task(start())

    async def check(self, name: str, source: str, place_code: str | None) -> CheckResult:
        if len(source) > MAX_SOURCE:
            return CheckResult([_too_long()])
        request = json.dumps({"name": name, "source": source, "place": place_code}) + "\n"
        async with self._lock:
            try:
                proc = await self._start()
            except (RuntimeError, OSError):
                log.exception("template checker unavailable")
                return CheckResult(
                    [Problem("error", "いまは確認できません。しばらくしてからお試しください。")]
                )
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(request.encode())
                await proc.stdin.drain()
                line = await asyncio.wait_for(proc.stdout.readline(), self.timeout)
            except TimeoutError:
                await self._stop()
                return CheckResult(
                    [
                        Problem(
                            "timeout",
                            "処理に時間がかかりすぎるため使えません"
                            "（繰り返しや計算が多すぎないか確かめてください）。",
                        )
                    ]
                )
            except (ConnectionError, BrokenPipeError):
                line = b""
            if not line:  # the child died (e.g. out of memory)
                await self._stop()
                return CheckResult(
                    [Problem("size", "処理に必要なメモリが大きすぎるため使えません。")]
                )
            return CheckResult.from_dict(json.loads(line))

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await _kill(proc)

    async def close(self) -> None:
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warming
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None and proc.returncode is None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 2)
        except TimeoutError:
            await _kill(proc)


def _child_environment() -> dict[str, str]:
    """Only what Python needs: the child never sees the database address or any secret."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "SYSTEMROOT")
    return {name: os.environ[name] for name in keep if name in os.environ}


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await proc.wait()


if __name__ == "__main__":
    main()
