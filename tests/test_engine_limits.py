"""Issue 20: what ``rulesvc check`` accepts, the service loads (the durable_rules compile is part of
validation, SPEC §7.1), and every file the CLI reads is bounded."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.app import create_app
from engine import load_rule_file
from engine.language.source import MAX_FILE_BYTES
from engine.runtime.rulesets import MAX_TESTS

from .conftest import RULES
from .test_cli import rulesvc

PAYOUT = (RULES / "payout.yaml").read_text(encoding="utf-8")
# An "or" branch per rule: durable_rules lists them under one node, at most 128 (error 107).
OR_RULE = "store.has_arrears or order_payout_count > {i}"
# A different comparison per rule: past 512 the engine would hang creating the ruleset.
DISTINCT_RULE = "order_payout_count > {i}"


def with_rules(count: int, condition: str) -> str:
    """payout.yaml with ``count`` more rules in payout.initiate (its last decision)."""
    extra = "".join(f"      - id: extra-{i}\n        when: {condition.format(i=i)}\n        effect: warn\n"
                    f"        code: DOUBLE_COMPENSATION_RISK\n        source: generated\n" for i in range(count))
    return PAYOUT.rstrip("\n") + "\n" + extra


def when_position(text: str, rule_id: str) -> tuple[int, int]:
    """Line and column of the condition of rule ``rule_id``."""
    start = text.index(f"- id: {rule_id}\n")
    when = text.index("when: ", start) + len("when: ")
    return text[:when].count("\n") + 1, when - text.rfind("\n", 0, when)


@pytest.fixture
def attacked(tmp_path: Path) -> Path:
    """A rules directory whose payout.yaml durable_rules refuses (error 107) at activation."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    (target / "payout.yaml").write_text(with_rules(130, OR_RULE), encoding="utf-8")
    return target


def _expected_107(text: str) -> list[str]:
    _, problems = load_rule_file("payout.yaml", text)
    return [str(problem) for problem in problems]


def test_check_reports_the_engine_refusal_at_the_rule_that_crosses_it(attacked):
    text = (attacked / "payout.yaml").read_text(encoding="utf-8")
    problems = _expected_107(text)
    assert len(problems) == 1
    line, column = when_position(text, "extra-128")  # the 129th "or" under the decision marker
    assert problems[0].startswith(f"payout.yaml:{line}:{column}: durable_rules cannot activate payout.initiate")
    assert "engine error 107" in problems[0]
    result = rulesvc("check", str(attacked / "payout.yaml"))
    assert result.returncode == 1
    assert f"payout.yaml:{line}:{column}: durable_rules cannot activate" in result.stdout
    assert "Traceback" not in result.stderr


def test_one_rule_fewer_is_accepted_and_loads(attacked):
    text = with_rules(128, OR_RULE)
    domain, problems = load_rule_file("payout.yaml", text)
    assert problems == []
    (attacked / "payout.yaml").write_text(text, encoding="utf-8")
    assert rulesvc("check", str(attacked)).returncode == 0
    assert rulesvc("decide", "payout.initiate", "--rules", str(attacked), "--facts",
                   str(RULES.parent / "examples" / "payout-initiate.json")).returncode == 0


def test_a_ruleset_that_would_hang_the_engine_is_refused_before_it_sees_it():
    text = with_rules(600, DISTINCT_RULE)
    started = time.perf_counter()
    _, problems = load_rule_file("payout.yaml", text)
    assert time.perf_counter() - started < 2
    assert len(problems) == 1
    assert f"make more than {MAX_TESTS} different comparisons" in str(problems[0])
    line = int(str(problems[0]).split(":")[1])
    assert text.splitlines()[line - 1].strip().startswith("when: order_payout_count >")


def test_validate_endpoint_answers_valid_false_with_the_problem():
    client = create_app(RULES).test_client()
    text = with_rules(130, OR_RULE)
    answer = client.post("/v1/rulesets/validate?file=payout.yaml", data=text.encode(),
                         headers={"Content-Type": "application/yaml"})
    assert answer.status_code == 200
    assert answer.json["valid"] is False
    assert [problem["text"] for problem in answer.json["problems"]] == _expected_107(text)


def test_reload_keeps_the_running_rules_and_names_the_line(attacked, tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", "admin-secret")
    broken = (attacked / "payout.yaml").read_text(encoding="utf-8")
    (attacked / "payout.yaml").write_text(PAYOUT, encoding="utf-8")
    app = create_app(attacked, store_url=f"sqlite:///{tmp_path}/store.db")
    client = app.test_client()
    version = app.extensions["rulesvc"].rulebook.version
    (attacked / "payout.yaml").write_text(broken, encoding="utf-8")
    answer = client.post("/v1/rulesets/reload", headers={"Authorization": "Bearer admin-secret"})
    assert answer.status_code == 422
    line, column = when_position(broken, "extra-128")
    assert any(problem.startswith(f"{attacked / 'payout.yaml'}:{line}:{column}: durable_rules cannot activate")
               for problem in answer.json["error"]["problems"]), answer.json
    assert app.extensions["rulesvc"].rulebook.version == version


def test_impact_answers_a_4xx_problem_not_500(tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", "admin-secret")
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    answer = app.test_client().post("/v1/rulesets/impact?file=payout.yaml", data=with_rules(130, OR_RULE).encode(),
                                    headers={"Authorization": "Bearer admin-secret",
                                             "Content-Type": "application/yaml"})
    assert answer.status_code == 422
    assert any(problem.startswith("payout.yaml:") and "engine error 107" in problem
               for problem in answer.json["error"]["problems"])


@pytest.mark.parametrize("command", [
    ["decide", "payout.initiate", "--facts", str(RULES.parent / "examples" / "payout-initiate.json"), "--rules"],
    ["diff", str(RULES)],
])
def test_decide_and_diff_exit_2_with_the_problem_and_no_traceback(attacked, command):
    result = rulesvc(*command, str(attacked))
    assert result.returncode == 2
    assert "payout.yaml:" in result.stderr and "engine error 107" in result.stderr
    assert "Traceback" not in result.stderr


# --- bounded reads (B) ------------------------------------------------------------------------------

def _limited(*args: str) -> subprocess.CompletedProcess:
    """``rulesvc ARGS`` with 1 GiB of address space and 30 s: an unbounded read fails either."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          cwd=RULES.parent, timeout=30, preexec_fn=limit)


@pytest.mark.parametrize("args", [["check", "/dev/zero"], ["diff", "/dev/zero", "rules"]], ids=["check", "diff"])
def test_dev_zero_is_refused_quickly_in_bounded_memory(args):
    started = time.perf_counter()
    result = _limited(*args)
    assert time.perf_counter() - started < 20
    assert result.returncode == (1 if args[0] == "check" else 2)
    assert "/dev/zero:1:1: cannot read the file: it is not a regular file" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_facts_from_dev_zero_are_cut_at_the_maximum():
    for args in (["--facts", "/dev/zero"], ["--facts", "-"]):
        with open("/dev/zero", "rb") as zero:
            result = subprocess.run([sys.executable, "-m", "cli.main", "decide", "payout.initiate", *args],
                                    stdin=zero, capture_output=True, text=True, cwd=RULES.parent, timeout=30,
                                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)))
        assert result.returncode == 2
        assert f"larger than {MAX_FILE_BYTES:,} bytes" in result.stderr
        assert "Traceback" not in result.stderr


def test_oversized_fifo_directory_and_missing_files_get_one_clear_line(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    fifo = tmp_path / "pipe.yaml"
    subprocess.run(["mkfifo", str(fifo)], check=True)
    expected = {big: f"larger than {MAX_FILE_BYTES:,} bytes", fifo: "it is not a regular file",
                tmp_path / "missing.yaml": "No such file or directory"}
    for path, message in expected.items():
        result = _limited("check", str(path))
        assert result.returncode == 1
        assert result.stdout.startswith(f"{path}:1:1: cannot read the file: " if path != big else f"{path}:1:1: ")
        assert message in result.stdout
    result = _limited("decide", "payout.initiate", "--facts", str(tmp_path))
    assert result.returncode == 2 and "Is a directory" in result.stderr
    exactly = tmp_path / "exact.yaml"
    exactly.write_bytes(b"#" * MAX_FILE_BYTES)  # the maximum itself is read (and is no rule file)
    assert "larger than" not in _limited("check", str(exactly)).stdout


@pytest.mark.parametrize("revision", ["-x", "--output=/tmp/rulesvc-injected"])
def test_diff_git_refuses_a_revision_that_git_would_take_for_an_option(revision):
    result = rulesvc("diff", "--git", revision)
    assert result.returncode == 2
    assert "is not a git revision (it starts with '-')" in result.stderr
    assert not Path("/tmp/rulesvc-injected").exists()
