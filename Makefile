# larmkedja — the contract's commands (contract §5). Everything runs on loopback, state in .state/.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check -q

.PHONY: help venv system up run down test lint typecheck unit integration e2e bench schema lock status \
	up-ha down-ha status-ha test-ha patroni

help:
	@echo "make run    the whole system with a simulated fleet (installs what it needs)"
	@echo "make up     the same without the fleet;  make down: stop it all"
	@echo "make test   lint, types and every test layer against real Mosquitto + TimescaleDB"
	@echo "make bench  the benchmark: a table beside the limits of this machine (BENCH_ARGS=...)"
	@echo "make up-ha  the high-availability topology on loopback (docs/scaling.md); down-ha stops it"
	@echo "make test-ha  the HA fault test: a broker, the primary, the engine leader, a hung primary, slow disks, a cut-off primary"

$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install --no-deps --require-hashes -r requirements.lock
	$(PIP) install --no-deps -e .
	@touch $@

venv: $(VENV)/.installed

# System packages: Mosquitto, PostgreSQL + TimescaleDB (idempotent; see deploy/local/install.sh).
system:
	@deploy/local/install.sh all

up: venv system
	$(BIN)/larmkedja stack up

run: venv system
	$(BIN)/larmkedja stack up --fleet

down:
	@if [ -x $(BIN)/larmkedja ]; then $(BIN)/larmkedja stack down; else echo "nothing to stop"; fi

status: venv
	@$(BIN)/larmkedja stack status

# Patroni in a virtualenv of its own from its lock (not Debian 12's 3.0.2: see deploy/ha/patroni.in).
# It runs as the postgres user when we are root: on the system's Python, which every user can run.
PATRONI_VENV := .state/tools/patroni
PATRONI_PY ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo $(PY))
$(PATRONI_VENV)/.installed: deploy/ha/patroni.lock
	@test -x $(PATRONI_VENV)/bin/python || $(PATRONI_PY) -m venv $(PATRONI_VENV)
	$(PATRONI_VENV)/bin/pip --disable-pip-version-check -q install --no-deps --require-hashes \
		-r deploy/ha/patroni.lock
	@touch $@

patroni: $(PATRONI_VENV)/.installed

# The high-availability topology (3 etcd, 3 Patroni/PostgreSQL, 2 brokers, two of each service)
# under .state/ha/; `make up` and `make run` are untouched by it.
up-ha: venv system patroni
	$(BIN)/larmkedja stack up --ha

down-ha:
	@if [ -x $(BIN)/larmkedja ]; then $(BIN)/larmkedja stack down --ha; else echo "nothing to stop"; fi

status-ha: venv
	@$(BIN)/larmkedja stack status --ha

# Its fault test (a few minutes; not in `make test`, which stays as it was): .ci/run runs both.
test-ha: venv system patroni
	$(BIN)/pytest -q -s -m ha tests/ha

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv system
	$(BIN)/pytest -q tests/integration

e2e: venv system
	$(BIN)/pytest -q tests/e2e

# Two workers: most of the suite waits on real deadlines, not on the two cores (docs: DEVELOPERS.md).
TEST_WORKERS ?= 2
test: venv system lint typecheck
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

# The benchmark prints its table and writes JSON under .state/bench/ (own broker and cluster).
bench: venv system
	$(BIN)/larmkedja --log-level WARNING bench $(BENCH_ARGS)

schema: venv
	$(BIN)/larmkedja schema > docs/event-v1.schema.json

# Refresh the lock file after changing pyproject.toml dependencies.
lock:
	@test -x .state/tools/bin/uv || ($(PY) -m venv .state/tools && .state/tools/bin/pip -q install uv)
	.state/tools/bin/uv pip compile pyproject.toml --extra dev --generate-hashes \
		--python-version 3.11 --no-header -q -o requirements.lock \
		--excludes deploy/lock-excludes.txt
