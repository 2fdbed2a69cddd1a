# The two commands of the quick start: `make run` (the demo) and `make test` (everything CI runs).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest db-install bench soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

db-install:
	@./scripts/install-ferretdb.sh

run: $(STAMP) db-install
	@$(PY) -m bot demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy bot

pytest: $(STAMP) db-install
	$(VENV)/bin/pytest

test: lint typecheck pytest

# Benchmarks against a same-run baseline, not part of `make test`: one table, JSON in var/bench/.
# BENCH_QUICK=1 small sizes; BENCH_ONLY=chat,news some; BENCH_MINUTES=60 a time budget (docs/PERFORMANCE.md).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	@$(PY) -m pip install --quiet -e '.[test,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) db-install
	$(PY) -m benchmarks

# 10 minutes of chat at half the measured maximum, memory and latency per minute (not part of
# `make test`): figures in var/soak/, docs/RELIABILITY.md. SOAK_MINUTES=2 for a short run;
# SOAK_POSTGRESQL_URL=postgres://… (an empty database) for FerretDB's PostgreSQL backend.
soak: $(STAMP) db-install
	$(PY) -m soak --minutes $(or $(SOAK_MINUTES),10)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
