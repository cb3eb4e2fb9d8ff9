"""The decision log under `rulesvc serve` (gunicorn, 2 workers): both workers append to one SQLite log,
SIGTERM writes what is waiting, and `--shadow` reports disagreements live."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.audit.log import LogDatabase, LogQuery

from .conftest import RULES
from .servers import free_port, wait_for_port
from .test_decision_log import payout
from .test_impact import AMOUNTS
from .test_service import NOW, get, post, stop_server


def start(tmp_path, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2",
         "--store", f"sqlite:///{tmp_path}/store.db", "--log", f"sqlite:///{tmp_path}/log.db", *extra],
        cwd=RULES.parent, stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"),
        env={**os.environ, **(env or {})})
    wait_for_port(port, timeout=30)
    return server, port


def stop(server: subprocess.Popen, log_path: Path) -> int:
    """SIGTERM, then the exit status (the shared helper waits past gunicorn's graceful 30 s and the log
    flush, and shows the server's log if it does not stop)."""
    stop_server(server, log_path)
    return server.returncode


def test_two_workers_append_every_decision_to_one_sqlite_log_exactly_once(tmp_path):
    server, port = start(tmp_path)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda i: post(port, "/v1/decisions/payout.initiate", {
                "facts": payout(f"{100 + i}.00"), "now": NOW}), range(200)))
        assert all(status == 200 for status, _ in answers)
        deadline = time.monotonic() + 20
        database = LogDatabase(f"sqlite:///{tmp_path}/log.db", create=False)
        while time.monotonic() < deadline and len(database.query(LogQuery(limit=None))) < 200:
            time.sleep(0.2)
    finally:
        assert stop(server, tmp_path / "server.log") == 0
    entries = database.query(LogQuery(limit=None))
    assert sorted(entry["decision_id"] for entry in entries) == sorted(body["decision_id"] for _, body in answers)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_sigterm_writes_what_the_log_still_holds(tmp_path):
    # The writer would wait an hour before writing: only the SIGTERM flush can put the entries there.
    server, port = start(tmp_path, env={"RULESVC_LOG_FLUSH_SECONDS": "3600", "RULESVC_LOG_BATCH": "100000"})
    try:
        ids = [post(port, "/v1/decisions/payout.initiate", {"facts": payout(f"{100 + i}.00"), "now": NOW})[1]
               ["decision_id"] for i in range(30)]
        database = LogDatabase(f"sqlite:///{tmp_path}/log.db", create=False)
        assert database.query(LogQuery(limit=None)) == []
    finally:
        assert stop(server, tmp_path / "server.log") == 0
    assert sorted(entry["decision_id"] for entry in database.query(LogQuery(limit=None))) == sorted(ids)


def test_serve_shadow_reports_the_disagreements_live(tmp_path):
    candidate = tmp_path / "candidate"
    shutil.copytree(RULES, candidate)
    path = candidate / "payout.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('value: "500.00"', 'value: "300.00"'), encoding="utf-8")
    server, port = start(tmp_path, "--shadow", str(candidate))
    try:
        answers = {amount: post(port, "/v1/decisions/payout.initiate", {"facts": payout(amount), "now": NOW})[1]
                   for amount in AMOUNTS}
        assert [answers[a]["outcome"] for a in AMOUNTS] == ["allow"] * 8 + ["deny"] * 2  # the active rules answer
        deadline = time.monotonic() + 20
        report: dict = {}
        while time.monotonic() < deadline and report.get("replayed") != len(AMOUNTS):
            time.sleep(0.2)
            report = json.loads(get(port, "/v1/rulesets/shadow")[1])
    finally:
        assert stop(server, tmp_path / "server.log") == 0
    assert report["replayed"] == len(AMOUNTS)
    assert report["transitions"] == {"allow->deny": 5}
    assert sorted(report["examples"]["allow->deny"]) == sorted(
        answers[a]["decision_id"] for a in ("300.01", "350.00", "420.00", "499.99", "500.00"))
