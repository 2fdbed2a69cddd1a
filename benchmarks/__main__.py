"""`python -m benchmarks [--quick] [--only chat,news,...]`: run the benchmarks, print one table,
write the figures to `var/bench/<time>.json` and `var/bench/latest.json`.

`--quick` (or `BENCH_QUICK=1`) runs the small sizes and short loads only; `--only` (or
`BENCH_ONLY`) picks benchmarks by name. `MONGODB_URI` set: that server is used; otherwise a fresh
FerretDB (SQLite backend) under `var/bench/db`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime

from benchmarks.common import VAR, Row, Run, backend, fmt, start_ferret

# Short ones first: a run cut short by `--minutes` still has them.
ORDER = ("chat", "memory", "bulk_load", "news", "dashboard")


def table(rows: list[Row]) -> str:
    head = ("benchmark", "case", "size", "figures", "target", "verdict")
    lines = [
        (
            r.bench,
            r.case,
            r.size,
            ", ".join(f"{k} {fmt(v)}" for k, v in r.figures.items()),
            r.target,
            r.verdict + (f" ({r.note})" if r.note else ""),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=False)]
    out = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [
        " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    ]
    return "\n".join(out)


def write(rows: list[Row], quick: bool, started: datetime, load_before: tuple[float, ...]) -> None:
    """The figures so far, as JSON (rewritten after every benchmark: a cut run keeps them)."""
    report = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
            "shared": "other work ran on this machine at the same time: compare within a run",
            "python": platform.python_version(),
            "database": backend(),
        },
        "rows": [row.to_json() for row in rows],
    }
    VAR.mkdir(parents=True, exist_ok=True)
    path = VAR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    for target in (path, VAR / "latest.json"):
        target.write_text(json.dumps(report, ensure_ascii=False, indent=1))


async def main(names: list[str], quick: bool, minutes: float | None) -> list[Row]:
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    external = os.environ.get("MONGODB_URI")
    ferret = None
    if external:
        uri = external
    else:
        ferret = start_ferret()
        await ferret.wait_ready()
        uri = ferret.uri
    deadline = time.monotonic() + minutes * 60 if minutes else None
    run = Run(quick=quick, mongo_uri=uri, deadline=deadline)
    rows: list[Row] = []
    try:
        for name in names:
            module = importlib.import_module(f"benchmarks.{name}")
            begun = time.monotonic()
            print(f"--- {name}", file=sys.stderr, flush=True)
            try:
                rows += await module.run(run)
            except Exception as exc:
                traceback.print_exc()
                rows.append(Row(name, "error", "", {}, verdict="ERROR", note=repr(exc)[:200]))
            finally:
                await run.stop_all()
            seconds = time.monotonic() - begun
            print(f"--- {name}: {seconds:.0f} s", file=sys.stderr, flush=True)
            write(rows, quick, started, load_before)
    finally:
        if ferret is not None:
            ferret.stop()
    return rows


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1"
    )
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""))
    parser.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("BENCH_MINUTES") or 0) or None,
        help="start no size that would not finish within this many minutes (BENCH_MINUTES)",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ORDER)
    unknown = set(names) - set(ORDER)
    if unknown:
        parser.error(
            f"unknown benchmarks: {', '.join(sorted(unknown))} (known: {', '.join(ORDER)})"
        )
    rows = asyncio.run(main(names, args.quick, args.minutes))
    print(f"\ndatabase: {backend()}")
    print(table(rows))
    print(f"\nfigures written to {VAR / 'latest.json'}")
    if any(row.verdict == "ERROR" for row in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    cli()
