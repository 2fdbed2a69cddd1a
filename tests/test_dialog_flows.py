"""The start-up check of flow files: every problem named with its file, flow and step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.dialog.commands import load_commands
from bot.dialog.flows import DIALOGS_DIR, FlowError, load_flows
from bot.dialog.hooks import default_registry
from bot.render import Renderer

RENDERER = Renderer()

GOOD = """
flow: survey
version: 1
title: アンケート
start: name
steps:
  name:
    prompt: register/nickname
    input: text
    title: お名前
    editable: true
  color:
    prompt: register/connection
    input: choice
    choices:
      - {value: red, label: 赤}
      - {value: blue, label: 青}
    next: {red: agree, else: "@missing"}
  agree:
    prompt: register/terms
    input: confirm
    next: {true: "@complete", false: "@end"}
    end_template: register/terms_declined
"""


def write_flow(tmp_path: Path, text: str, name: str = "survey.yaml") -> Path:
    directory = tmp_path / "dialogs"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory


def load(directory: Path) -> dict[str, object]:
    return dict(load_flows(directory, registry=default_registry(), renderer=RENDERER))


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(FlowError) as caught:
        load(write_flow(tmp_path, text))
    return str(caught.value)


def test_the_shipped_flows_and_commands_pass_the_check() -> None:
    registry = default_registry()
    flows = load_flows(DIALOGS_DIR, registry=registry, renderer=RENDERER)
    assert {"register", "unregister", "change_registration"} <= set(flows)
    commands = load_commands(flows, registry)
    assert commands.match("とうろく") and commands.match("トウロク")
    assert commands.interrupt("ﾍﾙﾌﾟ") == "help"
    assert commands.interrupt("やめる。") == "cancel"


def test_a_good_flow_loads(tmp_path: Path) -> None:
    flows = load(write_flow(tmp_path, GOOD))
    survey = flows["survey"]
    assert list(survey.steps) == ["name", "color", "agree"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "prompt: register/nickname",
            "prompt: register/nicknam",
            "step 'name': unknown template 'register/nicknam' (prompt)",
        ),
        (
            "    input: text\n",
            "    input: text\n    parser: nope\n",
            "step 'name': unknown parser 'nope'",
        ),
        (
            "    input: text\n",
            "    input: text\n    on_enter: nope\n",
            "step 'name': unknown action 'nope'",
        ),
        (
            "    input: text\n",
            "    input: text\n    retry: register/none\n",
            "unknown template 'register/none' (retry)",
        ),
        ("    input: text\n", "    input: text\n    help: x/y\n", "unknown template 'x/y' (help)"),
        (
            'next: {red: agree, else: "@missing"}',
            'next: {red: agre, else: "@missing"}',
            "step 'color': `next` names unknown step 'agre'",
        ),
        ("input: text", "input: txt", "step 'name': `input` must be one of"),
        (
            "    input: text\n",
            "    input: text\n    colour: red\n",
            "step 'name': unknown key 'colour'",
        ),
        (
            "    input: text\n",
            "    input: text\n    choices: [a]\n",
            "step 'name': input text takes no `choices`",
        ),
        ("start: name", "start: nobody", "`start` must name a step"),
        ("version: 1", "version: one", "`version` must be a whole number"),
        (
            "- {value: blue, label: 青}",
            "- {value: blue, label: あいうえおかきくけこさしすせそたちつてとな}",
            "choice label",
        ),
        ("- {value: blue, label: 青}", "- {value: red, label: 青}", "choice values must differ"),
        (
            'next: {red: agree, else: "@missing"}',
            "next: {red: agree, green: agree}",
            "`next` maps 'green'",
        ),
        (
            'next: {red: agree, else: "@missing"}',
            "next: {red: agree}",
            "`next` has no step for ['blue']",
        ),
        (
            "    end_template: register/terms_declined\n",
            "",
            "uses @end but the step has no `end_template`",
        ),
        (
            "title: アンケート",
            "title: アンケート\nhelp: nope/help",
            "unknown template 'nope/help' (help)",
        ),
        (
            "title: アンケート",
            "title: アンケート\non_complete: nope",
            "unknown action 'nope' (on_complete)",
        ),
        (
            "title: アンケート",
            "title: アンケート\ncontext: nope",
            "unknown context provider 'nope'",
        ),
        (
            "title: アンケート",
            "title: アンケート\ncolour: red",
            "flow 'survey': unknown key 'colour'",
        ),
        (
            "      - {value: red, label: 赤}\n      - {value: blue, label: 青}\n",
            "      nope_provider\n",
            "step 'color': unknown choice provider 'nope_provider'",
        ),
        (
            "    editable: true\n",
            "    editable: true\n    when: nope\n",
            "unknown condition 'nope'",
        ),
        (
            "    editable: true\n",
            "    editable: true\n    when: {step: nobody, is: x}\n",
            "`when` names unknown step 'nobody'",
        ),
        (
            "    editable: true\n",
            "    editable: true\n    depends_on: [nobody]\n",
            "`depends_on` must list steps",
        ),
        ("    title: お名前\n", "", "an editable step needs a `title`"),
    ],
)
def test_broken_flows_are_refused_with_flow_and_step_named(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    message = problems(tmp_path, GOOD.replace(old, new, 1))
    assert "survey.yaml: flow 'survey'" in message or "survey.yaml" in message
    for part in expected.split("|"):
        if part:
            assert part in message, message


def test_unreachable_step_is_named(tmp_path: Path) -> None:
    text = GOOD.replace('next: {red: agree, else: "@missing"}', 'next: "@complete"').replace(
        "  agree:\n", "  agree:\n    required: false\n"
    )
    message = problems(tmp_path, text)
    assert "step 'agree': unreachable step" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("register/nickname", "x/one").replace("register/connection", "x/two")
    message = problems(tmp_path, text)
    assert "'x/one'" in message and "'x/two'" in message


def test_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    assert "not valid YAML" in problems(tmp_path, "flow: [unclosed")
    assert "must hold a mapping" in problems(tmp_path, "- a\n- b\n")


def test_two_files_with_one_flow_name(tmp_path: Path) -> None:
    directory = write_flow(tmp_path, GOOD)
    write_flow(tmp_path, GOOD, "copy.yaml")
    with pytest.raises(FlowError, match="defined twice"):
        load(directory)


def test_commands_file_is_checked(tmp_path: Path) -> None:
    directory = tmp_path / "dialogs"
    shutil.copytree(DIALOGS_DIR, directory)
    registry = default_registry()
    flows = load_flows(directory, registry=registry, renderer=RENDERER)
    data = yaml.safe_load((directory / "commands.yaml").read_text(encoding="utf-8"))
    data["commands"].append({"keywords": ["登録"], "flow": "nowhere"})
    data["menu"].append({"label": "あ" * 21, "command": "nothing"})
    (directory / "commands.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(FlowError) as caught:
        load_commands(flows, registry, directory / "commands.yaml")
    message = str(caught.value)
    assert "unknown flow 'nowhere'" in message
    assert "keyword '登録' is used by both" in message
    assert "unknown command 'nothing'" in message
    assert "`label` must be 1 to 20" in message
