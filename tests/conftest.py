"""Shared fixtures: the shipped rules, loaded once, and helpers to build facts."""

from __future__ import annotations

import copy
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from engine import Rulebook, load_rulebook

# Property tests judge answers, never speed: no per-example deadline and no "too slow" health check, which
# a loaded 2-core CI machine would trip (timing belongs in bench/). Tests with their own settings keep them.
settings.register_profile("rulesvc", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("rulesvc")

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
NOW = datetime.fromisoformat("2026-11-20T10:00:00+08:00")

# Reading the log, records, shadow reports and version texts needs a token (SPEC §7.1): every app and
# `rulesvc serve` the tests start knows this one (set at import, so servers started by module fixtures
# inherit it); the tests of the guard itself unset it or send another.
AUDIT_TOKEN = "audit-token-of-the-tests"
AUDIT = {"Authorization": f"Bearer {AUDIT_TOKEN}"}
os.environ["RULESVC_AUDIT_TOKEN"] = AUDIT_TOKEN


# The tests commit at fixed instants of 2026 (NOW, the seeds' examples), whatever day they run: the
# service's commit skew (RULESVC_COMMIT_SKEW, SPEC §6) is opened wide for them, services they start
# included. The tests of the skew itself set it back (tests/test_commit_time.py).
WIDE_COMMIT_SKEW = str(100 * 366 * 86_400)


@pytest.fixture(autouse=True)
def _commits_at_fixed_instants(monkeypatch):
    monkeypatch.setenv("RULESVC_COMMIT_SKEW", WIDE_COMMIT_SKEW)


# Scenario runs and validations are bounded by a time budget of 2–2.5 s (SPEC §7.1); on a loaded CI
# machine a whole shipped scenario file can take longer. Tests that are not about the budget get a wide
# one; the tests of the budget set theirs (tests/test_http_limits.py).
WIDE_BUDGET_SECONDS = "60"


@pytest.fixture(autouse=True)
def _wide_time_budgets(monkeypatch):
    monkeypatch.setenv("RULESVC_SCENARIO_SECONDS", WIDE_BUDGET_SECONDS)
    monkeypatch.setenv("RULESVC_VALIDATION_SECONDS", WIDE_BUDGET_SECONDS)


@pytest.fixture(name="copy")
def rules_copy(tmp_path):
    """A copy of the shipped rules directory to edit (a candidate, the NEW side of a diff)."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def edit(directory, name: str, old: str, new: str) -> None:
    """Replace the first ``old`` in one file of ``directory`` (which must hold it)."""
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


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
def redis_cluster(tmp_path_factory):
    from .servers import RedisClusterServers

    servers = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    import tempfile

    from .servers import PostgresServer

    # Not under pytest's tmp (root-only on some machines): the postgres user must reach it.
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="rulesvc-pg-")))
    server.start()
    yield server
    server.stop()


# --- QA scenario files: each case of tests/scenarios/*.yaml is one pytest item -------------------------

_SCENARIO_RULEBOOK: list[Rulebook] = []


def _scenario_rulebook() -> Rulebook:
    if not _SCENARIO_RULEBOOK:
        _SCENARIO_RULEBOOK.append(load_rulebook([RULES]))
    return _SCENARIO_RULEBOOK[0]


def pytest_collect_file(parent, file_path):
    # tests/scenarios/*.yaml, and the suites rulesvc test --generate wrote in tests/scenarios/generated/
    if file_path.suffix in (".yaml", ".yml") and (file_path.parent.name == "scenarios" or
                                                  file_path.parent.parent.name == "scenarios"):
        return ScenarioYamlFile.from_parent(parent, path=file_path)
    return None


class ScenarioYamlFile(pytest.File):
    def collect(self):
        from engine.tester import load_scenario_file

        scenario, problems = load_scenario_file(str(self.path.relative_to(ROOT)),
                                                self.path.read_text(encoding="utf-8"), _scenario_rulebook())
        if problems:
            yield ScenarioProblems.from_parent(self, name="scenario file", problems=problems)
            return
        for case in scenario.cases:
            yield ScenarioCase.from_parent(self, name=case.name, scenario=scenario, case=case)


class ScenarioFailed(Exception):
    pass


class ScenarioCase(pytest.Item):
    def __init__(self, *, scenario, case, **kwargs):
        super().__init__(**kwargs)
        self.scenario, self.case = scenario, case

    def runtest(self):
        from engine.tester import run_case

        result = run_case(self.scenario, self.case, _scenario_rulebook())
        if not result.passed:
            raise ScenarioFailed(result.describe())

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.line - 1, f"scenario: {self.case.name}"


class ScenarioProblems(pytest.Item):
    def __init__(self, *, problems, **kwargs):
        super().__init__(**kwargs)
        self.problems = problems

    def runtest(self):
        raise ScenarioFailed("\n".join(str(problem) for problem in self.problems))

    def repr_failure(self, excinfo):
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, 0, "scenario file"


@pytest.fixture
def lowered(tmp_path):
    """A copy of the rules with max_payout_amount lowered from 500.00 to 300.00 (impact and shadow tests)."""
    candidate = tmp_path / "candidate"
    shutil.copytree(RULES, candidate)
    path = candidate / "payout.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('value: "500.00"', 'value: "300.00"'), encoding="utf-8")
    return candidate
