"""Garbage calendars: staff import a 5374.jp CSV set (all or nothing), export it, edit it."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.domain.gomi5374 import export_5374
from bot.garbage import demo_calendar
from tests.stack import Stack
from tests.test_staff_support import Site

CODE = "042056"


def demo_files() -> dict[str, str]:
    return {k: v.decode("utf-8") for k, v in export_5374(demo_calendar(CODE)).items()}


BAD_AREA_DAYS = (
    "地名,センター,燃やすごみ,資源ごみ\n"
    "本庁地区,,月 木,水2\n"
    "唐桑地区,,火9,水2\n"  # line 3: no 9th Tuesday
    "大島地区,どこかのセンター,月,\n"  # line 4: unknown center
    "鹿折地区,,月 ?,水4\n"  # line 5: unreadable token
)


async def test_import_export_and_all_or_nothing(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    try:
        await storage.garbage_calendars.remove(CODE)
        staff = await site.staff(CODE, "editor")
        status, body = await staff.api("GET", "/garbage")
        assert status == 404

        status, body = await staff.api("PUT", "/garbage", {"files": demo_files()})
        assert status == 200, body
        assert [a["name"] for a in body["areas"]] == ["本庁地区", "唐桑地区"]
        assert body["areas"][0]["schedules"]["燃やすごみ"] == "毎週月曜・毎週木曜"
        assert await storage.garbage_calendars.get(CODE) == demo_calendar(CODE)

        # A bad set: every bad row reported, nothing changed.
        status, body = await staff.api(
            "PUT", "/garbage", {"files": {"area_days.csv": BAD_AREA_DAYS}}
        )
        assert status == 422, body
        problems: list[dict[str, Any]] = body["error"]["problems"]
        assert {(p["file"], p["line"]) for p in problems} >= {
            ("area_days.csv", 3),
            ("area_days.csv", 4),
            ("area_days.csv", 5),
        }
        assert all(p["reason"] for p in problems)
        assert await storage.garbage_calendars.get(CODE) == demo_calendar(CODE)

        # No area_days.csv at all.
        status, body = await staff.api("PUT", "/garbage", {"files": {"center.csv": "名称\n"}})
        assert status == 422 and body["error"]["problems"]

        status, body = await staff.api("GET", "/garbage/export")
        assert status == 200
        assert body["files"]["area_days.csv"].startswith("地名,センター,燃やすごみ")

        status, body = await staff.api("PATCH", "/garbage", {"fallback": "センターへどうぞ"})
        assert status == 200 and body["fallback"] == "センターへどうぞ"
        status, body = await staff.api("PATCH", "/garbage", {"centers": []})
        assert status == 422  # the areas use the center

        viewer = await site.staff(CODE, "viewer")
        status, _ = await viewer.api("PUT", "/garbage", {"files": demo_files()})
        assert status == 403
        other = await site.staff("072133", "admin")
        status, _ = await other.api("GET", "/garbage")
        assert status == 404
    finally:
        await storage.garbage_calendars.remove(CODE)
        await site.close()


async def test_console_upload_reports_lines_and_imports_nothing(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    try:
        await storage.garbage_calendars.remove(CODE)
        staff = await site.staff(CODE, "admin")
        status, html = await staff.page("/admin/garbage")
        assert status == 200 and "まだありません" in html

        def form(files: dict[str, str]) -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("csrf_token", staff.csrf)
            for name, text in files.items():
                data.add_field(
                    "files", text.encode("cp932"), filename=name, content_type="text/csv"
                )
            return data

        url = site.base + "/admin/garbage/import"
        async with staff.http.post(url, data=form({"area_days.csv": BAD_AREA_DAYS})) as response:
            html = await response.text()
            assert response.status == 422
        assert "area_days.csv 3行目" in html and "area_days.csv 5行目" in html
        assert "何も取り込んでいません" in html
        assert await storage.garbage_calendars.get(CODE) is None

        async with staff.http.post(url, data=form(demo_files()), allow_redirects=False) as response:
            assert response.status == 303
        status, html = await staff.page("/admin/garbage")
        assert "唐桑地区" in html and "毎週火曜・毎週土曜" in html
        async with staff.http.get(site.base + "/admin/garbage/export/area_days.csv") as response:
            assert response.status == 200
            assert "本庁地区" in (await response.read()).decode("utf-8-sig")
    finally:
        await storage.garbage_calendars.remove(CODE)
        await site.close()


async def test_staff_edit_fallback_centers_suspensions_and_holidays(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    try:
        await storage.garbage_calendars.put(demo_calendar(CODE), stack.clock.now())
        staff = await site.staff(CODE, "editor")
        status, body = await staff.api(
            "PATCH",
            "/garbage",
            {
                "suspensions": [{"start": "2027-12-30", "end": "2028-01-03"}],
                "holidays": {"resources": "moved:+1"},
            },
        )
        assert status == 200, body
        assert body["suspensions"][0]["start"] == "2027-12-30"
        assert [c["holiday_rule"] for c in body["categories"] if c["id"] == "resources"] == [
            "moved:+1"
        ]
        status, body = await staff.api("PATCH", "/garbage", {"holidays": {"nope": "skipped"}})
        assert status == 422
        status, body = await staff.api("PATCH", "/garbage", {"holidays": {"cans": "sometimes"}})
        assert status == 422

        status, html = await staff.page("/admin/garbage")
        assert status == 200 and "2027-12-30,2028-01-03" in html
        form = {
            "fallback": "<b>シール</b>を貼ってください",
            "notes": "注意1\n注意2",
            "suspensions": "2027-12-29,2028-01-04\n2027-08-14,2027-08-16,唐桑地区",
            "holiday_burnable": "skipped",
            "center_name": "新センター",
            "center_address_0": "気仙沼市1",
            "center_hours_0": "9時〜",
        }
        status, html, _ = await staff.post("/admin/garbage/settings", form)
        assert status == 422  # the areas still use the old center: nothing saved
        calendar = await storage.garbage_calendars.get(CODE)
        assert calendar is not None and calendar.centers[0].name.startswith("気仙沼市")
        form["center_name"] = calendar.centers[0].name
        status, html, _ = await staff.post("/admin/garbage/settings", form)
        assert status == 303, html
        calendar = await storage.garbage_calendars.get(CODE)
        assert calendar is not None
        assert calendar.fallback == "<b>シール</b>を貼ってください"
        assert calendar.notes == ("注意1", "注意2")
        assert calendar.centers[0].address == "気仙沼市1"
        assert [(s.start.isoformat(), s.area) for s in calendar.suspensions] == [
            ("2027-08-14", "唐桑地区"),
            ("2027-12-29", None),
        ]
        assert calendar.category("burnable").holiday.handling.value == "skipped"
        status, html = await staff.page("/admin/garbage")
        assert "&lt;b&gt;シール&lt;/b&gt;" in html
        form["suspensions"] = "2027-12-29"
        status, html, _ = await staff.post("/admin/garbage/settings", form)
        assert status == 422 and "1行目" in html
    finally:
        await storage.garbage_calendars.remove(CODE)
        await site.close()
