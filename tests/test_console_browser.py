"""The staff console in Debian's Chromium: log in, read the dashboard, approve a Premium
application, and the resident hears it in LINE. Screenshots under var/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from tests.test_premium_support import apply, open_premium_site, png, resident, texts
from tests.test_staff_support import PASSWORD, Site

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is missing: apt-get install -y chromium fonts-noto-cjk",
    ),
]

PLACE = "172014"  # 石川県金沢市: no other test registers there


@pytest.fixture
async def site(mongo_uri: str, own_db_name: str) -> AsyncIterator[Site]:
    # A database of its own: rich-menu set-up left by earlier tests' apps must not delay it.
    async with open_premium_site(mongo_uri, own_db_name) as s:
        yield s


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 1180, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo"
        )
        page = await context.new_page()
        page.set_default_timeout(15000)
        try:
            yield page
        finally:
            await browser.close()


async def test_log_in_read_the_dashboard_and_approve_premium(site: Site, page: Page) -> None:
    chat, _ = await resident(site, "金沢の担い手", place_code=PLACE)
    await apply(chat, png())
    await chat.inbox(wait=0.2)
    email, _ = await site.account(PLACE, "editor")

    await page.goto(f"{site.base}/admin/login")
    await page.get_by_label("メールアドレス").fill(email)
    await page.get_by_label("パスワード").fill(PASSWORD)
    await page.get_by_role("button", name="ログイン").click()

    await expect(page.locator("h1")).to_have_text("ダッシュボード")
    await expect(page.locator("#people")).to_contain_text("1")
    await expect(page.locator("#registrations")).to_contain_text("1")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    await page.get_by_role("link", name="プレミアム審査").first.click()
    await expect(page.locator("h1")).to_have_text("プレミアム審査")
    await page.get_by_role("link", name="確認する").first.click()
    await expect(page.locator("h1")).to_have_text("プレミアム登録の申請")
    document = page.locator("img[src$='/document']")
    await expect(document).to_be_visible()
    assert await document.evaluate("img => img.naturalWidth") > 0
    await page.get_by_role("button", name="承認する").click()
    await expect(page.locator(".notice")).to_contain_text("申請者にLINEでお知らせしました")
    await page.screenshot(path=str(SCREENSHOTS / "premium-review.png"), full_page=True)

    assert "承認されました" in texts(await chat.inbox())
    registration = await site.storage.registrations.find(chat.user_id, PLACE)
    assert registration is not None and registration["tier"] == "premium"
