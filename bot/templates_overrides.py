"""The municipalities' own template texts, in memory: the renderer's `TemplateOverrides`.

`Renderer.render(…, municipality=code)` asks `source(name, code)` synchronously on every message,
so the current overrides of every tenant are kept here and refreshed in the background:

- at start-up, `load()` reads the newest version of every (tenant, template);
- every `interval` seconds (2 s) a cheap check asks the store which versions were inserted since
  a little before the newest one seen (`recent_ids`); only unseen ones are fetched and applied.
  So a save in one web process reaches every other web process (and the worker) within about
  the interval, without a restart;
- the process that saved applies the new version at once (`apply`), so the editor's own process
  never shows the old text;
- every `full_every` seconds everything is read again (a safety net for clocks far apart).

Versions are numbered per (tenant, template) and never change, so applying them in any order
and more than once gives the same result: the highest version wins. A version whose `source`
is None means "back to the default file".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from bot.background import stop_if_cancelled
from bot.storage.db import Document
from bot.storage.templates import TemplateVersions

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 2.0
FULL_RELOAD_S = 60.0
# Versions written by another process whose clock is up to this much behind are still seen.
CLOCK_SLACK = timedelta(seconds=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Current:
    version: int
    source: str | None


class StoredOverrides:
    """`TemplateOverrides` over `template_versions`, refreshed across processes."""

    def __init__(
        self,
        store: TemplateVersions,
        *,
        interval: float = REFRESH_INTERVAL_S,
        full_every: float = FULL_RELOAD_S,
    ) -> None:
        self.store = store
        self.interval = interval
        self.full_every = full_every
        self._current: dict[tuple[str, str], Current] = {}
        self._seen: dict[ObjectId, datetime] = {}
        self._newest: datetime | None = None
        self._loaded_at = 0.0
        self._applied_during_load: dict[tuple[str, str], Current] | None = None
        self._task: asyncio.Task[None] | None = None

    # --- TemplateOverrides -----------------------------------------------------------------

    def source(self, name: str, municipality_code: str) -> str | None:
        current = self._current.get((municipality_code, name))
        return current.source if current is not None else None

    # --- what the console shows -------------------------------------------------------------

    def version(self, name: str, municipality_code: str) -> int | None:
        current = self._current.get((municipality_code, name))
        return current.version if current is not None else None

    # --- keeping up to date -----------------------------------------------------------------

    def apply(self, doc: Document) -> bool:
        """Take one version into account; True when it changed what is current."""
        at = doc.get("at")
        if isinstance(at, datetime):
            self._seen[doc["_id"]] = at
            if self._newest is None or at > self._newest:
                self._newest = at
        key = (str(doc["tenant"]), str(doc["name"]))
        version = int(doc["version"])
        known = self._current.get(key)
        if known is not None and known.version >= version:
            return False
        source = doc.get("source")
        self._current[key] = Current(version, source if isinstance(source, str) else None)
        if self._applied_during_load is not None:
            self._applied_during_load[key] = self._current[key]
        return True

    async def load(self) -> None:
        """Read the newest version of every (tenant, template)."""
        self._applied_during_load = {}
        try:
            docs = await self.store.all_current()
        finally:
            applied, self._applied_during_load = self._applied_during_load, None
        current: dict[tuple[str, str], Current] = {}
        newest: datetime | None = None
        for doc in docs:
            source = doc.get("source")
            current[(str(doc["tenant"]), str(doc["name"]))] = Current(
                int(doc["version"]), source if isinstance(source, str) else None
            )
            at = doc.get("at")
            if isinstance(at, datetime) and (newest is None or at > newest):
                newest = at
        # Versions applied while reading (a save in this process) stay if they are newer.
        for key, known in applied.items():
            loaded = current.get(key)
            if loaded is None or loaded.version < known.version:
                current[key] = known
        self._current = current
        if newest is not None and (self._newest is None or newest > self._newest):
            self._newest = newest
        self._loaded_at = time.monotonic()
        self._prune()

    async def refresh(self) -> int:
        """The cheap check; fetch and apply versions not seen yet. Returns how many changed."""
        if time.monotonic() - self._loaded_at >= self.full_every:
            await self.load()
        # Nothing seen yet (no versions at the last load): any version at all is new.
        since = self._newest - CLOCK_SLACK if self._newest is not None else _EPOCH
        recent = await self.store.recent_ids(since)
        unseen = [doc_id for doc_id, _ in recent if doc_id not in self._seen]
        if not unseen:
            return 0
        changed = 0
        for doc in await self.store.by_ids(unseen):
            changed += self.apply(doc)
        self._prune()
        return changed

    def _prune(self) -> None:
        if self._newest is None:
            return
        horizon = self._newest - 2 * CLOCK_SLACK
        self._seen = {doc_id: at for doc_id, at in self._seen.items() if at >= horizon}

    # --- the background refresh ------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:  # the database may be away for a while: keep the last known
                stop_if_cancelled()
                log.warning("template overrides could not be refreshed", exc_info=True)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
