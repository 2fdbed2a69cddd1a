"""お知らせ in the staff API and console: editors draft and submit, admins approve or reject,
viewers read, other municipalities get 404; the live recipient count, bad input refused with a
Japanese reason, the report, and a test send to the staff member's own LINE account (linked
with a one-time code in the chat)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from openapi_spec_validator import validate
from playwright.async_api import async_playwright, expect

from bot.clock import JST
from bot.domain.news import MAX_TEXT, Segment
from bot.news import deliver_news
from bot.staff.api import PREFIX
from bot.staff.resources.news import reason_label, segment_summary
from bot.storage.preferences import Topic
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from tests.stack import Stack
from tests.test_staff_support import PASSWORD, Browser, Site, add_registration

KAMIKATSU = "363022"  # 徳島県上勝町: these tests' own municipality
KAMIYAMA = "363421"  # 徳島県神山町: another municipality

BODY: dict[str, Any] = {
    "title": "上勝町ふるさと便り 春号",
    "content": {"kind": "text", "text": "春の彩（いろどり）の季節になりました。"},
    "segment": {},
    "schedule": {"kind": "now"},
}


def daytime(stack: Stack) -> None:
    """Move the clock to 10:00 tomorrow, Japan time: outside quiet hours."""
    target = (datetime.now(JST) + timedelta(days=1)).replace(hour=10, minute=0, second=0)
    stack.clock.offset = target - datetime.now(UTC)


async def news_ids(browser: Browser) -> set[str]:
    status, body = await browser.api("GET", "/news")
    assert status == 200, body
    return {item["news_id"] for item in body["items"]}


async def test_editor_drafts_admin_approves_viewer_reads_others_get_404(stack: Stack) -> None:
    site = Site(stack)
    try:
        editor = await site.staff(KAMIKATSU, "editor")
        admin = await site.staff(KAMIKATSU, "admin")
        viewer = await site.staff(KAMIKATSU, "viewer")
        other = await site.staff(KAMIYAMA, "admin")

        status, item = await editor.api("POST", "/news", BODY)
        assert status == 201, item
        news_id = item["news_id"]
        assert item["status"] == "draft" and item["status_label"] == "下書き"
        assert item["created_by"] == editor.email

        # Viewers read but write nothing; editors do not approve.
        assert (await viewer.api("GET", f"/news/{news_id}"))[0] == 200
        assert (await viewer.api("POST", "/news", BODY))[0] == 403
        assert (await viewer.api("POST", f"/news/{news_id}/submit"))[0] == 403
        assert (await editor.api("POST", f"/news/{news_id}/approve"))[0] == 403
        # Approving a draft that was never submitted is refused.
        status, body = await admin.api("POST", f"/news/{news_id}/approve")
        assert status == 409 and "承認待ち" in body["error"]["message"]

        status, item = await editor.api("POST", f"/news/{news_id}/submit")
        assert status == 200 and item["status"] == "pending", item
        assert item["submitted_by"] == editor.email
        # Submitted: no more edits.
        status, body = await editor.api("PUT", f"/news/{news_id}", BODY)
        assert status == 409, body

        # Another municipality sees nothing of it.
        assert news_id not in await news_ids(other)
        for method, path in (
            ("GET", f"/news/{news_id}"),
            ("PUT", f"/news/{news_id}"),
            ("POST", f"/news/{news_id}/approve"),
            ("POST", f"/news/{news_id}/cancel"),
            ("GET", f"/news/{news_id}/report"),
        ):
            status, body = await other.api(method, path, BODY if method == "PUT" else None)
            assert status == 404, (method, path, body)
        assert (await other.page(f"/admin/news/{news_id}"))[0] == 404

        status, item = await admin.api("POST", f"/news/{news_id}/approve")
        assert status == 200 and item["status"] == "approved", item
        assert item["approved_by"] == admin.email and item["next_run_at"]

        # A second item is rejected with a reason, edited and submitted again.
        status, second = await editor.api("POST", "/news", BODY | {"title": "差し戻される号"})
        second_id = second["news_id"]
        await editor.api("POST", f"/news/{second_id}/submit")
        status, body = await admin.api("POST", f"/news/{second_id}/reject", {"reason": ""})
        assert status == 422, body
        status, second = await admin.api(
            "POST", f"/news/{second_id}/reject", {"reason": "写真の説明を加えてください"}
        )
        assert second["status"] == "rejected"
        assert second["reject_reason"] == "写真の説明を加えてください"
        status, second = await editor.api("PUT", f"/news/{second_id}", BODY | {"title": "直した号"})
        assert status == 200 and second["title"] == "直した号" and second["status"] == "rejected"
        # An editor may drop their own item, not an approved one.
        assert (await editor.api("POST", f"/news/{news_id}/cancel"))[0] == 403
        status, second = await editor.api("POST", f"/news/{second_id}/cancel")
        assert status == 200 and second["status"] == "cancelled"

        # An API key (no person behind it) drafts news but has no LINE account to link.
        key, _ = await site.api_key(admin, "editor")
        status, body = await admin.api("POST", "/news", BODY, key=key)
        assert status == 201 and body["created_by"].startswith("key "), body
        status, body = await admin.api("POST", "/me/line/code", key=key)
        assert status == 403 and body["error"]["code"] == "staff_only"

        actions = [
            entry["action"]
            for entry in await stack.services.storage.audit.find(
                {"tenant": KAMIKATSU, "target": {"$in": [news_id, second_id]}}
            )
        ]
        for action in (
            "news_created",
            "news_submitted",
            "news_approved",
            "news_rejected",
            "news_updated",
            "news_cancelled",
        ):
            assert action in actions, actions
    finally:
        await site.close()


async def test_console_roles_and_pages(stack: Stack) -> None:
    site = Site(stack)
    try:
        editor = await site.staff(KAMIKATSU, "editor")
        admin = await site.staff(KAMIKATSU, "admin")
        viewer = await site.staff(KAMIKATSU, "viewer")

        status, html = await viewer.page("/admin/news")
        assert status == 200 and "お知らせ" in html and "新しいお知らせを作成" not in html
        assert (await viewer.page("/admin/news/new"))[0] == 403
        status, _, _ = await viewer.post("/admin/news/new", {"title": "x"})
        assert status == 403

        status, html = await editor.page("/admin/news/new")
        assert status == 200 and 'id="news-form"' in html
        await editor.page("/admin/news/new")
        form = {
            "title": "コンソールから作った号",
            "kind": "text",
            "text": "本文です。",
            "topic": "news",
            "schedule_kind": "now",
            "age_bands": "30s",
        }
        status, _, response = await editor.post("/admin/news/new", form)
        assert status == 303, await response.text()
        location = response.headers["Location"]
        match = re.match(r"/admin/news/([0-9a-f]+)\?notice=news_saved", location)
        assert match, location
        news_id = match.group(1)

        status, html = await editor.page(f"/admin/news/{news_id}")
        assert status == 200
        assert (
            "script-src 'self'"
            in (await editor.get_raw(f"/admin/news/{news_id}")).headers["Content-Security-Policy"]
        )
        assert '<script src="/admin/static/news-editor.js">' in html
        assert "<script>" not in html  # no inline script under the CSP
        assert "本文です。" in html  # the server-side preview
        status, _, _ = await editor.post(f"/admin/news/{news_id}", form | {"title": "直した号"})
        assert status == 303
        status, item = await editor.api("GET", f"/news/{news_id}")
        assert item["title"] == "直した号" and item["segment"]["age_bands"] == ["30s"]
        status, _, _ = await editor.post(f"/admin/news/{news_id}/submit", {})
        assert status == 303
        status, _, _ = await editor.post(f"/admin/news/{news_id}/approve", {})
        assert status == 403
        await admin.page(f"/admin/news/{news_id}")
        status, html, _ = await admin.post(f"/admin/news/{news_id}/reject", {"reason": ""})
        assert status == 422 and "差し戻しの理由を入力してください。" in html
        status, _, _ = await admin.post(f"/admin/news/{news_id}/approve", {})
        assert status == 303
        status, html = await viewer.page("/admin/news")
        assert "直した号" in html and "配信予定" in html
        # A form without the CSRF token is refused.
        status, _, _ = await editor.post(f"/admin/news/{news_id}/cancel", {}, csrf=None)
        assert status == 403
    finally:
        await site.close()


async def test_live_count_follows_the_segment(stack: Stack) -> None:
    storage = stack.services.storage
    await storage.registrations.col.delete_many({"place_code": KAMIKATSU})
    site = Site(stack)
    try:
        people = [
            await add_registration(
                storage, place_code=KAMIKATSU, residence_code="131016", age_band="30s"
            ),
            await add_registration(
                storage, place_code=KAMIKATSU, residence_code="271004", age_band="60s"
            ),
            await add_registration(
                storage,
                place_code=KAMIKATSU,
                residence_code="011002",
                age_band="30s",
                tier="premium",
            ),
        ]
        viewer = await site.staff(KAMIKATSU, "viewer")

        async def count(segment: dict[str, Any]) -> int:
            status, body = await viewer.api("POST", "/news/recipients", segment)
            assert status == 200, body
            return int(body["count"])

        assert await count({}) == 3
        assert await count({"regions": ["関東"]}) == 1
        assert await count({"regions": ["関東", "近畿"]}) == 2
        assert await count({"prefectures": ["01"]}) == 1
        assert await count({"age_bands": ["30s"]}) == 2
        assert await count({"tiers": ["premium"]}) == 1
        await storage.preferences.set(
            people[0]["user_id"], KAMIKATSU, Topic.NEWS, False, datetime.now(UTC)
        )
        assert await count({}) == 2
        assert await count({"topic": "benefits"}) == 3
        status, body = await viewer.api("POST", "/news/recipients", {"regions": ["月面"]})
        assert status == 422 and "居住地方" in body["error"]["message"]
    finally:
        await storage.registrations.col.delete_many({"place_code": KAMIKATSU})
        await site.close()


async def test_bad_input_is_refused_in_japanese_and_saves_nothing(stack: Stack) -> None:
    site = Site(stack)
    try:
        editor = await site.staff(KAMIKATSU, "editor")
        before = await news_ids(editor)
        past = (datetime.now(JST) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
        cases: list[tuple[dict[str, Any], str]] = [
            (
                BODY | {"content": {"kind": "text", "text": "あ" * (MAX_TEXT + 1)}},
                f"本文は{MAX_TEXT}文字以内にしてください。",
            ),
            (
                BODY
                | {
                    "content": {
                        "kind": "flex",
                        "alt_text": "春号",
                        "flex": {"type": "bubble", "body": {"type": "box", "contents": []}},
                    }
                },
                "Flexメッセージの形式が正しくありません",
            ),
            (BODY | {"schedule": {"kind": "at", "at": past}}, "配信日時が過ぎています"),
            (
                BODY | {"content": {"kind": "text", "text": "x", "image_url": "http://a.jp/x.png"}},
                "https://",
            ),
        ]
        for body, message in cases:
            status, answer = await editor.api("POST", "/news", body)
            assert status == 422, answer
            assert message in answer["error"]["message"], answer

        await editor.page("/admin/news/new")
        status, html, _ = await editor.post(
            "/admin/news/new",
            {
                "title": "壊れたFlex",
                "kind": "flex",
                "flex_json": '{"type": "bubble",\n "body": }',
                "alt_text": "春号",
                "topic": "news",
                "schedule_kind": "now",
            },
        )
        assert status == 422
        assert "Flexメッセージ（JSON）を読み取れません（2行目" in html
        assert "壊れたFlex" in html  # the form keeps what was typed
        status, html, _ = await editor.post(
            "/admin/news/new",
            {
                "title": "過去の日時",
                "kind": "text",
                "text": "本文",
                "topic": "news",
                "schedule_kind": "at",
                "at": past[:16],
            },
        )
        assert status == 422 and "配信日時が過ぎています" in html
        assert await news_ids(editor) == before
    finally:
        await site.close()


async def test_preview_and_openapi(stack: Stack) -> None:
    site = Site(stack)
    try:
        viewer = await site.staff(KAMIKATSU, "viewer")
        flex = {
            "type": "flex",
            "altText": "春号のご案内",
            "contents": {
                "type": "bubble",
                "body": {
                    "type": "box",
                    "layout": "vertical",
                    "contents": [{"type": "text", "text": "彩の季節"}],
                },
            },
        }
        status, body = await viewer.api(
            "POST", "/news/preview", {"title": "春号", "content": {"kind": "flex", "flex": flex}}
        )
        assert status == 200 and body["ok"], body
        last = body["messages"][-1]
        assert last["type"] == "flex" and last["altText"] == "春号のご案内"
        labels = [item["action"]["label"] for item in last["quickReply"]["items"]]
        assert "配信停止" in labels
        status, body = await viewer.api(
            "POST", "/news/preview", {"content": {"kind": "text", "text": ""}}
        )
        assert status == 200 and not body["ok"] and body["message"] == "本文を入力してください。"

        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{site.base}{PREFIX}/openapi.json") as response,
        ):
            document = await response.json()
        validate(document)
        assert {"/news", "/news/{news_id}", "/news/{news_id}/report", "/me/line"} <= set(
            document["paths"]
        )
        assert document["paths"]["/news/{news_id}/approve"]["post"]["x-required-role"] == "admin"
    finally:
        await site.close()


async def test_report_and_a_test_send_to_the_linked_staff_line(stack: Stack) -> None:
    storage = stack.services.storage
    site = Site(stack)
    daytime(stack)
    try:
        editor = await site.staff(KAMIKATSU, "editor")
        admin = await site.staff(KAMIKATSU, "admin")
        residents = [await stack.user(f"住民{i}") for i in range(3)]
        for chat in residents:
            await add_registration(storage, user_id=chat.user_id, place_code=KAMIKATSU)
        stopped = residents.pop()  # switched お知らせ off for 上勝町
        await storage.preferences.set(
            stopped.user_id, KAMIKATSU, Topic.NEWS, False, datetime.now(UTC)
        )

        status, item = await editor.api("POST", "/news", BODY)
        news_id = item["news_id"]

        status, body = await editor.api("POST", f"/news/{news_id}/test")
        assert status == 409 and "LINEアカウントが連携されていません" in body["error"]["message"]

        # Link the editor's LINE account: a code from the console, sent in the chat.
        status, html = await editor.page("/admin/news")
        status, html, _ = await editor.post("/admin/news/line/code", {})
        assert status == 200
        code = re.search(r'id="line-code">([A-Z0-9-]+)<', html)
        assert code, html
        staff_line = await stack.user("職員")
        await staff_line.send("職員連携")
        assert "連携コード" in staff_line.last_text
        await staff_line.send(code.group(1).lower())
        assert "連携しました" in staff_line.last_text, staff_line.last_text
        status, me = await editor.api("GET", "/me/line")
        assert status == 200 and me["linked"] is True
        linked = await storage.audit.find({"tenant": KAMIKATSU, "target": editor.email})
        assert {"staff_line_code_issued", "staff_line_linked"} <= {e["action"] for e in linked}
        assert not any(staff_line.user_id in str(e) for e in linked)  # no LINE id in the log
        # The code was spent: nobody else links with it.
        intruder = await stack.user("他人")
        await intruder.send("職員連携")
        await intruder.send(code.group(1))
        assert "この連携コードは使えません" in intruder.last_text

        # A test send reaches the staff member's own LINE, and nobody else.
        await editor.page(f"/admin/news/{news_id}")
        status, _, _ = await editor.post(f"/admin/news/{news_id}/test", {})
        assert status == 303
        received = [entry["message"] for entry in await staff_line.inbox()]
        assert any("春の彩" in m.get("text", "") for m in received), received
        assert await residents[0].inbox(wait=0.3) == []

        status, report = await editor.api("GET", f"/news/{news_id}/report")
        assert status == 200 and report["state"] == "scheduled" and report["run"] == 0

        await editor.api("POST", f"/news/{news_id}/submit")
        await admin.api("POST", f"/news/{news_id}/approve")
        services = stack.services
        await deliver_news(storage, stack.clock, services.line, services.renderer)
        for chat in residents:
            assert any("春の彩" in e["message"].get("text", "") for e in await chat.inbox())

        status, report = await admin.api("GET", f"/news/{news_id}/report")
        assert status == 200, report
        assert set(report) >= {
            "targeted",
            "sent",
            "skipped",
            "failed",
            "pending",
            "state",
            "state_label",
            "progress",
            "run",
            "reasons",
        }
        assert report["targeted"] == 3 and report["sent"] == 2 and report["pending"] == 0
        assert report["skipped"] == {"opted_out": 1} and report["failed"] == {}
        assert report["reasons"] == {"opted_out": "配信停止している"}
        assert await stopped.inbox(wait=0.3) == []
        assert report["state"] == "done" and report["progress"] == 1.0 and report["run"] == 1
        status, html = await admin.page(f"/admin/news/{news_id}")
        assert "配信レポート" in html and "配信完了" in html and "配信停止している: 1人" in html
    finally:
        stack.clock.offset = timedelta()
        await storage.registrations.col.delete_many({"place_code": KAMIKATSU})
        await site.close()


@pytest.mark.browser
async def test_the_form_counts_and_previews_while_typing_in_chromium(stack: Stack) -> None:
    """In the browser, under the console's CSP: the count follows the segment, the preview
    follows the text, a broken Flex JSON is named. Screenshot: var/screenshots/news-editor.png."""
    storage = stack.services.storage
    await storage.registrations.col.delete_many({"place_code": KAMIKATSU})
    for residence in ("131016", "131016", "271004"):  # two in 東京都, one in 大阪府
        await add_registration(storage, place_code=KAMIKATSU, residence_code=residence)
    site = Site(stack)
    errors: list[str] = []
    try:
        email, _ = await site.account(KAMIKATSU, "editor")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1360, "height": 1100}, locale="ja-JP")
            page.set_default_timeout(15000)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(  # every file the page loads must be there (the browser's favicon aside)
                "response",
                lambda r: (
                    errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )
            await page.goto(f"{site.base}/admin/login")
            await page.get_by_label("メールアドレス").fill(email)
            await page.get_by_label("パスワード").fill(PASSWORD)
            await page.get_by_role("button", name="ログイン").click()
            await page.get_by_role("link", name="お知らせ").click()
            await page.get_by_role("link", name="新しいお知らせを作成").click()

            count = page.locator("#recipient-count")
            await expect(count).to_have_text("3")
            await page.get_by_label("関東").check()
            await expect(count).to_have_text("2")
            await page.get_by_label("件名").fill("上勝町ふるさと便り")
            await page.locator("textarea[name=text]").fill("葉っぱビジネスの季節です。")
            preview = page.locator("#news-preview")
            await expect(preview.locator(".bubble.text").first).to_contain_text("葉っぱビジネス")
            await page.get_by_label("Flexメッセージ（JSON）").check()
            await page.locator("textarea[name=flex_json]").fill('{"type": "bubble",')
            await expect(page.locator("#preview-message")).to_contain_text("読み取れません")
            await page.get_by_label("テキスト", exact=True).check()
            await page.locator("textarea[name=text]").fill("葉っぱビジネスの季節です！")
            await expect(page.locator("#preview-message")).to_be_hidden()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "news-editor.png"), full_page=True)
            await page.get_by_role("button", name="下書きとして保存する").click()
            await expect(page.locator(".notice")).to_contain_text("下書きとして保存しました")
            await browser.close()
        assert errors == []
    finally:
        await storage.registrations.col.delete_many({"place_code": KAMIKATSU})
        await site.close()


def test_reasons_and_segments_in_words() -> None:
    assert reason_label("line_400") == "LINEが受け付けなかった（エラー400）"
    assert reason_label("blocked") == "ブロックされている"
    assert segment_summary(Segment()) == "登録者全員"
    words = segment_summary(Segment(age_bands=("30s",), regions=("関東",), prefectures=("01",)))
    assert words == "年代: 30代、お住まい: 関東・北海道"
