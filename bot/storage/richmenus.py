"""Rich menu ids created on LINE, by our menu name (so every process uses the same menus)."""

from __future__ import annotations

from datetime import datetime

from bot.storage.base import Store


class RichMenuIds(Store):
    collection_name = "rich_menus"

    async def get(self, name: str) -> str | None:
        doc = await self.col.find_one({"_id": name})
        return str(doc["rich_menu_id"]) if doc else None

    async def put(self, name: str, rich_menu_id: str, now: datetime) -> None:
        await self.col.update_one(
            {"_id": name},
            {"$set": {"rich_menu_id": rich_menu_id, "updated_at": now}},
            upsert=True,
        )
