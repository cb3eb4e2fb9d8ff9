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

# The console (http://127.0.0.1:8080/console/) runs scenarios and checks rule files for whoever holds
# the admin token: without RULESVC_ADMIN_TOKEN in the environment, one is made for this run and printed.
run: $(BIN)/rulesvc
	@if [ -z "$$RULESVC_ADMIN_TOKEN" ]; then \
		RULESVC_ADMIN_TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(18))'); \
		echo "Console: http://$(HOST):$(PORT)/console/ (admin token for this run: $$RULESVC_ADMIN_TOKEN)"; \
		export RULESVC_ADMIN_TOKEN; \
	fi; exec $(BIN)/rulesvc serve --host $(HOST) --port $(PORT)

check: $(BIN)/rulesvc
	$(BIN)/rulesvc check rules/

lint: $(BIN)/rulesvc
	$(BIN)/ruff check .

# Debian packages the tests use, each started by the tests themselves on loopback: Redis and PostgreSQL
# for the store tests; Chromium (driven by Playwright, never a browser download) and a Chinese font
# for the console's browser tests and their screenshots.
servers:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	fc-list 2>/dev/null | grep -qi 'wenquanyi\|noto sans cjk' || missing="$$missing fonts-wqy-microhei"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing:$$missing — the tests that need them will be skipped (run as root to install)"; fi

test: lint check servers
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
