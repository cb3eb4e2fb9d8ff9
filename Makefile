# Quick start: `make run` serves decisions on 127.0.0.1:8080 (`make run PORT=9090 HOST=0.0.0.0` to choose);
# `make test` runs every check. Another CPython: `make check PYTHON=python3.13` (3.11, 3.12 and 3.13 are supported).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

# The interpreter itself. A pyenv shim answers "command not found" for a version that is installed but
# not selected (python3.13 while 3.11 is global): then the newest installed 3.13.x of pyenv is used.
PYTHON_EXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || \
	(command -v pyenv >/dev/null && v=$$(pyenv versions --bare | grep -E '^$(patsubst python%,%,$(notdir $(PYTHON)))(\.|$$)' | tail -1) && \
	 [ -n "$$v" ] && echo "$$(pyenv root)/versions/$$v/bin/$(notdir $(PYTHON))"))
PYTHON_VERSION := $(shell $(PYTHON_EXE) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)

# durable-rules 2.0.28 calls PyEval_CallObject, which CPython 3.13 removed: compile it with the name
# mapped to PyObject_CallObject. CPPFLAGS, not CFLAGS: its setup.py overwrites CFLAGS. On 3.11 and
# 3.12 the headers define the old name again (a compiler warning, the same code).
export CPPFLAGS += -DPyEval_CallObject=PyObject_CallObject

.PHONY: run test test-fast lint check servers clean

# The virtualenv is (re)built whenever the packaging or the Python version changes.
$(VENV)/.python-$(PYTHON_VERSION):
	@test -n "$(PYTHON_VERSION)" || { echo "$(PYTHON) not found (PYTHON=python3.13 or a path to the interpreter)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON_EXE) -m venv $(VENV)
	touch $@

# durable-rules first and without the wheel cache: a wheel built before without the flag would not import on 3.13.
$(BIN)/rulesvc: setup.cfg pyproject.toml $(VENV)/.python-$(PYTHON_VERSION)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-cache-dir durable-rules==2.0.28
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

# Everything but the tests marked slow (real servers under load, kills, reload storms).
test-fast: check servers
	$(BIN)/pytest -m "not slow"

clean:
	rm -rf $(VENV) .venv-* var .pytest_cache .ruff_cache *.egg-info
