# Quick start: `make run` serves decisions on 127.0.0.1:8080; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint check clean

# The virtualenv is (re)built whenever the packaging changes.
$(BIN)/rulesvc: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/rulesvc
	$(BIN)/rulesvc serve

check: $(BIN)/rulesvc
	$(BIN)/rulesvc check rules/

lint: $(BIN)/rulesvc
	$(BIN)/ruff check .

test: lint check
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
