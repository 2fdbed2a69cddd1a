"""`python -m bot demo` and `seed-demo`: everything for a local run, and the demo data."""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.devdb import LocalFerret, ProcessExited, wait_http
from bot.domain.places import all_places
from bot.settings import Settings
from bot.storage import Mongo, Storage

VAR = Path("var")
DEMO_STAFF = "demo@kesennuma.example.jp"
LOCAL_ENV = VAR / "local.env"
GENERATED = (
    "LINE_CHANNEL_SECRET",
    "LINE_CHANNEL_ACCESS_TOKEN",
    "SESSION_SECRET",
    "CARD_SIGNING_SECRET",
)


class AlreadyRunning(Exception):
    pass


def local_secrets() -> dict[str, str]:
    """Secrets for local runs: generated once, kept in var/local.env (never committed)."""
    values: dict[str, str] = {}
    if LOCAL_ENV.exists():
        for line in LOCAL_ENV.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
    missing = [k for k in GENERATED if not values.get(k)]
    if missing:
        for key in missing:
            values[key] = secrets.token_hex(32 if key != "LINE_CHANNEL_SECRET" else 16)
        VAR.mkdir(exist_ok=True)
        LOCAL_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        LOCAL_ENV.chmod(0o600)
    return values


def _lock() -> int:
    VAR.mkdir(exist_ok=True)
    fd = os.open(VAR / "demo.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
        raise AlreadyRunning(
            f"the demo is already running (pid {pid}); stop it with Ctrl-C first"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


async def seed_demo(settings: Settings, *, demo_staff: bool = False) -> str | None:
    """Load the directory (idempotent); with `demo_staff`, the demo's staff login.

    Returns the demo staff password when the account was created now.
    """
    from bot.benefits import seed_slide5
    from bot.garbage import seed_demo_calendar
    from bot.staff.accounts import ensure_demo_staff

    mongo = Mongo(settings.mongodb_uri, settings.mongodb_db)
    try:
        await mongo.wait_until_up(settings.db_startup_timeout_s)
        storage = Storage(mongo)
        await storage.ensure_indexes()
        now = datetime.now(UTC)
        await storage.municipalities.load_directory(all_places(), now)
        await seed_demo_calendar(storage, now)  # 気仙沼市's demo garbage calendar
        await seed_slide5(storage, now)  # slide 5: programs and benefits (published)
        return await ensure_demo_staff(storage, email=DEMO_STAFF) if demo_staff else None
    finally:
        await mongo.close()


def _remember(key: str, value: str) -> None:
    with LOCAL_ENV.open("a") as env_file:
        env_file.write(f"{key}={value}\n")


async def run_demo(bot_port: int, emulator_port: int) -> None:
    try:
        lock = _lock()
    except AlreadyRunning as exc:
        print(f"furusato-bot: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    env = dict(os.environ)
    for key, value in local_secrets().items():
        env.setdefault(key, value)
    bot_url = f"http://127.0.0.1:{bot_port}"
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    env.setdefault("LINE_API_BASE_URL", emulator_url)
    env.setdefault("PUBLIC_BASE_URL", bot_url)
    ferret: LocalFerret | None = None
    if not env.get("MONGODB_URI"):
        ferret = LocalFerret(VAR / "demo-db")
        await ferret.start_and_wait()
        env["MONGODB_URI"] = ferret.uri
    children: list[asyncio.subprocess.Process] = []
    try:
        settings = Settings.from_env(env)
        created = await seed_demo(settings, demo_staff=True)
        if created:
            _remember("DEMO_STAFF_PASSWORD", created)
        staff_password = created or local_secrets().get(
            "DEMO_STAFF_PASSWORD", "(shown when it was created; reset with `python -m bot staff`)"
        )
        processes = {
            "emulator": [
                "emulator",
                "--port",
                str(emulator_port),
                "--webhook-url",
                f"{bot_url}/callback",
            ],
            "web": ["serve", "--host", "127.0.0.1", "--port", str(bot_port)],
            "worker": ["worker"],
        }
        for args in processes.values():
            children.append(
                await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, env=env)
            )
        exits = [asyncio.create_task(child.wait()) for child in children]
        await _wait_healthy(f"{bot_url}/healthz", exits)
        print(
            "\n".join(
                [
                    "",
                    "furusato-bot demo is running:",
                    f"  chat simulator (LINE emulator): {emulator_url}/",
                    f"  staff console (気仙沼市):        {bot_url}/admin/",
                    f"    login {DEMO_STAFF} / {staff_password}",
                    f"  bot web process:                {bot_url}/healthz",
                    f"  database:                       {env['MONGODB_URI']}",
                    "Stop with Ctrl-C.",
                    "",
                ]
            ),
            flush=True,
        )
        # Ctrl-C and SIGTERM stop the demo, also when it was started with SIGINT ignored (a
        # shell's background job): the children are stopped below.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([*exits, stopping], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            return
        stopping.cancel()
        failed = [
            name
            for name, child in zip(processes, children, strict=True)
            if child.returncode is not None
        ]
        print(f"furusato-bot: demo stopped because a process exited: {failed}", file=sys.stderr)
        raise SystemExit(1)
    finally:
        await _stop_all(children)
        if ferret:
            ferret.stop()
        os.close(lock)


async def _stop_all(children: list[asyncio.subprocess.Process]) -> None:
    for child in children:
        if child.returncode is None:
            child.terminate()
    # One budget for all of them, not one after another: Ctrl-C must not wait out each
    # process's worst case in turn. What is killed then loses nothing: its work is claimed in
    # the database and taken up on the next start.
    await asyncio.wait([asyncio.create_task(child.wait()) for child in children], timeout=30)
    for child in children:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def _wait_healthy(url: str, exits: list[asyncio.Task[int]]) -> None:
    try:
        await wait_http(url, alive=lambda: not any(done.done() for done in exits))
    except ProcessExited:
        raise SystemExit(1) from None
    except TimeoutError:
        raise SystemExit(f"furusato-bot: the bot did not become healthy at {url}") from None
