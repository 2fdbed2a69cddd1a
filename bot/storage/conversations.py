"""Conversation state: where each resident is in a dialog flow, with optimistic concurrency.

Every write of a user's state inserts a NEW document whose `_id` is `"<user_id>:<version>"`
(version = the version read + 1); the previous versions are then deleted. Two writers that read
the same version both try to insert the same `_id` and the unique `_id` lets exactly one win:
the other gets `ConversationConflict` and reloads. (A conditional `replace_one` filtered on the
version would be simpler, but FerretDB 1.24 does not apply conditional updates atomically: two
racing writers can both match. An insert against a unique key is atomic on every server.)

The newest document of a user is the state. When a flow ends, the newest document records
`flow: None` (no conversation), so the version keeps counting. A flow idle for a day is dropped
by the engine the next time the resident writes (so it can tell them); documents nobody came back
to are removed by the cleanup job after `KEEP_IDLE`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store
from bot.storage.db import Document

SCHEMA = 1
KEEP_IDLE = timedelta(days=30)


class ConversationConflict(Exception):
    """Someone else changed (or created, or ended) this conversation since it was read."""


@dataclass
class Conversation:
    user_id: str
    flow: str
    flow_version: int
    step: str
    answers: dict[str, Any] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)
    run: str = ""  # a new id every time a flow starts (old buttons of an earlier run never match)
    version: int = 0
    schema: int = SCHEMA
    started_at: datetime | None = None
    updated_at: datetime | None = None

    def snapshot(self) -> tuple[Any, ...]:
        """What a turn may change; equal snapshots mean nothing needs writing."""
        return (
            self.flow,
            self.flow_version,
            self.step,
            self.answers,
            self.scratch,
            self.run,
            self.schema,
        )

    def fields(self) -> Document:
        """The conversation as stored (without the version bookkeeping)."""
        return {
            "flow": self.flow,
            "flow_version": self.flow_version,
            "step": self.step,
            "answers": self.answers,
            "scratch": self.scratch,
            "run": self.run,
            "schema": self.schema,
            "started_at": self.started_at,
        }

    @classmethod
    def from_document(cls, doc: Document) -> Conversation:
        return cls(
            user_id=str(doc["user_id"]),
            flow=str(doc.get("flow") or ""),
            flow_version=_int(doc.get("flow_version")),
            step=str(doc.get("step") or ""),
            answers=dict(doc.get("answers") or {}),
            scratch=dict(doc.get("scratch") or {}),
            run=str(doc.get("run") or ""),
            version=_int(doc.get("version")),
            schema=_int(doc.get("schema")),
            started_at=doc.get("started_at"),
            updated_at=doc.get("updated_at"),
        )


@dataclass(frozen=True)
class Loaded:
    """A user's state as read: the conversation (None outside a flow), the version read, the
    webhook event whose turn wrote it (a retry of that event must not run it again), the answer
    that turn stored with it (LINE messages as dicts; see `Conversations.save`) and the flow it
    completed when its answer comes after the commit (`completing`)."""

    conversation: Conversation | None
    version: int
    event_id: str = ""
    reply: list[dict[str, Any]] = field(default_factory=list)
    completing: Conversation | None = None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _doc_id(user_id: str, version: int) -> str:
    return f"{user_id}:{version:012d}"


class Conversations(Store):
    collection_name = "conversations"
    expires = True
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("user_id", ASCENDING), ("version", DESCENDING)], name="user_version")]

    async def load(self, user_id: str) -> Loaded:
        doc = await self.col.find_one({"user_id": user_id}, sort=[("version", DESCENDING)])
        if doc is None:
            return Loaded(None, 0)
        version = _int(doc.get("version"))
        event_id = str(doc.get("event") or "")
        reply = json.loads(doc["reply"]) if isinstance(doc.get("reply"), str) else []
        conversation = Conversation.from_document(doc) if doc.get("flow") else None
        done = doc.get("completing")
        completing = (
            Conversation.from_document({**done, "user_id": user_id})
            if isinstance(done, dict) and done.get("flow")
            else None
        )
        return Loaded(conversation, version, event_id, reply, completing)

    async def get(self, user_id: str) -> Conversation | None:
        return (await self.load(user_id)).conversation

    async def save(
        self,
        user_id: str,
        conversation: Conversation | None,
        expected_version: int,
        now: datetime,
        event_id: str = "",
        reply: list[dict[str, Any]] | None = None,
        completing: Conversation | None = None,
    ) -> int:
        """Write the state (None: no conversation) as version `expected_version + 1`, by the
        turn of webhook event `event_id`, with that turn's answer `reply` (kept until the next
        write: a process that finishes the event after the writer died sends it), or with the
        flow it `completing` when the answer comes from work after the commit (which such a
        process then runs again).

        Raises `ConversationConflict` when another writer got there first. On success the
        conversation's `version` and `updated_at` are set, and the version read is removed.
        """
        version = expected_version + 1
        doc: Document = {
            "_id": _doc_id(user_id, version),
            "user_id": user_id,
            "version": version,
            "updated_at": now,
            "expires_at": now + KEEP_IDLE,
            "event": event_id,
            "flow": None,
        }
        if reply:
            doc["reply"] = json.dumps(reply, ensure_ascii=False)
        if completing is not None:
            doc["completing"] = completing.fields()
        if conversation is not None:
            conversation.version = version
            conversation.updated_at = now
            conversation.started_at = conversation.started_at or now
            doc |= conversation.fields()
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise ConversationConflict(user_id) from None
        # By `_id` alone (FerretDB reads a whole collection for any other filter). Each save
        # removes its predecessor, so only a crash in between leaves an older version behind:
        # `load` never reads it and the cleanup job removes it after `KEEP_IDLE`.
        await self.col.delete_one({"_id": _doc_id(user_id, expected_version)})
        return version

    async def put(self, conversation: Conversation, now: datetime) -> None:
        """Store a conversation over whatever the user's state is (tests and tools)."""
        head = await self.load(conversation.user_id)
        await self.save(conversation.user_id, conversation, head.version, now)

    async def clear(self, user_id: str) -> None:
        """Drop the user's state whatever its version (e.g. when they block the account)."""
        await self.col.delete_many({"user_id": user_id})

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count
