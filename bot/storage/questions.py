"""A municipality's own registration questions, asked after the built-in ones.

Staff add them in the database (later through the console); the registration flow reads them at
run time, so a new question needs no code change or deploy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pymongo import ASCENDING, IndexModel

from bot.storage.base import Store
from bot.storage.db import Document

QuestionKind = Literal["text", "choice"]
QUESTION_ID = re.compile(r"[a-z0-9_-]{1,40}")
MAX_CHOICES = 12
MAX_CHOICE_LABEL = 20
MAX_PROMPT = 500
MAX_ANSWER = 200


@dataclass(frozen=True)
class Question:
    """One question: free text (`max_length`) or a choice among `choices` (labels ≤ 20 chars)."""

    place_code: str
    question_id: str
    prompt: str
    kind: QuestionKind = "text"
    choices: tuple[str, ...] = ()
    required: bool = True
    max_length: int = MAX_ANSWER
    order: int = 0
    active: bool = True

    def problems(self) -> list[str]:
        """What is wrong with this question (empty when it can be asked)."""
        found: list[str] = []
        if not QUESTION_ID.fullmatch(self.question_id):
            found.append("question_id must be 1-40 of a-z, 0-9, _ and -")
        if not 1 <= len(self.prompt.strip()) <= MAX_PROMPT:
            found.append(f"prompt must be 1 to {MAX_PROMPT} characters")
        if self.kind not in ("text", "choice"):
            found.append("kind must be text or choice")
        if self.kind == "choice":
            if not 1 <= len(self.choices) <= MAX_CHOICES:
                found.append(f"a choice question needs 1 to {MAX_CHOICES} choices")
            if any(not 1 <= len(c) <= MAX_CHOICE_LABEL for c in self.choices):
                found.append(f"choice labels must be 1 to {MAX_CHOICE_LABEL} characters")
            if len(set(self.choices)) != len(self.choices):
                found.append("choices must differ")
        if not 1 <= self.max_length <= MAX_ANSWER:
            found.append(f"max_length must be 1 to {MAX_ANSWER}")
        return found

    def to_document(self) -> Document:
        return {
            "place_code": self.place_code,
            "question_id": self.question_id,
            "prompt": self.prompt,
            "kind": self.kind,
            "choices": list(self.choices),
            "required": self.required,
            "max_length": self.max_length,
            "order": self.order,
            "active": self.active,
        }

    @classmethod
    def from_document(cls, doc: Document) -> Question:
        kind = doc.get("kind")
        return cls(
            place_code=str(doc.get("place_code", "")),
            question_id=str(doc.get("question_id", "")),
            prompt=str(doc.get("prompt", "")),
            kind="choice" if kind == "choice" else "text",
            choices=tuple(str(c) for c in doc.get("choices") or ()),
            required=bool(doc.get("required", True)),
            max_length=int(doc.get("max_length") or MAX_ANSWER),
            order=int(doc.get("order") or 0),
            active=bool(doc.get("active", True)),
        )


class MunicipalityQuestions(Store):
    collection_name = "municipality_questions"

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("place_code", ASCENDING), ("question_id", ASCENDING)],
                name="place_question",
                unique=True,
            )
        ]

    async def put(self, question: Question, now: datetime) -> None:
        """Add or replace a question; raises ValueError when it is malformed."""
        problems = question.problems()
        if problems:
            raise ValueError("; ".join(problems))
        doc: dict[str, Any] = question.to_document() | {"updated_at": now}
        await self.col.update_one(
            {"place_code": question.place_code, "question_id": question.question_id},
            {"$set": doc},
            upsert=True,
        )

    async def remove(self, place_code: str, question_id: str) -> bool:
        result = await self.col.delete_one({"place_code": place_code, "question_id": question_id})
        return result.deleted_count == 1

    async def all_for_place(self, place_code: str) -> list[Question]:
        """Every question of a place, active or not (for staff)."""
        cursor = self.col.find({"place_code": place_code})
        questions = [Question.from_document(doc) async for doc in cursor]
        return sorted(questions, key=lambda q: (q.order, q.question_id))

    async def for_place(self, place_code: str) -> list[Question]:
        """The active, well-formed questions of a place, in their order."""
        cursor = self.col.find({"place_code": place_code, "active": True})
        questions = [Question.from_document(doc) async for doc in cursor]
        questions = [q for q in questions if not q.problems()]
        return sorted(questions, key=lambda q: (q.order, q.question_id))
