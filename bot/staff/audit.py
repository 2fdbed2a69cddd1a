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
    TEMPLATE_SAVED = "template_saved"
    TEMPLATE_ROLLED_BACK = "template_rolled_back"
    TEMPLATE_RESET = "template_reset"
    QUESTION_SAVED = "question_saved"
    QUESTION_REMOVED = "question_removed"
    BENEFIT_SAVED = "benefit_saved"
    BENEFIT_REMOVED = "benefit_removed"
    BENEFIT_PUBLISHED = "benefit_published"
    BENEFIT_UNPUBLISHED = "benefit_unpublished"
    PROGRAM_SAVED = "program_saved"
    PROGRAM_MEMBERS_IMPORTED = "program_members_imported"
    GARBAGE_IMPORTED = "garbage_imported"
    GARBAGE_UPDATED = "garbage_updated"
    GARBAGE_REMOVED = "garbage_removed"
    GARBAGE_CATEGORY_SAVED = "garbage_category_saved"
    GARBAGE_CATEGORY_REMOVED = "garbage_category_removed"
    GARBAGE_AREA_SAVED = "garbage_area_saved"
    GARBAGE_AREA_REMOVED = "garbage_area_removed"
    GARBAGE_SCHEDULE_SAVED = "garbage_schedule_saved"
    GARBAGE_SCHEDULE_REMOVED = "garbage_schedule_removed"
    NEWS_CREATED = "news_created"
    NEWS_UPDATED = "news_updated"
    NEWS_SUBMITTED = "news_submitted"
    NEWS_APPROVED = "news_approved"
    NEWS_REJECTED = "news_rejected"
    NEWS_CANCELLED = "news_cancelled"
    NEWS_TEST_SENT = "news_test_sent"
    STAFF_LINE_CODE_ISSUED = "staff_line_code_issued"
    STAFF_LINE_LINKED = "staff_line_linked"
    STAFF_LINE_UNLINKED = "staff_line_unlinked"


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
    Action.TEMPLATE_SAVED: "テンプレート保存",
    Action.TEMPLATE_ROLLED_BACK: "テンプレートを以前の版に戻す",
    Action.TEMPLATE_RESET: "テンプレートを標準に戻す",
    Action.QUESTION_SAVED: "独自の質問を保存",
    Action.QUESTION_REMOVED: "独自の質問を削除",
    Action.BENEFIT_SAVED: "特典を保存",
    Action.BENEFIT_REMOVED: "特典を削除",
    Action.BENEFIT_PUBLISHED: "特典を公開",
    Action.BENEFIT_UNPUBLISHED: "特典を非公開",
    Action.PROGRAM_SAVED: "既存の取組を保存",
    Action.PROGRAM_MEMBERS_IMPORTED: "会員名簿を取り込み",
    Action.GARBAGE_IMPORTED: "ごみカレンダーを取り込み",
    Action.GARBAGE_UPDATED: "ごみカレンダーを編集",
    Action.GARBAGE_REMOVED: "ごみカレンダーを削除",
    Action.GARBAGE_CATEGORY_SAVED: "ごみの分別を保存",
    Action.GARBAGE_CATEGORY_REMOVED: "ごみの分別を削除",
    Action.GARBAGE_AREA_SAVED: "ごみ収集の地区を保存",
    Action.GARBAGE_AREA_REMOVED: "ごみ収集の地区を削除",
    Action.GARBAGE_SCHEDULE_SAVED: "ごみの収集日を保存",
    Action.GARBAGE_SCHEDULE_REMOVED: "ごみの収集日を削除",
    Action.NEWS_CREATED: "お知らせを作成",
    Action.NEWS_UPDATED: "お知らせを編集",
    Action.NEWS_SUBMITTED: "お知らせの承認を依頼",
    Action.NEWS_APPROVED: "お知らせを承認",
    Action.NEWS_REJECTED: "お知らせを差し戻し",
    Action.NEWS_CANCELLED: "お知らせを取り消し",
    Action.NEWS_TEST_SENT: "お知らせをテスト配信",
    Action.STAFF_LINE_CODE_ISSUED: "LINE連携コードを発行",
    Action.STAFF_LINE_LINKED: "LINEアカウントを連携",
    Action.STAFF_LINE_UNLINKED: "LINE連携を解除",
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
