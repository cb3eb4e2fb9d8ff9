# Quick start: `make run` serves decisions on 127.0.0.1:8080 (`make run PORT=9090 HOST=0.0.0.0` to choose);
# `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint check servers clean

# The virtualenv is (re)built whenever the packaging changes.
$(BIN)/rulesvc: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/rulesvc
	$(BIN)/rulesvc serve --host $(HOST) --port $(PORT)

check: $(BIN)/rulesvc
	$(BIN)/rulesvc check rules/

lint: $(BIN)/rulesvc
	$(BIN)/ruff check .

# Redis and PostgreSQL for the store tests (started by the tests themselves, on loopback).
servers:
	@if command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null; \
	else echo "redis-server/PostgreSQL missing: their tests will be skipped (run as root to install)"; fi

test: lint check servers
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
