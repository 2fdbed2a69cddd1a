"""`/api/v1/templates` and the console's テンプレート pages: save with checks, preview, history,
diffs, rollback, reset, audit, roles and tenant isolation (real web process and database)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.staff.resources.templates import diff_table
from bot.storage import Storage
from tests.test_staff_support import Site, open_site

DONE = "/templates/register/done"
OWN = "{{ place_name }}のふるさと住民になりました！\n登録番号：{{ number }}"


@pytest.fixture
async def site(mongo_uri: str, db_name: str) -> AsyncIterator[Site]:
    async with open_site(mongo_uri, db_name) as s:
        try:
            yield s
        finally:
            await clean(s.storage)


async def clean(storage: Storage) -> None:
    """Overrides must not leak into other tests (the database is shared by the session)."""
    await storage.template_versions.col.delete_many({})


def messages(detail: dict[str, Any]) -> list[str]:
    return [p["message"] for p in detail["error"].get("problems", [])]


async def test_list_and_detail_show_every_template_and_what_is_overridden(site: Site) -> None:
    editor = await site.staff("042056", "editor")
    status, listing = await editor.api("GET", "/templates")
    assert status == 200
    items = {item["name"]: item for item in listing["items"]}
    assert len(items) > 50 and "register/done" in items and "card/card" not in items
    done = items["register/done"]
    assert done["title"] == "登録完了のお知らせ" and done["editable"] and not done["overridden"]
    assert items["common/menu"]["editable"] is False
    assert all(item["title"] for item in items.values())

    status, detail = await editor.api("GET", DONE)
    assert status == 200
    assert detail["override"] is None and detail["source"] == detail["default_source"]
    assert "登録が完了しました" in detail["default_source"]
    assert set(detail["variables"]) >= {"place_name", "number", "has_card"}

    status, _ = await editor.api("GET", "/templates/register/nothing")
    assert status == 404
    status, _ = await editor.api("GET", "/templates/card/card")  # rendered by bot/cards.py
    assert status == 404


async def test_save_preview_history_rollback_and_reset(site: Site) -> None:
    editor = await site.staff("042056", "editor")
    status, detail = await editor.api("PUT", DONE, {"source": OWN, "base_version": 0})
    assert status == 200, detail
    assert detail["overridden"] and detail["version"] == 1
    assert detail["override"]["source"] == OWN and detail["source"] == OWN
    assert detail["override"]["updated_by"] == editor.email

    status, listing = await editor.api("GET", "/templates")
    done = next(i for i in listing["items"] if i["name"] == "register/done")
    assert done["overridden"] and done["version"] == 1

    # The same text again is no new version.
    status, detail = await editor.api("PUT", DONE, {"source": OWN})
    assert status == 200 and detail["version"] == 1

    second = OWN + "\nまたお越しください。"
    status, detail = await editor.api("PUT", DONE, {"source": second, "base_version": 1})
    assert status == 200 and detail["version"] == 2

    # Someone who started from version 1 cannot overwrite version 2 unknowingly.
    status, body = await editor.api("PUT", DONE, {"source": "古い{{ number }}", "base_version": 1})
    assert status == 409 and body["error"]["code"] == "conflict"
    assert "第2版" in body["error"]["message"]

    status, preview = await editor.api("POST", f"{DONE}/preview", {})
    assert status == 200 and preview["ok"]
    assert len(preview["samples"]) == 2  # one per branch in samples.yaml
    first = preview["samples"][0]["messages"][0]
    assert first["type"] == "text" and "宮城県気仙沼市のふるさと住民になりました！" in first["text"]
    assert "またお越しください。" in first["text"]

    status, history = await editor.api("GET", f"{DONE}/history")
    assert status == 200
    assert [(v["version"], v["action"], v["current"]) for v in history["items"]] == [
        (2, "save", True),
        (1, "save", False),
    ]

    status, detail = await editor.api("POST", f"{DONE}/rollback", {"version": 1})
    assert status == 200 and detail["version"] == 3 and detail["source"] == OWN
    status, history = await editor.api("GET", f"{DONE}/history")
    assert history["items"][0] == {**history["items"][0], "action": "rollback", "from_version": 1}

    status, _ = await editor.api("DELETE", DONE)
    assert status == 204
    status, detail = await editor.api("GET", DONE)
    assert detail["override"] is None and detail["version"] == 4
    assert detail["source"] == detail["default_source"]
    status, _ = await editor.api("DELETE", DONE)  # already the default: nothing new
    assert status == 204
    status, history = await editor.api("GET", f"{DONE}/history")
    assert [v["action"] for v in history["items"]] == ["reset", "rollback", "save", "save"]
    assert history["items"][0]["source"] is None

    # Back to an override from the history after the reset.
    status, detail = await editor.api("POST", f"{DONE}/rollback", {"version": 2})
    assert status == 200 and detail["source"] == second and detail["version"] == 5

    # Every change is in the audit log, with who and which version.
    admin = await site.staff("042056", "admin")
    status, audit = await admin.api("GET", "/audit")
    mine = [e for e in audit["items"] if e["target"] == "register/done"]
    assert [e["action"] for e in mine][:5] == [
        "template_rolled_back",
        "template_reset",
        "template_rolled_back",
        "template_saved",
        "template_saved",
    ]
    assert mine[0]["details"] == {"version": 5, "from_version": 2}
    assert mine[0]["actor"] == editor.email


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "ありがとうございます\n{% if has_card %}\nカード",
            "2行目: 「{% if %}」が閉じられていません",
        ),
        ("一行目\n二行目 {{ place_name }\n", "2行目"),
        ("登録番号：{{ numbr }}", "「numbr」という変数はありません"),
        ("{{ ''.__class__.__mro__ }}", "「__class__」は安全のため使えません"),
        ("{{ self.__init__ }}", "「__init__」は安全のため使えません"),
        (
            "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
            "「__subclasses__」は安全のため使えません",
        ),
        ("{{ config }}", "「config」という変数はありません"),
        ("{{ lipsum.__globals__ }}", "「__globals__」は安全のため使えません"),
        ("{{ cycler.__init__.__globals__ }}", "「__globals__」は安全のため使えません"),
        ("{{ 'あ' * 5001 }}", "5,000文字"),
        ("{% if not has_card %}カードはありません{% endif %}", "サンプル1の表示で、メッセージが空"),
        ("{% include 'register/terms.txt' %}", "「{% include %}」"),
    ],
)
async def test_bad_texts_are_refused_naming_the_line_and_the_reason(
    site: Site, source: str, expected: str
) -> None:
    editor = await site.staff("042056", "editor")
    status, body = await editor.api("PUT", DONE, {"source": source})
    assert status == 422, body
    assert body["error"]["code"] == "template_invalid" and body["error"]["field"] == "source"
    assert any(expected in m for m in messages(body)), messages(body)
    assert expected in body["error"]["message"] or len(messages(body)) > 1
    status, detail = await editor.api("GET", DONE)
    assert detail["override"] is None  # nothing was saved


async def test_json_templates_are_checked_as_line_messages(site: Site) -> None:
    editor = await site.staff("042056", "editor")
    path = "/templates/register/confirm"
    status, body = await editor.api(
        "PUT", path, {"source": '{"type": "text",\n "text": {{ place_name }}}'}
    )
    assert status == 422
    [problem] = body["error"]["problems"]
    assert problem["kind"] == "json" and (problem["line"], problem["column"]) == (2, 10)
    assert "出力の2行目・10文字目" in problem["message"]

    empty_flex = '{"type": "flex", "altText": "{{ place_name }}", "contents": {"type": "bubble"}}'
    status, body = await editor.api("PUT", path, {"source": empty_flex})
    assert status == 422 and "バブルが空です" in body["error"]["message"]

    status, body = await editor.api(
        "PUT", path, {"source": '{"type": "txt", "text": "{{ place_name }}"}'}
    )
    assert status == 422 and "LINEのメッセージとして正しくありません" in body["error"]["message"]

    good = (
        '{"type": "flex", "altText": "{{ place_name }}への登録内容", "contents": {"type": '
        '"bubble", "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text",'
        ' "text": "{{ place_name }}・{{ nickname }}", "wrap": true}]}}}'
    )
    status, detail = await editor.api("PUT", path, {"source": good})
    assert status == 200, detail
    status, preview = await editor.api("POST", f"{path}/preview", {})
    flex = preview["samples"][0]["messages"][0]
    assert flex["type"] == "flex"
    # Values are JSON-escaped, never evaluated: the sample nickname holds quotes and {{ }}.
    assert flex["contents"]["body"]["contents"][0]["text"].endswith('"tarō" \\ {{ }} </script>')


async def test_preview_uses_the_tenants_place_and_never_saves(site: Site) -> None:
    editor = await site.staff("212156", "viewer")  # 岐阜県山県市; a viewer may preview
    status, preview = await editor.api("POST", f"{DONE}/preview", {"source": OWN})
    assert status == 200 and preview["ok"]
    assert preview["samples"][0]["messages"][0]["text"].startswith("岐阜県山県市のふるさと住民")
    status, bad = await editor.api("POST", f"{DONE}/preview", {"source": "{{ nope }}"})
    assert status == 200 and not bad["ok"]
    assert bad["problems"][0]["kind"] == "variable" and bad["problems"][0]["line"] == 1
    status, detail = await editor.api("GET", DONE)
    assert detail["override"] is None


async def test_roles_national_templates_and_the_platform(site: Site) -> None:
    viewer = await site.staff("042056", "viewer")
    status, body = await viewer.api("PUT", DONE, {"source": OWN})
    assert status == 403
    status, _ = await viewer.api("DELETE", DONE)
    assert status == 403
    status, _ = await viewer.api("POST", f"{DONE}/rollback", {"version": 1})
    assert status == 403

    editor = await site.staff("042056", "editor")
    status, body = await editor.api("PUT", "/templates/common/menu", {"source": "メニュー"})
    assert status == 422 and body["error"]["code"] == "not_editable"
    assert "全国共通" in body["error"]["message"]

    operator = await site.staff("platform", "admin")
    status, listing = await operator.api("GET", "/templates")
    assert status == 200 and not any(i["overridden"] for i in listing["items"])
    status, body = await operator.api("PUT", DONE, {"source": OWN})
    assert status == 403 and "運営アカウント" in body["error"]["message"]

    # An API key with the editor role may save; a session needs the CSRF header.
    admin = await site.staff("042056", "admin")
    key, _ = await site.api_key(admin, "editor")
    status, detail = await admin.api("PUT", DONE, {"source": OWN}, key=key)
    assert status == 200 and detail["version"] == 1
    status, body = await editor.api("PUT", DONE, {"source": OWN + "!"}, csrf=False)
    assert status == 403 and body["error"]["code"] == "csrf_failed"
    status, body = await editor.api("PUT", DONE, {"source": OWN, "extra": 1})
    assert status == 422 and body["error"]["field"] == "extra"


async def test_one_municipality_never_sees_or_changes_anothers_texts(site: Site) -> None:
    date = await site.staff("072133", "editor")  # 福島県伊達市
    status, detail = await date.api("PUT", DONE, {"source": "伊達市です。{{ number }}"})
    assert status == 200 and detail["version"] == 1

    kesennuma = await site.staff("042056", "editor")
    status, detail = await kesennuma.api("GET", DONE)
    assert detail["override"] is None and detail["version"] is None
    status, listing = await kesennuma.api("GET", "/templates")
    assert not any(i["overridden"] for i in listing["items"])
    status, history = await kesennuma.api("GET", f"{DONE}/history")
    assert history["items"] == []
    # 伊達市's version 1 does not exist for 気仙沼市: 404, and nothing changes.
    status, body = await kesennuma.api("POST", f"{DONE}/rollback", {"version": 1})
    assert status == 404 and body["error"]["code"] == "not_found"
    status, detail = await date.api("GET", DONE)
    assert detail["source"] == "伊達市です。{{ number }}"
    # The prefecture (福島県) has its own texts too, not its municipalities'.
    fukushima = await site.staff("070009", "editor")
    status, detail = await fukushima.api("GET", DONE)
    assert detail["override"] is None


async def test_openapi_documents_the_template_operations(site: Site) -> None:
    editor = await site.staff()
    async with editor.http.get(f"{site.base}/api/v1/openapi.json") as response:
        document = await response.json()
    paths = document["paths"]
    assert set(paths["/templates/{area}/{name}"]) == {"get", "put", "delete"}
    assert paths["/templates/{area}/{name}"]["put"]["x-required-role"] == "editor"
    assert "post" in paths["/templates/{area}/{name}/preview"]
    assert "post" in paths["/templates/{area}/{name}/rollback"]
    assert "get" in paths["/templates/{area}/{name}/history"]


# --- console ---------------------------------------------------------------------------------


async def test_console_edit_preview_save_diff_rollback_and_reset(site: Site) -> None:
    editor = await site.staff("042056", "editor")
    status, html = await editor.page("/admin/templates")
    assert (
        status == 200
        and "登録完了のお知らせ" in html
        and 'href="/admin/templates/register/done"' in html
    )
    assert 'id="overridden-count">0<' in html

    async with editor.http.get(f"{site.base}/admin/templates/register/done") as response:
        html = await response.text()
        csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "/admin/static/line-preview.js" in html and "登録が完了しました" in html
    editor.csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]

    # The preview without JavaScript shows the problems of the text.
    status, html, _ = await editor.post(
        "/admin/templates/register/done/preview", {"source": "{{ nope }}", "base_version": "0"}
    )
    assert status == 200 and "「nope」という変数はありません" in html

    # A refused save keeps the text and says why; nothing is saved.
    status, html, _ = await editor.post(
        "/admin/templates/register/done", {"source": "<b>{{ x.__class__ }}", "base_version": "0"}
    )
    assert status == 422 and "「__class__」は安全のため使えません" in html
    assert "&lt;b&gt;{{ x.__class__ }}" in html  # escaped in the textarea

    # Browsers post CRLF line endings; the saved text has LF.
    status, _, response = await editor.post(
        "/admin/templates/register/done",
        {"source": "<b>{{ place_name }}</b>\r\n登録番号：{{ number }}", "base_version": "0"},
    )
    assert status == 303 and "notice=template_saved" in response.headers["Location"]
    status, html = await editor.page("/admin/templates/register/done")
    assert "この自治体の文面（第1版）" in html
    status, detail = await editor.api("GET", DONE)
    assert detail["source"] == "<b>{{ place_name }}</b>\n登録番号：{{ number }}"

    status, _, _ = await editor.post(
        "/admin/templates/register/done",
        {"source": "<i>{{ place_name }}</i>\n登録番号：{{ number }}", "base_version": "1"},
    )
    assert status == 303
    status, html = await editor.page("/admin/templates/register/done", diff="2")
    assert '<table class="diff"' in html and "第1版 → 第2版" in html
    assert "&lt;i&gt;" in html and "<i>" not in html  # the diff is escaped
    assert 'class="diff_sub"' in html or 'class="diff_chg"' in html

    # A stale form (base version 1) is refused; one click rolls back; the form needs CSRF.
    status, html, _ = await editor.post(
        "/admin/templates/register/done", {"source": "古い{{ number }}", "base_version": "1"}
    )
    assert status == 409 and "ほかの人が先に" in html
    status, _, _ = await editor.post(
        "/admin/templates/register/done/rollback", {"version": "1"}, csrf=None
    )
    assert status == 403
    status, _, response = await editor.post(
        "/admin/templates/register/done/rollback", {"version": "1"}
    )
    assert status == 303 and "notice=template_rolled_back" in response.headers["Location"]
    status, detail = await editor.api("GET", DONE)
    assert detail["version"] == 3 and detail["source"].startswith("<b>")

    status, _, response = await editor.post("/admin/templates/register/done/reset")
    assert status == 303 and "notice=template_reset" in response.headers["Location"]
    status, html = await editor.page("/admin/templates")
    assert 'id="overridden-count">0<' in html
    status, detail = await editor.api("GET", DONE)
    assert detail["override"] is None and detail["version"] == 4


async def test_console_is_read_only_for_viewers_and_national_templates(site: Site) -> None:
    viewer = await site.staff("042056", "viewer")
    status, html = await viewer.page("/admin/templates/register/done")
    assert status == 200 and "readonly" in html and 'id="save-button"' not in html
    status, _, _ = await viewer.post("/admin/templates/register/done", {"source": OWN})
    assert status == 403
    editor = await site.staff("042056", "editor")
    status, html = await editor.page("/admin/templates/common/menu")
    assert "全国共通の文面です" in html and 'id="save-button"' not in html
    status, html = await editor.page("/admin/templates/nothing/here")
    assert status == 404


def test_diff_table_escapes_and_marks_changes() -> None:
    html = diff_table("a\n<script>x</script>\n", "a\n<script>y</script>\n", "前", "後")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'class="diff"' in html and "前" in html and "後" in html


async def test_the_line_preview_is_one_file_served_to_console_and_simulator(site: Site) -> None:
    import aiohttp

    from bot.staff.console import SHARED_STATIC

    code = (SHARED_STATIC / "line-preview.js").read_text(encoding="utf-8")
    simulator = (SHARED_STATIC.parent / "emulator" / "static" / "app.js").read_text(
        encoding="utf-8"
    )
    assert "function renderFlexMessage" in code and "function renderFlexMessage" not in simulator
    async with aiohttp.ClientSession() as http:  # no login needed for static files
        for url in (
            f"{site.base}/admin/static/line-preview.js",
            f"{site.base}/admin/static/line-preview.css",
            f"{site.base}/admin/static/template-editor.js",
            f"{site.stack.emulator_url}/static/line-preview.js",
            f"{site.stack.emulator_url}/static/line-preview.css",
            f"{site.stack.emulator_url}/static/app.js",
        ):
            async with http.get(url) as response:
                assert response.status == 200, url
                assert (await response.text()).strip()
        async with http.get(f"{site.stack.emulator_url}/static/..%2F..%2Fapp.py") as response:
            assert response.status == 404
        async with http.get(f"{site.stack.emulator_url}/") as response:
            html = await response.text()
        assert html.index("static/line-preview.js") < html.index("static/app.js")
