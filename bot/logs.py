"""JSON-lines logging with a request id carried in a context variable.

Logs hold no personal data (docs/SECURITY.md): a LINE user id anywhere in a line (a message, a
field, a traceback) is written as its pseudonym `U#` + 12 hex digits of its SHA-256, so one
person's lines can still be followed without naming them.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_LINE_USER_ID = re.compile(r"U[0-9a-f]{32}")
# A card's verification token works like a password for its page: never logged.
_CARD_TOKEN_PATH = re.compile(r"^/verify/[^/]+")
# Loggers kept at WARNING: the access log is written by our own middleware with the request id
# (and without card tokens); the others are chatty.
QUIET_LOGGERS = ("aiohttp.access", "apscheduler", "pymongo")


def pseudonym(user_id: str) -> str:
    """What the logs write for a LINE user id."""
    return "U#" + hashlib.sha256(user_id.encode()).hexdigest()[:12]


def path_for_log(path: str) -> str:
    """A request path as the logs write it: card tokens left out."""
    return _CARD_TOKEN_PATH.sub("/verify/{token}", path)


# Attributes every LogRecord has; anything else passed through `extra=` is emitted as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        return _LINE_USER_ID.sub(lambda m: pseudonym(m.group(0)), line)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
