"""Many instances, one rules store (SPEC §12.1): two `rulesvc serve` processes share published versions
in SQLite or PostgreSQL; a publication through one — with `rulesvc publish` — is decided on by the other
within 5 s, and so is a rollback (`rulesvc rollback`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import text

from engine.bundle.store import RulesStore
from engine.state.sql import make_engine

from .conftest import ROOT
from .servers import free_port, wait_for_port

TOKEN = "store-test-admin"
AT_2030 = "2026-11-20T20:30:00+08:00"
SYNC_SECONDS = 5.0


def _contact(port: int) -> str:
    facts = json.loads((ROOT / "examples" / "recovery-contact.json").read_text(encoding="utf-8"))
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/decisions/recovery.contact",
                                     data=json.dumps({"now": AT_2030, "facts": facts}).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["outcome"]


def _within(seconds: float, port: int, outcome: str) -> float:
    """How long until the instance on ``port`` decides ``outcome`` (fails after ``seconds``)."""
    started = time.monotonic()
    while True:
        if _contact(port) == outcome:
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, f"port {port} still not {outcome} after {seconds} s"
        time.sleep(0.1)


def _cli(*args: str, port: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args, "--url", f"http://127.0.0.1:{port}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RULESVC_ADMIN_TOKEN": TOKEN})


@pytest.fixture(params=["sqlite", "postgresql"])
def rules_store(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/rules-store.db"
    url = request.getfixturevalue("postgres_server").url
    with make_engine(url).begin() as connection:  # a store of its own for each test
        for table in ("rule_approvals", "rule_drafts", "rule_publications"):
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
    return url


@pytest.mark.slow
def test_two_instances_follow_one_store(rules_store, copy, tmp_path):
    ports, processes = [free_port(), free_port()], []
    for index, port in enumerate(ports):
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--rules", str(copy), "--port", str(port), "--workers", "1",
             "--store", f"sqlite:///{tmp_path}/store-{index}.db", "--log", "none", "--rules-store", rules_store],
            cwd=ROOT, env={**os.environ, "RULESVC_ADMIN_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        for port in ports:
            wait_for_port(port, timeout=60)
        assert [_contact(port) for port in ports] == ["defer", "defer"]  # 20:30 is outside 09:00–20:00
        seeded = RulesStore(rules_store).publications("recovery")
        assert [(p.kind, p.published_by) for p in seeded] == [("seed", "rules directory")]  # seeded once
        old_version = seeded[0].version

        draft = tmp_path / "recovery.yaml"
        draft.write_text((copy / "recovery.yaml").read_text(encoding="utf-8").replace('value: "20:00"', 'value: "21:00"'),
                         encoding="utf-8")
        published = _cli("publish", str(draft), "--reason", "JD 允许到 21:00", port=ports[0])
        assert published.returncode == 0, published.stderr
        assert "constant `sms_window_end`: 20:00:00 → 21:00:00" in published.stdout
        assert "published recovery sha256:" in published.stdout and "by admin" in published.stdout
        assert _contact(ports[0]) == "allow"  # the publishing instance at once
        _within(SYNC_SECONDS, ports[1], "allow")
        assert 'value: "20:00"' in (copy / "recovery.yaml").read_text(encoding="utf-8")  # the store, not the files

        rolled = _cli("rollback", "recovery", old_version, "--reason", "回到 20:00", port=ports[1])
        assert rolled.returncode == 0, rolled.stderr
        assert _contact(ports[1]) == "defer"
        _within(SYNC_SECONDS, ports[0], "defer")
        history = [(p.kind, p.published_by, p.reason) for p in RulesStore(rules_store).publications("recovery")]
        assert history == [("rollback", "admin", "回到 20:00"), ("publish", "admin", "JD 允许到 21:00"),
                           ("seed", "rules directory", "the rules directory's file at the first start")]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def test_publish_refuses_a_broken_file_and_a_missing_service(copy, tmp_path):
    broken = tmp_path / "recovery.yaml"
    broken.write_text("domain: recovery\n", encoding="utf-8")
    unreachable = _cli("publish", str(broken), "--reason", "x", port=free_port())
    assert unreachable.returncode == 2 and "cannot reach the service" in unreachable.stderr
