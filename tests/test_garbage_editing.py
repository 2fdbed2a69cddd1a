"""Staff edit a garbage calendar one part at a time (categories, areas, collection rules) through
the API and the console, without a CSV; residents see the new dates in the chat."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given

from bot.domain.garbage import (
    Area,
    Calendar,
    CalendarEditError,
    Category,
    Schedule,
    Suspension,
    Weekday,
    Weekly,
    date_label,
    make_rule,
    next_collection_days,
    put_area,
    put_category,
    put_schedule,
    remove_category,
    rule_fields,
)
from bot.domain.gomi5374 import export_5374, parse_5374
from bot.domain.stays import Stay
from tests.stack import Stack
from tests.test_domain_garbage_properties import rules
from tests.test_staff_support import Browser, Site, add_registration

CODE = "042072"  # 名取市
OTHER = "042099"  # 多賀城市
AREA = "閖上地区"
AREA_PATH = "/garbage/areas/" + quote(AREA)


# --- the editing functions, directly ----------------------------------------------------------


@given(rules)
def test_the_form_fields_of_a_rule_make_the_same_rule(rule: Any) -> None:
    assert make_rule(rule_fields(rule)) == rule


def small_calendar() -> Calendar:
    return Calendar(
        municipality_code=CODE,
        areas=(Area(AREA, schedules=(Schedule("burnable", (Weekly(Weekday.MON),)),)),),
        categories=(Category("burnable", "燃やすごみ"), Category("cans", "缶")),
        suspensions=(Suspension(date(2027, 8, 13), date(2027, 8, 16), area=AREA),),
    )


def test_editing_keeps_the_calendar_whole_and_readable() -> None:
    calendar = small_calendar()
    renamed = put_area(calendar, AREA, "閖上東地区")
    assert renamed.suspensions[0].area == "閖上東地区"
    assert renamed.area("閖上東地区").schedules == calendar.area(AREA).schedules
    without = remove_category(calendar, "burnable")
    assert without.area(AREA).schedules == () and [c.id for c in without.categories] == ["cans"]
    edited = put_category(
        calendar, "cans", "缶・びん", ["飲料缶", "びん"], calendar.categories[1].holiday
    )
    assert edited.category("cans").name == "缶・びん" and len(edited.category("cans").items) == 2
    scheduled = put_schedule(edited, AREA, "cans", [Weekly(Weekday.FRI)], [4, 10])
    assert scheduled.area(AREA).schedule("cans") == Schedule(
        "cans", (Weekly(Weekday.FRI),), frozenset({4, 10})
    )
    for changed in (renamed, without, edited, scheduled):
        assert parse_5374(export_5374(changed), municipality_code=CODE) == changed
    with pytest.raises(CalendarEditError, match="地区の名前を入力してください"):
        put_area(calendar, None, " ")


def next_weekdays(today: date, weekdays: set[int], count: int = 3) -> list[str]:
    """The next `count` dates on these weekdays from today, as ISO strings (no holidays)."""
    found: list[str] = []
    day = today
    while len(found) < count:
        if day.weekday() in weekdays:
            found.append(day.isoformat())
        day += timedelta(days=1)
    return found


async def start_calendar(staff: Browser) -> dict[str, Any]:
    """燃やすごみ (every Monday and Thursday, collected on holidays) in one area."""
    status, body = await staff.api(
        "PUT",
        "/garbage/categories/burnable",
        {"name": "燃やすごみ", "items": ["生ごみ", "紙くず"], "holiday": "collected"},
    )
    assert status == 200, body
    status, body = await staff.api("PUT", AREA_PATH, {"lat": 38.17, "lng": 140.95})
    assert status == 200, body
    status, body = await staff.api(
        "PUT",
        f"{AREA_PATH}/schedules/burnable",
        {"rules": [{"kind": "weekly", "weekday": "月"}, {"kind": "weekly", "weekday": "木"}]},
    )
    assert status == 200, body
    return body


def schedule_of(body: dict[str, Any], area: str, category_id: str) -> dict[str, Any]:
    found = next(a for a in body["areas"] if a["name"] == area)
    return next(s for s in found["schedule_rules"] if s["category_id"] == category_id)


async def test_api_builds_a_calendar_and_refuses_bad_input(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    try:
        for code in (CODE, OTHER):
            await storage.garbage_calendars.remove(code)
        staff = await site.staff(CODE, "editor")
        today = stack.clock.now_jst().date()
        body = await start_calendar(staff)
        burnable = schedule_of(body, AREA, "burnable")
        assert burnable["label"] == "毎週月曜・毎週木曜"
        assert burnable["cell"] == "月 木"
        assert burnable["next_days"] == next_weekdays(today, {0, 3})
        assert body["areas"][0]["lat"] == 38.17

        # Every kind of rule, with a month filter: stored as the domain's rules.
        status, body = await staff.api(
            "PUT",
            "/garbage/categories/resources",
            {"name": "資源ごみ", "items": ["新聞"], "holiday": "moved:+1", "notes": "ひもで縛る"},
        )
        assert status == 200, body
        rules = [
            {"kind": "nth", "weekday": "水", "nth": 2},
            {"kind": "every_other_week", "weekday": "金", "day": "2027-01-08"},
            {"kind": "date", "day": "2027-03-20"},
        ]
        status, body = await staff.api(
            "PUT", f"{AREA_PATH}/schedules/resources", {"rules": rules, "months": [4, 5, 6]}
        )
        assert status == 200, body
        resources = schedule_of(body, AREA, "resources")
        assert resources["label"] == "4・5・6月: 第2水曜・隔週金曜・2027年3月20日(土)"
        assert [r["kind_label"] for r in resources["rules"]] == [
            "第n 曜日",
            "隔週（起点日）",
            "特定の日付",
        ]
        assert resources["months"] == [4, 5, 6]
        calendar = await storage.garbage_calendars.get(CODE)
        assert calendar is not None
        assert calendar.category("resources").holiday.offset_days == 1
        assert calendar.category("resources").notes == "ひもで縛る"

        # Bad input: a specific message each time, and nothing changes.
        before = await storage.garbage_calendars.get(CODE)
        bad: list[tuple[str, str, Any, str]] = [
            (
                "PUT",
                f"{AREA_PATH}/schedules/burnable",
                {"rules": [{"kind": "weekly"}]},
                "曜日を選んでください",
            ),
            (
                "PUT",
                f"{AREA_PATH}/schedules/burnable",
                {"rules": [{"kind": "nth", "weekday": "火", "nth": 6}]},
                "「n」は1〜5",
            ),
            (
                "PUT",
                f"{AREA_PATH}/schedules/burnable",
                {"rules": [{"kind": "every_other_week", "weekday": "金"}]},
                "起点日",
            ),
            (
                "PUT",
                f"{AREA_PATH}/schedules/burnable",
                {
                    "rules": [
                        {"kind": "weekly", "weekday": "月"},
                        {"kind": "weekly", "weekday": "火曜x"},
                    ]
                },
                "2つ目の収集日: 曜日「火曜x」を読めません",
            ),
            ("PUT", f"{AREA_PATH}/schedules/burnable", {"rules": []}, "1つ以上"),
            (
                "PUT",
                f"{AREA_PATH}/schedules/burnable",
                {"rules": [{"kind": "date", "day": "2027-01-09"}], "months": [4]},
                "月の指定は",
            ),
            (
                "PUT",
                f"{AREA_PATH}/schedules/burnable",
                {"rules": [{"kind": "weekly", "weekday": "月"}], "months": [13]},
                "1〜12",
            ),
            ("PUT", "/garbage/categories/cans", {"name": "燃やすごみ"}, "すでにあります"),
            ("PUT", "/garbage/categories/Cans!", {"name": "缶"}, "分別ID"),
            (
                "PUT",
                "/garbage/categories/cans",
                {"name": "缶", "holiday": "たぶん"},
                "祝日の扱い「たぶん」",
            ),
            ("PUT", AREA_PATH, {"lat": 38.1}, "緯度と経度は両方"),
            ("PUT", AREA_PATH, {"lat": 91, "lng": 140}, "緯度は -90〜90"),
            (
                "PUT",
                AREA_PATH,
                {"center": "どこかのセンター"},
                "収集センター「どこかのセンター」はありません",
            ),
            ("PUT", "/garbage/areas/" + quote("新地区"), {"name": AREA}, "すでにあります"),
        ]
        for method, path, payload, reason in bad:
            status, answer = await staff.api(method, path, payload)
            assert status == 422, (path, payload, answer)
            assert reason in answer["error"]["message"], (payload, answer)
        assert await storage.garbage_calendars.get(CODE) == before

        # Unknown parts answer 404.
        for method, path, payload in (
            (
                "PUT",
                "/garbage/areas/" + quote("ない地区") + "/schedules/burnable",
                {"rules": [{"kind": "weekly", "weekday": "月"}]},
            ),
            (
                "PUT",
                f"{AREA_PATH}/schedules/nothing",
                {"rules": [{"kind": "weekly", "weekday": "月"}]},
            ),
            ("DELETE", "/garbage/categories/nothing", None),
            ("DELETE", "/garbage/areas/" + quote("ない地区"), None),
        ):
            status, _ = await staff.api(method, path, payload)
            assert status == 404, path

        # Audited in the tenant.
        audit = storage.audit.col
        assert await audit.count_documents(
            {"tenant": CODE, "action": "garbage_schedule_saved", "target": f"{AREA}/resources"}
        )

        # Rename the area (its suspension follows), then remove parts.
        status, _ = await staff.api(
            "PATCH",
            "/garbage",
            {"suspensions": [{"start": "2027-08-13", "end": "2027-08-16", "area": AREA}]},
        )
        assert status == 200
        status, body = await staff.api(
            "PUT", AREA_PATH, {"name": "閖上東地区", "lat": 38.17, "lng": 140.95}
        )
        assert status == 200, body
        assert [a["name"] for a in body["areas"]] == ["閖上東地区"]
        assert body["suspensions"][0]["area"] == "閖上東地区"
        assert schedule_of(body, "閖上東地区", "burnable")["label"] == "毎週月曜・毎週木曜"
        new_path = "/garbage/areas/" + quote("閖上東地区")
        status, body = await staff.api("DELETE", f"{new_path}/schedules/resources")
        assert status == 200 and len(body["areas"][0]["schedule_rules"]) == 1
        status, body = await staff.api("DELETE", "/garbage/categories/resources")
        assert status == 200 and [c["id"] for c in body["categories"]] == ["burnable"]
        status, body = await staff.api("DELETE", "/garbage/categories/burnable")
        assert status == 422 and "最後の分別" in body["error"]["message"]
        status, body = await staff.api("DELETE", new_path)
        assert status == 200 and body["areas"] == [] and body["suspensions"] == []

        # Roles and tenants: a viewer may not edit; another municipality never sees this one.
        viewer = await site.staff(CODE, "viewer")
        status, _ = await viewer.api("PUT", "/garbage/categories/cans", {"name": "缶"})
        assert status == 403
        other = await site.staff(OTHER, "editor")
        status, _ = await other.api("PUT", AREA_PATH, {})
        assert status == 404  # it has no calendar of its own yet
        status, _ = await other.api("PUT", "/garbage/categories/cans", {"name": "缶"})
        assert status == 200
        mine = await storage.garbage_calendars.get(CODE)
        assert mine is not None and [c.id for c in mine.categories] == ["burnable"]
        theirs = await storage.garbage_calendars.get(OTHER)
        assert theirs is not None and [c.id for c in theirs.categories] == ["cans"]
        operator = await site.staff("platform", "admin")
        status, _ = await operator.api("PUT", "/garbage/categories/cans", {"name": "缶"})
        assert status == 404
    finally:
        for code in (CODE, OTHER):
            await storage.garbage_calendars.remove(code)
        await site.close()


async def test_console_forms_and_the_next_collection_days(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    try:
        await storage.garbage_calendars.remove(CODE)
        staff = await site.staff(CODE, "editor")
        status, html = await staff.page("/admin/garbage")
        assert "分別を追加して、カレンダーを作り始める" in html

        status, html = await staff.page("/admin/garbage/category")
        assert status == 200 and "祝日は収集なし" in html
        form = {
            "new": "1",
            "category_id": "burnable",
            "name": "燃やすごみ",
            "items": "生ごみ\n紙くず\n",
            "holiday": "skipped",
            "notes": "",
        }
        status, html, _ = await staff.post("/admin/garbage/category", form)
        assert status == 303, html
        status, html = await staff.page("/admin/garbage/area")
        status, html, _ = await staff.post(
            "/admin/garbage/area",
            {"current": "", "name": AREA, "center": "", "lat": "38.1", "lng": ""},
        )
        assert status == 422 and "緯度と経度は両方" in html
        status, html, _ = await staff.post(
            "/admin/garbage/area",
            {"current": "", "name": AREA, "center": "", "lat": "北", "lng": "1"},
        )
        assert status == 422 and "緯度は数で入力してください" in html
        status, html, _ = await staff.post(
            "/admin/garbage/area", {"current": "", "name": AREA, "center": "", "lat": "", "lng": ""}
        )
        assert status == 303, html
        status, html = await staff.page("/admin/garbage")
        assert status == 200 and AREA in html and "収集なし" in html

        status, html = await staff.page("/admin/garbage/schedule", area=AREA, category="burnable")
        assert status == 200
        for label in ("毎週 曜日", "第n 曜日", "隔週（起点日）", "特定の日付", "月の指定"):
            assert label in html
        rows = {
            "kind": ["weekly", "nth", ""],
            "weekday": ["火", "", ""],
            "nth": ["", "", ""],
            "day": ["", "", ""],
        }

        async def post_rows(rows: dict[str, list[str]]) -> tuple[int, str]:
            data = [("csrf_token", staff.csrf), ("area", AREA), ("category", "burnable")]
            data += [("category_name", "燃やすごみ"), ("exists", "0")]
            for index in range(len(rows["kind"])):
                data += [(key, rows[key][index]) for key in ("kind", "weekday", "nth", "day")]
            async with staff.http.post(
                site.base + "/admin/garbage/schedule", data=data, allow_redirects=False
            ) as response:
                return response.status, await response.text()

        status, html = await post_rows(rows)
        assert status == 422 and "2つ目の収集日: 第n 曜日の収集には、曜日を選んでください" in html
        assert "何も変更していません" in html
        calendar = await storage.garbage_calendars.get(CODE)
        assert calendar is not None and calendar.area(AREA).schedules == ()

        rows["kind"][1], rows["weekday"][1], rows["nth"][1] = "nth", "土", "1"
        status, html = await post_rows(rows)
        assert status == 303, html
        calendar = await storage.garbage_calendars.get(CODE)
        assert calendar is not None
        schedule = calendar.area(AREA).schedule("burnable")
        assert schedule is not None and schedule.label == "毎週火曜・第1土曜"

        # The page shows the next collection days, holidays skipped as chosen.
        today = stack.clock.now_jst().date()
        status, html = await staff.page("/admin/garbage")
        assert "毎週火曜・第1土曜" in html and "次の収集日" in html
        first = next_collection_days(calendar, AREA, "burnable", today)
        assert len(first) == 3 and all(d.weekday() in (1, 5) for d in first)
        assert "、".join(date_label(d) for d in first) in html

        # The form shows the stored rules again, for editing.
        status, html = await staff.page("/admin/garbage/schedule", area=AREA, category="burnable")
        assert 'value="火" selected' in html and 'value="1" selected' in html

        # Another tenant's staff cannot open or change it; a viewer cannot edit.
        other = await site.staff(OTHER, "editor")
        status, _ = await other.page("/admin/garbage/schedule", area=AREA, category="burnable")
        assert status == 404
        status, _, _ = await other.post(
            "/admin/garbage/category/delete", {"category_id": "burnable"}
        )
        assert status == 404
        viewer = await site.staff(CODE, "viewer")
        status, _ = await viewer.page("/admin/garbage/category", id="burnable")
        assert status == 403

        status, html, _ = await staff.post("/admin/garbage/area/delete", {"name": AREA})
        assert status == 303
        calendar = await storage.garbage_calendars.get(CODE)
        assert calendar is not None and calendar.areas == ()
        assert await storage.audit.col.count_documents(
            {"tenant": CODE, "action": "garbage_area_removed", "target": AREA}
        )
    finally:
        await storage.garbage_calendars.remove(CODE)
        await site.close()


async def test_a_rule_edit_changes_the_dates_in_the_residents_summary(stack: Stack) -> None:
    site = Site(stack)
    storage = stack.services.storage
    try:
        await storage.garbage_calendars.remove(CODE)
        staff = await site.staff(CODE, "editor")
        await start_calendar(staff)
        chat = await stack.user("名取さん")
        await add_registration(storage, user_id=chat.user_id, place_code=CODE)
        start = stack.clock.now_jst().date() + timedelta(days=1)
        end = start + timedelta(days=6)  # a week: every weekday once
        await storage.stays.add(chat.user_id, Stay(CODE, start, end, area=AREA), stack.clock.now())

        def day_on(weekday: int) -> str:
            day = start + timedelta(days=(weekday - start.weekday()) % 7)
            return date_label(day)

        await chat.send("滞在予定")
        await chat.tap("ごみの日を見る")
        assert day_on(0) in chat.last_text and day_on(2) not in chat.last_text

        status, body = await staff.api(
            "PUT",
            f"{AREA_PATH}/schedules/burnable",
            {"rules": [{"kind": "weekly", "weekday": "水"}]},
        )
        assert status == 200, body
        await chat.send("滞在予定")
        await chat.tap("ごみの日を見る")
        assert day_on(2) in chat.last_text and day_on(0) not in chat.last_text
    finally:
        await storage.garbage_calendars.remove(CODE)
        await site.close()
