"""Staff define benefits (API and console), publish and unpublish them; tenancy and roles."""

from __future__ import annotations

import secrets
from typing import Any

from bot.domain.programs import Program
from tests.stack import Stack
from tests.test_staff_support import Site


def new_id(prefix: str = "b") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


BODY: dict[str, Any] = {
    "title": "市内の温泉 入浴料100円引き",
    "description": "市内の温泉施設で入浴料が100円引きになります。",
    "kind": "facility",
    "eligibility": {"types": ["visit"], "outside_prefecture": True, "min_days_registered": 7},
    "valid_from": "2027-04-01",
    "valid_until": "2028-03-31",
    "partner_shops": [{"name": "気仙沼温泉", "address": "宮城県気仙沼市1-1"}],
}


async def test_api_saves_publishes_and_unpublishes_a_benefit(stack: Stack) -> None:
    site = Site(stack)
    benefit_id = new_id()
    try:
        staff = await site.staff("042056", "editor")
        status, body = await staff.api("PUT", f"/benefits/{benefit_id}", BODY)
        assert status == 200, body
        assert body["status"] == "draft" and body["kind_label"] == "施設"
        assert body["eligibility"]["outside_prefecture"] is True
        assert body["eligibility"]["tiers"] == ["basic", "premium"]
        assert body["how_to_use"] == "登録証を提示してください"
        assert body["partner_shops"] == [{"name": "気仙沼温泉", "address": "宮城県気仙沼市1-1"}]

        status, body = await staff.api("POST", f"/benefits/{benefit_id}/publish")
        assert status == 200 and body["status"] == "published" and body["published_at"]
        stored = await stack.services.storage.benefits.get("042056", benefit_id)
        assert stored is not None and stored.published and stored.notices_pending

        # An edit keeps it published.
        status, body = await staff.api(
            "PUT", f"/benefits/{benefit_id}", BODY | {"title": "入浴料200円引き"}
        )
        assert (
            status == 200 and body["status"] == "published" and body["title"] == "入浴料200円引き"
        )

        status, body = await staff.api("POST", f"/benefits/{benefit_id}/unpublish")
        assert status == 200 and body["status"] == "draft"
        status, body = await staff.api("GET", "/benefits")
        assert benefit_id in [item["benefit_id"] for item in body["items"]]

        # Another municipality neither sees, publishes nor removes it.
        other = await site.staff("072133", "admin")
        status, body = await other.api("GET", "/benefits")
        assert benefit_id not in [item["benefit_id"] for item in body["items"]]
        for method, path in [
            ("GET", f"/benefits/{benefit_id}"),
            ("POST", f"/benefits/{benefit_id}/publish"),
            ("DELETE", f"/benefits/{benefit_id}"),
        ]:
            status, _ = await other.api(method, path)
            assert status == 404, (method, path)

        audit = stack.services.storage.audit.col
        for action in ("benefit_saved", "benefit_published", "benefit_unpublished"):
            assert await audit.count_documents({"action": action, "target": benefit_id}) >= 1

        status, _ = await staff.api("DELETE", f"/benefits/{benefit_id}")
        assert status == 204
        status, _ = await staff.api("GET", f"/benefits/{benefit_id}")
        assert status == 404
    finally:
        await stack.services.storage.benefits.remove("042056", benefit_id)
        await site.close()


async def test_bad_benefits_are_refused_and_viewers_cannot_write(stack: Stack) -> None:
    site = Site(stack)
    try:
        editor = await site.staff("042056", "editor")
        for path, body, words in [
            ("/benefits/ok", BODY | {"title": ""}, "title"),
            ("/benefits/ok", BODY | {"kind": "casino"}, "kind"),
            (
                "/benefits/ok",
                BODY | {"valid_from": "2028-01-01", "valid_until": "2027-01-01"},
                "期間",
            ),
            ("/benefits/ok", BODY | {"eligibility": {"tiers": []}}, "tiers"),
            ("/benefits/ok", BODY | {"eligibility": {"program_id": "nope"}}, "既存の取組"),
            ("/benefits/ok", BODY | {"surprise": 1}, "surprise"),
            ("/benefits/BAD%20ID", BODY, "特典ID"),
        ]:
            status, answer = await editor.api("PUT", path, body)
            assert status == 422, (body, answer)
            assert words in str(answer), answer
        status, _ = await editor.api("GET", "/benefits/ok")
        assert status == 404

        viewer = await site.staff("042056", "viewer")
        status, _ = await viewer.api("PUT", "/benefits/x", BODY)
        assert status == 403
        status, _ = await viewer.api("POST", "/benefits/x/publish")
        assert status == 403
        status, html = await viewer.page("/admin/benefits")
        assert status == 200 and "特典を追加" not in html
    finally:
        await site.close()


async def test_a_benefit_may_require_a_program_of_the_same_place(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    program_id, benefit_id = new_id("club"), new_id()
    try:
        await storage.programs.put(
            Program(program_id, "042056", "テストの会", "NNNN"), stack.clock.now()
        )
        editor = await site.staff("042056", "editor")
        body = BODY | {"eligibility": {"program_id": program_id}}
        status, answer = await editor.api("PUT", f"/benefits/{benefit_id}", body)
        assert status == 200, answer
        assert answer["eligibility"]["program_name"] == "テストの会"
        other = await site.staff("072133", "editor")
        status, answer = await other.api("PUT", f"/benefits/{benefit_id}", body)
        assert status == 422  # not their program
    finally:
        await storage.benefits.remove("042056", benefit_id)
        await storage.benefits.remove("072133", benefit_id)
        await storage.programs.col.delete_one({"_id": program_id})
        await site.close()


async def test_console_adds_edits_publishes_and_removes_a_benefit(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    benefit_id = new_id()
    try:
        staff = await site.staff("042056", "admin")
        status, html = await staff.page("/admin/benefits")
        assert status == 200 and "特典を追加" in html
        form = {
            "benefit_id": benefit_id,
            "title": "<b>朝市</b>で10%引き",
            "description": "朝市の全店で10%引き",
            "kind": "shop_discount",
            "valid_from": "",
            "valid_until": "2028-03-31",
            "how_to_use": "",
            "partner_shops": "朝市A,宮城県気仙沼市2-2\n朝市B",
            "min_days_registered": "0",
            "program_id": "",
            "tiers": "basic",
        }
        status, html, _ = await staff.post("/admin/benefits", form)
        assert status == 303, html
        stored = await storage.benefits.get("042056", benefit_id)
        assert stored is not None and not stored.published
        assert [s.name for s in stored.benefit.partner_shops] == ["朝市A", "朝市B"]
        assert stored.benefit.partner_shops[0].address == "宮城県気仙沼市2-2"
        assert {t.value for t in stored.benefit.eligibility.tiers} == {"basic"}
        assert stored.benefit.how_to_use == "登録証を提示してください"

        status, html = await staff.page("/admin/benefits")
        assert "&lt;b&gt;朝市&lt;/b&gt;" in html and "非公開" in html
        status, html = await staff.page("/admin/benefits", edit=benefit_id)
        assert 'value="2028-03-31"' in html

        status, html, _ = await staff.post("/admin/benefits", form | {"valid_from": "2029-01-01"})
        assert status == 422 and "利用" in html

        status, _, _ = await staff.post(f"/admin/benefits/{benefit_id}/publish", {}, csrf=False)
        assert status == 403
        await staff.page("/admin/benefits")
        status, _, _ = await staff.post(f"/admin/benefits/{benefit_id}/publish", {})
        assert status == 303
        stored = await storage.benefits.get("042056", benefit_id)
        assert stored is not None and stored.published
        await staff.page("/admin/benefits")
        status, _, _ = await staff.post(f"/admin/benefits/{benefit_id}/unpublish", {})
        assert status == 303
        stored = await storage.benefits.get("042056", benefit_id)
        assert stored is not None and not stored.published
        await staff.page("/admin/benefits")
        status, _, _ = await staff.post(f"/admin/benefits/{benefit_id}/delete", {})
        assert status == 303
        assert await storage.benefits.get("042056", benefit_id) is None
    finally:
        await storage.benefits.remove("042056", benefit_id)
        await site.close()
