"""Staff accounts, their sessions, API keys, the login throttle and the audit log.

Documents:

- `staff_accounts`: `{_id: ObjectId, email (lower case, unique), tenant: code | "platform", role,
  password_hash (argon2), must_change_password, created_at, updated_at, password_changed_at,
  last_login_at, created_by, line_user_id?, line_linked_at?, line_link_code?,
  line_link_expires_at?}`
  (`line_*`: the staff member's own LINE account for test sends of news, linked in the chat with a
  short-lived one-time code shown in the console; only the code's hash is stored)
- `staff_sessions`: `{_id: sha256 of the cookie value, account_id, csrf, ip, created_at,
  last_seen, absolute_expires_at, expires_at}`; `expires_at` is the earlier of the idle and the
  absolute deadline, so one comparison decides validity and the cleanup job removes the rest.
- `staff_api_keys`: `{_id: ObjectId, tenant, name, role, key_hash (sha256, unique), prefix,
  created_by, created_at, last_used_at, revoked_at}`
- `staff_login_failures`: `{_id: "account:<email>" | "ip:<address>", failures, first_at,
  locked_until, expires_at}`
- `staff_audit`: `{_id, at, tenant, actor_kind, actor_id, actor, action, target, ip, details}`

Methods that read a tenant's records take its `Tenant` and add the filter themselves; the few
that cannot (login by e-mail, resolving a session or key) say so in their name or docstring.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from bot.staff.tenancy import Tenant
from bot.storage.base import Store
from bot.storage.db import Document


def object_id(value: str) -> ObjectId | None:
    """The ObjectId written as `value`, or None when it is not one (never raises)."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


# Codes a staff member types into the chat to link their LINE account: 8 characters without
# look-alikes (0/O, 1/I/L), about 2^40 possibilities, valid a few minutes, spent on first use.
LINE_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LINE_CODE_LENGTH = 8
LINE_CODE_TTL = timedelta(minutes=10)


def new_line_code() -> str:
    """A fresh link code, shown as ABCD-EFGH."""
    raw = "".join(secrets.choice(LINE_CODE_ALPHABET) for _ in range(LINE_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def line_code_hash(text: str) -> str | None:
    """The stored form of a typed code (case, spaces and hyphens ignored), or None when the
    text cannot be a code."""
    raw = "".join(ch for ch in text.upper() if ch not in " -ー－\t")
    if len(raw) != LINE_CODE_LENGTH or any(ch not in LINE_CODE_ALPHABET for ch in raw):
        return None
    return hashlib.sha256(raw.encode()).hexdigest()


class DuplicateEmail(Exception):
    """A staff account with this e-mail address exists."""


class StaffAccounts(Store):
    collection_name = "staff_accounts"

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel("email", name="email", unique=True),
            IndexModel([("tenant", ASCENDING), ("email", ASCENDING)], name="tenant_email"),
        ]

    async def insert(self, doc: Document) -> Document:
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise DuplicateEmail(doc["email"]) from None
        return doc

    async def by_email_for_login(self, email: str) -> Document | None:
        """Unscoped: the login form names no tenant."""
        return await self.col.find_one({"email": email})

    async def by_id_for_session(self, account_id: str) -> Document | None:
        """Unscoped: resolves the account behind a session (the session decides the tenant)."""
        oid = object_id(account_id)
        return None if oid is None else await self.col.find_one({"_id": oid})

    async def list_for(self, tenant: Tenant) -> list[Document]:
        cursor = self.col.find(tenant.owned()).sort([("email", ASCENDING)])
        return [doc async for doc in cursor]

    async def get_for(self, tenant: Tenant, account_id: str) -> Document | None:
        oid = object_id(account_id)
        if oid is None:
            return None
        return await self.col.find_one({**tenant.owned(), "_id": oid})

    async def delete_for(self, tenant: Tenant, account_id: str) -> Document | None:
        """Delete the tenant's account; the deleted document, or None when there was none."""
        oid = object_id(account_id)
        if oid is None:
            return None
        return await self.col.find_one_and_delete({**tenant.owned(), "_id": oid})

    async def set_password(
        self, account_id: ObjectId, password_hash: str, now: datetime, *, must_change: bool
    ) -> None:
        await self.col.update_one(
            {"_id": account_id},
            {
                "$set": {
                    "password_hash": password_hash,
                    "must_change_password": must_change,
                    "password_changed_at": now,
                    "updated_at": now,
                }
            },
        )

    async def replace_hash(self, account_id: ObjectId, old_hash: str, new_hash: str) -> None:
        """Rehash with current parameters, unless the password changed meanwhile."""
        await self.col.update_one(
            {"_id": account_id, "password_hash": old_hash}, {"$set": {"password_hash": new_hash}}
        )

    async def record_login(self, account_id: ObjectId, now: datetime) -> None:
        await self.col.update_one({"_id": account_id}, {"$set": {"last_login_at": now}})

    # --- the staff member's own LINE account (test sends of news) ---------------------------

    async def issue_line_code(
        self, account_id: ObjectId, code_hash: str, expires_at: datetime
    ) -> None:
        """A new one-time link code for the account; any earlier code stops working."""
        await self.col.update_one(
            {"_id": account_id},
            {"$set": {"line_link_code": code_hash, "line_link_expires_at": expires_at}},
        )

    async def by_line_code_for_link(self, code_hash: str, now: datetime) -> Document | None:
        """Unscoped: the account whose unexpired link code this is (the chat names no tenant)."""
        return await self.col.find_one(
            {"line_link_code": code_hash, "line_link_expires_at": {"$gt": now}}
        )

    async def link_line(
        self, account_id: ObjectId, code_hash: str, line_user_id: str, now: datetime
    ) -> None:
        """Store the LINE user id and spend the code (the claim itself is a lease: see
        `bot/dialog/hooks/news.py`)."""
        await self.col.update_one(
            {"_id": account_id, "line_link_code": code_hash},
            {
                "$set": {"line_user_id": line_user_id, "line_linked_at": now},
                "$unset": {"line_link_code": "", "line_link_expires_at": ""},
            },
        )

    async def unlink_line(self, account_id: ObjectId) -> None:
        await self.col.update_one(
            {"_id": account_id},
            {
                "$unset": {
                    "line_user_id": "",
                    "line_linked_at": "",
                    "line_link_code": "",
                    "line_link_expires_at": "",
                }
            },
        )

    async def unlink_line_user(self, line_user_id: str) -> int:
        """Forget a LINE account on every staff account linked to it (「データを削除」)."""
        result = await self.col.update_many(
            {"line_user_id": line_user_id},
            {"$unset": {"line_user_id": "", "line_linked_at": ""}},
        )
        return result.modified_count


class StaffSessions(Store):
    collection_name = "staff_sessions"
    expires = True

    def indexes(self) -> list[IndexModel]:
        return [IndexModel("account_id", name="account_id")]

    async def insert(self, doc: Document) -> None:
        await self.col.insert_one(doc)

    async def active(self, session_id: str, now: datetime) -> Document | None:
        """The session if neither its idle nor its absolute deadline has passed."""
        return await self.col.find_one({"_id": session_id, "expires_at": {"$gt": now}})

    async def touch(self, doc: Document, now: datetime, idle: timedelta) -> None:
        """Move the idle deadline (never past the absolute one)."""
        deadline = min(now + idle, doc["absolute_expires_at"])
        await self.col.update_one(
            {"_id": doc["_id"], "expires_at": {"$gt": now}},
            {"$set": {"last_seen": now, "expires_at": deadline}},
        )

    async def delete(self, session_id: str) -> None:
        await self.col.delete_one({"_id": session_id})

    async def delete_for_account(self, account_id: str, *, keep: str | None = None) -> int:
        query: dict[str, Any] = {"account_id": account_id}
        if keep is not None:
            query["_id"] = {"$ne": keep}
        return (await self.col.delete_many(query)).deleted_count

    async def count_for_account(self, account_id: str, now: datetime) -> int:
        return await self.col.count_documents(
            {"account_id": account_id, "expires_at": {"$gt": now}}
        )


class ApiKeys(Store):
    collection_name = "staff_api_keys"

    def indexes(self) -> list[IndexModel]:
        return [
            IndexModel("key_hash", name="key_hash", unique=True),
            IndexModel([("tenant", ASCENDING), ("created_at", DESCENDING)], name="tenant_created"),
        ]

    async def insert(self, doc: Document) -> Document:
        await self.col.insert_one(doc)
        return doc

    async def by_hash_for_auth(self, key_hash: str) -> Document | None:
        """Unscoped: resolves a presented key (the key decides the tenant)."""
        return await self.col.find_one({"key_hash": key_hash})

    async def list_for(self, tenant: Tenant) -> list[Document]:
        cursor = self.col.find(tenant.owned()).sort([("created_at", DESCENDING)])
        docs = [doc async for doc in cursor]
        docs.sort(key=lambda d: (d["created_at"], str(d["_id"])), reverse=True)
        return docs

    async def get_for(self, tenant: Tenant, key_id: str) -> Document | None:
        oid = object_id(key_id)
        if oid is None:
            return None
        return await self.col.find_one({**tenant.owned(), "_id": oid})

    async def revoke_for(self, tenant: Tenant, key_id: str, now: datetime) -> Document | None:
        """Revoke the tenant's key (once); the key as it is now, or None when there is none."""
        oid = object_id(key_id)
        if oid is None:
            return None
        await self.col.update_one(
            {**tenant.owned(), "_id": oid, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        return await self.col.find_one({**tenant.owned(), "_id": oid})

    async def touch(self, key_id: ObjectId, now: datetime, every: timedelta) -> None:
        """Record use, at most once per `every` (one write per request would be wasteful)."""
        await self.col.update_one(
            {
                "_id": key_id,
                "$or": [{"last_used_at": None}, {"last_used_at": {"$lt": now - every}}],
            },
            {"$set": {"last_used_at": now}},
        )


@dataclass(frozen=True)
class ThrottlePolicy:
    """`limit` failures within `window` lock the key for `lock`."""

    limit: int
    window: timedelta
    lock: timedelta


class LoginThrottle(Store):
    """Failed logins per account and per client address, shared by all web processes."""

    collection_name = "staff_login_failures"
    expires = True

    async def locked_until(self, key: str, now: datetime) -> datetime | None:
        doc = await self.col.find_one({"_id": key})
        until = doc.get("locked_until") if doc else None
        return until if isinstance(until, datetime) and until > now else None

    async def fail(self, key: str, now: datetime, policy: ThrottlePolicy) -> datetime | None:
        """Count a failure; the lock's end when this failure reached the limit."""
        # A window that has passed starts again.
        await self.col.update_one(
            {"_id": key, "first_at": {"$lt": now - policy.window}},
            {"$set": {"failures": 0, "first_at": now}},
        )
        doc: Document | None = None
        for _ in range(3):
            try:
                doc = await self.col.find_one_and_update(
                    {"_id": key},
                    {
                        "$inc": {"failures": 1},
                        "$setOnInsert": {"first_at": now},
                        "$set": {"expires_at": now + policy.window + policy.lock},
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                break
            except DuplicateKeyError:
                continue  # two first failures raced on the upsert
        if doc is None or int(doc.get("failures", 0)) < policy.limit:
            return None
        until = now + policy.lock
        await self.col.update_one(
            {"_id": key},
            {
                "$set": {
                    "locked_until": until,
                    "failures": 0,
                    "first_at": now,
                    "expires_at": until + policy.window,
                }
            },
        )
        return until

    async def clear(self, key: str) -> None:
        await self.col.delete_one({"_id": key})


class AuditLog(Store):
    collection_name = "staff_audit"

    def indexes(self) -> list[IndexModel]:
        return [IndexModel([("tenant", ASCENDING), ("at", DESCENDING)], name="tenant_at")]

    async def insert(self, entry: Document) -> None:
        await self.col.insert_one(entry)

    async def list_for(self, tenant: Tenant, limit: int = 100) -> list[Document]:
        cursor = self.col.find(tenant.owned()).sort([("at", DESCENDING)]).limit(limit)
        docs = [doc async for doc in cursor]
        docs.sort(key=lambda d: (d["at"], str(d["_id"])), reverse=True)
        return docs

    async def find(self, query: dict[str, Any], limit: int = 100) -> list[Document]:
        """Unscoped: for operators' tools and tests."""
        cursor = self.col.find(query).sort([("at", DESCENDING)]).limit(limit)
        return [doc async for doc in cursor]
