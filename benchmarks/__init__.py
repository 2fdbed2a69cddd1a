"""Benchmarks (`make bench`, `python -m benchmarks`): each runs its baseline in the same run.

One module per benchmark (`chat`, `news`, `dashboard`, `bulk_load`, `memory`); each exposes
`NAME` and `async def run(run: Run) -> list[Row]`. The runner (`__main__`) prints one table at
the end and writes the figures as JSON under `var/bench/`. Not part of `make test`.
"""
