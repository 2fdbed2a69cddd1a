"""Message templates: Jinja2 files under `templates/` rendered to validated LINE messages.

Two kinds of template file:

- `templates/<area>/<name>.txt` renders to ONE text message. Most templates are of this kind,
  so municipality staff can edit them without knowing JSON.
- `templates/<area>/<name>.json` renders to JSON: an object is one message, a list several.
  Every `{{ … }}` output is JSON-string-escaped, so `"text": "{{ nickname }}さん"` stays valid
  JSON whatever the nickname holds. Put every `{{ }}` inside a JSON string.

Templates run in Jinja's sandbox with `StrictUndefined` (a missing variable is an error, never
an empty string). The result is validated with the SDK's models: at most 5 messages, text at most
5,000 characters, Flex contents that parse (an unknown component or field is an error, never an
empty bubble), quick replies within LINE's limits.

Per-municipality overrides (staff-edited templates) plug in through `TemplateOverrides`: its
`source(name, municipality_code)` is consulted before the files. It is synchronous on purpose: an
implementation over MongoDB keeps the (few, rarely edited) overrides in memory and refreshes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from linebot.v3.messaging import Message, QuickReply, QuickReplyItem, TextMessage

from bot.clock import JST
from bot.domain.places import get_place

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# The SDK models a template's output is checked as.
M = TypeVar("M", Message, QuickReply)

MAX_MESSAGES = 5
MAX_TEXT = 5000
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_ALT_TEXT = 1500
MAX_DISPLAY_TEXT = 300

# Areas rendered by other modules with their own environment (the card, `bot/cards.py`).
FOREIGN_AREAS = ("card",)

Kind = Literal["txt", "json"]


class RenderError(Exception):
    """A template is missing, fails to render, or renders to something LINE would reject."""


class TemplateOverrides(Protocol):
    """Staff-edited template sources per municipality (consulted before the files)."""

    def source(self, name: str, municipality_code: str) -> str | None: ...


ButtonKind = Literal["postback", "message", "datetimepicker", "location", "camera", "cameraRoll"]


@dataclass(frozen=True)
class Button:
    """A quick-reply button.

    `postback` sends `data` (and shows `display_text` in the chat); `message` sends `text`;
    `datetimepicker` opens a picker (`mode`: date, time or datetime) and posts back `data`;
    `location`, `camera` and `cameraRoll` open the phone's pickers.
    """

    label: str
    kind: ButtonKind = "postback"
    data: str = ""
    text: str = ""
    display_text: str = ""
    mode: str = "date"
    initial: str = ""
    min: str = ""
    max: str = ""

    def to_dict(self) -> dict[str, Any]:
        if not 1 <= len(self.label) <= MAX_LABEL:
            raise RenderError(
                f"quick-reply label must be 1 to {MAX_LABEL} characters: {self.label!r}"
            )
        action: dict[str, Any] = {"type": self.kind, "label": self.label}
        if self.kind in ("postback", "datetimepicker"):
            if not self.data or len(self.data.encode()) > MAX_POSTBACK_DATA:
                raise RenderError(f"postback data must be 1 to {MAX_POSTBACK_DATA} bytes")
            action["data"] = self.data
        if self.kind == "postback":
            display = self.display_text or self.label
            action["displayText"] = display[:MAX_DISPLAY_TEXT]
        elif self.kind == "message":
            text = self.text or self.label
            if len(text) > MAX_DISPLAY_TEXT:
                raise RenderError("quick-reply message text is too long")
            action["text"] = text
        elif self.kind == "datetimepicker":
            action["mode"] = self.mode
            for field, value in (("initial", self.initial), ("min", self.min), ("max", self.max)):
                if value:
                    action[field] = value
        return {"type": "action", "action": action}


QuickReplyLike: TypeAlias = "Button | QuickReplyItem | Mapping[str, Any]"


def quick_reply_dicts(items: Sequence[QuickReplyLike]) -> list[dict[str, Any]]:
    if len(items) > MAX_QUICK_REPLIES:
        raise RenderError(f"at most {MAX_QUICK_REPLIES} quick-reply items, got {len(items)}")
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, Button | QuickReplyItem):
            out.append(item.to_dict())
        else:
            out.append(dict(item))
    for item in out:
        label = (item.get("action") or {}).get("label")
        if label is not None and not 1 <= len(str(label)) <= MAX_LABEL:
            raise RenderError(f"quick-reply label must be 1 to {MAX_LABEL} characters: {label!r}")
    return out


def attach_quick_replies(
    messages: Sequence[Message], quick_replies: Sequence[QuickReplyLike] | None
) -> list[Message]:
    """The messages with these quick replies on the last one (LINE shows only the last's)."""
    result = list(messages)
    if not quick_replies or not result:
        return result
    given = {"items": quick_reply_dicts(quick_replies)}
    quick = _checked(QuickReply.from_dict, given, "quick replies")
    # A copy: the caller's message may be in use elsewhere (only the quick replies change, and
    # they are checked on their own, not the whole message again).
    result[-1] = result[-1].copy(update={"quick_reply": quick})
    return result


# --- filters available in every template ----------------------------------------------------------


def _japan_date(value: Any) -> str:
    """「2027年1月9日」 for a date, datetime (UTC when naive) or ISO date string."""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        value = aware.astimezone(JST).date()
    if not isinstance(value, date):
        raise TypeError(f"not a date: {value!r}")
    return f"{value.year}年{value.month}月{value.day}日"


def _place_name(code: Any) -> str:
    place = get_place(str(code))
    return place.display_name if place else str(code)


def _json_string(value: Any) -> str:
    """Finalize of JSON templates: the value as the inside of a JSON string."""
    text = "" if value is None else str(value)
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _text_value(value: Any) -> Any:
    return "" if value is None else value


_FILTERS: dict[str, Callable[..., Any]] = {"japan_date": _japan_date, "place_name": _place_name}


# --- the renderer ---------------------------------------------------------------------------------


class Renderer:
    """Renders `templates/` (overridable per municipality) to validated LINE messages."""

    def __init__(
        self,
        directory: Path = TEMPLATES_DIR,
        overrides: TemplateOverrides | None = None,
    ) -> None:
        self.directory = directory
        self.overrides = overrides
        self._envs: dict[Kind, SandboxedEnvironment] = {
            "txt": self._environment(_text_value),
            "json": self._environment(_json_string),
        }
        self._compiled: dict[tuple[str, str], Template] = {}

    def _environment(self, finalize: Callable[[Any], Any]) -> SandboxedEnvironment:
        env = SandboxedEnvironment(
            loader=FileSystemLoader(self.directory),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            finalize=finalize,
            auto_reload=False,
        )
        env.filters.update(_FILTERS)
        return env

    @cached_property
    def _files(self) -> dict[str, Kind]:
        """Template name → kind, for every file except the areas other modules render."""
        found: dict[str, Kind] = {}
        for path in sorted(self.directory.rglob("*")):
            if path.suffix not in (".txt", ".json") or not path.is_file():
                continue
            relative = path.relative_to(self.directory)
            if relative.parts[0] in FOREIGN_AREAS:
                continue
            name = relative.with_suffix("").as_posix()
            if name in found:
                raise RenderError(f"template {name} exists as both .txt and .json")
            found[name] = "txt" if path.suffix == ".txt" else "json"
        return found

    def names(self) -> list[str]:
        """Every template this renderer serves."""
        return sorted(self._files)

    def exists(self, name: str) -> bool:
        return name in self._files

    def kind(self, name: str) -> Kind:
        try:
            return self._files[name]
        except KeyError:
            raise RenderError(f"unknown template {name!r}") from None

    def _template(self, name: str, municipality: str | None) -> Template:
        kind = self.kind(name)
        env = self._envs[kind]
        source = None
        if municipality and self.overrides is not None:
            source = self.overrides.source(name, municipality)
        try:
            if source is None:
                return env.get_template(f"{name}.{kind}")
            cache_key = (f"{kind}:{name}", source)
            compiled = self._compiled.get(cache_key)
            if compiled is None:
                if len(self._compiled) > 512:
                    self._compiled.clear()
                compiled = env.from_string(source)
                self._compiled[cache_key] = compiled
            return compiled
        except TemplateError as exc:
            raise RenderError(f"template {name}: {exc}") from exc

    def render_source(self, name: str, context: Mapping[str, Any], municipality: str | None) -> str:
        """The rendered text of a template, before it is turned into messages."""
        template = self._template(name, municipality)
        try:
            return template.render(context)
        except TemplateError as exc:
            raise RenderError(f"template {name}: {exc}") from exc
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise RenderError(f"template {name}: {type(exc).__name__}: {exc}") from exc

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        *,
        quick_replies: Sequence[QuickReplyLike] | None = None,
        municipality: str | None = None,
    ) -> list[Message]:
        """Render one template to 1–5 validated messages; quick replies go on the last one."""
        rendered = self.render_source(name, context, municipality)
        if self.kind(name) == "txt":
            messages = [text_message(rendered, name)]
        else:
            messages = json_messages(rendered, name)
        try:
            return attach_quick_replies(messages, quick_replies)
        except RenderError as exc:
            raise RenderError(f"template {name}: {exc}") from exc


def clean_text(text: str) -> str:
    """Trailing spaces off every line, at most one blank line in a row, trimmed."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def text_message(text: str, name: str = "text") -> Message:
    body = clean_text(text)
    if not body:
        raise RenderError(f"template {name} rendered to an empty text")
    if len(body) > MAX_TEXT:
        raise RenderError(f"template {name}: text is longer than {MAX_TEXT} characters")
    return TextMessage(text=body)  # built here: no field a typo could drop


def json_messages(rendered: str, name: str) -> list[Message]:
    try:
        data = json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise RenderError(f"template {name} is not valid JSON after rendering: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    if not 1 <= len(items) <= MAX_MESSAGES:
        raise RenderError(f"template {name} must give 1 to {MAX_MESSAGES} messages")
    messages: list[Message] = []
    for item in items:
        if not isinstance(item, dict):
            raise RenderError(f"template {name}: every message must be a JSON object")
        if item.get("type") == "text":
            text = item.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise RenderError(f"template {name}: text must be 1 to {MAX_TEXT} characters")
        if item.get("type") == "flex":
            _check_flex(item, name)
        messages.append(_message(item, name))
    return messages


def _check_flex(item: Mapping[str, Any], name: str) -> None:
    alt = item.get("altText")
    if not isinstance(alt, str) or not alt.strip() or len(alt) > MAX_ALT_TEXT:
        raise RenderError(f"template {name}: altText must be 1 to {MAX_ALT_TEXT} characters")
    contents = item.get("contents")
    if not isinstance(contents, dict):
        raise RenderError(f"template {name}: flex contents must be an object")
    kind = contents.get("type")
    bubbles = contents.get("contents") if kind == "carousel" else [contents]
    if not isinstance(bubbles, list) or not bubbles:
        raise RenderError(f"template {name}: a carousel needs bubbles")
    for bubble in bubbles:
        if not isinstance(bubble, dict) or bubble.get("type") != "bubble":
            continue  # not a bubble at all: the SDK's models reject it
        if not isinstance(bubble, dict) or not any(
            bubble.get(block) for block in ("header", "hero", "body", "footer")
        ):
            raise RenderError(f"template {name}: a flex bubble is empty")


def _message(data: dict[str, Any], name: str) -> Message:
    return _checked(Message.from_dict, data, name)


def _checked(parse: Callable[[dict[str, Any]], M | None], data: dict[str, Any], name: str) -> M:
    """`data` as an SDK model, refused with a RenderError when the model would not take it all."""
    try:
        model = parse(data)
    except Exception as exc:  # the SDK raises ValueError, KeyError, pydantic errors…
        raise RenderError(f"template {name}: not a valid LINE message: {exc}") from exc
    if model is None:
        raise RenderError(f"template {name}: not a valid LINE message")
    dropped = list(_dropped_keys(data, model.to_dict()))
    if dropped:
        raise RenderError(f"template {name}: unknown field(s) {', '.join(dropped)}")
    return model


def _dropped_keys(given: Any, kept: Any, path: str = "") -> Iterable[str]:
    """Keys of the input that the SDK's model silently dropped (a typo such as `bodyy`)."""
    if isinstance(given, dict) and isinstance(kept, dict):
        for field, value in given.items():
            here = f"{path}.{field}" if path else str(field)
            if value is None:
                continue
            if field not in kept:
                yield here
            else:
                yield from _dropped_keys(value, kept[field], here)
    elif isinstance(given, list) and isinstance(kept, list):
        for index, (a, b) in enumerate(zip(given, kept, strict=False)):
            yield from _dropped_keys(a, b, f"{path}[{index}]")
