"""Templates: every file renders with its samples to messages LINE accepts; the renderer's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from linebot.v3.messaging import FlexMessage, ReplyMessageRequest, TextMessage

from bot.dialog.engine import fit
from bot.render import TEMPLATES_DIR, Button, Renderer, RenderError, attach_quick_replies
from tests.dialog_chat import texts_of

SAMPLES = yaml.safe_load((TEMPLATES_DIR / "samples.yaml").read_text(encoding="utf-8"))
RENDERER = Renderer()


def samples_of(name: str) -> list[dict[str, Any]]:
    entry = SAMPLES[name]
    return entry if isinstance(entry, list) else [entry]


def test_every_template_has_samples_and_every_sample_a_template() -> None:
    names = set(RENDERER.names())
    sampled = {name for name in SAMPLES if not name.startswith("_")}
    assert names - sampled == set(), "templates without sample data"
    assert sampled - names == set(), "samples for templates that do not exist"
    assert len(names) > 50


@pytest.mark.parametrize("name", RENDERER.names())
def test_template_renders_with_its_samples(name: str) -> None:
    for context in samples_of(name):
        messages = RENDERER.render(name, context)
        assert 1 <= len(messages) <= 5
        ReplyMessageRequest(replyToken="t" * 32, messages=messages, notificationDisabled=None)
        for message in messages:
            if isinstance(message, TextMessage):
                assert message.text.strip() == message.text
                assert "{{" not in message.text and "{%" not in message.text
                assert "None" not in message.text, f"{name}: None leaked into the text"
                assert all(len(line) <= 120 for line in message.text.splitlines())


def test_json_outputs_are_escaped_whatever_the_value(tmp_path: Path) -> None:
    nasty = 'た"ろ\\う\n{{ x }}</script>\t\u2028'
    context = dict(samples_of("register/confirm")[0], nickname=nasty)
    messages = RENDERER.render("register/confirm", context)
    flex = messages[0]
    assert isinstance(flex, FlexMessage)
    assert nasty in texts_of([flex.to_dict()])  # the exact value, rendered as text, not evaluated


def write(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    return tmp_path / "templates"


def test_text_template_is_one_trimmed_message(tdir: Path) -> None:
    write(
        tdir, "a/hello.txt", "\n  {{ name }}さん、こんにちは。   \n\n\n\nよろしくお願いします。\n"
    )
    [message] = Renderer(tdir).render("a/hello", {"name": "山田"})
    assert isinstance(message, TextMessage)
    assert message.text == "  山田さん、こんにちは。\n\nよろしくお願いします。".strip()


def test_json_list_gives_several_messages_and_quick_replies_go_on_the_last(tdir: Path) -> None:
    write(
        tdir, "a/two.json", '[{"type": "text", "text": "{{ a }}"}, {"type": "text", "text": "b"}]'
    )
    buttons = [Button("はい", data="x=1"), Button("ヘルプ", "message", text="ヘルプ")]
    messages = Renderer(tdir).render("a/two", {"a": 'x"y'}, quick_replies=buttons)
    assert [m.to_dict().get("quickReply") is not None for m in messages] == [False, True]
    assert messages[0].to_dict()["text"] == 'x"y'
    items = messages[1].to_dict()["quickReply"]["items"]
    assert items[0]["action"] == {
        "type": "postback",
        "label": "はい",
        "data": "x=1",
        "displayText": "はい",
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"type": "flex", "altText": "x", "contents": {"type": "bubblex"}}', "not a valid LINE"),
        ('{"type": "flex", "altText": "x", "contents": {"type": "bubble"}}', "empty"),
        (
            '{"type": "flex", "altText": "x", "contents": {"type": "bubble", "body": '
            '{"type": "box", "layout": "vertical", "contents": [{"type": "txt", "text": "a"}]}}}',
            "not a valid LINE",
        ),
        (
            '{"type": "flex", "altText": "x", "contents": {"type": "bubble", "bodyy": {}, "body": '
            '{"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "a"}]}}}',
            "unknown field",
        ),
        ('{"type": "flex", "altText": "", "contents": {"type": "bubble"}}', "altText"),
        ('{"type": "text", "text": "a", "qiuckReply": {}}', "unknown field"),
        ('{"type": "text", "text": ""}', "text must be"),
        ('{"type": "text", "text": "a",}', "not valid JSON"),
        ("[" + ",".join(['{"type": "text", "text": "a"}'] * 6) + "]", "1 to 5"),
        ('"just a string"', "JSON object"),
    ],
)
def test_bad_json_templates_are_errors_never_empty_messages(
    tdir: Path, body: str, problem: str
) -> None:
    write(tdir, "a/bad.json", body)
    with pytest.raises(RenderError, match=problem):
        Renderer(tdir).render("a/bad", {})


def test_text_limits_and_strict_undefined_and_sandbox(tdir: Path) -> None:
    write(tdir, "a/long.txt", "{{ 'あ' * n }}")
    write(tdir, "a/empty.txt", "{% if false %}x{% endif %}")
    write(tdir, "a/missing.txt", "{{ nope }}さん")
    write(tdir, "a/evil.txt", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    renderer = Renderer(tdir)
    assert renderer.render("a/long", {"n": 5000})
    with pytest.raises(RenderError, match="longer than 5000"):
        renderer.render("a/long", {"n": 5001})
    with pytest.raises(RenderError, match="empty"):
        renderer.render("a/empty", {})
    with pytest.raises(RenderError, match="nope"):
        renderer.render("a/missing", {})
    with pytest.raises(RenderError):
        renderer.render("a/evil", {})
    with pytest.raises(RenderError, match="unknown template"):
        renderer.render("a/none", {})


def test_quick_reply_limits(tdir: Path) -> None:
    write(tdir, "a/q.txt", "選んでください。")
    renderer = Renderer(tdir)
    assert renderer.render("a/q", {}, quick_replies=[Button(f"{i}", data="d") for i in range(13)])
    with pytest.raises(RenderError, match="13"):
        renderer.render("a/q", {}, quick_replies=[Button(f"{i}", data="d") for i in range(14)])
    with pytest.raises(RenderError, match="label"):
        renderer.render("a/q", {}, quick_replies=[Button("あ" * 21, data="d")])
    with pytest.raises(RenderError, match="300"):
        renderer.render("a/q", {}, quick_replies=[Button("a", data="d" * 301)])


def test_quick_replies_are_checked_and_leave_the_given_message_as_it_was() -> None:
    given = TextMessage(text="選んでください。")
    item = {"type": "action", "action": {"type": "message", "label": "はい", "text": "はい"}}
    [with_quick] = attach_quick_replies([given], [item])
    assert with_quick.to_dict()["quickReply"]["items"] == [item]
    assert with_quick.to_dict()["text"] == "選んでください。"
    assert given.quick_reply is None
    typo = {"type": "action", "action": {**item["action"], "lable": "いいえ"}}
    with pytest.raises(RenderError, match=r"unknown field\(s\) items\[0\]\.action\.lable"):
        attach_quick_replies([given], [typo])


def test_same_name_as_txt_and_json_is_an_error(tdir: Path) -> None:
    write(tdir, "a/x.txt", "a")
    write(tdir, "a/x.json", '{"type": "text", "text": "a"}')
    with pytest.raises(RenderError, match="both"):
        Renderer(tdir).names()


def test_card_area_is_left_to_the_card_module() -> None:
    assert not any(name.startswith("card/") for name in RENDERER.names())


class Overrides:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def source(self, name: str, municipality_code: str) -> str | None:
        self.asked.append((name, municipality_code))
        if (name, municipality_code) == ("register/terms", "042056"):
            return "気仙沼市の規約です。{{ place_name }}へようこそ。"
        return None


def test_municipality_overrides_are_consulted_before_the_files() -> None:
    overrides = Overrides()
    renderer = Renderer(overrides=overrides)
    context = samples_of("register/terms")[0]
    [own] = renderer.render("register/terms", context, municipality="042056")
    assert own.to_dict()["text"] == "気仙沼市の規約です。宮城県気仙沼市へようこそ。"
    [default] = renderer.render("register/terms", context, municipality="070009")
    assert "規約と個人情報の取扱い" in default.to_dict()["text"]
    [plain] = renderer.render("register/terms", context)
    assert plain.to_dict() == default.to_dict()
    assert overrides.asked == [("register/terms", "042056"), ("register/terms", "070009")]


def test_fit_merges_plain_texts_to_at_most_five_messages() -> None:
    messages = [TextMessage(text=f"m{i}", quickReply=None, quoteToken=None) for i in range(7)]
    fitted = fit(messages)
    assert len(fitted) == 5
    assert [m.to_dict()["text"] for m in fitted][-3:] == ["m4", "m5", "m6"]
    assert "m0\n\nm1" in fitted[0].to_dict()["text"]
