"""`python -m bot staff add`: create a staff account from the command line.

The first admin of a municipality is made this way (afterwards admins add staff in the
console). Without `--password-stdin` an initial password is generated, printed once, and must be
changed at the first login.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from bot.settings import Settings
from bot.staff.accounts import StaffError, add_staff
from bot.staff.audit import CLI
from bot.staff.tenancy import Role, Tenant
from bot.storage import Mongo, Storage


async def add_staff_command(
    settings: Settings, *, tenant: str, email: str, role: str, password: str | None
) -> None:
    mongo = Mongo(settings.mongodb_uri, settings.mongodb_db)
    try:
        await mongo.wait_until_up(settings.db_startup_timeout_s)
        storage = Storage(mongo)
        await storage.ensure_indexes()
        try:
            doc, generated = await add_staff(
                storage,
                datetime.now(UTC),
                tenant_code=tenant,
                email=email,
                role=role,
                actor=CLI,
                password=password,
            )
        except StaffError as exc:
            print(f"furusato-bot: {exc.message}", file=sys.stderr)
            raise SystemExit(1) from None
    finally:
        await mongo.close()
    place = Tenant.of(str(doc["tenant"]))
    print(
        f"スタッフを追加しました: {doc['email']}（{place.name if place else doc['tenant']}、"
        f"{Role(doc['role']).label}）"
    )
    if generated is not None:
        print(f"初期パスワード: {generated}")
        print("この表示は一度だけです。初回ログイン時にパスワードの変更が必要です。")
