"""Staff register a program, import its member list from CSV (all rows or none, every bad row
reported with its line) and see how many members have linked."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bot.domain.programs import Program
from tests.stack import Stack
from tests.test_staff_support import Browser, Site

YUBARI = "012092"


async def upload_api(browser: Browser, program_id: str, data: bytes) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": browser.csrf, "Content-Type": "text/csv"}
    async with browser.http.post(
        f"{browser.base}/api/v1/programs/{program_id}/members", data=data, headers=headers
    ) as response:
        return response.status, await response.json()


async def test_program_import_and_linked_count(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    program_id = f"club-{secrets.token_hex(3)}"
    try:
        staff = await site.staff(YUBARI, "editor")
        for body, code in [
            (
                {"name": "夕張の会", "member_number_format": "KF-N{5"},
                "invalid_member_number_format",
            ),
            (
                {"name": "夕張の会", "member_number_format": "^[a-z]{3}$"},
                "invalid_member_number_format",
            ),
            ({"name": "", "member_number_format": "NNNN"}, "validation_error"),
        ]:
            status, answer = await staff.api("PUT", f"/programs/{program_id}", body)
            assert status == 422, answer
            assert answer["error"]["code"] == code, answer
        status, answer = await staff.api(
            "PUT", "/programs/Bad_Id", {"name": "x", "member_number_format": "NNNN"}
        )
        assert status == 422 and answer["error"]["field"] == "program_id"

        status, answer = await staff.api(
            "PUT",
            f"/programs/{program_id}",
            {"name": "夕張の会", "member_number_format": "KF-NNNNN"},
        )
        assert status == 200, answer
        assert answer["example"] == "KF-12345" and answer["member_count"] == 0

        other = await site.staff("015431", "editor")
        status, answer = await other.api(
            "PUT", f"/programs/{program_id}", {"name": "乗っ取り", "member_number_format": "NNNN"}
        )
        assert status == 409, answer
        status, _ = await other.api("POST", f"/programs/{program_id}/members")
        assert status == 404

        good = "会員番号,氏名,メール\nKF-00001,山田花子,hanako@example.jp\nkf00002,,\n\nＫＦ－００００３,鈴木,\n"
        status, answer = await upload_api(staff, program_id, good.encode())
        assert status == 200, answer
        assert answer["imported"] == 3 and answer["program"]["member_count"] == 3

        bad = (
            "会員番号,氏名,メール\n"
            "KF-00001,山田,\n"
            "KF-1,短い,\n"
            ",空,\n"
            "KF-00001,重複,\n"
            "KF-00009,メール,not-an-email\n"
        )
        status, answer = await upload_api(staff, program_id, bad.encode())
        assert status == 422, answer
        lines = [p["line"] for p in answer["error"]["problems"]]
        assert lines == [3, 4, 5, 6]
        assert "2行目" in answer["error"]["problems"][2]["message"]  # the duplicate's first line
        # Nothing of the bad file was imported: the earlier list stands.
        stored = await storage.programs.get(program_id)
        assert stored is not None and stored.member_count == 3
        numbers = await storage.program_members.numbers_in(
            program_id, stored.current_import, ["KF-00001", "KF-00002", "KF-00003", "KF-00009"]
        )
        assert numbers == {"KF-00001", "KF-00002", "KF-00003"}

        for data in (b"", "氏名\n山田\n".encode(), "会員番号\n".encode(), b"\xff\xfe\x00"):
            status, answer = await upload_api(staff, program_id, data)
            assert status == 422, (data, answer)

        # Shift_JIS replaces the list; older generations are gone.
        sjis = "会員番号,氏名\nKF-00002,佐藤\nKF-00004,高橋\n".encode("cp932")
        status, answer = await upload_api(staff, program_id, sjis)
        assert status == 200 and answer["imported"] == 2
        assert await storage.program_members.col.count_documents({"program_id": program_id}) == 2

        # Linked: residents who linked a number, and how many of those are on the list.
        program = Program(program_id, YUBARI, "夕張の会", "KF-NNNNN")
        now = datetime.now(UTC)
        await storage.program_links.link(program, f"U{secrets.token_hex(16)}", "KF-00002", now)
        await storage.program_links.link(program, f"U{secrets.token_hex(16)}", "KF-00099", now)
        status, answer = await staff.api("GET", f"/programs/{program_id}")
        assert answer["linked"] == 2 and answer["linked_in_list"] == 1
        status, answer = await staff.api("GET", "/programs")
        assert program_id in [p["program_id"] for p in answer["items"]]

        viewer = await site.staff(YUBARI, "viewer")
        status, _ = await upload_api(viewer, program_id, good.encode())
        assert status == 403
        audit = await storage.audit.col.count_documents(
            {"action": "program_members_imported", "target": program_id}
        )
        assert audit == 2
    finally:
        await storage.programs.col.delete_one({"_id": program_id})
        await storage.program_members.col.delete_many({"program_id": program_id})
        await storage.program_links.col.delete_many({"program_id": program_id})
        await site.close()


async def test_console_registers_a_program_and_imports_a_list(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    program_id = f"club-{secrets.token_hex(3)}"
    try:
        staff = await site.staff(YUBARI, "admin")
        status, html = await staff.page("/admin/programs")
        assert status == 200 and "取組を登録" in html
        status, html, _ = await staff.post(
            "/admin/programs",
            {"program_id": program_id, "name": "夕張の会", "member_number_format": "N{3"},
        )
        assert status == 422 and "正規表現" in html
        status, html, _ = await staff.post(
            "/admin/programs",
            {"program_id": program_id, "name": "夕張の会", "member_number_format": "NNNN"},
        )
        assert status == 303, html
        status, html = await staff.page("/admin/programs")
        assert "夕張の会" in html and "例: 1234" in html

        async def upload(content: bytes) -> tuple[int, str]:
            form = aiohttp.FormData()
            form.add_field("csrf_token", staff.csrf)
            form.add_field("file", content, filename="名簿.csv", content_type="text/csv")
            async with staff.http.post(
                f"{staff.base}/admin/programs/{program_id}/members",
                data=form,
                allow_redirects=False,
            ) as response:
                return response.status, await response.text()

        status, html = await upload("会員番号\n12\n0001\n0001\n".encode())
        assert status == 422
        assert "名簿.csv 2行目" in html and "名簿.csv 4行目" in html
        stored = await storage.programs.get(program_id)
        assert stored is not None and stored.member_count == 0

        status, _ = await upload("会員番号\n0001\n0002\n".encode())
        assert status == 303
        stored = await storage.programs.get(program_id)
        assert stored is not None and stored.member_count == 2
    finally:
        await storage.programs.col.delete_one({"_id": program_id})
        await storage.program_members.col.delete_many({"program_id": program_id})
        await site.close()
