"""Postback data of the engine's buttons (≤ 300 bytes, URL-encoded).

- `action=ans&f=<flow>&s=<step>&r=<run>&v=<version>&c=<value>`: answers a step. The flow, step,
  run (one per start of a flow) and state version make a tap on a button of an older message
  recognisable: it never changes state.
- `action=pg&f=…&s=…&r=…&v=…&p=<page>`: the next page of a step's choices.
- `action=start&flow=<flow>`: starts a flow (rich menu, main menu).
- `action=cmd&name=<command>`: runs a command (登録一覧, 登録証, 使い方 …).
- `action=resume`: asks the current step again.
- `action=news_stop&place=<code>&topic=<topic>`: the 「配信停止」 quick reply under a news item
  (stop that topic from that place; `topic` empty: all news from the place).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from bot.render import MAX_POSTBACK_DATA


@dataclass(frozen=True)
class Postback:
    action: str
    flow: str = ""
    step: str = ""
    run: str = ""
    version: int | None = None
    value: str = ""
    page: int = 0
    name: str = ""


def _encode(pairs: list[tuple[str, str]]) -> str:
    data = urlencode(pairs)
    if len(data.encode()) > MAX_POSTBACK_DATA:
        raise ValueError(f"postback data longer than {MAX_POSTBACK_DATA} bytes: {data[:60]}…")
    return data


def answer_data(flow: str, step: str, run: str, version: int, value: str) -> str:
    return _encode(
        [("action", "ans"), ("f", flow), ("s", step), ("r", run), ("v", str(version)), ("c", value)]
    )


def page_data(flow: str, step: str, run: str, version: int, page: int) -> str:
    return _encode(
        [
            ("action", "pg"),
            ("f", flow),
            ("s", step),
            ("r", run),
            ("v", str(version)),
            ("p", str(page)),
        ]
    )


def start_data(flow: str) -> str:
    return _encode([("action", "start"), ("flow", flow)])


def command_data(name: str) -> str:
    return _encode([("action", "cmd"), ("name", name)])


def resume_data() -> str:
    return "action=resume"


def news_stop_data(place_code: str, topic: str = "") -> str:
    return _encode([("action", "news_stop"), ("place", place_code), ("topic", topic)])


def parse(data: str) -> Postback | None:
    """The postback, or None when the data is not one of ours (or is malformed)."""
    if not data or len(data) > 1000:
        return None
    try:
        fields = dict(parse_qsl(data, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        return None
    action = fields.get("action", "")
    if action in ("ans", "pg"):
        try:
            version = int(fields["v"])
            page = int(fields.get("p", "0"))
        except (KeyError, ValueError):
            return None
        if not fields.get("f") or not fields.get("s") or page < 0:
            return None
        return Postback(
            action,
            fields["f"],
            fields["s"],
            fields.get("r", ""),
            version,
            fields.get("c", ""),
            page=page,
        )
    if action == "start" and fields.get("flow"):
        return Postback(action, flow=fields["flow"])
    if action == "cmd" and fields.get("name"):
        return Postback(action, name=fields["name"])
    if action == "resume":
        return Postback(action)
    if action == "news_stop" and fields.get("place"):
        return Postback(action, value=fields["place"], name=fields.get("topic", ""))
    return None
