PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dematbus up --demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

clean:
	rm -rf $(VENV) var *.egg-info

# The browser tests (tests/console) drive Debian's Chromium: installed here when missing, never
# downloaded by Playwright.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: chromium
chromium:
	test -x /usr/bin/chromium || ($(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium)

test: chromium
