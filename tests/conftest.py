"""Shared fixtures: the shipped rules, loaded once, and helpers to build facts."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine import Rulebook, load_rulebook

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
NOW = datetime.fromisoformat("2026-11-20T10:00:00+08:00")


@pytest.fixture(scope="session")
def rulebook() -> Rulebook:
    return load_rulebook([RULES])


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` deep-merged with ``changes``; a None in ``changes`` removes the key."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def codes(result: dict[str, Any], kind: str = "reasons") -> list[str]:
    return [entry["code"] for entry in result[kind]]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    from .servers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    import tempfile

    from .servers import PostgresServer

    # Not under pytest's tmp (root-only on some machines): the postgres user must reach it.
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="rulesvc-pg-")))
    server.start()
    yield server
    server.stop()
