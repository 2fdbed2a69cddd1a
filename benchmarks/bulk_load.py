"""Bulk load: the seeding tool (`python -m benchmarks.seed`) making 10,000, 100,000 and 1,000,000
registrations, each into an empty database: registrations a second, and how the time per
registration grows with the size. The baseline is the smallest size (a rate that holds means
cost linear in the work). The databases stay for the dashboard benchmark.
"""

from __future__ import annotations

from benchmarks.common import Row, Run, out_of_time
from benchmarks.seed import seeded

NAME = "bulk_load"
RATE = 2_500  # registrations a second seen here: to tell whether a size fits the run's time


def sizes(run: Run) -> list[int]:
    return [1_000, 10_000] if run.quick else [10_000, 100_000, 1_000_000]


async def run(run: Run) -> list[Row]:
    rows: list[Row] = []
    first_us = 0.0
    for size in sizes(run):
        estimate = size / RATE + 60
        if not run.fits(estimate):
            rows.append(out_of_time(NAME, "seed (bulk insert)", f"{size:,} regs", estimate))
            continue
        done = await seeded(run.mongo_uri, size)
        per_reg_us = done.insert_seconds / size * 1e6
        first_us = first_us or per_reg_us
        rows.append(
            Row(
                NAME,
                "seed (bulk insert)",
                f"{size:,} regs",
                {
                    "regs/s": done.insert_rate,
                    "µs/reg": per_reg_us,
                    "growth": per_reg_us / first_us,
                    "people": done.people,
                    "s total": done.seconds,
                    "s counters": done.seconds - done.insert_seconds,
                },
                note="total includes writing ~1,800 scopes of counters",
            )
        )
    return rows
