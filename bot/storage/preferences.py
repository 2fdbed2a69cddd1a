"""What each resident wants to hear from each place: one switch per (person, place, topic).

Document (collection `preferences`):

    {_id: "<user_id>:<place_code>:<topic>", user_id, place_code, topic, enabled: bool, updated_at}

Every topic is on until the resident switches it off, so a missing document means "on". Only a
choice the resident made is stored. Writes set an explicit value (the button says 「オフ」 or
「オン」), never flip the stored one, so two racing writes cannot undo each other: the last choice
wins, which is what the resident saw last. Nothing here needs a conditional update (FerretDB 1.24
does not apply those atomically).

Delivery (news, benefits, garbage reminders) asks `recipients_allowing(place, topic)`: the people
actively registered with the place who have not switched the topic off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bot.storage.base import Store
from bot.storage.db import Document
from bot.storage.registrations import ACTIVE, Registrations


class Topic(StrEnum):
    """What a place may send: news (お知らせ), benefits (特典), garbage and stays (ごみ・滞在)."""

    NEWS = "news"
    BENEFITS = "benefits"
    GARBAGE = "garbage"

    @property
    def label(self) -> str:
        return {Topic.NEWS: "お知らせ", Topic.BENEFITS: "特典", Topic.GARBAGE: "ごみ・滞在"}[self]


TOPICS: tuple[Topic, ...] = tuple(Topic)
DEFAULT = True  # a topic nobody switched is on


def topic_of(value: str | Topic) -> Topic:
    """The topic named `value`; ValueError for anything else."""
    return Topic(str(value))


def _doc_id(user_id: str, place_code: str, topic: Topic) -> str:
    return f"{user_id}:{place_code}:{topic.value}"


class Preferences(Store):
    collection_name = "preferences"
    personal_data = True

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self._registrations: AsyncCollection[Document] = db[Registrations.collection_name]

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel([("user_id", ASCENDING), ("place_code", ASCENDING)], name="user_place"),
            IndexModel(
                [("place_code", ASCENDING), ("topic", ASCENDING), ("enabled", ASCENDING)],
                name="place_topic",
            ),
        ]

    # --- writing ---------------------------------------------------------------------------

    async def set(
        self, user_id: str, place_code: str, topic: str | Topic, enabled: bool, now: datetime
    ) -> None:
        """Switch one topic of one place on or off for the person."""
        chosen = topic_of(topic)
        doc_id = _doc_id(user_id, place_code, chosen)
        update: Document = {
            "$set": {"enabled": bool(enabled), "updated_at": now},
            "$setOnInsert": {"user_id": user_id, "place_code": place_code, "topic": chosen.value},
        }
        try:
            await self.col.update_one({"_id": doc_id}, update, upsert=True)
        except DuplicateKeyError:
            # Two first choices raced on the upsert: the document exists now; set our value.
            await self.col.update_one({"_id": doc_id}, {"$set": update["$set"]})

    async def set_all(
        self,
        user_id: str,
        place_code: str,
        enabled: bool,
        now: datetime,
        topics: Iterable[str | Topic] = TOPICS,
    ) -> None:
        for topic in topics:
            await self.set(user_id, place_code, topic, enabled, now)

    # --- reading ---------------------------------------------------------------------------

    async def allows(self, user_id: str, place_code: str, topic: str | Topic) -> bool:
        """Whether the person lets this place send this topic (on unless switched off).

        Says nothing about the registration: `recipients_allowing` checks both.
        """
        chosen = topic_of(topic)
        doc = await self.col.find_one(
            {"_id": _doc_id(user_id, place_code, chosen)}, projection={"enabled": 1}
        )
        return DEFAULT if doc is None else bool(doc.get("enabled", DEFAULT))

    async def for_place(self, user_id: str, place_code: str) -> dict[Topic, bool]:
        """Every topic of one place for the person, defaults filled in."""
        return (await self.for_places(user_id, [place_code]))[place_code]

    async def for_places(
        self, user_id: str, place_codes: Collection[str]
    ) -> dict[str, dict[Topic, bool]]:
        """Every topic of each of these places for the person, defaults filled in."""
        out: dict[str, dict[Topic, bool]] = {
            code: dict.fromkeys(TOPICS, DEFAULT) for code in place_codes
        }
        if not out:
            return out
        cursor = self.col.find({"user_id": user_id, "place_code": {"$in": sorted(out)}})
        async for doc in cursor:
            try:
                topic = topic_of(str(doc.get("topic")))
            except ValueError:
                continue  # a topic retired since: ignored
            out[str(doc["place_code"])][topic] = bool(doc.get("enabled", DEFAULT))
        return out

    async def recipients_allowing(
        self, place_code: str, topic: str | Topic, *, batch_size: int = 500
    ) -> AsyncIterator[str]:
        """The LINE user ids actively registered with the place that allow the topic.

        Read `batch_size` registrations at a time (by `_id`), each batch checked against the
        switched-off preferences of those people, so a large place never loads at once.
        """
        chosen = topic_of(topic)
        after: Any = None
        while True:
            query: Document = {"place_code": place_code, "status": ACTIVE}
            if after is not None:
                query["_id"] = {"$gt": after}
            cursor = self._registrations.find(query, projection={"user_id": 1}).sort(
                [("_id", ASCENDING)]
            )
            docs = [doc async for doc in cursor.limit(batch_size)]
            if not docs:
                return
            after = docs[-1]["_id"]
            users = [str(doc["user_id"]) for doc in docs if doc.get("user_id")]
            off = {
                str(doc["user_id"])
                async for doc in self.col.find(
                    {
                        "place_code": place_code,
                        "topic": chosen.value,
                        "enabled": False,
                        "user_id": {"$in": users},
                    },
                    projection={"user_id": 1},
                )
            }
            for user_id in users:
                if user_id not in off:
                    yield user_id
            if len(docs) < batch_size:
                return

    # --- removing --------------------------------------------------------------------------

    async def keep_only(self, user_id: str, place_codes: Collection[str]) -> int:
        """Drop the person's choices for places they are no longer registered with."""
        result = await self.col.delete_many(
            {"user_id": user_id, "place_code": {"$nin": sorted(place_codes)}}
        )
        return result.deleted_count

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count
