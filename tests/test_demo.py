"""`seed-demo` and `demo`: the commands behind `make run`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pymongo
import pytest

from bot.devdb import free_port
from tests.conftest import ROOT, make_env

pytestmark = pytest.mark.slow


def _env(mongo_uri: str, db: str, **extra: str) -> dict[str, str]:
    return {**make_env(mongo_uri, db, **extra), "PATH": os.environ["PATH"]}


def test_seed_demo_loads_the_directory_idempotently(mongo_uri: str) -> None:
    db = f"seed_{os.getpid()}"
    env = _env(mongo_uri, db)
    try:
        for _ in range(2):
            result = subprocess.run(
                [sys.executable, "-m", "bot", "seed-demo"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
            client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_uri)
            municipalities = client[db]["municipalities"]
            assert municipalities.count_documents({}) == 1788
            assert municipalities.count_documents({"is_prefecture": True}) == 47
            kesennuma = municipalities.find_one({"_id": "042056"})
            assert kesennuma and kesennuma["display_name"] == "宮城県気仙沼市"
            client.close()
    finally:
        pymongo.MongoClient(mongo_uri).drop_database(db)


async def test_demo_runs_everything_and_refuses_a_second_instance(
    mongo_uri: str, tmp_path: Path
) -> None:
    db = f"demo_{os.getpid()}"
    bot_port, emulator_port = free_port(), free_port()
    env = {
        key: value
        for key, value in _env(mongo_uri, db, MONGODB_DB=db).items()
        if key not in ("LINE_API_BASE_URL", "PUBLIC_BASE_URL")
    }
    # The demo keeps its lock and generated secrets under ./var of its working directory.
    work = tmp_path / "work"
    work.mkdir()
    env["PYTHONPATH"] = str(ROOT)
    args = [
        sys.executable,
        "-m",
        "bot",
        "demo",
        "--bot-port",
        str(bot_port),
        "--emulator-port",
        str(emulator_port),
    ]
    demo = subprocess.Popen(
        args, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert demo.stdout is not None
        banner = ""
        while "Stop with Ctrl-C." not in banner:
            line = await asyncio.wait_for(asyncio.to_thread(demo.stdout.readline), 120)
            assert line, f"demo exited early: {demo.stderr.read() if demo.stderr else ''}"
            banner += line
        assert f"http://127.0.0.1:{emulator_port}/" in banner
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{bot_port}/healthz") as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{emulator_port}/") as response:
                assert response.status == 200
                assert "LINE" in await response.text()
        second = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "already running" in second.stderr
        assert "Traceback" not in second.stderr
        demo.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(demo.wait, 60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
        pymongo.MongoClient(mongo_uri).drop_database(db)
