"""LINE platform emulator: Messaging API with the platform's rules, webhooks, control API."""

from bot.emulator.app import create_emulator_app, run_emulator

__all__ = ["create_emulator_app", "run_emulator"]
