"""What the dialog layer sees of a webhook event: a small, SDK-independent value.

The pipeline turns each parsed LINE event into an `Incoming` and hands it to an `EventHandler`
together with a `Replier` that answers it (reply token first, push when the token is spent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from linebot.v3.messaging import Message

Kind = Literal["text", "postback", "image", "location", "sticker", "follow", "unfollow", "other"]


@dataclass(frozen=True)
class Location:
    title: str
    address: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Incoming:
    user_id: str
    kind: Kind
    timestamp: datetime
    event_id: str
    text: str = ""
    data: str = ""  # postback data
    params: dict[str, str] = field(default_factory=dict)  # datetime picker: date/time/datetime
    message_id: str = ""  # image: fetch the content with this id
    location: Location | None = None
    is_unblocked: bool = False  # follow after a block


class TurnCommitted(Exception):
    """Raised by a handler that finds this event's turn committed by an earlier attempt (whose
    process died, or lost the database, before finishing): running it again would apply it
    twice. `reply`, the answer stored with the commit (LINE messages as dicts, or none), and
    the replies that attempt recorded are sent if they may not have been."""

    def __init__(self, event_id: str, reply: list[dict[str, Any]]) -> None:
        super().__init__(event_id)
        self.reply = reply


class Replier(Protocol):
    async def __call__(self, messages: Sequence[Message]) -> None: ...


class EventHandler(Protocol):
    async def __call__(self, incoming: Incoming, reply: Replier) -> None: ...
