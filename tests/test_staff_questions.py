"""Municipality questions: staff add one, the next resident registering is asked it."""

from __future__ import annotations

from tests.stack import Stack
from tests.test_staff_support import Site


async def test_a_question_added_by_staff_is_asked_in_the_chat(stack: Stack) -> None:
    site = Site(stack)
    try:
        staff = await site.staff("042056", "editor")
        question = {
            "prompt": "気仙沼を知ったきっかけは？",
            "kind": "choice",
            "choices": ["テレビ", "友人"],
        }
        status, body = await staff.api("PUT", "/questions/kikkake", question)
        assert status == 200, body
        assert body["question_id"] == "kikkake"

        chat = await stack.user("質問される人")
        await chat.send("登録")
        await chat.send("気仙沼")
        await chat.tap("はい")
        await chat.tap("②訪問")
        await chat.tap("決定")
        await chat.tap("応援・ファン")
        await chat.send("世田谷区")
        await chat.tap("はい")
        await chat.tap("30代")
        await chat.send("けせんファン")
        for _ in range(3):  # the terms, then the municipality's own question
            if "気仙沼を知ったきっかけは？" in chat.last_text:
                break
            await chat.tap("同意する")
        assert "気仙沼を知ったきっかけは？" in chat.last_text
        await chat.tap("友人")
        while "この内容で登録しますか" not in chat.last_text:
            await chat.tap("同意する")
        await chat.tap("登録する")
        assert "登録が完了しました" in chat.last_text
        registration = await stack.services.storage.registrations.find(chat.user_id, "042056")
        assert registration is not None
        assert registration["answers"] == {"kikkake": "友人"}

        # Another municipality neither sees nor removes it.
        other = await site.staff("072133", "admin")
        status, body = await other.api("GET", "/questions")
        assert status == 200 and body["items"] == []
        status, _ = await other.api("DELETE", "/questions/kikkake")
        assert status == 404
        status, body = await staff.api("GET", "/questions")
        assert [q["question_id"] for q in body["items"]] == ["kikkake"]
        audit = await stack.services.storage.audit.col.count_documents(
            {"action": "question_saved", "target": "kikkake", "tenant": "042056"}
        )
        assert audit == 1
    finally:
        await stack.services.storage.questions.remove("042056", "kikkake")
        await site.close()


async def test_bad_questions_are_refused_and_viewers_cannot_write(stack: Stack) -> None:
    site = Site(stack)
    try:
        editor = await site.staff("042056", "editor")
        for path, body, field_words in [
            ("/questions/ok", {"prompt": "色は？", "kind": "choice", "choices": []}, "選択肢"),
            ("/questions/ok", {"prompt": "名前は？", "kind": "text", "choices": ["a"]}, "選択肢"),
            ("/questions/ok", {"prompt": "", "kind": "text"}, "prompt"),
            ("/questions/ok", {"prompt": "長い", "kind": "choice", "choices": ["あ" * 21]}, "20"),
            ("/questions/BAD%20ID", {"prompt": "x", "kind": "text"}, "質問ID"),
        ]:
            status, answer = await editor.api("PUT", path, body)
            assert status == 422, (body, answer)
            assert field_words in str(answer)
        status, body = await editor.api("GET", "/questions")
        assert "ok" not in [q["question_id"] for q in body["items"]]

        viewer = await site.staff("042056", "viewer")
        status, _ = await viewer.api("PUT", "/questions/x", {"prompt": "x", "kind": "text"})
        assert status == 403
        status, html = await viewer.page("/admin/questions")
        assert status == 200 and "質問を追加" not in html
    finally:
        await site.close()


async def test_console_page_adds_and_removes_a_question(stack: Stack) -> None:
    site = Site(stack)
    try:
        staff = await site.staff("042056", "admin")
        status, html = await staff.page("/admin/questions")
        assert status == 200 and "<code>job</code>" not in html
        status, _, response = await staff.post(
            "/admin/questions",
            {"question_id": "job", "prompt": "<b>ご職業</b>は？", "kind": "text", "order": "1"},
        )
        assert status == 303, response
        status, html = await staff.page("/admin/questions")
        assert "&lt;b&gt;ご職業&lt;/b&gt;は？" in html  # escaped
        status, _, _ = await staff.post("/admin/questions/job/delete", {}, csrf=False)
        assert status == 403  # no CSRF token: refused, nothing removed
        ids = [
            q.question_id for q in await stack.services.storage.questions.all_for_place("042056")
        ]
        assert "job" in ids
        await staff.page("/admin/questions")
        status, _, _ = await staff.post("/admin/questions/job/delete", {})
        assert status == 303
        ids = [
            q.question_id for q in await stack.services.storage.questions.all_for_place("042056")
        ]
        assert "job" not in ids
    finally:
        await site.close()
