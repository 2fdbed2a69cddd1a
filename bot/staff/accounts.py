"""Staff accounts: adding and removing staff, logging in (with throttling), changing passwords.

The console, the JSON API and the command line all call these functions, so the rules (e-mail
and password checks, the audit entry, ending sessions) hold whichever way an action comes in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from bot.staff import passwords
from bot.staff.audit import CLI, Action, Actor, record
from bot.staff.tenancy import PLATFORM, Principal, Role, Tenant
from bot.storage import Storage
from bot.storage.db import Document
from bot.storage.staff import DuplicateEmail, ThrottlePolicy

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254


class StaffError(Exception):
    """A request about staff accounts that cannot be done; `message` is for the staff member."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def normalize_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email).strip().lower()


def email_problem(email: str) -> str | None:
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        return "メールアドレスの形式が正しくありません。"
    return None


@dataclass(frozen=True)
class LoginLimits:
    """Failures per account (5 → 15 min) and per client address (20 → 15 min: a town hall's
    staff share one address)."""

    account: ThrottlePolicy = field(
        default_factory=lambda: ThrottlePolicy(5, timedelta(minutes=15), timedelta(minutes=15))
    )
    ip: ThrottlePolicy = field(
        default_factory=lambda: ThrottlePolicy(20, timedelta(minutes=15), timedelta(minutes=15))
    )


@dataclass(frozen=True)
class LoginResult:
    account: Document | None = None  # set when the login succeeded
    locked_until: datetime | None = None  # set when logins are locked for the account or address


def _account_key(email: str) -> str:
    return f"account:{email}"


def _ip_key(ip: str) -> str:
    return f"ip:{ip}"


async def authenticate(
    storage: Storage, now: datetime, email: str, password: str, ip: str, limits: LoginLimits
) -> LoginResult:
    """Check an e-mail and password; failures are counted per account and per address."""
    email = normalize_email(email)[:MAX_EMAIL]
    throttle = storage.login_throttle
    locks = [
        until
        for until in (
            await throttle.locked_until(_account_key(email), now),
            await throttle.locked_until(_ip_key(ip), now),
        )
        if until is not None
    ]
    account = await storage.staff_accounts.by_email_for_login(email)
    tenant = str(account["tenant"]) if account else None
    anonymous = Actor("anonymous", None, email)
    if locks:
        await record(
            storage, now, Action.LOGIN_LOCKED, tenant=tenant, actor=anonymous, target=email, ip=ip
        )
        return LoginResult(locked_until=max(locks))
    stored = str(account["password_hash"]) if account else passwords.dummy_hash()
    ok = await passwords.verify_password(stored, password[: passwords.MAX_LENGTH])
    if account is None or not ok:
        until = [
            u
            for u in (
                await throttle.fail(_account_key(email), now, limits.account),
                await throttle.fail(_ip_key(ip), now, limits.ip),
            )
            if u is not None
        ]
        await record(
            storage, now, Action.LOGIN_FAILED, tenant=tenant, actor=anonymous, target=email, ip=ip
        )
        return LoginResult(locked_until=max(until) if until else None)
    await throttle.clear(_account_key(email))
    if passwords.needs_rehash(stored):
        new_hash = await passwords.hash_password(password)
        await storage.staff_accounts.replace_hash(account["_id"], stored, new_hash)
    await storage.staff_accounts.record_login(account["_id"], now)
    await record(
        storage,
        now,
        Action.LOGIN,
        tenant=tenant,
        actor=Actor("staff", str(account["_id"]), email),
        target=email,
        ip=ip,
    )
    return LoginResult(account=account)


async def add_staff(
    storage: Storage,
    now: datetime,
    *,
    tenant_code: str,
    email: str,
    role: Role | str,
    actor: Actor,
    password: str | None = None,
    must_change_password: bool | None = None,
    ip: str = "",
) -> tuple[Document, str | None]:
    """Create an account; returns it and the generated password (None when one was given).

    A generated password must be changed at the first login unless `must_change_password` says
    otherwise.
    """
    tenant = Tenant.of(tenant_code)
    if tenant is None:
        raise StaffError(
            "unknown_tenant",
            "自治体コードが見つかりません。6桁のコードを確認してください。",
            "tenant",
        )
    email = normalize_email(email)
    if (problem := email_problem(email)) is not None:
        raise StaffError("invalid_email", problem, "email")
    try:
        role = Role(role)
    except ValueError:
        raise StaffError(
            "invalid_role", "権限は admin・editor・viewer のいずれかです。", "role"
        ) from None
    generated: str | None = None
    if password is None:
        generated = password = passwords.generate_password()
    elif (problem := passwords.password_problem(password)) is not None:
        raise StaffError("invalid_password", problem, "password")
    doc: Document = {
        "_id": ObjectId(),
        "email": email,
        "tenant": tenant.code,
        "role": role.value,
        "password_hash": await passwords.hash_password(password),
        "must_change_password": (
            generated is not None if must_change_password is None else must_change_password
        ),
        "created_at": now,
        "updated_at": now,
        "password_changed_at": now,
        "last_login_at": None,
        "created_by": actor.label,
    }
    try:
        await storage.staff_accounts.insert(doc)
    except DuplicateEmail:
        raise StaffError(
            "email_taken", "このメールアドレスはすでに登録されています。", "email"
        ) from None
    await record(
        storage,
        now,
        Action.STAFF_ADDED,
        tenant=tenant.code,
        actor=actor,
        target=email,
        ip=ip,
        details={"role": role.value, "account_id": str(doc["_id"])},
    )
    return doc, generated


async def remove_staff(
    storage: Storage, now: datetime, principal: Principal, account_id: str, ip: str = ""
) -> Document | None:
    """Remove a staff member of the principal's tenant and end their sessions.

    None when the tenant has no such account. Nobody removes themselves, so a tenant always
    keeps the admin doing the removing.
    """
    if principal.staff_id == account_id:
        raise StaffError("cannot_remove_self", "ご自身のアカウントは削除できません。")
    doc = await storage.staff_accounts.delete_for(principal.tenant, account_id)
    if doc is None:
        return None
    await storage.staff_sessions.delete_for_account(str(doc["_id"]))
    await record(
        storage,
        now,
        Action.STAFF_REMOVED,
        tenant=principal.tenant.code,
        actor=Actor.of(principal),
        target=str(doc["email"]),
        ip=ip,
        details={"account_id": str(doc["_id"])},
    )
    return doc


async def change_password(
    storage: Storage,
    now: datetime,
    principal: Principal,
    *,
    current: str,
    new: str,
    confirm: str,
    limits: LoginLimits,
    ip: str = "",
) -> None:
    """Change the signed-in staff member's password; their other sessions end.

    A wrong current password counts as a failed login of the account.
    """
    account = await storage.staff_accounts.by_id_for_session(principal.id)
    if account is None or principal.kind != "session":
        raise StaffError("not_found", "アカウントが見つかりません。")
    email = str(account["email"])
    if await storage.login_throttle.locked_until(_account_key(email), now) is not None:
        raise StaffError(
            "locked", "試行回数が多すぎます。しばらくしてからもう一度お試しください。", "current"
        )
    if not await passwords.verify_password(str(account["password_hash"]), current):
        await storage.login_throttle.fail(_account_key(email), now, limits.account)
        raise StaffError("wrong_password", "現在のパスワードが正しくありません。", "current")
    if (problem := passwords.password_problem(new)) is not None:
        raise StaffError("invalid_password", problem, "new")
    if new != confirm:
        raise StaffError("mismatch", "確認用のパスワードが一致しません。", "confirm")
    if new == current:
        raise StaffError("same_password", "現在と違うパスワードにしてください。", "new")
    await storage.staff_accounts.set_password(
        account["_id"], await passwords.hash_password(new), now, must_change=False
    )
    ended = await storage.staff_sessions.delete_for_account(principal.id, keep=principal.session_id)
    await record(
        storage,
        now,
        Action.PASSWORD_CHANGED,
        tenant=principal.tenant.code,
        actor=Actor.of(principal),
        target=email,
        ip=ip,
        details={"other_sessions_ended": ended},
    )


async def ensure_demo_staff(
    storage: Storage,
    email: str = "demo@kesennuma.example.jp",
    municipality: str = "042056",
    role: str = "admin",
) -> str | None:
    """The demo's staff login: its password when the account was created now, else None."""
    if await storage.staff_accounts.by_email_for_login(normalize_email(email)) is not None:
        return None
    try:
        _, password = await add_staff(
            storage,
            datetime.now(UTC),
            tenant_code=municipality,
            email=email,
            role=role,
            actor=CLI,
            must_change_password=False,
        )
    except StaffError as exc:
        if exc.code == "email_taken":
            return None  # another process made it meanwhile
        raise
    return password


__all__ = [
    "PLATFORM",
    "LoginLimits",
    "LoginResult",
    "StaffError",
    "add_staff",
    "authenticate",
    "change_password",
    "ensure_demo_staff",
    "remove_staff",
]
