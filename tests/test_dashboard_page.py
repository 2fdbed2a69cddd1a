"""The dashboard page: figures and charts for a municipality, a prefecture (its municipalities
side by side) and the operators (the nation against the government's targets).

Each test registers in a prefecture of its own, where no other test registers (the database is
shared by the whole session): 高知県, 香川県, 佐賀県, 愛媛県."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.domain.registration import Tier
from bot.jobs.snapshots import take_snapshots
from tests.test_staff_support import Site, open_site
from tests.test_stats_support import application, new_user

KOCHI_CITY, MUROTO = "392014", "392022"  # 高知市, 室戸市 (高知県)
KAGAWA, TAKAMATSU, MARUGAME = "370002", "372013", "372021"  # 香川県, 高松市, 丸亀市
SAGA, SAGA_CITY, KARATSU = "410004", "412015", "412023"  # 佐賀県, 佐賀市, 唐津市


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        yield s


def figure(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}">([0-9,]+)<', html)
    assert match, element_id
    return int(match.group(1).replace(",", ""))


def section(html: str, title: str) -> str:
    """The card whose heading contains `title`."""
    start = html.index(title)
    end = html.find("</section>", start)
    return html[start:end]


async def register(site: Site, city: str = KOCHI_CITY, other: str = MUROTO) -> str:
    """`city`: three people (one of them Premium); `other` (same prefecture): one of them again."""
    store, now = site.storage.registrations, site.stack.clock.now()
    first, second, third = new_user(), new_user(), new_user()
    created = await store.create_basic(
        application(first, city, types=("bearer", "visit"), age_band="40s"), now
    )
    await store.create_basic(application(second, city, residence_code="271004"), now)
    await store.create_basic(application(third, city, connection="fan"), now)
    await store.create_basic(application(first, other, age_band="40s"), now)
    assert created.registration is not None
    await store.set_tier(created.registration["_id"], Tier.PREMIUM, None, now)
    return first


async def test_a_municipality_sees_its_figures_charts_and_trend(site: Site) -> None:
    await register(site)
    clock = site.stack.clock
    today = clock.now_jst().date()
    await take_snapshots(site.storage, clock, today - timedelta(days=2))
    city = await site.staff(KOCHI_CITY, "viewer")
    status, html = await city.page("/admin/")
    assert status == 200 and "高知県高知市の登録状況" in html
    assert figure(html, "people") == 3 and figure(html, "registrations") == 3
    assert "/admin/static/dashboard.css" in html and "<script" not in html
    for title in ("区分別", "関わり方別", "お住まいの都道府県別", "年代別", "きっかけ別"):
        assert f">{title}</h2>" in html
    tiers = section(html, "区分別")
    assert re.search(r"ベーシック登録</th>.*?>\s*2<small>人", tiers, re.S)
    assert re.search(r"プレミアム登録</th>.*?>\s*1<small>人", tiers, re.S)
    residence = section(html, "お住まいの都道府県別")
    assert re.search(r"東京都</th>.*?>\s*2<small>人", residence, re.S) and "大阪府" in residence
    ages = section(html, "年代別")
    assert re.search(r"40代</th>.*?>\s*1<small>人", ages, re.S) and "70歳以上" in ages
    assert "応援・ファン" in section(html, "きっかけ別")
    assert "担い手" in section(html, "関わり方別")
    assert 'class="bar-people"' in html and 'width="100.0"' in html  # the widest bar is full
    # Trend: the snapshot and today; one line (in a municipality 実人数 = 延べ人数).
    trend = section(html, "人数の推移")
    assert "<polyline" in trend and 'class="line-registrations"' not in trend
    assert "（現在）" in trend and f"{today.month}月{today.day}日" in trend
    assert "国の目標" not in html and "市区町村別" not in html
    status, html = await city.page("/admin/", days="365")
    assert status == 200 and 'href="/admin/?days=365" aria-current="true"' in html
    status, html = await city.page("/admin/", days="nonsense")
    assert status == 200 and 'href="/admin/?days=30" aria-current="true"' in html


async def test_a_prefecture_sees_its_municipalities_together(site: Site) -> None:
    await register(site, TAKAMATSU, MARUGAME)
    prefecture = await site.staff(KAGAWA, "viewer")
    status, html = await prefecture.page("/admin/")
    assert status == 200 and "香川県の登録状況" in html
    # Three people; 高松市 3 + 丸亀市 1 + 香川県 3 (made together, once per person).
    assert figure(html, "people") == 3 and figure(html, "registrations") == 7
    assert figure(html, "own") == 3
    places = section(html, "市区町村別")
    assert re.search(r'市区町村">高松市</td><td data-label="登録者数" class="num">3<', places)
    assert re.search(r'市区町村">丸亀市</td><td data-label="登録者数" class="num">1<', places)
    assert places.index("高松市") < places.index("丸亀市")
    assert 'class="bar-people"' in places
    # Both measures now: two bars and two lines.
    assert 'class="bar-registrations"' in html
    assert "実人数・延べ人数の推移" in html
    assert "国の目標" not in html


async def test_operators_see_the_nation_against_the_targets(site: Site) -> None:
    await register(site, SAGA_CITY, KARATSU)
    operator = await site.staff("platform", "viewer")
    status, html = await operator.page("/admin/")
    assert status == 200 and "全国の登録状況" in html
    people, registrations = figure(html, "people"), figure(html, "registrations")
    assert people >= 3 and registrations >= 7
    targets = section(html, "国の目標")
    assert f'<progress max="10000000" value="{people}"' in targets
    assert f'<progress max="100000000" value="{registrations}"' in targets
    assert "10,000,000" in targets and "100,000,000" in targets and "達成率" in targets
    prefectures = section(html, "都道府県別")
    assert re.search(r'都道府県">佐賀県</td><td data-label="実人数" class="num">3<', prefectures)
    assert "個々の登録者は表示しません" in html


async def test_residences_beyond_the_top_ten_are_summed_as_other(site: Site) -> None:
    # 松山市: people from twelve prefectures, the last two with one each.
    store, now = site.storage.registrations, site.stack.clock.now()
    residences = [
        "011002", "022012", "032018", "042021", "052019", "062014",
        "072010", "082015", "092011", "102016", "112011", "122025",
    ]  # fmt: skip
    for i, code in enumerate(residences):
        for _ in range(1 if i >= 10 else 2):
            await store.create_basic(application(new_user(), "382019", residence_code=code), now)
    city = await site.staff("382019", "viewer")
    _, html = await city.page("/admin/")
    residence = section(html, "お住まいの都道府県別")
    assert residence.count('<th scope="row" class="bar-label">') == 11
    assert re.search(r"その他</th>.*?>\s*2<small>人", residence, re.S)
    assert "それ以外の合計（その他）" in residence
    assert "千葉県" not in residence and "埼玉県" not in residence
    _, stats = await city.api("GET", "/stats")
    assert len(stats["by_residence_prefecture"]) == 12  # the API has them all
