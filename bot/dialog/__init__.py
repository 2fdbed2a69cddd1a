"""The dialog engine: conversation flows from `dialogs/*.yaml`, run per resident message.

    engine = build_engine(storage, settings, clock, renderer=renderer)   # checks the flows
    await engine(incoming, reply)                                        # an EventHandler

Flows are data (`bot.dialog.flows` documents the file format); the Python hooks they name
(parsers, actions, choice and question providers, context providers, commands) live in
`bot.dialog.hooks` and are registered in a `Registry`.
"""

from bot.dialog.engine import DialogEngine, build_engine
from bot.dialog.flows import FlowError, load_flows
from bot.dialog.model import Choice, EndFlow, Goto, ParseError, Prefill, Skip
from bot.dialog.turn import Registry, Turn

__all__ = [
    "Choice",
    "DialogEngine",
    "EndFlow",
    "FlowError",
    "Goto",
    "ParseError",
    "Prefill",
    "Registry",
    "Skip",
    "Turn",
    "build_engine",
    "load_flows",
]
