"""Staff-edited message templates per tenant (municipality or prefecture), with their history.

Document of `template_versions`, one per change, never updated:
`{_id: ObjectId, tenant: code, name: "register/done", version: 1.., source: str | None,
action: "save" | "rollback" | "reset", from_version: int | None, at, actor_kind, actor_id, actor}`

- A tenant's current text of a template is its highest version; `source: None` there means the
  default file (`templates/…`) is used again (a reset).
- Versions are inserted, never updated: a save reads the current version n and inserts n + 1.
  The unique index on (tenant, name, version) makes two racing saves exclusive (only inserts
  against unique indexes are atomic on FerretDB 1.24, conditional updates are not); the loser
  gets `VersionConflict`. A rollback is a new version carrying an old source.
- The bot's renderer keeps every tenant's current sources in memory (`bot/templates_overrides.py`)
  and asks `recent()` every few seconds whether something new was inserted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from bot.staff.tenancy import Tenant
from bot.storage.base import Store
from bot.storage.db import Document

VersionAction = Literal["save", "rollback", "reset"]

# Saves without an expected version retry this often when another save took the number.
_ATTEMPTS = 5


class VersionConflict(Exception):
    """Someone saved this template meanwhile; `current` is the version that is current now."""

    def __init__(self, current: int) -> None:
        super().__init__(f"template changed meanwhile (now version {current})")
        self.current = current


class TemplateVersions(Store):
    collection_name = "template_versions"

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel(
                [("tenant", ASCENDING), ("name", ASCENDING), ("version", DESCENDING)],
                name="tenant_name_version",
                unique=True,
            ),
            IndexModel([("at", DESCENDING)], name="at"),
        ]

    # --- one tenant (scoped) ---------------------------------------------------------------

    async def current(self, tenant: Tenant, name: str) -> Document | None:
        """The tenant's newest version of `name` (source None: back to the default), or None."""
        return await self.col.find_one(
            {**tenant.owned(), "name": name}, sort=[("version", DESCENDING)]
        )

    async def version(self, tenant: Tenant, name: str, version: int) -> Document | None:
        return await self.col.find_one({**tenant.owned(), "name": name, "version": version})

    async def history(self, tenant: Tenant, name: str, limit: int = 100) -> list[Document]:
        """The tenant's versions of `name`, newest first."""
        cursor = (
            self.col.find({**tenant.owned(), "name": name})
            .sort([("version", DESCENDING)])
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def current_for(self, tenant: Tenant) -> dict[str, Document]:
        """Template name → the tenant's newest version (overridden or reset)."""
        newest: dict[str, Document] = {}
        projection = {"name": 1, "version": 1, "at": 1, "actor": 1, "action": 1, "source": 1}
        async for doc in self.col.find(tenant.owned(), projection):
            known = newest.get(doc["name"])
            if known is None or doc["version"] > known["version"]:
                newest[doc["name"]] = doc
        return newest

    async def add(
        self,
        tenant: Tenant,
        name: str,
        source: str | None,
        *,
        action: VersionAction,
        now: datetime,
        actor_kind: str,
        actor_id: str | None,
        actor: str,
        expected: int | None = None,
        from_version: int | None = None,
    ) -> Document:
        """Insert the next version. With `expected` (the version the editor started from) a
        save over someone else's newer version raises `VersionConflict`; without it the new
        version goes on top of whatever is current."""
        for _ in range(_ATTEMPTS):
            latest = await self.current(tenant, name)
            number = int(latest["version"]) if latest else 0
            if expected is not None and expected != number:
                raise VersionConflict(number)
            doc: Document = {
                "_id": ObjectId(),
                **tenant.owned(),
                "name": name,
                "version": number + 1,
                "source": source,
                "action": action,
                "from_version": from_version,
                "at": now,
                "actor_kind": actor_kind,
                "actor_id": actor_id,
                "actor": actor[:254],
            }
            try:
                await self.col.insert_one(doc)
            except DuplicateKeyError:
                if expected is not None:
                    raise VersionConflict(number + 1) from None
                continue
            return doc
        raise VersionConflict(number)

    # --- every tenant (unscoped: the bot's renderer serves all municipalities) -------------

    async def all_current(self) -> list[Document]:
        """Unscoped: the newest version of every (tenant, template)."""
        newest: dict[tuple[str, str], Document] = {}
        projection = {"tenant": 1, "name": 1, "version": 1, "at": 1}
        async for doc in self.col.find({}, projection):
            key = (str(doc["tenant"]), str(doc["name"]))
            known = newest.get(key)
            if known is None or doc["version"] > known["version"]:
                newest[key] = doc
        if not newest:
            return []
        ids = [doc["_id"] for doc in newest.values()]
        found: list[Document] = []
        for start in range(0, len(ids), 500):
            cursor = self.col.find({"_id": {"$in": ids[start : start + 500]}})
            found.extend([doc async for doc in cursor])
        return found

    async def recent_ids(self, since: datetime) -> list[tuple[ObjectId, datetime]]:
        """Unscoped: (id, at) of the versions inserted at or after `since` (the cheap check)."""
        cursor = self.col.find({"at": {"$gte": since}}, {"_id": 1, "at": 1})
        return [(doc["_id"], doc["at"]) async for doc in cursor]

    async def by_ids(self, ids: list[ObjectId]) -> list[Document]:
        """Unscoped: these versions, whole."""
        if not ids:
            return []
        return [doc async for doc in self.col.find({"_id": {"$in": ids}})]
