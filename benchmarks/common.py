"""What every benchmark shares: the run's settings, result rows, and the processes it starts.

The system under test runs as real processes (`python -m bot serve|worker|emulator`), each with
its log under `var/bench/logs/`, against one FerretDB (SQLite backend) started for the run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.devdb import LocalFerret, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"

Figure = float | int | str


@dataclass
class Row:
    """One line of the table: a case of a benchmark at one size, and whether it met its target."""

    bench: str
    case: str
    size: str
    figures: dict[str, Figure]
    target: str = ""
    verdict: str = ""  # "met", "MISSED", "" (no target: a figure for the growth or a baseline)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "case": self.case,
            "size": self.size,
            "figures": self.figures,
            "target": self.target,
            "verdict": self.verdict,
            "note": self.note,
        }


def out_of_time(bench: str, case: str, size: str, seconds: float) -> Row:
    """The row of a size not run: it would not have finished within the run's time."""
    return Row(
        bench, case, size, {}, verdict="NOT RUN", note=f"out of time: ~{seconds / 60:.0f} min"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def fmt(value: Figure) -> str:
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


@dataclass
class Run:
    """Settings of one `python -m benchmarks` run and the database server it uses."""

    quick: bool
    mongo_uri: str
    deadline: float | None = None  # time.monotonic() after which no new size is started
    started: float = field(default_factory=time.time)
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def fits(self, seconds: float) -> bool:
        """Whether work estimated at `seconds` still fits before the deadline."""
        return self.deadline is None or time.monotonic() + seconds <= self.deadline

    @property
    def logs(self) -> Path:
        path = VAR / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(self, db: str, emulator_url: str, public_url: str, **extra: str) -> dict[str, str]:
        """The environment of a bot process against this run's database and an emulator."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "LINE_CHANNEL_SECRET": self.secret,
            "LINE_CHANNEL_ACCESS_TOKEN": self.token,
            "LINE_API_BASE_URL": emulator_url,
            "MONGODB_URI": self.mongo_uri,
            "MONGODB_DB": db,
            "PUBLIC_BASE_URL": public_url,
            "SESSION_SECRET": secrets.token_hex(32),
            "CARD_SIGNING_SECRET": secrets.token_hex(32),
            **extra,
        }

    def spawn(self, name: str, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    async def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if proc in self.procs:
            self.procs.remove(proc)

    async def stop_all(self) -> None:
        for proc in list(self.procs):
            await self.stop(proc)


@dataclass
class Emulator:
    url: str
    proc: subprocess.Popen[bytes]
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.url}{path}", json=body) as response:
            data = await response.json()
            if response.status != 200:
                raise RuntimeError(f"emulator {method} {path}: {response.status} {data}")
            return data

    async def user(self, name: str) -> str:
        user_id: str = (await self.call("POST", "/_emulator/users", {"displayName": name}))[
            "userId"
        ]
        return user_id

    async def requests(self, path: str) -> dict[str, int]:
        """Requests the emulator answered on `path`, by status."""
        stats = await self.call("GET", "/_emulator/stats")
        counts: dict[str, int] = stats["requests"].get(path, {})
        return counts


@asynccontextmanager
async def emulator(run: Run, name: str, webhook_url: str) -> AsyncIterator[Emulator]:
    """A `python -m bot emulator` process sending webhooks to `webhook_url`."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LINE_CHANNEL_SECRET": run.secret,
        "LINE_CHANNEL_ACCESS_TOKEN": run.token,
        "LOG_LEVEL": "WARNING",
    }
    proc = run.spawn(
        f"emulator-{name}",
        ["-m", "bot", "emulator", "--port", str(port), "--webhook-url", webhook_url],
        env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{url}/_emulator/stats", alive=lambda: proc.poll() is None)
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            yield Emulator(url, proc, http)
    finally:
        await run.stop(proc)


async def serve(
    run: Run, name: str, db: str, emulator_url: str, port: int
) -> subprocess.Popen[bytes]:
    """A `python -m bot serve` process on `port`, up once its health check answers."""
    url = f"http://127.0.0.1:{port}"
    proc = run.spawn(
        name,
        ["-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
        run.env(db, emulator_url, url),
    )
    await wait_http(f"{url}/healthz", alive=lambda: proc.poll() is None)
    return proc


class PostgresFerret(LocalFerret):
    """FerretDB on its PostgreSQL backend (STACK-NOTES: SQLite has a single writer)."""

    def __init__(self, data_dir: Path, postgresql_url: str) -> None:
        super().__init__(data_dir)
        self.postgresql_url = postgresql_url

    def backend_args(self) -> list[str]:
        return ["--handler=postgresql", f"--postgresql-url={self.postgresql_url}"]


def backend() -> str:
    if os.environ.get("MONGODB_URI"):
        return "MONGODB_URI"
    if os.environ.get("BENCH_POSTGRESQL_URL"):
        return "FerretDB 1.24.2, PostgreSQL backend"
    return "FerretDB 1.24.2, SQLite backend"


def start_ferret(data: Path | None = None, postgresql: str | None = None) -> LocalFerret:
    """A FerretDB for this run with its state under `data` (emptied first): SQLite there, or
    the PostgreSQL backend on the database at `postgresql` (which the caller provides empty).
    By default the benchmarks' own: `var/bench/db`, and `BENCH_POSTGRESQL_URL`."""
    if data is None:
        postgresql = os.environ.get("BENCH_POSTGRESQL_URL")
        data = VAR / ("db-pg" if postgresql else "db")
    if data.exists():
        for child in sorted(data.rglob("*"), reverse=True):
            child.unlink() if child.is_file() else child.rmdir()
    ferret = PostgresFerret(data, postgresql) if postgresql else LocalFerret(data)
    ferret.start()
    return ferret
