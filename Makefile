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

.PHONY: venv run test test-fast test-fresh test-lowest lint check servers lock messages clean

# Installs are pinned: requirements/lock.txt holds every package the targets below install (runtime, dev,
# bench and console-test extras) at one version, with its hashes, for CPython 3.11-3.13 (one universal lock);
# requirements/tools.txt the pip, setuptools and wheel that install and build them. `make lock` refreshes
# the lock. RESOLVE=fresh instead installs the newest versions setup.cfg allows (CI's fresh-resolve leg),
# RESOLVE=lowest the lowest it allows for each direct requirement (`make test-lowest`: are the bounds honest?).
RESOLVE ?= lock
LOCK := requirements/lock.txt
TOOLS_LOCK := requirements/tools.txt

# uv resolves (make lock, RESOLVE=lowest) from its own virtualenv. It is pinned by version only: what it
# writes, every install checks by hash.
UV_VERSION := 0.13.9
UV := .venv-lock/uv-$(UV_VERSION)/bin/uv
UV_COMPILE = $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes --custom-compile-command 'make lock' \
	$(if $(filter 1,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE)))
$(UV):
	rm -rf .venv-lock
	$(PYTHON_EXE) -m venv .venv-lock/uv-$(UV_VERSION)
	.venv-lock/uv-$(UV_VERSION)/bin/pip install --quiet uv==$(UV_VERSION)

# The virtualenv is built anew whenever the Python version, the way it is installed or the lock changes
# (so nothing the lock no longer names stays installed).
$(VENV)/.python-$(PYTHON_VERSION)-$(RESOLVE): $(LOCK) $(TOOLS_LOCK)
	@test -n "$(PYTHON_VERSION)" || { echo "$(PYTHON) not found (PYTHON=python3.13 or a path to the interpreter)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON_EXE) -m venv $(VENV)
	touch $@

# Without build isolation, so what builds durable-rules' sdist and this project is the locked setuptools.
# durable-rules is always compiled here, with this Python's flag: a wheel another build left in pip's
# cache (without the flag) would not import on 3.13. `pip check` fails on a requirement the lock lacks.
$(BIN)/rulesvc: setup.cfg pyproject.toml $(VENV)/.python-$(PYTHON_VERSION)-$(RESOLVE) $(if $(filter lowest,$(RESOLVE)),$(UV))
	@$(BIN)/pip cache remove durable_rules >/dev/null 2>&1 || true
ifeq ($(RESOLVE),fresh)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev,bench]'
else ifeq ($(RESOLVE),lowest)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(UV) pip compile --quiet --resolution lowest-direct --python-version $(PYTHON_VERSION) setup.cfg --extra dev --extra bench \
		-o $(VENV)/lowest.txt
	$(BIN)/pip install --quiet -r $(VENV)/lowest.txt
	$(BIN)/pip install --quiet --no-deps -e .
else
	$(BIN)/python -m pip install --quiet --require-hashes -r $(TOOLS_LOCK)
	$(BIN)/pip install --quiet --require-hashes --no-deps --no-build-isolation -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
endif
	$(BIN)/pip check
	echo $(RESOLVE) > $(VENV)/rulesvc-install
	touch $@

# The virtualenv alone (the bench uses it: bench/README.md).
venv: $(BIN)/rulesvc

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
# The console's gettext catalogs (api/console/translations/*/LC_MESSAGES/messages.po) compiled to the .mo files
# Flask-Babel reads, committed beside them; a test fails while a .mo is older than its .po.
messages: venv
	$(BIN)/pybabel compile -d api/console/translations --statistics

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

# The newest versions setup.cfg allows, in their own virtualenv, with the fast tests: a range an upstream
# release broke shows here (fix it with a bound or a code change, then `make lock`), not hidden by the lock.
test-fresh:
	rm -rf .venv-fresh
	$(MAKE) test-fast VENV=.venv-fresh RESOLVE=fresh
	.venv-fresh/bin/python -m tests.lockfile --report

# The lowest version setup.cfg allows of each direct requirement, with the fast tests (by hand, not in CI:
# after raising or adding a lower bound). A failure means a bound to raise.
test-lowest:
	rm -rf .venv-lowest
	$(MAKE) test-fast VENV=.venv-lowest RESOLVE=lowest

# Regenerate the lock after a change to setup.cfg's requirements: versions already pinned stay unless the
# change needs another. `make lock UPGRADE=1` moves every package to the newest version setup.cfg allows,
# `make lock UPGRADE='chinesecalendar pyyaml'` only those.
# uv resolves once for every platform and for Python 3.11 and later.
lock: $(UV)
	$(UV_COMPILE) setup.cfg --extra dev --extra bench requirements/tools.in -o $(LOCK)
	$(UV_COMPILE) requirements/tools.in --constraint $(LOCK) -o $(TOOLS_LOCK)

clean:
	rm -rf $(VENV) .venv-* var .pytest_cache .ruff_cache *.egg-info
