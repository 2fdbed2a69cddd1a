"""Public web pages of the web process (card verification)."""

from __future__ import annotations

from bot.web.verify import add_verify_routes

__all__ = ["add_verify_routes"]
