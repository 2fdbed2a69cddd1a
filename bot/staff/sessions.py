"""Server-side staff sessions in MongoDB, and their cookie.

The cookie holds 256 random bits; the database keeps only their SHA-256, so a copy of the
database opens no session. Sessions end after 30 minutes without a request (idle) and 12 hours
after login (absolute), at logout, and when the password changes (the other sessions). Login
always makes a new session id: an id planted before login is never adopted.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from bot.staff import csrf
from bot.staff.tenancy import Principal, Role, Tenant
from bot.storage import Storage
from bot.storage.db import Document

COOKIE = "fb_session"


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    touch_every: timedelta = timedelta(seconds=15)  # writes of `last_seen` at most this often


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(
    storage: Storage, now: datetime, account_id: str, ip: str, policy: SessionPolicy
) -> tuple[str, Document]:
    """A new session for the account; returns the cookie value and the stored document."""
    token = secrets.token_urlsafe(32)
    absolute = now + policy.absolute
    doc: Document = {
        "_id": session_id(token),
        "account_id": account_id,
        "csrf": csrf.new_token(),
        "ip": ip,
        "created_at": now,
        "last_seen": now,
        "absolute_expires_at": absolute,
        "expires_at": min(now + policy.idle, absolute),
    }
    await storage.staff_sessions.insert(doc)
    return token, doc


async def principal_for_session(
    storage: Storage, now: datetime, token: str, policy: SessionPolicy
) -> Principal | None:
    """The staff member of a live session (moving its idle deadline), or None."""
    if not token or len(token) > 128:
        return None
    doc = await storage.staff_sessions.active(session_id(token), now)
    if doc is None:
        return None
    account = await storage.staff_accounts.by_id_for_session(str(doc["account_id"]))
    tenant = Tenant.of(str(account["tenant"])) if account else None
    if account is None or tenant is None:
        await storage.staff_sessions.delete(doc["_id"])
        return None
    if now - doc["last_seen"] >= policy.touch_every:
        await storage.staff_sessions.touch(doc, now, policy.idle)
    return Principal(
        kind="session",
        id=str(account["_id"]),
        label=str(account["email"]),
        tenant=tenant,
        role=Role(str(account["role"])),
        session_id=str(doc["_id"]),
        csrf_token=str(doc["csrf"]),
        must_change_password=bool(account.get("must_change_password")),
    )


def set_cookie(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Lax", secure=secure)


def clear_cookie(response: web.StreamResponse, *, secure: bool) -> None:
    response.del_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="Lax")
