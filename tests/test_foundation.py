"""The web and worker processes against a real FerretDB: health, start-up faults, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.clock import Clock
from bot.devdb import LocalFerret, free_port
from bot.jobs.cleanup import remove_expired
from bot.settings import Settings
from bot.storage import Storage
from tests.conftest import ROOT, make_env

pytestmark = pytest.mark.slow


@pytest.fixture
async def own_ferret(tmp_path: Path) -> AsyncIterator[LocalFerret]:
    """A FerretDB of this test's own, which the test may stop and start."""
    ferret = LocalFerret(tmp_path / "db")
    await ferret.start_and_wait()
    yield ferret
    ferret.stop()


async def _status(client: TestClient[aiohttp.web.Request, aiohttp.web.Application]) -> int:
    response = await client.get("/healthz")
    return response.status


async def test_health_follows_the_database(own_ferret: LocalFerret, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.from_env(make_env(own_ferret.uri, "health"))
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["database"] == "up"
    assert response.headers["X-Request-Id"]

    own_ferret.stop()
    stopped = time.monotonic()
    while await _status(client) != 503:
        assert time.monotonic() - stopped < 5, "health still 200 five seconds after the stop"
    assert time.monotonic() - stopped < 5

    own_ferret.start()
    restarted = time.monotonic()
    while await _status(client) != 200:
        assert time.monotonic() - restarted < 30, "health did not recover after the restart"
        await asyncio.sleep(0.2)


async def test_ensure_indexes_twice_is_harmless(storage: Storage) -> None:
    await storage.ensure_indexes()
    await storage.ensure_indexes()
    names = {ix["name"] async for ix in await storage.inbound_events.col.list_indexes()}
    assert {"_id_", "by_user", "expires_at"} <= names
    queue = {ix["name"] async for ix in await storage.pending_events.col.list_indexes()}
    assert {"_id_", "by_user", "by_age", "expires_at"} <= queue


async def test_cleanup_removes_only_expired_documents(storage: Storage) -> None:
    clock = Clock()
    now = clock.now()
    old = {"webhookEventId": f"old-{now.timestamp()}", "timestamp": 1, "type": "message"}
    new = {"webhookEventId": f"new-{now.timestamp()}", "timestamp": 2, "type": "message"}
    assert await storage.inbound_events.add(old, "U1", now - timedelta(days=10))
    assert await storage.inbound_events.add(new, "U1", now)
    removed = await remove_expired(storage, clock)
    assert removed["inbound_events"] >= 1
    assert await storage.inbound_events.get(old["webhookEventId"]) is None
    assert await storage.inbound_events.get(new["webhookEventId"]) is not None


def _serve(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        env={**env, "PATH": os.environ["PATH"]},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_database_down_at_start_up_exits_with_a_clear_message() -> None:
    env = make_env(f"mongodb://127.0.0.1:{free_port()}/", "x", DB_STARTUP_TIMEOUT="3")
    proc = _serve(env, "-m", "bot", "serve", "--port", str(free_port()))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("furusato-bot:") and "did not answer within 3 s" in last
    assert "Traceback" not in err


def test_port_in_use_exits_with_a_clear_message(mongo_uri: str, db_name: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _serve(
            make_env(mongo_uri, db_name),
            "-m",
            "bot",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        )
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


async def test_sigterm_lets_a_slow_request_finish(mongo_uri: str, db_name: str) -> None:
    port = free_port()
    proc = _serve(make_env(mongo_uri, db_name), "-m", "tests.slow_server", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.2)
            slow = asyncio.create_task(http.get(f"{base}/slow?s=2"))
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            response = await slow
            assert response.status == 200
            assert await response.json() == {"finished": True}
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_worker_runs_cleanup_and_stops_on_sigterm(mongo_uri: str, db_name: str) -> None:
    proc = _serve(make_env(mongo_uri, db_name, LOG_LEVEL="INFO"), "-m", "bot", "worker")
    try:
        assert proc.stderr is not None
        seen = ""
        deadline = time.monotonic() + 120
        while '"msg": "worker started"' not in seen:
            assert time.monotonic() < deadline, seen
            line = proc.stderr.readline()
            assert line, f"worker exited: {seen}"
            seen += line
        assert '"cleanup"' in seen
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        _, rest = proc.communicate()
        assert '"msg": "worker stopping: waiting for running jobs"' in seen + rest
    finally:
        if proc.poll() is None:
            proc.kill()
