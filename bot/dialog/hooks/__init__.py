"""The Python hooks flow files refer to by name, and the default registry holding them."""

from __future__ import annotations

from bot.dialog.hooks import builtins, registration
from bot.dialog.parsers import register_defaults
from bot.dialog.turn import Registry


def default_registry() -> Registry:
    registry = Registry()
    register_defaults(registry)
    builtins.register(registry)
    registration.register(registry)
    return registry
