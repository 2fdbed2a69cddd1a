"""The audit log of staff actions: who, tenant, action, target, when, from which address.

Entries never hold personal data of residents: targets are staff e-mails, key names, ids, and
export filters. Japanese labels for the console are in `ACTION_LABELS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from bson import ObjectId

from bot.staff.tenancy import Principal
from bot.storage import Storage


class Action(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"
    LOGOUT = "logout"
    PASSWORD_CHANGED = "password_changed"
    STAFF_ADDED = "staff_added"
    STAFF_REMOVED = "staff_removed"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    REGISTRANTS_EXPORTED = "registrants_exported"


ACTION_LABELS: dict[str, str] = {
    Action.LOGIN: "ログイン",
    Action.LOGIN_FAILED: "ログイン失敗",
    Action.LOGIN_LOCKED: "ログイン一時停止",
    Action.LOGOUT: "ログアウト",
    Action.PASSWORD_CHANGED: "パスワード変更",
    Action.STAFF_ADDED: "スタッフ追加",
    Action.STAFF_REMOVED: "スタッフ削除",
    Action.API_KEY_CREATED: "APIキー発行",
    Action.API_KEY_REVOKED: "APIキー無効化",
    Action.REGISTRANTS_EXPORTED: "登録者CSV出力",
}

ActorKind = Literal["staff", "api_key", "cli", "anonymous"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str | None
    label: str  # e-mail, key name, "cli", or the e-mail typed into the login form

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(
            "staff" if principal.kind == "session" else "api_key", principal.id, principal.label
        )


CLI = Actor("cli", None, "cli")


async def record(
    storage: Storage,
    now: datetime,
    action: Action,
    *,
    tenant: str | None,
    actor: Actor,
    target: str = "",
    ip: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    await storage.audit.insert(
        {
            "_id": ObjectId(),
            "at": now,
            "tenant": tenant,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor": actor.label[:254],
            "action": action.value,
            "target": target[:254],
            "ip": ip,
            "details": details or {},
        }
    )
