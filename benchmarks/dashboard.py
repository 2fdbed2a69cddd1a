"""Dashboard: the 関係人口 figures (`GET /api/v1/stats`, what the ダッシュボード shows) with 10,000
and with 1,000,000 registrations, for the nation (the place holding every registration), the
prefecture and the municipality with the most registrations; then a full recount
(`bot/jobs/recount.py`) must find the counters exact.

Before the figures are read, a few residents register through the live path
(`Registrations.create_basic`: numbers, ledger, counters), so the recount checks live writes on
top of the seeded ones (up to `LIVE_UP_TO`: see there). Target: time at the large size ≤ 2× the time at the small size, and the
recount finds no drift.

Each process keeps the figures it read until the scope changes (`bot.storage.stats`), so the
requests are timed twice: as they come ("p50 ms": the first reads the counters, the rest find
them unchanged) and with the tenant's scopes changed before each request ("p50 ms changed":
every request reads the counters, as after a registration in the tenant).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import aiohttp

from benchmarks.bulk_load import RATE
from benchmarks.common import Row, Run, emulator, out_of_time, percentile, serve, verdict
from benchmarks.seed import db_for, is_seeded, seeded
from bot.devdb import free_port
from bot.domain.places import get_place
from bot.domain.stats import place_scope
from bot.jobs.recount import recount
from bot.staff.apikeys import create_api_key
from bot.staff.dashboard import scope_of
from bot.staff.tenancy import PLATFORM, Principal, Role, Tenant
from bot.storage import Mongo, Storage
from bot.storage.registrations import BasicApplication

NAME = "dashboard"
LIVE = 20  # residents registering through the live path, up to LIVE_UP_TO registrations
# A live registration reads `registrations` by user id, which FerretDB answers by a full scan
# (seconds per registration at 10,000): beyond this size the live writes are left out.
LIVE_UP_TO = 100_000
RECOUNT_RATE = 800  # registrations a second the recount managed here: to tell whether it fits


def sizes(run: Run) -> list[int]:
    return [1_000, 10_000] if run.quick else [10_000, 1_000_000]


async def _key(storage: Storage, code: str) -> str:
    tenant = Tenant.of(code)
    assert tenant is not None
    principal = Principal("api_key", "bench", "bench", tenant, Role.ADMIN)
    _, key = await create_api_key(storage, datetime.now(UTC), principal, "bench", Role.VIEWER)
    return key


async def _live_registrations(storage: Storage, place: str, count: int) -> float:
    """Register `count` new residents through the store; ms per registration."""
    started = time.perf_counter()
    for _ in range(count):
        application = BasicApplication(
            user_id="U" + uuid.uuid4().hex,
            place_code=place,
            types=["visit"],
            connection="fan",
            residence_code="131016",
            age_band="40s",
            nickname="ベンチ",
        )
        created = await storage.registrations.create_basic(application, datetime.now(UTC))
        assert not created.already
    return (time.perf_counter() - started) / count * 1000 if count else 0.0


def _scopes(tenant: Tenant) -> list[str]:
    """The counter scopes the tenant's figures are read from."""
    scope = scope_of(tenant)
    return [scope, place_scope(tenant.code)] if tenant.kind == "prefecture" else [scope]


async def _figures(
    run: Run, size: int, storage: Storage, keys: dict[str, tuple[str, Tenant]]
) -> dict[str, dict[str, float]]:
    """p50 ms of `GET /api/v1/stats` per tenant, from a `python -m bot serve` process: as is,
    and with the tenant's scopes changed (their marks moved) before each request."""
    out: dict[str, dict[str, float]] = {}
    port = free_port()
    async with emulator(run, f"dashboard-{size}", f"http://127.0.0.1:{port}/callback") as emu:
        web = await serve(run, f"web-dashboard-{size}", db_for(size), emu.url, port)
        async with aiohttp.ClientSession() as http:
            for case, (key, tenant) in keys.items():
                found: dict[str, float] = {}
                for changed in (False, True):
                    times: list[float] = []
                    body: dict[str, object] = {}
                    for _ in range(10 if run.quick else 30):
                        if changed:
                            for scope in _scopes(tenant):
                                await storage.stats.marks.move(scope)
                        started = time.perf_counter()
                        async with http.get(
                            f"http://127.0.0.1:{port}/api/v1/stats",
                            headers={"Authorization": f"Bearer {key}"},
                        ) as response:
                            body = await response.json()
                            assert response.status == 200, body
                        times.append(time.perf_counter() - started)
                    found["p50 ms changed" if changed else "p50 ms"] = percentile(times, 50) * 1000
                    found["registrations"] = float(str(body["registrations"]))
                out[case] = found
        await run.stop(web)
    return out


async def measure(run: Run, size: int) -> dict[str, dict[str, float]]:
    """Per case: p50 ms of the figures; "recount": the recount's findings (absent: not run)."""
    done = await seeded(run.mongo_uri, size)
    towns = [p for c in done.place_registrations if (p := get_place(c)) and not p.is_prefecture]
    place = max(towns, key=lambda p: done.place_registrations[p.code])
    tenants = {"nation": PLATFORM, "prefecture": place.prefecture_code, "municipality": place.code}
    mongo = Mongo(run.mongo_uri, db_for(size))
    storage = Storage(mongo)
    try:
        live = LIVE if size <= LIVE_UP_TO else 0
        live_ms = await _live_registrations(storage, place.code, live)
        keys = {}
        for case, code in tenants.items():
            tenant = Tenant.of(code)
            assert tenant is not None
            keys[case] = (await _key(storage, code), tenant)
        out = await _figures(run, size, storage, keys)
        if run.fits(size / RECOUNT_RATE):
            started = time.perf_counter()
            drift = await recount(storage, settle=0.5)
            out["recount"] = {
                "s": time.perf_counter() - started,
                "clean": float(drift.clean),
                "registrations": float(drift.registrations),
                # Each live resident is new: a municipality registration and its prefecture's.
                "expected": float(size + 2 * live),
                "live ms/reg": live_ms,
            }
    finally:
        await mongo.close()
    return out


async def run(run: Run) -> list[Row]:
    rows: list[Row] = []
    results: dict[int, dict[str, dict[str, float]]] = {}
    for size in sizes(run):
        estimate = size / RATE + 120
        if not is_seeded(run.mongo_uri, size) and not run.fits(estimate):
            rows.append(out_of_time(NAME, "/api/v1/stats", f"{size:,} regs", estimate))
            continue
        results[size] = await measure(run, size)
    small, large = sizes(run)
    for case in ("nation", "prefecture", "municipality"):
        for size in (small, large):
            if size not in results:
                continue
            found = results[size][case]
            figures: dict[str, float | int | str] = {
                "p50 ms": found["p50 ms"],
                "p50 ms changed": found["p50 ms changed"],
                "registrations": int(found["registrations"]),
            }
            target, met = "", ""
            if size == large and small in results:
                a, b = results[small][case]["p50 ms"], found["p50 ms"]
                figures["x time"] = b / a if a else 0.0
                before = results[small][case]["p50 ms changed"]
                figures["x time changed"] = found["p50 ms changed"] / before if before else 0.0
                target, met = "≤2× the small size", verdict(b <= 2 * a)
            rows.append(Row(NAME, f"/api/v1/stats {case}", f"{size:,} regs", figures, target, met))
    for size, result in results.items():
        recount = result.get("recount")
        if recount is None:
            rows.append(
                out_of_time(NAME, "recount = counters", f"{size:,} regs", size / RECOUNT_RATE)
            )
            continue
        exact = recount["registrations"] == recount["expected"]
        rows.append(
            Row(
                NAME,
                "recount = counters",
                f"{size:,} regs",
                {
                    "recount s": recount["s"],
                    "regs/s": recount["registrations"] / recount["s"] if recount["s"] else 0.0,
                    "registrations": int(recount["registrations"]),
                    "live create_basic ms": recount["live ms/reg"],
                },
                "no drift",
                verdict(recount["clean"] == 1.0 and exact),
                "" if exact else "the recount read a different number of registrations",
            )
        )
    return rows
