"""`python -m benchmarks.report [var/bench/latest.json]`: a run's figures as a Markdown table,
for `docs/PERFORMANCE.md`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import VAR, fmt


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"Run {report['started']} – {report['finished']}"
        f"{' (quick sizes)' if report['quick'] else ''}; {machine['database']}; "
        f"{machine['cpus']} CPUs, load average {machine['load_avg_before'][0]:.1f} before and "
        f"{machine['load_avg_after'][0]:.1f} after (shared machine).",
        "",
        "| benchmark | case | size | figures | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        figures = ", ".join(f"{k} {fmt(v)}" for k, v in row["figures"].items())
        verdict = row["verdict"] + (f" ({row['note']})" if row["note"] else "")
        lines.append(
            f"| {row['bench']} | {row['case']} | {row['size']} | {figures} | {row['target']} "
            f"| {verdict} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else VAR / "latest.json"
    print(markdown(json.loads(path.read_text())))
