"""The Python hooks flow files refer to by name, and the default registry holding them."""

from __future__ import annotations

from bot.dialog.hooks import (
    activities,
    benefits,
    builtins,
    news,
    premium,
    programs,
    registration,
    settings,
    stays,
)
from bot.dialog.parsers import register_defaults
from bot.dialog.turn import Registry


def default_registry() -> Registry:
    registry = Registry()
    register_defaults(registry)
    builtins.register(registry)
    registration.register(registry)
    premium.register(registry)
    settings.register(registry)
    stays.register(registry)
    activities.register(registry)
    benefits.register(registry)
    programs.register(registry)
    news.register(registry)
    return registry
