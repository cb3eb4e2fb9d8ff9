"""The decision log's writer process (engine/audit/log/process.py): the same entries as the in-process
writer, nothing lost when it dies, and gone when its service is."""

from __future__ import annotations

import os
import signal
import time

from engine.audit.log import LogQuery, open_log

from .conftest import NOW, RULES
from .test_decision_log import REBATE, SECRETS, payout
from .test_timing import CONTACT

CASES = [("payout.initiate", payout("350.00", customer={"account": SECRETS[0]})),
         ("payout.initiate", payout("650.00")),  # refused: a reason code
         ("rebate.apply", REBATE), ("recovery.contact", CONTACT),
         ("allowance.withdraw", {"store": {"channel": "pop"}, "allowance": {
             "principal": "80.00", "bonus": "20.00", "consumed": "10.00", "valid_until": "2026-12-31T00:00:00+08:00"}})]


def _log_all(rulebook, url: str, writer: str) -> list[dict]:
    decision_log = open_log(url, writer=writer)
    for name, facts in CASES:
        compiled = rulebook.decision(name)
        result, evaluation = compiled.run(facts, now=NOW)
        assert decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"],
                                   source="http", duration_us=5)
    assert decision_log.flush(60)
    entries = decision_log.database.query(LogQuery(limit=None))
    decision_log.close()
    return sorted(entries, key=lambda entry: entry["decision"] + entry["outcome"])


def test_the_writer_process_writes_the_entries_the_thread_would(tmp_path, rulebook, monkeypatch):
    monkeypatch.setenv("RULESVC_LOG_KEY", "one-key-for-both")
    by_thread = _log_all(rulebook, f"sqlite:///{tmp_path}/thread.db", "thread")
    by_process = _log_all(rulebook, f"sqlite:///{tmp_path}/process.db", "process")
    assert len(by_process) == len(CASES)
    for mine, theirs in zip(by_process, by_thread, strict=True):
        # the same but for the ids and the instant each was logged at
        assert {**mine, "decision_id": "", "evaluated_at": ""} == {**theirs, "decision_id": "", "evaluated_at": ""}
    text = str(by_process)
    assert not any(secret in text for secret in SECRETS)
    assert {path for entry in by_process for path in entry["masked"]} >= {
        "customer.account", "payee.account_no", "payee.account_name", "report.contact_phone"}


def test_a_dead_writer_process_loses_nothing_and_is_started_again(tmp_path, rulebook):
    url = f"sqlite:///{tmp_path}/log.db"
    decision_log = open_log(url, writer="process")
    compiled = rulebook.decision("payout.initiate")

    def decide(count: int) -> None:
        for index in range(count):
            result, evaluation = compiled.run(payout(f"{100 + index}.00"), now=NOW)
            decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"], source="http",
                                duration_us=1)

    decide(5)
    assert decision_log.flush(60)
    first = decision_log._process._child
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    decide(5)  # this batch finds the child gone: the thread writes it itself
    assert decision_log.flush(60)
    decide(5)  # and the next goes to a new child
    assert decision_log.flush(60)
    second = decision_log._process._child
    assert second is not None and second.pid != first.pid
    assert decision_log.database.span(LogQuery(limit=None))[0] == 15
    assert decision_log.written == 15 and decision_log.dropped == 0
    os.kill(second.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group: the writer stays
    time.sleep(0.5)
    assert second.poll() is None
    decision_log.close()
    assert second.wait(10) == 0  # its stdin closed: it ends after what it was given


def test_the_service_logs_through_its_writer_process(tmp_path):
    from api import create_app

    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    state = app.extensions["rulesvc"]
    assert state.decision_log.writer == "process"
    client = app.test_client()
    answer = client.post("/v1/decisions/payout.initiate", json={"facts": payout("350.00"), "now": NOW.isoformat()})
    assert answer.status_code == 200
    state.decision_log.flush(60)
    assert state.decision_log._process._child is not None
    (entry,) = state.decision_log.database.query(LogQuery(limit=None))
    assert entry["decision_id"] == answer.json["decision_id"] and entry["source"] == "http"
    state.decision_log.close()
