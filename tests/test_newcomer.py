"""The rough edges a newcomer hit on a fresh clone (issue 14), each as the newcomer would meet it."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from api import create_app

from .conftest import AUDIT, RULES
from .test_cli import NOW, rulesvc
from .test_payout import INITIATE_OK

SCENARIOS = RULES.parent / "tests" / "scenarios"


def test_coverage_of_one_file_counts_only_its_decision_and_says_which():
    result = rulesvc("test", str(SCENARIOS / "rebate-apply.yaml"), "--coverage", "--fail-under", "50")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "rule coverage: 100.0% of 10 rules fired in some case (decision rebate.apply)" in lines
    assert not any(line.strip().startswith("payout.") for line in lines)


def test_coverage_of_the_whole_suite_counts_every_decision():
    result = rulesvc("test", "--coverage")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule coverage: 100.0% of 59 rules fired in some case (all 10 decisions)" in result.stdout


def test_coverage_of_two_files_names_both_decisions():
    result = rulesvc("test", str(SCENARIOS / "rebate-apply.yaml"), str(SCENARIOS / "allowance-expire.yaml"),
                     "--coverage")
    assert "of 11 rules fired in some case (decisions rebate.apply, allowance.expire)" in result.stdout


def test_junit_into_a_folder_that_does_not_exist_yet(tmp_path):
    target = tmp_path / "var" / "reports" / "scenarios.xml"
    result = rulesvc("test", str(SCENARIOS / "allowance-expire.yaml"), "--junit", str(target))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert target.read_text(encoding="utf-8").startswith("<?xml")


def test_junit_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    result = rulesvc("test", str(SCENARIOS / "allowance-expire.yaml"), "--junit", str(blocker / "x.xml"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"cannot write the JUnit report {blocker / 'x.xml'}: ")
    assert "Traceback" not in result.stderr


def test_records_from_a_store_that_does_not_exist_creates_nothing(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    result = rulesvc("records", "--store", f"sqlite:///{missing}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"no store at {missing}: nothing was ever committed there")
    assert not (tmp_path / "no").exists()


def test_decide_on_a_terminal_says_where_the_facts_go():
    """Without --facts on a terminal the command says it reads JSON from it (it no longer looks hung)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "decide", "payout.initiate", "--now", NOW],
                               stdin=terminal, stdout=subprocess.PIPE, stderr=terminal, cwd=RULES.parent)
    os.close(terminal)
    try:
        said = _read_until(controller, b"Ctrl-D")
        assert b"Reading the facts as JSON from the terminal" in said and b"--facts" in said
        os.write(controller, json.dumps(INITIATE_OK).encode() + b"\n\x04")
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
        os.close(controller)
    assert process.returncode == 0
    assert json.loads(out)["outcome"] == "allow"


def _read_until(fd: int, marker: bytes, timeout: float = 60) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            seen += os.read(fd, 4096)
    return seen


def test_decide_from_a_pipe_prints_no_hint(tmp_path):
    result = rulesvc("decide", "payout.initiate", "--now", NOW, stdin=json.dumps(INITIATE_OK))
    assert result.returncode == 0 and result.stderr == ""


def test_a_blank_idempotency_key_is_refused(tmp_path: Path):
    client = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db").test_client()
    response = client.post("/v1/decisions/payout.initiate",
                           json={"facts": INITIATE_OK, "now": NOW, "commit": True, "idempotency_key": "   "})
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"idempotency_key": ["must not be blank (spaces only)"]}
    assert not client.get("/v1/decisions/records", headers=AUDIT).get_json()["records"]


def test_the_readme_commit_example_writes_into_var_not_the_repository_root():
    readme = (RULES.parent / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if "rulesvc records" in line and ">" in line]
    assert commands and all("> var/" in line for line in commands)


def test_state_doc_names_the_code_the_records_endpoint_answers(tmp_path):
    client = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db").test_client()
    code = client.get("/v1/decisions/records?outcome=maybe", headers=AUDIT).get_json()["error"]["code"]
    state = (RULES.parent / "docs" / "state.md").read_text(encoding="utf-8")
    assert code == "INVALID_REQUEST"
    assert f"An unknown or invalid parameter gives 400 with code `{code}`" in state


def test_serve_on_a_taken_port_says_so_in_one_line_naming_port():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = rulesvc("serve", "--port", str(port))
    assert result.returncode == 1
    assert time.monotonic() - started < 30  # gunicorn alone retries, then exits without a word
    assert result.stderr.splitlines() == [
        f"rulesvc serve: 127.0.0.1:{port} is already in use (another rulesvc?); choose another port with --port, "
        f"e.g. rulesvc serve --port {port + 1} (make run PORT={port + 1})"]


def test_make_run_passes_port_and_host_to_serve():
    # As a newcomer types it: not inside the make running the tests, whose flags would print directories
    # and whose command-line variables (CI's VENV=.venv-3.12, PYTHON=…) make exports to its recipes.
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "VENV", "PYTHON")}
    result = subprocess.run(["make", "--no-print-directory", "-n", "run", "PORT=9090", "HOST=0.0.0.0"],
                            capture_output=True, text=True, cwd=RULES.parent, timeout=60, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith(".venv/bin/rulesvc serve --host 0.0.0.0 --port 9090")


def test_a_gbk_upload_is_told_to_be_saved_as_utf8(tmp_path):
    client = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db").test_client()
    gbk = (RULES / "allowance.yaml").read_text(encoding="utf-8").encode("gb18030")
    report = client.post("/v1/rulesets/validate?file=allowance.yaml", data=gbk,
                         content_type="application/yaml").get_json()
    assert report["valid"] is False
    assert [problem["line"] for problem in report["problems"]] == [3]
    assert "save it as UTF-8" in report["problems"][0]["message"]
    scenario = (SCENARIOS / "allowance-expire.yaml").read_text(encoding="utf-8").encode("gb18030")
    answer = client.post("/v1/scenarios/run?file=s.yaml", data=scenario, content_type="application/yaml")
    assert answer.status_code == 400 and "save it as UTF-8" in answer.get_json()["error"]["problems"][0]
