"""Local processes for the demo, the tests and the benchmarks: a FerretDB (SQLite backend) to
find, start and stop, free ports, and the wait for a started process to answer."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bot.storage.db import Mongo

FERRETDB_VERSION = "v1.24.2"


class FerretNotInstalled(Exception):
    pass


def find_ferretdb() -> str:
    """The ferretdb binary: on PATH, or where `go install` puts it."""
    found = shutil.which("ferretdb")
    if found:
        return found
    candidates = []
    if os.environ.get("GOBIN"):
        candidates.append(Path(os.environ["GOBIN"]) / "ferretdb")
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    candidates += [Path(p) / "bin" / "ferretdb" for p in gopath.split(os.pathsep)]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise FerretNotInstalled(
        f"ferretdb {FERRETDB_VERSION} is not installed: run `make db-install` "
        "(needs Go ≥ 1.24) or set MONGODB_URI to a running server"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessExited(RuntimeError):
    """The process being waited for exited before it answered."""


async def wait_http(
    url: str, *, alive: Callable[[], bool] = lambda: True, timeout: float = 60.0
) -> None:
    """Wait until `url` answers 200: `ProcessExited` as soon as `alive()` is false,
    `TimeoutError` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if not alive():
                raise ProcessExited(url)
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")
            await asyncio.sleep(0.2)


class LocalFerret:
    """One FerretDB process with its data under `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def backend_args(self) -> list[str]:
        """The storage FerretDB runs on: SQLite files under `data_dir`."""
        return ["--handler=sqlite", f"--sqlite-url=file:{self.data_dir}/"]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "ferretdb.log").open("ab")
        self.process = subprocess.Popen(
            [
                find_ferretdb(),
                *self.backend_args(),
                f"--state-dir={self.data_dir}",
                f"--listen-addr=127.0.0.1:{self.port}",
                "--telemetry=disable",
                "--debug-addr=-",
                "--log-level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )
        log.close()

    async def wait_ready(self, deadline_s: float = 20.0) -> None:
        mongo = Mongo(self.uri, "admin")
        try:
            await mongo.wait_until_up(deadline_s)
        finally:
            await mongo.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    async def start_and_wait(self) -> None:
        self.start()
        try:
            await self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    async def restart(self) -> None:
        self.stop()
        await asyncio.sleep(0)
        await self.start_and_wait()
