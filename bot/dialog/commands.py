"""`dialogs/commands.yaml`: keywords outside a flow, the interrupts, and the main menu.

    interrupts:                 # matched before any step, in or out of a flow
      help: [ヘルプ, help, …]
      cancel: [キャンセル, やめる, …]
      menu: [メニュー, …]
    commands:                   # matched outside a flow
      - keywords: [登録, とうろく]
        flow: register          # start this flow…
      - keywords: [登録証]
        command: show_cards     # …or run this registered command
        global: true            # also inside a flow (rich-menu taps), unless the step takes it
    menu:                       # the main menu's quick replies
      - {label: 登録する, flow: register}
      - {label: 登録証, command: show_cards}

Matching is on `text.key()`: NFKC, hiragana, lower case, no spaces, no trailing 「。」「！」.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.dialog.flows import COMMANDS_FILE, DIALOGS_DIR, FlowError, load_yaml_mapping
from bot.dialog.model import Flow
from bot.dialog.text import key
from bot.dialog.turn import ButtonSpec, Registry
from bot.render import MAX_LABEL

Interrupt = Literal["help", "cancel", "menu"]
INTERRUPTS: tuple[Interrupt, ...] = ("help", "cancel", "menu")


@dataclass(frozen=True)
class Target:
    """What a keyword or menu entry does: start `flow`, or run `command`."""

    flow: str = ""
    command: str = ""
    label: str = ""
    is_global: bool = False

    def button(self) -> ButtonSpec:
        if self.flow:
            return ButtonSpec(self.label, "start", self.flow)
        return ButtonSpec(self.label, "cmd", self.command)


@dataclass(frozen=True)
class CommandTable:
    interrupts: Mapping[str, Interrupt]
    keywords: Mapping[str, Target]
    menu: tuple[Target, ...]

    def interrupt(self, text: str) -> Interrupt | None:
        return self.interrupts.get(key(text))

    def match(self, text: str) -> Target | None:
        return self.keywords.get(key(text))

    def match_global(self, text: str) -> Target | None:
        """A keyword that works inside a flow too (the rich menu's tiles send these)."""
        target = self.match(text)
        return target if target is not None and target.is_global else None

    def menu_buttons(self) -> list[ButtonSpec]:
        return [target.button() for target in self.menu]


def load_commands(
    flows: Mapping[str, Flow], registry: Registry, path: Path = DIALOGS_DIR / COMMANDS_FILE
) -> CommandTable:
    data = load_yaml_mapping(path)
    problems: list[str] = []

    def fail(message: str) -> None:
        problems.append(f"{path.name}: {message}")

    def target(entry: Any, where: str) -> Target | None:
        if not isinstance(entry, dict):
            fail(f"{where}: must be a mapping")
            return None
        flow, command = entry.get("flow"), entry.get("command")
        if (flow is None) == (command is None):
            fail(f"{where}: needs exactly one of `flow` or `command`")
            return None
        if flow is not None and flow not in flows:
            fail(f"{where}: unknown flow {flow!r}")
        if command is not None and command not in registry.commands:
            fail(f"{where}: unknown command {command!r}")
        return Target(
            flow=str(flow or ""),
            command=str(command or ""),
            label=str(entry.get("label", "")),
            is_global=bool(entry.get("global", False)),
        )

    seen: dict[str, str] = {}

    def claim(word: Any, owner: str) -> str | None:
        folded = key(str(word))
        if not folded:
            fail(f"{owner}: empty keyword")
            return None
        if folded in seen:
            fail(f"keyword {word!r} is used by both {seen[folded]} and {owner}")
            return None
        seen[folded] = owner
        return folded

    interrupts: dict[str, Interrupt] = {}
    raw_interrupts = data.get("interrupts") or {}
    if not isinstance(raw_interrupts, dict):
        fail("`interrupts` must be a mapping")
        raw_interrupts = {}
    for name, words in raw_interrupts.items():
        if name not in INTERRUPTS:
            fail(f"unknown interrupt {name!r} (help, cancel, menu)")
            continue
        for word in words or []:
            folded = claim(word, f"interrupt {name}")
            if folded:
                interrupts[folded] = name
    for name in INTERRUPTS:
        if name not in raw_interrupts:
            fail(f"interrupt {name!r} has no keywords")

    keywords: dict[str, Target] = {}
    for index, entry in enumerate(data.get("commands") or []):
        found = target(entry, f"commands[{index}]")
        words = entry.get("keywords") if isinstance(entry, dict) else None
        if not isinstance(words, list) or not words:
            fail(f"commands[{index}]: needs a list of `keywords`")
            continue
        for word in words:
            folded = claim(word, f"commands[{index}]")
            if folded and found:
                keywords[folded] = found

    menu: list[Target] = []
    for index, entry in enumerate(data.get("menu") or []):
        found = target(entry, f"menu[{index}]")
        if found is None:
            continue
        if not 1 <= len(found.label) <= MAX_LABEL:
            fail(f"menu[{index}]: `label` must be 1 to {MAX_LABEL} characters")
        menu.append(found)
    if not 1 <= len(menu) <= 12:
        fail("`menu` needs 1 to 12 entries")
    for index, entry in enumerate(data.get("commands") or []):
        extra = set(map(str, entry)) - {"keywords", "flow", "command", "global", "label"}
        if isinstance(entry, dict) and extra:
            fail(f"commands[{index}]: unknown key(s) {sorted(extra)}")
    unknown = set(map(str, data)) - {"interrupts", "commands", "menu"}
    for name in sorted(unknown):
        fail(f"unknown key {name!r}")
    if problems:
        raise FlowError(problems)
    return CommandTable(interrupts, keywords, tuple(menu))
