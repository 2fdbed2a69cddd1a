"""API keys of a tenant: `Authorization: Bearer fk_…` for the JSON API.

A key is 256 random bits, shown once when created; only its SHA-256 is stored (a fast hash is
enough for a high-entropy secret). Keys act with the role given at creation (viewer or editor,
never admin: keys do not manage staff or keys), can be revoked, and record when they were last
used (at most once a minute).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from bson import ObjectId

from bot.staff.accounts import StaffError
from bot.staff.audit import Action, Actor, record
from bot.staff.tenancy import Principal, Role, Tenant
from bot.storage import Storage
from bot.storage.db import Document

KEY_PREFIX = "fk_"
KEY_ROLES = (Role.VIEWER, Role.EDITOR)
MAX_NAME = 60
TOUCH_EVERY = timedelta(minutes=1)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def name_problem(name: str) -> str | None:
    if not name.strip():
        return "名前を入力してください。"
    if len(name) > MAX_NAME:
        return f"名前は{MAX_NAME}文字以内にしてください。"
    return None


async def create_api_key(
    storage: Storage, now: datetime, principal: Principal, name: str, role: Role | str, ip: str = ""
) -> tuple[Document, str]:
    """A new key of the principal's tenant; returns it and the key itself (shown only now)."""
    name = name.strip()
    if (problem := name_problem(name)) is not None:
        raise StaffError("invalid_name", problem, "name")
    try:
        role = Role(role)
    except ValueError:
        role = Role.ADMIN  # refused below
    if role not in KEY_ROLES:
        raise StaffError("invalid_role", "APIキーの権限は viewer か editor です。", "role")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    doc: Document = {
        "_id": ObjectId(),
        "tenant": principal.tenant.code,
        "name": name,
        "role": role.value,
        "key_hash": key_hash(key),
        "prefix": key[: len(KEY_PREFIX) + 6],
        "created_by": principal.label,
        "created_at": now,
        "last_used_at": None,
        "revoked_at": None,
    }
    await storage.api_keys.insert(doc)
    await record(
        storage,
        now,
        Action.API_KEY_CREATED,
        tenant=principal.tenant.code,
        actor=Actor.of(principal),
        target=name,
        ip=ip,
        details={"key_id": str(doc["_id"]), "role": role.value},
    )
    return doc, key


async def revoke_api_key(
    storage: Storage, now: datetime, principal: Principal, key_id: str, ip: str = ""
) -> Document | None:
    """Revoke a key of the principal's tenant; None when the tenant has no such key."""
    before = await storage.api_keys.get_for(principal.tenant, key_id)
    if before is None:
        return None
    doc = await storage.api_keys.revoke_for(principal.tenant, key_id, now)
    if doc is not None and before.get("revoked_at") is None:
        await record(
            storage,
            now,
            Action.API_KEY_REVOKED,
            tenant=principal.tenant.code,
            actor=Actor.of(principal),
            target=str(doc["name"]),
            ip=ip,
            details={"key_id": key_id},
        )
    return doc


async def principal_for_key(storage: Storage, now: datetime, key: str) -> Principal | None:
    """The principal a presented key acts as, or None (unknown, malformed or revoked)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        return None
    doc = await storage.api_keys.by_hash_for_auth(key_hash(key))
    if doc is None or doc.get("revoked_at") is not None:
        return None
    tenant = Tenant.of(str(doc["tenant"]))
    if tenant is None:
        return None
    await storage.api_keys.touch(doc["_id"], now, TOUCH_EVERY)
    return Principal(
        kind="api_key",
        id=str(doc["_id"]),
        label=str(doc["name"]),
        tenant=tenant,
        role=Role(str(doc["role"])),
    )
