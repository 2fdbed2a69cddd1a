"""`seed-demo` and `demo`: the commands behind `make run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_demo_runs_everything_and_refuses_a_second_instance(mongo_uri: str, tmp_path: Path) -> None:
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
    # The processes' logs go to a file: a pipe nobody reads while the demo runs fills up and
    # blocks every process writing to it (then it cannot even stop).
    logs = tmp_path / "demo.log"
    with logs.open("w") as log:
        demo = subprocess.Popen(
            args, env=env, cwd=work, stdout=subprocess.PIPE, stderr=log, text=True
        )
    try:
        assert demo.stdout is not None
        banner = ""
        deadline = time.monotonic() + 120
        while "Stop with Ctrl-C." not in banner:
            assert time.monotonic() < deadline, "the demo did not print its URLs in time"
            line = demo.stdout.readline()
            assert line, f"demo exited early: {logs.read_text()[-3000:]}"
            banner += line
        assert f"http://127.0.0.1:{emulator_port}/" in banner
        assert f"http://127.0.0.1:{bot_port}/admin/" in banner
        login = next(line for line in banner.splitlines() if "login demo@" in line)
        assert len(login.rsplit(" / ", 1)[1].strip()) >= 12  # the generated password
        assert _get(f"http://127.0.0.1:{bot_port}/admin/login")[0] == 200
        assert _get(f"http://127.0.0.1:{bot_port}/healthz")[0] == 200
        status, page = _get(f"http://127.0.0.1:{emulator_port}/")
        assert status == 200 and "LINE" in page
        second = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "already running" in second.stderr
        assert "Traceback" not in second.stderr
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0, logs.read_text()[-3000:]
    finally:
        if demo.poll() is None:
            demo.kill()
        pymongo.MongoClient(mongo_uri).drop_database(db)
