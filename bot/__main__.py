"""Command line: `python -m bot serve|worker|emulator|demo|seed-demo|staff`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from bot.logs import setup_logging
from bot.settings import Settings, SettingsError
from bot.storage.db import DatabaseUnavailable

log = logging.getLogger("bot")

EXIT_CONFIG = 2


def _settings() -> Settings:
    try:
        return Settings.from_env(os.environ)
    except SettingsError as exc:
        _fail(str(exc), EXIT_CONFIG)


def _fail(message: str, status: int = 1) -> NoReturn:
    print(f"furusato-bot: {message}", file=sys.stderr)
    raise SystemExit(status)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {port}")
    return port


def _run(main: Coroutine[Any, Any, object]) -> None:
    """Run a process's main coroutine; known failures become one clear line, not a traceback."""
    from bot.app import PortInUse
    from bot.devdb import FerretNotInstalled

    try:
        asyncio.run(main)
    except (PortInUse, FerretNotInstalled) as exc:
        _fail(str(exc))
    except DatabaseUnavailable as exc:
        _fail(f"{exc}; is the database running?")
    except KeyboardInterrupt:
        pass


def cmd_serve(args: argparse.Namespace) -> None:
    from bot.app import create_app, serve

    settings = _settings()
    setup_logging(settings.log_level)
    _run(serve(create_app(settings), args.host, args.port))


def cmd_worker(args: argparse.Namespace) -> None:
    from bot.jobs.worker import run_worker

    settings = _settings()
    setup_logging(settings.log_level)
    _run(run_worker(settings))


def cmd_emulator(args: argparse.Namespace) -> None:
    from bot.emulator.app import run_emulator

    secret = os.environ.get("LINE_CHANNEL_SECRET", "").strip()
    token = os.environ.get("LINE_CHANNEL_ACCESS_TOKEN", "").strip()
    if not secret or not token:
        _fail(
            "configuration error: the emulator needs LINE_CHANNEL_SECRET and "
            "LINE_CHANNEL_ACCESS_TOKEN (the same values the bot uses)",
            EXIT_CONFIG,
        )
    setup_logging(os.environ.get("LOG_LEVEL", "INFO").upper())
    _run(
        run_emulator(
            host=args.host,
            port=args.port,
            channel_secret=secret,
            access_token=token,
            webhook_url=args.webhook_url,
        )
    )


def cmd_demo(args: argparse.Namespace) -> None:
    from bot.demo import run_demo

    setup_logging(os.environ.get("LOG_LEVEL", "WARNING").upper())
    _run(run_demo(bot_port=args.bot_port, emulator_port=args.emulator_port))


def cmd_seed_demo(args: argparse.Namespace) -> None:
    from bot.demo import seed_demo

    settings = _settings()
    setup_logging(settings.log_level)
    _run(seed_demo(settings))


def cmd_staff_add(args: argparse.Namespace) -> None:
    from bot.staff.cli import add_staff_command

    settings = _settings()
    setup_logging("WARNING")
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    tenant = "platform" if args.operator else args.municipality
    _run(
        add_staff_command(
            settings, tenant=tenant, email=args.email, role=args.role, password=password
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="web process: webhook, staff console, API")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=_port, default=_port(os.environ.get("PORT", "8080")))
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="scheduler process")
    worker.set_defaults(func=cmd_worker)

    emulator = sub.add_parser("emulator", help="LINE platform emulator with a chat simulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=_port, default=9000)
    emulator.add_argument("--webhook-url", required=True)
    emulator.set_defaults(func=cmd_emulator)

    demo = sub.add_parser("demo", help="database, emulator, web, worker and demo data")
    demo.add_argument("--bot-port", type=_port, default=8080)
    demo.add_argument("--emulator-port", type=_port, default=9000)
    demo.set_defaults(func=cmd_demo)

    seed = sub.add_parser("seed-demo", help="load the municipality directory and demo programs")
    seed.set_defaults(func=cmd_seed_demo)

    staff = sub.add_parser("staff", help="staff accounts of the console and API")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="add a staff account (prints its initial password once)")
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--municipality", metavar="CODE", help="6-digit code of a municipality or prefecture"
    )
    where.add_argument(
        "--operator", action="store_true", help="a platform operator (national figures only)"
    )
    add.add_argument("--email", required=True)
    add.add_argument("--role", required=True, choices=("admin", "editor", "viewer"))
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.set_defaults(func=cmd_staff_add)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    func(args)


if __name__ == "__main__":
    main()
