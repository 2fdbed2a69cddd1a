"""Request validation: the platform's limits that the SDK models do not check, then the models.

Platform rules run first so that limits come back with LINE's own wording and property paths;
the SDK models then catch everything structural (unknown types, missing fields, wrong types).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from linebot.v3.messaging import Message, RichMenuRequest
from pydantic.v1 import ValidationError

from bot.emulator.errors import ApiError, Detail, bad_request, detail

MAX_MESSAGES = 5
MAX_RECIPIENTS = 500
MAX_QUICK_REPLY_ITEMS = 13
MAX_TEXT = 5000
MAX_ALT_TEXT = 1500
MAX_BUBBLE_BYTES = 30_000
MAX_CAROUSEL_BYTES = 50_000
MAX_CAROUSEL_BUBBLES = 12
MAX_DATA = 300
MAX_ACTION_TEXT = 300
MAX_URI = 1000
MAX_LABEL = 20
MAX_FLEX_LABEL = 40
MAX_IMAGE_CAROUSEL_LABEL = 12
MAX_TEMPLATE_COLUMNS = 10
MAX_RICH_MENU_AREAS = 20
MAX_CHAT_BAR_TEXT = 14
MAX_RICH_MENU_NAME = 300

BUBBLE_BLOCKS = ("header", "hero", "body", "footer")
URI_SCHEMES = ("http://", "https://", "line://", "tel:")
# Only quick reply buttons can open the camera, camera roll or location picker.
QUICK_REPLY_ONLY = {"camera", "cameraRoll", "location"}

# The formats a datetime picker accepts and answers, per mode.
DATETIME_FORMATS = {"date": "%Y-%m-%d", "time": "%H:%M", "datetime": "%Y-%m-%dT%H:%M"}
DATETIME_PATTERNS = {"date": "YYYY-MM-DD", "time": "HH:MM", "datetime": "YYYY-MM-DDTHH:MM"}
_DATETIME_SHAPES = {
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "time": re.compile(r"\d{2}:\d{2}"),
    "datetime": re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}"),
}


def utf16_len(text: str) -> int:
    """LINE counts text in UTF-16 code units (an emoji such as 🍎 counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def datetime_problem(mode: str, value: object) -> str | None:
    """Why `value` is not a valid datetime picker value for `mode`, or None when it is."""
    shape = _DATETIME_SHAPES.get(mode)
    if shape is None:
        return "mode must be one of date, time, datetime"
    if not isinstance(value, str) or not shape.fullmatch(value):
        return f"must look like {DATETIME_PATTERNS[mode]} for mode {mode}"
    try:
        datetime.strptime(value.replace("t", "T"), DATETIME_FORMATS[mode])
    except ValueError:
        return f"{value} is not a valid {mode}"
    return None


# --- send requests ------------------------------------------------------------------------------


def check_send(body: object, model: Any, *, has_recipients: bool = False) -> dict[str, Any]:
    """Validate a reply/push/multicast/broadcast/narrowcast body; answers it or raises ApiError."""
    if not isinstance(body, dict):
        raise bad_request([detail("must be a JSON object", "")])
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise bad_request([detail(f"Size must be between 1 and {MAX_MESSAGES}", "messages")])
    if has_recipients:
        to = body.get("to")
        if not isinstance(to, list) or not 1 <= len(to) <= MAX_RECIPIENTS:
            raise bad_request([detail(f"Size must be between 1 and {MAX_RECIPIENTS}", "to")])
    for index, message in enumerate(messages):
        problems = message_problems(message)
        if problems:
            raise ApiError(
                400, f"A message (messages[{index}]) in the request body is invalid", problems
            )
    problems = sdk_problems(model, body)
    if problems:
        raise bad_request(problems)
    return body


def message_problems(message: object) -> list[Detail]:
    if not isinstance(message, dict):
        return [detail("must be a JSON object", "")]
    out: list[Detail] = []
    kind = message.get("type")
    if kind in ("text", "textV2"):
        _length(out, message, "text", MAX_TEXT, utf16=True)
    if kind in ("flex", "template", "imagemap"):
        _length(out, message, "altText", MAX_ALT_TEXT, utf16=True)
    if kind == "flex":
        _flex(out, message.get("contents"))
    elif kind == "template":
        _template(out, message.get("template"))
    _quick_reply(out, message.get("quickReply"))
    for site in message_actions(message):
        _action(out, site)
    return out or sdk_problems(Message, message)


def sdk_problems(model: Any, value: object) -> list[Detail]:
    """Parse with the SDK's model (`from_dict`); its complaints, in LINE's detail shape."""
    try:
        model.from_dict(value)
    except ValidationError as exc:
        name = getattr(exc.model, "__name__", "")
        return [detail(f"{err['msg']} ({name})", _property(err["loc"])) for err in exc.errors()]
    except KeyError as exc:
        return [detail("must be specified", str(exc.args[0]))]
    except (ValueError, TypeError) as exc:
        # The SDK's discriminator errors repeat the whole mapping; the first sentence says it.
        return [detail(str(exc).split(". ")[0], "")]
    return []


def _property(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            head, *rest = str(part).split("_")
            out += ("." if out else "") + head + "".join(word.title() for word in rest)
    return out


def _length(
    out: list[Detail],
    obj: dict[str, Any],
    key: str,
    limit: int,
    prefix: str = "",
    *,
    required: bool = True,
    utf16: bool = False,
) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            out.append(detail("must be specified", prefix + key))
        return
    if not isinstance(value, str):
        return  # the SDK model reports the wrong type
    size = utf16_len(value) if utf16 else len(value)
    if required and size == 0:
        out.append(detail("must not be empty", prefix + key))
    elif size > limit:
        out.append(detail(f"Length must be between 0 and {limit}", prefix + key))


def _count(out: list[Detail], items: object, low: int, high: int, prop: str) -> int:
    if not isinstance(items, list):
        return 0
    if not low <= len(items) <= high:
        out.append(detail(f"Size must be between {low} and {high}", prop))
    return len(items)


def _quick_reply(out: list[Detail], quick_reply: object) -> None:
    if isinstance(quick_reply, dict):
        _count(out, quick_reply.get("items"), 1, MAX_QUICK_REPLY_ITEMS, "quickReply.items")


def _flex(out: list[Detail], contents: object) -> None:
    if not isinstance(contents, dict):
        return
    if contents.get("type") == "bubble":
        _bubble(out, contents, "contents")
    elif contents.get("type") == "carousel":
        bubbles = contents.get("contents")
        _count(out, bubbles, 1, MAX_CAROUSEL_BUBBLES, "contents.contents")
        for index, bubble in enumerate(bubbles if isinstance(bubbles, list) else []):
            if isinstance(bubble, dict):
                _bubble(out, bubble, f"contents.contents[{index}]")
        size = json_size(contents)
        if size > MAX_CAROUSEL_BYTES:
            out.append(detail(f"Size must be at most 50 KB (carousel is {size} bytes)", "contents"))


def _bubble(out: list[Detail], bubble: dict[str, Any], path: str) -> None:
    size = json_size(bubble)
    if size > MAX_BUBBLE_BYTES:
        out.append(detail(f"Size must be at most 30 KB (bubble is {size} bytes)", path))
    if not any(isinstance(bubble.get(block), dict) for block in BUBBLE_BLOCKS):
        out.append(
            detail("At least one block (header, hero, body, footer) must be specified", path)
        )
    for node, node_path in _walk(bubble, path):
        if node.get("type") == "text" and "text" not in node and "contents" not in node:
            out.append(detail("must be specified", node_path + ".text"))


def _walk(node: object, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every JSON object in a tree, with its property path."""
    if isinstance(node, dict):
        yield node, path
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _template(out: list[Detail], template: object) -> None:
    if not isinstance(template, dict):
        return
    kind = template.get("type")
    if kind in ("buttons", "carousel"):
        columns = [template] if kind == "buttons" else template.get("columns")
        if kind == "carousel":
            _count(out, columns, 1, MAX_TEMPLATE_COLUMNS, "template.columns")
        counts = set()
        for index, column in enumerate(columns if isinstance(columns, list) else []):
            if not isinstance(column, dict):
                continue
            prefix = "template." if kind == "buttons" else f"template.columns[{index}]."
            with_image = "title" in column or "thumbnailImageUrl" in column
            text_limit = 60 if with_image else (160 if kind == "buttons" else 120)
            _length(out, column, "text", text_limit, prefix)
            _length(out, column, "title", 40, prefix, required=False)
            counts.add(
                _count(
                    out, column.get("actions"), 1, 4 if kind == "buttons" else 3, prefix + "actions"
                )
            )
        if len(counts) > 1:
            out.append(
                detail("All columns must have the same number of actions", "template.columns")
            )
    elif kind == "confirm":
        _length(out, template, "text", 240, "template.")
        _count(out, template.get("actions"), 2, 2, "template.actions")
    elif kind == "image_carousel":
        _count(out, template.get("columns"), 1, MAX_TEMPLATE_COLUMNS, "template.columns")


# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionSite:
    """An action somewhere in a message or rich menu, with the rules of that place."""

    path: str
    action: dict[str, Any]
    context: str  # quickReply, template, flex, imagemap, richmenu
    label_limit: int | None
    label_required: bool


def message_actions(message: dict[str, Any]) -> Iterator[ActionSite]:
    quick_reply = message.get("quickReply")
    if isinstance(quick_reply, dict) and isinstance(quick_reply.get("items"), list):
        for index, item in enumerate(quick_reply["items"]):
            if isinstance(item, dict) and isinstance(item.get("action"), dict):
                yield ActionSite(
                    f"quickReply.items[{index}].action",
                    item["action"],
                    "quickReply",
                    MAX_LABEL,
                    True,
                )
    kind = message.get("type")
    if kind == "template" and isinstance(message.get("template"), dict):
        yield from _template_actions(message["template"])
    elif kind == "flex":
        for node, path in _walk(message.get("contents"), "contents"):
            if isinstance(node.get("action"), dict):
                yield ActionSite(
                    path + ".action",
                    node["action"],
                    "flex",
                    MAX_FLEX_LABEL,
                    node.get("type") == "button",
                )
    elif kind == "imagemap" and isinstance(message.get("actions"), list):
        for index, action in enumerate(message["actions"]):
            if isinstance(action, dict):
                yield ActionSite(f"actions[{index}]", action, "imagemap", None, False)


def _template_actions(template: dict[str, Any]) -> Iterator[ActionSite]:
    image_carousel = template.get("type") == "image_carousel"
    for node, path in _walk(template, "template"):
        for key, value in node.items():
            if key == "actions" and isinstance(value, list):
                for index, action in enumerate(value):
                    if isinstance(action, dict):
                        yield ActionSite(
                            f"{path}.actions[{index}]", action, "template", MAX_LABEL, True
                        )
            elif key == "action" and isinstance(value, dict):
                yield ActionSite(
                    f"{path}.action",
                    value,
                    "template",
                    MAX_IMAGE_CAROUSEL_LABEL if image_carousel else MAX_LABEL,
                    False,
                )
            elif key == "defaultAction" and isinstance(value, dict):
                yield ActionSite(f"{path}.defaultAction", value, "template", None, False)


def rich_menu_actions(menu: dict[str, Any]) -> list[ActionSite]:
    areas = menu.get("areas")
    return [
        ActionSite(f"areas[{index}].action", area["action"], "richmenu", MAX_LABEL, False)
        for index, area in enumerate(areas if isinstance(areas, list) else [])
        if isinstance(area, dict) and isinstance(area.get("action"), dict)
    ]


def _action(out: list[Detail], site: ActionSite) -> None:
    action, path = site.action, site.path + "."
    kind = action.get("type")
    if site.label_limit is not None:
        _length(out, action, "label", site.label_limit, path, required=site.label_required)
    if kind in QUICK_REPLY_ONLY and site.context != "quickReply":
        out.append(detail(f"{kind} action can only be used in quick reply", site.path))
    if kind == "richmenuswitch" and site.context != "richmenu":
        out.append(detail("richmenuswitch action can only be used in rich menus", site.path))
    if kind in ("postback", "datetimepicker", "richmenuswitch"):
        _length(out, action, "data", MAX_DATA, path)
    if kind == "postback":
        _length(out, action, "displayText", MAX_ACTION_TEXT, path, required=False)
    elif kind == "message":
        _length(out, action, "text", MAX_ACTION_TEXT, path)
    elif kind == "uri":
        _length(out, action, "uri", MAX_URI, path)
        uri = action.get("uri")
        if isinstance(uri, str) and not uri.startswith(URI_SCHEMES):
            out.append(detail("uri must start with http, https, line or tel", path + "uri"))
    elif kind == "richmenuswitch":
        _length(out, action, "richMenuAliasId", 32, path)
    elif kind == "datetimepicker":
        _datetimepicker(out, action, path)


def _datetimepicker(out: list[Detail], action: dict[str, Any], path: str) -> None:
    mode = action.get("mode")
    if mode not in DATETIME_FORMATS:
        out.append(detail("must be one of date, time, datetime", path + "mode"))
        return
    values: dict[str, str] = {}
    for key in ("initial", "min", "max"):
        if key in action:
            problem = datetime_problem(mode, action[key])
            if problem:
                out.append(detail(problem, path + key))
            else:
                values[key] = action[key].upper()
    low, high = values.get("min"), values.get("max")
    if low and high and low >= high:
        out.append(detail("min must be earlier than max", path + "min"))
    initial = values.get("initial")
    if initial and ((low and initial < low) or (high and initial > high)):
        out.append(detail("initial must be between min and max", path + "initial"))


# --- rich menus ---------------------------------------------------------------------------------


def check_rich_menu(body: object) -> dict[str, Any]:
    """Validate a rich menu object; answers it or raises ApiError."""
    if not isinstance(body, dict):
        raise bad_request([detail("must be a JSON object", "")])
    out: list[Detail] = []
    for key in ("size", "selected", "name", "chatBarText", "areas"):
        if key not in body:
            out.append(detail("must be specified", key))
    _length(out, body, "name", MAX_RICH_MENU_NAME, required="name" in body)
    _length(out, body, "chatBarText", MAX_CHAT_BAR_TEXT, required="chatBarText" in body)
    size = body.get("size")
    width = height = 0
    if isinstance(size, dict):
        w, h = size.get("width"), size.get("height")
        if not (isinstance(w, int) and isinstance(h, int)):
            out.append(detail("width and height must be integers", "size"))
        elif not (800 <= w <= 2500 and h >= 250 and w / h >= 1.45):
            out.append(
                detail(
                    "width must be 800-2500, height at least 250, width/height at least 1.45",
                    "size",
                )
            )
        else:
            width, height = w, h
    areas = body.get("areas")
    _count(out, areas, 0, MAX_RICH_MENU_AREAS, "areas")
    for index, area in enumerate(areas if isinstance(areas, list) else []):
        bounds = area.get("bounds") if isinstance(area, dict) else None
        if not isinstance(bounds, dict) or not isinstance(area.get("action"), dict):
            out.append(detail("bounds and action must be specified", f"areas[{index}]"))
        elif width and _outside(bounds, width, height):
            out.append(detail("area must lie inside the rich menu", f"areas[{index}].bounds"))
    for site in rich_menu_actions(body):
        _action(out, site)
    out = out or sdk_problems(RichMenuRequest, body)
    if out:
        raise bad_request(out)
    return body


def _outside(bounds: dict[str, Any], width: int, height: int) -> bool:
    x, y, w, h = (bounds.get(key) for key in ("x", "y", "width", "height"))
    if not (
        isinstance(x, int) and isinstance(y, int) and isinstance(w, int) and isinstance(h, int)
    ):
        return True
    return x < 0 or y < 0 or w < 1 or h < 1 or x + w > width or y + h > height
