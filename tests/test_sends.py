"""Retry keys of outgoing sends, stored before the first attempt: several in one write, and a
key stored before is kept (a resend must carry the key LINE saw)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from bot.storage import Storage


async def test_keys_stored_together_keep_those_stored_before(storage: Storage) -> None:
    tag = uuid.uuid4().hex
    then = datetime(2030, 1, 5, 1, 0, tzinfo=UTC)
    earlier = await storage.sends.retry_key(f"news:{tag}:1:0", then)
    later = then + timedelta(minutes=5)
    wanted = {f"news:{tag}:1:0": "", f"news:{tag}:1:1": "", f"push:{tag}": f"U{tag}"}
    keys = await storage.sends.retry_keys(wanted, later)
    assert keys[f"news:{tag}:1:0"] == earlier  # the same key, first seen then
    fresh = keys[f"news:{tag}:1:1"]
    assert fresh.retry_key != earlier.retry_key
    assert (fresh.first_seen, fresh.status) == (later, "pending")
    push = await storage.sends.col.find_one({"_id": f"push:{tag}"})
    assert push is not None and push["user_id"] == f"U{tag}"  # found by 「データを削除」
    assert await storage.sends.retry_keys(wanted, later + timedelta(hours=1)) == keys
    assert await storage.sends.retry_keys({}, later) == {}
