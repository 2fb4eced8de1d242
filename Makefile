PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench chaos install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dematbus up --demo

# The suite runs twice when PostgreSQL answers: on SQLite, then on PostgreSQL (one database per test).
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra
	@if $(BIN)/python -m tests.databases "$(PG_URL)"; then \
	  echo "== the same suite on PostgreSQL ($(PG_URL)) =="; \
	  DEMATBUS_TEST_POSTGRES="$(PG_URL)" $(BIN)/python -m pytest -q -ra -p no:cacheprovider; \
	else echo "== no PostgreSQL at $(PG_URL): SQLite pass only =="; fi

# The benchmark (see README, "Benchmark"): override with e.g. `make bench BENCH_ARGS="--docs 2000 --workers 2"`.
BENCH_ARGS ?= --docs 1000 --json var/bench.json

bench: $(STAMP)
	mkdir -p var
	$(BIN)/dematbus bench $(BENCH_ARGS)

# The full chaos campaign (see README, "Reliability"); `make test` runs a short one.
CHAOS_ARGS ?= --docs 10000 --kill-every 15s --faults tdt=0.2,sae=0.1,parapheur=0.1 --kill broker,worker,api \
	--drain-timeout 30m --json var/chaos.json --chart var/chaos.svg

chaos: $(STAMP)
	mkdir -p var
	$(BIN)/dematbus chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var *.egg-info

# The browser tests (tests/console) drive Debian's Chromium: installed here when missing, never
# downloaded by Playwright.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: chromium
chromium:
	test -x /usr/bin/chromium || ($(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium)

test: chromium
