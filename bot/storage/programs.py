"""Existing fan-club programs (既存の取組), their imported member lists and residents' links.

Documents:

- `programs`: ``{_id: program_id, place_code, name, member_number_format, current_import,
  member_count, imported_at, created_at, updated_at}``
- `program_members`: the imported list, one generation per import::

    {_id: "<program_id>:<import_id>:<member_number>", program_id, import_id, member_number,
     name, email, line}

  An import writes a whole new generation, then points the program at it (`current_import`),
  then deletes the older generations: readers only ever see one complete list (all or nothing,
  without transactions).
- `program_links` (personal data): a resident's member number::

    {_id: "<program_id>:<member_number>", program_id, member_number, user_id, place_code,
     linked_at}

  The unique `_id` makes a number belong to one resident; the unique (program_id, user_id)
  index gives a resident one number per program. Both are claimed by inserting.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from bot.domain.programs import MemberRow, Program
from bot.storage.base import Store
from bot.storage.db import Document

INSERT_CHUNK = 500


class ProgramTaken(Exception):
    """The program id is used by another place."""


@dataclass(frozen=True)
class StoredProgram:
    program: Program
    member_count: int
    imported_at: datetime | None
    current_import: str | None

    @classmethod
    def of(cls, doc: Document) -> StoredProgram:
        return cls(
            program=Program(
                id=str(doc["_id"]),
                place_code=str(doc["place_code"]),
                name=str(doc["name"]),
                member_number_format=str(doc["member_number_format"]),
            ),
            member_count=int(doc.get("member_count") or 0),
            imported_at=doc.get("imported_at"),
            current_import=str(doc["current_import"]) if doc.get("current_import") else None,
        )


class Programs(Store):
    collection_name = "programs"

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("place_code", ASCENDING)], name="place")]

    async def put(self, program: Program, now: datetime) -> StoredProgram:
        """Add or change a program of its place; ProgramTaken when another place has the id."""
        existing = await self.col.find_one({"_id": program.id})
        if existing is not None and existing.get("place_code") != program.place_code:
            raise ProgramTaken(program.id)
        fields = {
            "place_code": program.place_code,
            "name": program.name,
            "member_number_format": program.member_number_format,
            "updated_at": now,
        }
        if existing is None:
            try:
                await self.col.insert_one(
                    {"_id": program.id, **fields, "member_count": 0, "created_at": now}
                )
            except DuplicateKeyError:
                return await self.put(program, now)
        else:
            await self.col.update_one({"_id": program.id}, {"$set": fields})
        stored = await self.get(program.id)
        assert stored is not None
        return stored

    async def get(self, program_id: str) -> StoredProgram | None:
        doc = await self.col.find_one({"_id": program_id})
        return StoredProgram.of(doc) if doc is not None else None

    async def for_place(self, place_code: str) -> list[StoredProgram]:
        cursor = self.col.find({"place_code": place_code}).sort([("_id", ASCENDING)])
        return [StoredProgram.of(doc) async for doc in cursor]

    async def for_places(self, place_codes: Iterable[str]) -> list[StoredProgram]:
        codes = sorted(set(place_codes))
        if not codes:
            return []
        cursor = self.col.find({"place_code": {"$in": codes}}).sort([("_id", ASCENDING)])
        return [StoredProgram.of(doc) async for doc in cursor]

    async def switch_import(
        self, program_id: str, import_id: str, count: int, now: datetime
    ) -> None:
        await self.col.update_one(
            {"_id": program_id},
            {
                "$set": {
                    "current_import": import_id,
                    "member_count": count,
                    "imported_at": now,
                    "updated_at": now,
                }
            },
        )


class ProgramMembers(Store):
    """Imported member lists (names and e-mails of members, never a LINE user id)."""

    collection_name = "program_members"

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("program_id", ASCENDING), ("import_id", ASCENDING), ("member_number", ASCENDING)],
                name="program_import_number",
            )
        ]

    async def write_generation(self, program_id: str, rows: Sequence[MemberRow]) -> str:
        """Write a complete new list under a fresh import id (not yet current)."""
        import_id = secrets.token_hex(8)
        docs = [
            {
                "_id": f"{program_id}:{import_id}:{row.member_number}",
                "program_id": program_id,
                "import_id": import_id,
                "member_number": row.member_number,
                "name": row.name,
                "email": row.email,
                "line": row.line,
            }
            for row in rows
        ]
        for start in range(0, len(docs), INSERT_CHUNK):
            await self.col.insert_many(docs[start : start + INSERT_CHUNK], ordered=True)
        return import_id

    async def drop_other_generations(self, program_id: str, keep: str) -> int:
        result = await self.col.delete_many({"program_id": program_id, "import_id": {"$ne": keep}})
        return result.deleted_count

    async def numbers_in(
        self, program_id: str, import_id: str | None, numbers: Sequence[str]
    ) -> set[str]:
        if import_id is None or not numbers:
            return set()
        cursor = self.col.find(
            {
                "program_id": program_id,
                "import_id": import_id,
                "member_number": {"$in": list(numbers)},
            },
            projection={"member_number": 1},
        )
        return {str(doc["member_number"]) async for doc in cursor}


class LinkResult(StrEnum):
    LINKED = "linked"
    ALREADY = "already"  # this resident already has this very number
    TAKEN = "taken"  # another resident has the number


@dataclass(frozen=True)
class Link:
    result: LinkResult
    previous: str | None = None  # the resident's earlier number, replaced


class ProgramLinks(Store):
    collection_name = "program_links"
    personal_data = True

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("program_id", ASCENDING), ("user_id", ASCENDING)],
                name="program_user",
                unique=True,
            ),
            IndexModel([("user_id", ASCENDING)], name="user"),
        ]

    async def link(self, program: Program, user_id: str, member_number: str, now: datetime) -> Link:
        """Link a (canonical) member number to a resident; a number belongs to one resident."""
        doc_id = f"{program.id}:{member_number}"
        mine = await self.col.find_one({"program_id": program.id, "user_id": user_id})
        if mine is not None and mine.get("member_number") == member_number:
            return Link(LinkResult.ALREADY)
        holder = await self.col.find_one({"_id": doc_id})
        if holder is not None:
            return Link(LinkResult.TAKEN)
        previous = str(mine["member_number"]) if mine is not None else None
        if mine is not None:
            await self.col.delete_one({"_id": mine["_id"], "user_id": user_id})
        try:
            await self.col.insert_one(
                {
                    "_id": doc_id,
                    "program_id": program.id,
                    "member_number": member_number,
                    "user_id": user_id,
                    "place_code": program.place_code,
                    "linked_at": now,
                }
            )
        except DuplicateKeyError:
            holder = await self.col.find_one({"_id": doc_id})
            if holder is not None and holder.get("user_id") == user_id:
                return Link(LinkResult.ALREADY)
            if previous is not None:  # put the resident's old number back if still free
                with contextlib.suppress(DuplicateKeyError):
                    await self.col.insert_one(
                        {
                            "_id": f"{program.id}:{previous}",
                            "program_id": program.id,
                            "member_number": previous,
                            "user_id": user_id,
                            "place_code": program.place_code,
                            "linked_at": mine["linked_at"] if mine else now,
                        }
                    )
            return Link(LinkResult.TAKEN)
        return Link(LinkResult.LINKED, previous)

    async def unlink(self, program_id: str, user_id: str) -> bool:
        result = await self.col.delete_one({"program_id": program_id, "user_id": user_id})
        return result.deleted_count == 1

    async def number_of(self, program_id: str, user_id: str) -> str | None:
        doc = await self.col.find_one({"program_id": program_id, "user_id": user_id})
        return str(doc["member_number"]) if doc else None

    async def programs_of(self, user_id: str) -> set[str]:
        cursor = self.col.find({"user_id": user_id}, projection={"program_id": 1})
        return {str(doc["program_id"]) async for doc in cursor}

    async def programs_of_users(self, user_ids: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {user_id: set() for user_id in user_ids}
        if not user_ids:
            return out
        cursor = self.col.find(
            {"user_id": {"$in": list(user_ids)}}, projection={"user_id": 1, "program_id": 1}
        )
        async for doc in cursor:
            out.setdefault(str(doc["user_id"]), set()).add(str(doc["program_id"]))
        return out

    async def count(self, program_id: str) -> int:
        return await self.col.count_documents({"program_id": program_id})

    async def numbers(self, program_id: str) -> list[str]:
        cursor = self.col.find({"program_id": program_id}, projection={"member_number": 1})
        return [str(doc["member_number"]) async for doc in cursor]

    async def delete_for_user(self, user_id: str) -> int:
        return (await self.col.delete_many({"user_id": user_id})).deleted_count
