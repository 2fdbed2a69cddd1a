"""What a user can tap: finding an action by its label, and turning a tap into an event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.emulator.errors import ApiError
from bot.emulator.rules import (
    DATETIME_FORMATS,
    datetime_problem,
    message_actions,
    rich_menu_actions,
)
from bot.emulator.state import EmulatorState, User


@dataclass(frozen=True)
class Tappable:
    label: str
    action: dict[str, Any]
    where: str  # quickReply, template, flex, imagemap, richmenu


def tappables(state: EmulatorState, user: User) -> list[list[Tappable]]:
    """Labelled actions per inbox message, newest message first, then the user's rich menu."""
    groups: list[list[Tappable]] = []
    newest = user.inbox[-1].seq if user.inbox else 0
    for entry in reversed(user.inbox):
        # LINE shows a quick reply only under the newest message, until the user acts.
        quick_reply_shown = entry.seq == newest and entry.seq > user.quick_reply_hidden_upto
        groups.append(
            [
                Tappable(site.action["label"], site.action, site.context)
                for site in message_actions(entry.message)
                if _labelled(site.action) and (site.context != "quickReply" or quick_reply_shown)
            ]
        )
    shown = state.rich_menu_for(user)
    if shown is not None:
        groups.append(
            [
                Tappable(site.action["label"], site.action, site.context)
                for site in rich_menu_actions(shown[0].body)
                if _labelled(site.action)
            ]
        )
    return groups


def _labelled(action: dict[str, Any]) -> bool:
    return isinstance(action.get("label"), str) and bool(action["label"])


def find(groups: list[list[Tappable]], label: str) -> Tappable | None:
    """The newest action whose label contains `label`; an exact label wins within a message."""
    for group in groups:
        exact = [t for t in group if t.label == label]
        partial = [t for t in group if label in t.label]
        if exact or partial:
            return (exact or partial)[0]
    return None


def picker_params(action: dict[str, Any], params: object) -> dict[str, str]:
    """Check the value a user picked in a datetime picker against the picker's mode and range."""
    mode = action.get("mode", "")
    if mode not in DATETIME_FORMATS:
        raise ApiError(400, f"datetime picker has an invalid mode {mode!r}")
    example = {"date": "2027-01-09", "time": "09:30", "datetime": "2027-01-09T09:30"}[mode]
    if not isinstance(params, dict) or set(params) != {mode}:
        raise ApiError(
            400,
            f"'{action.get('label')}' is a datetime picker (mode {mode}): "
            f'send the picked value as params, e.g. {{"{mode}": "{example}"}}',
        )
    value = params[mode]
    problem = datetime_problem(mode, value)
    if problem:
        raise ApiError(400, f"params.{mode}: {problem}")
    picked = value.upper()
    low, high = str(action.get("min", "")).upper(), str(action.get("max", "")).upper()
    if (low and picked < low) or (high and picked > high):
        raise ApiError(400, f"params.{mode}: {value} is outside the picker's range {low}..{high}")
    return {mode: value}
