"""The check every staff-edited template passes before it is saved (`bot/template_check.py`):
syntax, unknown variables, sandbox escapes, LINE validation, and a child process that stops
templates that would take too long; and the catalogue of templates staff see."""

from __future__ import annotations

import time

import pytest

from bot.render import Renderer, RenderError
from bot.template_check import (
    TemplateChecker,
    catalogue_names,
    check,
    default_source,
    entries,
    entry,
    sample_contexts,
)

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self.__init__ }}",
    "{{ self.__init__.__globals__ }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ place_name['__class__'] }}",
    "{{ place_name|attr('__class__') }}",
    "{{ request }}",
    "{% import 'os' as os %}{{ os }}",
    "{% include '../pyproject.toml' %}",
    "{% extends 'register/done.txt' %}",
    "{{ ''.format.__self__ }}",
    "{% set x = namespace() %}{{ x.__dict__ }}",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_template_injection_is_refused(payload: str) -> None:
    result = check("register/done", payload, "042056")
    assert not result.ok, payload
    assert result.problems[0].kind in ("security", "variable", "forbidden", "error")
    for sample in result.samples:  # nothing leaked into a message
        for message in sample.messages:
            text = str(message)
            assert "class" not in text and "os" not in text and "module" not in text


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_saved_behind_the_checks_back_is_inert_at_run_time(payload: str) -> None:
    """Even if such a text reached the database, the bot's sandboxed renderer would only fail."""

    class Stored:
        def source(self, name: str, municipality_code: str) -> str | None:
            return payload

    renderer = Renderer(overrides=Stored())
    context = sample_contexts("register/done")[0]
    try:
        messages = renderer.render("register/done", context, municipality="042056")
    except RenderError:
        return
    text = "\n".join(str(m.to_dict()) for m in messages)
    assert "<class" not in text and "subclasses" not in text and "uid=" not in text


def test_syntax_errors_name_the_line() -> None:
    [problem] = check("register/done", "一行目\n二行目\n{{ place_name }\n", "042056").problems
    assert problem.kind == "syntax" and problem.line == 3
    assert problem.message.startswith("3行目: ")
    [problem] = check("register/done", "a\n{% for x in y %}\nb\n", "042056").problems
    assert problem.line == 2 and "「{% for %}」が閉じられていません" in problem.message
    [problem] = check("register/done", "a\n\n{% endif %}", "042056").problems
    assert problem.line == 3 and problem.kind == "syntax"


def test_unknown_variables_are_named_with_their_line() -> None:
    [problem] = check("register/done", "こんにちは\n{{ nick_name }}さん", "042056").problems
    assert problem.kind == "variable" and problem.line == 2
    assert "「nick_name」という変数はありません" in problem.message
    assert "place_name" in problem.message  # the variables one may use
    # Attributes of known variables that no sample has.
    result = check("register/question", "{{ question.colour }}", "042056")
    assert "「colour」という項目が見つかりません" in result.problems[0].message
    assert result.problems[0].line == 1


def test_line_invalid_output_is_refused() -> None:
    long = check("register/done", "{{ 'あ' * 5001 }}", "042056")
    assert "5,000文字" in long.problems[0].message and long.problems[0].kind == "line"
    ok = check("register/done", "{{ 'あ' * 4990 }}", "042056")
    assert ok.ok
    empty = check("register/done", "{% if has_card %}カード{% endif %}", "042056")
    assert [p.message for p in empty.problems] == [
        "サンプル2の表示で、メッセージが空になります（LINEでは空のメッセージは送れません）。"
    ]
    bubble = check(
        "register/confirm",
        '{"type": "flex", "altText": "確認", "contents": {"type": "bubble"}}',
        "042056",
    )
    assert "バブルが空です" in bubble.problems[0].message
    too_many = check(
        "register/confirm", "[" + ",".join(['{"type": "text", "text": "a"}'] * 6) + "]", "042056"
    )
    assert "1〜5通" in too_many.problems[0].message
    typo = check("register/confirm", '{"type": "text", "text": "a", "quikReply": {}}', "042056")
    assert "LINEのメッセージにない項目があります: quikReply" in typo.problems[0].message


def test_json_output_errors_give_line_and_column() -> None:
    result = check("register/confirm", '[\n  {"type": "text",\n   "text": "a",}\n]', "042056")
    [problem] = result.problems
    assert problem.kind == "json" and (problem.line, problem.column) == (3, 16)
    assert "出力の3行目・16文字目" in problem.message and '"text": "a",}' in problem.message


def test_every_editable_template_passes_its_own_check() -> None:
    """Staff start from the default text: it must be savable as it is."""
    editable = [e for e in entries() if e.place]
    assert len(editable) > 30
    for e in editable:
        result = check(e.name, default_source(e.name), "042056")
        assert result.ok, (e.name, [p.message for p in result.problems])
        assert all(sample.messages for sample in result.samples)


def test_samples_speak_of_the_tenants_place() -> None:
    [first, second] = sample_contexts("register/done", "212156")
    assert first["place_name"] == "岐阜県山県市" and first["prefecture_name"] == "岐阜県"
    assert second["place_name"] == "福島県"  # the prefecture branch stays as it is
    [as_prefecture, _] = sample_contexts("register/done", "070009")
    assert as_prefecture["place_name"] == "福島県" and as_prefecture["prefecture_name"] == ""


def test_the_catalogue_describes_every_template_of_its_areas() -> None:
    """The flows' areas are described completely; a template without a line is shown under
    its name, read-only, until it gets one in templates/catalogue.yaml."""
    described = set(catalogue_names())
    every = set(Renderer().names())
    assert described - every == set(), "templates/catalogue.yaml names templates that do not exist"
    # The areas of the bot's own flows (register, self-service, common, follow) completely.
    names = {n for n in every if n.split("/", 1)[0] in ("register", "my", "common", "follow")}
    assert names - described == set(), "add these to templates/catalogue.yaml"
    done = entry("register/done")
    assert done is not None and done.place and done.title == "登録完了のお知らせ"
    assert done.area_title == "ふるさと住民登録"
    menu = entry("common/menu")
    assert menu is not None and not menu.place
    assert entry("card/card") is None and entry("register/nothing") is None
    for e in entries():  # every template has a title to show, described or not
        assert e.title and e.area_title


async def test_the_child_process_stops_templates_that_take_too_long() -> None:
    checker = TemplateChecker(timeout=1.5)
    try:
        ok = await checker.check("register/done", "{{ place_name }}です", "042056")
        assert ok.ok and ok.samples[0].messages[0]["text"] == "宮城県気仙沼市です"
        started = time.monotonic()
        slow = await checker.check(
            "register/done",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
            "042056",
        )
        assert time.monotonic() - started < 5
        assert [p.kind for p in slow.problems] == ["timeout"]
        assert "時間がかかりすぎる" in slow.problems[0].message
        huge = await checker.check("register/done", "{{ 'a' * 10 ** 10 }}", "042056")
        assert not huge.ok and huge.problems[0].kind == "size"
        power = await checker.check("register/done", "{{ 9 ** (9 ** 9) }}", "042056")
        assert not power.ok and power.problems[0].kind == "timeout"
        # The checker starts a new child and goes on working.
        again = await checker.check("register/done", "{{ number }}", "212156")
        assert again.ok and again.samples[0].messages[0]["text"] == "042056-000001-0"
    finally:
        await checker.close()


def test_filters_of_the_bot_work_and_unknown_ones_are_named() -> None:
    ok = check("premium/approved", "{{ place }}・{{ valid_until | japan_date }}", "042056")
    assert ok.ok and "2028年1月8日" in ok.samples[0].messages[0]["text"]
    [problem] = check("register/done", "a\n{{ number | shout }}", "042056").problems
    assert problem.line == 2 and "「shout」というフィルターはありません" in problem.message
