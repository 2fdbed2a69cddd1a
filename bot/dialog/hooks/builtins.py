"""Hooks every flow may use: the edit menu's choices, and the help and menu commands."""

from __future__ import annotations

from bot.dialog.model import Choice, Step
from bot.dialog.turn import Registry, Turn

BACK = "back"


async def editable_steps(turn: Turn, step: Step) -> list[Choice]:
    """The steps the resident may change from a confirmation (editable and answered), and
    「確認に戻る」 (not a step: `@edit` then goes on to the first missing answer, the confirmation).
    """
    flow = turn.flow
    if flow is None:
        return []
    answers = turn.answers
    editable = [
        Choice(other.name, other.title)
        for other in flow.steps.values()
        if other.editable and answers.get(other.name) not in (None, {}, [], "")
    ]
    return [*editable, Choice(BACK, "確認に戻る", aliases=("戻る", "もどる"))]


async def help_command(turn: Turn) -> None:
    turn.say("common/help", buttons=turn.menu)


async def menu_command(turn: Turn) -> None:
    flow = turn.flow if turn.conv else None
    turn.say(
        "common/menu",
        buttons=turn.menu,
        in_flow=flow is not None,
        flow_title=flow.title if flow else "",
    )


def register(registry: Registry) -> None:
    registry.add("choices", "editable_steps")(editable_steps)
    registry.add("command", "help")(help_command)
    registry.add("command", "menu")(menu_command)
