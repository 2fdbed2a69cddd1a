"""The template editor in Debian's Chromium: log in, edit with the live LINE preview, see a
problem named with its line, save, compare versions, roll back. Screenshot:
var/screenshots/template-editor.png."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_staff_support import PASSWORD, Site, open_site

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "var" / "screenshots"
DEFAULT_DONE = (ROOT / "templates" / "register" / "done.txt").read_text(encoding="utf-8")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is missing: apt-get install -y chromium fonts-noto-cjk",
    ),
]

FIRST = (
    "{{ place_name }}のふるさと住民になりました！\n"
    "登録番号：{{ number }}\n"
    "{% if has_card %}\n"
    "登録証をお送りします。市内74のお店で割引が受けられます。\n"
    "{% endif %}"
)
SECOND = FIRST.replace("ふるさと住民になりました！", "ふるさと住民になりました。ようこそ！")


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        try:
            yield s
        finally:
            await s.storage.template_versions.col.delete_many({})


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 1360, "height": 1000}, locale="ja-JP", timezone_id="Asia/Tokyo"
        )
        page = await context.new_page()
        page.set_default_timeout(15000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(  # every file the page loads must be there (the browser's favicon aside)
            "response",
            lambda r: (
                errors.append(f"{r.status} {r.url}")
                if r.status == 404 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        try:
            yield page
        finally:
            await browser.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


async def type_source(page: Page, text: str) -> None:
    editor = page.locator("#source")
    await editor.fill(text)


async def test_edit_preview_save_and_roll_back_in_the_browser(site: Site, page: Page) -> None:
    email, _ = await site.account("042056", "editor")
    await page.goto(f"{site.base}/admin/login")
    await page.get_by_label("メールアドレス").fill(email)
    await page.get_by_label("パスワード").fill(PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    await expect(page.get_by_role("link", name="テンプレート")).to_be_visible()

    await page.get_by_role("link", name="テンプレート").click()
    await expect(page.locator("h1")).to_have_text("テンプレート")
    await page.get_by_role("link", name="登録完了のお知らせ").click()
    await expect(page.locator("h1")).to_have_text("登録完了のお知らせ")

    # The preview draws the default text like LINE, with the tenant's place in the sample.
    preview = page.locator("#preview")
    await expect(preview.locator(".row.bot .bubble.text").first).to_contain_text(
        "宮城県気仙沼市のふるさと住民になりました"
    )
    await expect(page.locator("#sample-tabs .sample-tab")).to_have_count(2)
    await expect(page.locator("#gutter")).to_contain_text("1")

    # A mistake is named with its line while typing; the save button waits.
    await type_source(page, "ありがとうございます\n{{ place_name }\n")
    await expect(page.locator("#problems li").first).to_contain_text("2行目")
    await expect(page.locator("#save-button")).to_be_disabled()
    await expect(page.locator("#gutter .bad")).to_have_text("2")
    await type_source(page, "{{ ''.__class__ }}")
    await expect(page.locator("#problems li").first).to_contain_text("安全のため使えません")

    # A good text: the preview follows, for each sample.
    await type_source(page, FIRST)
    await expect(page.locator("#check-state")).to_contain_text("問題はありません")
    await expect(preview.locator(".bubble.text").first).to_contain_text("市内74のお店で割引")
    await page.locator("#sample-tabs .sample-tab").nth(1).click()
    await expect(preview.locator(".bubble.text").first).to_contain_text("福島県のふるさと住民")
    await expect(preview).not_to_contain_text("市内74のお店")
    await page.locator("#sample-tabs .sample-tab").nth(0).click()

    await page.locator("#save-button").click()
    await expect(page.locator(".notice")).to_contain_text("保存しました")
    await expect(page.locator("#template-state")).to_have_text("この自治体の文面（第1版）")
    await expect(page.locator("#source")).to_have_value(FIRST)

    await type_source(page, SECOND)
    await expect(preview.locator(".bubble.text").first).to_contain_text("ようこそ！")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "template-editor.png"
    await page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    await page.locator("#save-button").click()
    await expect(page.locator("#template-state")).to_have_text("この自治体の文面（第2版）")

    # The history shows what changed; one click brings version 1 back.
    history = page.locator("table.history tbody tr")
    await expect(history).to_have_count(2)
    await history.filter(has_text="第2版").get_by_role("link", name="差分").click()
    await expect(page.locator("#diff h3")).to_have_text("第1版 → 第2版")
    await expect(page.locator("#diff table.diff")).to_contain_text("ようこそ！")
    await page.screenshot(path=str(SCREENSHOTS / "template-editor-history.png"), full_page=True)
    await history.filter(has_text="第1版").get_by_role("button", name="この版に戻す").click()
    await expect(page.locator(".notice")).to_contain_text("以前の版に戻しました")
    await expect(page.locator("#template-state")).to_have_text("この自治体の文面（第3版）")
    await expect(page.locator("#source")).to_have_value(FIRST)
    await expect(history).to_have_count(3)
    await expect(history.first).to_contain_text("第1版の文面")

    # Back to the default text.
    await page.get_by_role("button", name="標準の文面に戻す").click()
    await expect(page.locator(".notice")).to_contain_text("標準の文面に戻しました")
    await expect(page.locator("#template-state")).to_have_text("標準の文面")
    await expect(page.locator("#source")).to_have_value(DEFAULT_DONE)


async def test_a_flex_template_previews_as_a_card(site: Site, page: Page) -> None:
    email, _ = await site.account("212156", "viewer")
    await page.goto(f"{site.base}/admin/login")
    await page.get_by_label("メールアドレス").fill(email)
    await page.get_by_label("パスワード").fill(PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    await page.goto(f"{site.base}/admin/templates/register/confirm")
    card = page.locator("#preview .fx-bubble")
    await expect(card).to_have_count(1)
    await expect(card).to_contain_text("岐阜県山県市")
    await expect(page.locator("#save-button")).to_have_count(0)  # a viewer only previews
