"""The decision log (SPEC §10): every decision path lands exactly once, sensitive facts never in clear,
a full queue drops without delaying anyone, retention, queries, versions, the CLI and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from api import create_app
from engine.audit.log import DecisionLog, LogDatabase, LogQuery, Masker, key_file, open_log

from .conftest import AUDIT, NOW, RULES, merged
from .test_payout import INITIATE_OK

ROOT = RULES.parent
MAIN_PAYOUT = merged(INITIATE_OK, {"actor": {"role": "main"}, "payout": {"amount": "350.00"},
                                   "wallet": {"balance": "10000.00"}, "order": {"amount": "2000.00"}})
REBATE = {
    "platform": "taobao", "subscription": {"confirmed": True, "ordered_at": "2026-11-16", "order_no": "TB-1"},
    "report": {"shop_name": "小店", "order_no": "TB-1", "ordered_at": "2026-11-16", "amount": "99.00",
               "contact_phone": "13800138000"},
    "payee": {"account_type": "bank", "bank_name": "招商银行", "account_no": "6225880212345678",
              "account_name": "张三丰"},
}
SECRETS = ["customer-secret-0042", "13800138000", "6225880212345678", "张三丰"]


def payout(amount: str, **changes) -> dict:
    return merged(MAIN_PAYOUT, {"payout": {"amount": amount}, **changes})


@pytest.fixture
def service(tmp_path):
    """A test client whose decision log is ``tmp_path/log.db``, and that log's database."""
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    state = app.extensions["rulesvc"]
    yield app.test_client(), state
    state.decision_log.close()


def logged(state, **query) -> list[dict]:
    state.store.drain()  # committed decisions' entries come through the store's outbox (SPEC §10)
    state.decision_log.flush()
    return state.decision_log.database.query(LogQuery(limit=None, **query))


def test_every_decision_path_lands_exactly_once(service):
    client, state = service
    single = client.post("/v1/decisions/payout.initiate", json={"facts": payout("350.00"), "now": NOW.isoformat()}).json
    batch = client.post("/v1/decisions/payout.initiate/batch", json={"items": [
        {"facts": payout("120.00"), "now": NOW.isoformat()}, {"facts": {"payout": {}}},
        {"facts": payout("600.00"), "now": NOW.isoformat()}]}).json["results"]
    commit = {"facts": payout("88.00"), "now": NOW.isoformat(), "commit": True, "idempotency_key": "pay-1"}
    committed = client.post("/v1/decisions/payout.initiate", json=commit).json
    replayed = client.post("/v1/decisions/payout.initiate", json=commit).json  # the same key again
    denied_commit = client.post("/v1/decisions/payout.initiate", json={
        "facts": payout("700.00"), "now": NOW.isoformat(), "commit": True, "idempotency_key": "pay-2"}).json

    assert replayed["decision_id"] == committed["decision_id"]
    entries = logged(state)
    by_id = {entry["decision_id"]: entry for entry in entries}
    assert len(entries) == len(by_id) == 5  # the invalid batch item is no decision; the replayed key is logged once
    assert by_id[single["decision_id"]]["source"] == "http"
    assert [by_id[batch[i]["decision_id"]]["source"] for i in (0, 2)] == ["batch", "batch"]
    assert by_id[batch[2]["decision_id"]]["reasons"] == ["AMOUNT_OVER_LIMIT"]
    assert (by_id[committed["decision_id"]]["source"], by_id[committed["decision_id"]]["committed"]) == ("commit", True)
    assert (by_id[denied_commit["decision_id"]]["outcome"], by_id[denied_commit["decision_id"]]["committed"]) == \
        ("deny", False)
    entry = by_id[single["decision_id"]]
    assert entry["decision"] == "payout.initiate" and entry["outcome"] == "allow"
    assert entry["now"] == "2026-11-20T10:00:00+08:00"
    assert entry["obligations"] == {"sms_verification_required": True}
    assert entry["ruleset_version"] == single["ruleset"]["version"]
    assert entry["facts"]["payout"] == {"amount": "350.00", "reason": "price_difference"}
    assert entry["facts"]["actor"]["menu_permissions"]  # validated facts, defaults filled in
    assert entry["rules_fired"] == ["payout.initiate/sms-verification"]
    assert isinstance(entry["duration_us"], int) and entry["duration_us"] > 0
    assert entry["shadow"] is None


def test_the_counters_a_decision_read_are_logged(service):
    from .test_timing import CONTACT

    client, state = service
    body = {"facts": CONTACT, "now": "2026-11-20T10:00:00+08:00", "commit": True, "idempotency_key": "sms-1"}
    first = client.post("/v1/decisions/recovery.contact", json=body).json
    second = client.post("/v1/decisions/recovery.contact", json={
        **body, "facts": merged(CONTACT, {"order": {"id": "order-2"}}), "idempotency_key": "sms-2",
        "now": "2026-11-20T15:00:00+08:00"}).json
    assert (first["outcome"], second["outcome"]) == ("allow", "defer")
    entries = {entry["decision_id"]: entry for entry in logged(state)}
    assert entries[first["decision_id"]]["counters"] == {"sms_sent_today": 0}
    # the defer looked ahead to the next day's 09:00: that day's count was read too
    assert entries[second["decision_id"]]["counters"] == {"sms_sent_today": 1, "sms_sent_today@2026-11-21": 0}
    assert entries[second["decision_id"]]["next_eligible_at"] == "2026-11-21T09:00:00+08:00"


def test_sensitive_facts_never_reach_the_log_files_in_clear(service, tmp_path, monkeypatch):
    client, state = service
    facts = payout("60.00", customer={"account": SECRETS[0]})
    client.post("/v1/decisions/payout.initiate", json={"facts": facts, "now": NOW.isoformat(), "commit": True,
                                                        "idempotency_key": "k-1"})
    client.post("/v1/decisions/rebate.apply", json={"facts": REBATE, "now": NOW.isoformat()})
    client.post("/v1/decisions/rebate.apply/batch", json={"items": [{"facts": REBATE, "now": NOW.isoformat()}]})
    entries = logged(state)
    assert len(entries) == 3
    state.decision_log.database.close()
    log_files = sorted(tmp_path.glob("log.db*"))
    assert any(path.name == "log.db" for path in log_files)
    content = b"".join(path.read_bytes() for path in log_files if path.suffix != ".key")
    for secret in SECRETS:
        assert secret.encode("utf-8") not in content, f"{secret} is in the decision log's files"
    payout_entry = next(entry for entry in entries if entry["decision"] == "payout.initiate")
    masked = payout_entry["facts"]["customer"]["account"]
    assert masked.startswith("hmac:") and len(masked) == 5 + 64
    assert payout_entry["masked"] == ["customer.account"]
    rebate_entries = [entry for entry in entries if entry["decision"] == "rebate.apply"]
    assert sorted(rebate_entries[0]["masked"]) == ["payee.account_name", "payee.account_no", "report.contact_phone"]
    # equal values stay equal (one can still search by a masked value)
    assert rebate_entries[0]["facts"]["payee"] == rebate_entries[1]["facts"]["payee"]
    # the generated key is kept beside the log, readable by its owner only, and is the HMAC key
    key = key_file(f"sqlite:///{tmp_path}/log.db")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    expected = hmac.new(key.read_bytes().strip(), SECRETS[0].encode(), hashlib.sha256).hexdigest()
    assert masked == "hmac:" + expected


def test_the_log_key_comes_from_the_environment_when_set(tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_LOG_KEY", "operator-secret")
    decision_log = open_log(f"sqlite:///{tmp_path}/log.db")
    assert decision_log.masker.mask_value("13800138000") == "hmac:" + hmac.new(
        b"operator-secret", b"13800138000", hashlib.sha256).hexdigest()
    assert not key_file(f"sqlite:///{tmp_path}/log.db").exists()


def test_masking_walks_nested_objects_and_lists():
    masker = Masker(b"k")
    facts = {"order": {"items": [{"sku": "a", "owner": "alice"}, {"sku": "b"}]}, "customer": {"account": "x"}}
    masked, paths = masker.mask(facts, ["order.items[].owner", "customer.account", "customer.phone"])
    assert masked["order"]["items"][0]["owner"] == masker.mask_value("alice")
    assert masked["order"]["items"][1] == {"sku": "b"}
    assert masked["customer"]["account"] == masker.mask_value("x")
    assert paths == ["order.items[].owner", "customer.account"]
    assert facts["customer"]["account"] == "x"  # the caller's facts are not changed


class BlockedDatabase:
    """A log database whose writes wait until released: the queue behind it fills up."""

    url = "blocked://"

    def __init__(self):
        self.release = threading.Event()
        self.written: list[dict] = []

    def write_rows(self, rows):
        self.release.wait(30)
        self.written.extend(rows)
        return len(rows)

    def keep_version(self, *args):
        pass


class BlockedWriterProcess(BlockedDatabase):
    """The writer process, blocked the same way (it answers each batch: all written)."""

    def write(self, batch):
        return self.write_rows(batch), 0

    def close(self, timeout=10.0):
        pass


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_a_full_queue_drops_and_counts_and_never_delays_a_decision(tmp_path, writer):
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    state = app.extensions["rulesvc"]
    state.decision_log.writer = writer
    if writer == "thread":
        blocked = BlockedDatabase()
        state.decision_log.database = blocked
    else:
        state.decision_log._ensure_writer()
        blocked = state.decision_log._process = BlockedWriterProcess()
    state.decision_log.capacity = 5
    state.decision_log.batch_size = 2
    client = app.test_client()
    answered = []

    def ask() -> None:
        for index in range(40):
            answered.append(client.post("/v1/decisions/payout.initiate", json={
                "facts": payout(f"{100 + index}.00"), "now": NOW.isoformat()}).status_code)

    asker = threading.Thread(target=ask)
    asker.start()
    asker.join(timeout=60)  # with a blocking log this would hang: decisions never wait for the log
    assert not asker.is_alive()
    assert answered == [200] * 40
    dropped = state.decision_log.dropped
    assert dropped >= 40 - 5 - 2  # at most a queue and a batch in the writer's hands were kept
    metrics = client.get("/metrics").get_data(as_text=True)
    line = next(line for line in metrics.splitlines() if line.startswith("rulesvc_decision_log_dropped_total"))
    assert float(line.split()[-1]) >= dropped
    blocked.release.set()
    state.decision_log.flush()
    assert len(blocked.written) + dropped == 40


def test_flush_writes_at_once_however_long_the_writer_would_wait(tmp_path, rulebook):
    # SIGTERM calls flush: with an hour between the writer's ticks it used to wait out its whole timeout
    decision_log = DecisionLog(LogDatabase(f"sqlite:///{tmp_path}/log.db"), Masker(b"k"), flush_seconds=3600,
                               batch_size=100_000)
    compiled = rulebook.decision("payout.initiate")
    result, evaluation = compiled.run(payout("100.00"), now=NOW)
    decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"], source="http",
                        duration_us=1)
    started = time.monotonic()
    assert decision_log.flush(timeout=30)
    assert time.monotonic() - started < 10  # woken, not timed out
    assert [entry["decision_id"] for entry in decision_log.database.query(LogQuery(limit=None))] == [result["decision_id"]]
    decision_log.close()


def test_log_sample_keeps_about_that_share(tmp_path):
    import random

    random.seed(7)
    decision_log = DecisionLog(LogDatabase(f"sqlite:///{tmp_path}/log.db"), Masker(b"k"), sample=0.25)
    kept = sum(decision_log.sampled() for _ in range(2000))
    assert 400 < kept < 600
    with pytest.raises(ValueError):
        DecisionLog(LogDatabase(f"sqlite:///{tmp_path}/log.db"), Masker(b"k"), sample=0)


def test_queries_filter_by_decision_outcome_code_id_and_time(service):
    client, state = service
    ids = [client.post("/v1/decisions/payout.initiate", json={"facts": payout(amount), "now": NOW.isoformat()}).json
           ["decision_id"] for amount in ("100.00", "600.00", "700.00")]
    client.post("/v1/decisions/rebate.apply", json={"facts": REBATE, "now": NOW.isoformat()})
    state.decision_log.flush()
    listed = client.get("/v1/decisions/log", headers=AUDIT).json
    assert isinstance(listed, list) and len(listed) == 4
    assert listed[-1]["decision_id"] == ids[0]  # newest first
    denied = client.get("/v1/decisions/log?decision=payout.initiate&outcome=deny", headers=AUDIT).json
    assert [e["decision_id"] for e in denied] == [ids[2], ids[1]]
    over = client.get("/v1/decisions/log?code=AMOUNT_OVER_LIMIT&limit=1", headers=AUDIT).json
    assert [e["decision_id"] for e in over] == [ids[2]]
    assert client.get(f"/v1/decisions/log?id={ids[0]}", headers=AUDIT).json[0]["facts"]["payout"]["amount"] == "100.00"
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert client.get("/v1/decisions/log", query_string={"from": later}, headers=AUDIT).json == []
    assert len(client.get("/v1/decisions/log", query_string={"to": later}, headers=AUDIT).json) == 4
    bad = client.get("/v1/decisions/log?outcome=maybe&limit=0&from=yesterday", headers=AUDIT)
    assert bad.status_code == 400
    assert set(bad.json["error"]["fields"]) == {"outcome", "limit", "from"}


def test_prune_deletes_entries_before_an_instant(service):
    client, state = service
    for amount in ("100.00", "120.00"):
        client.post("/v1/decisions/payout.initiate", json={"facts": payout(amount), "now": NOW.isoformat()})
    state.decision_log.flush()
    database = state.decision_log.database
    assert database.prune(datetime.now(UTC) - timedelta(days=1)) == 0
    assert database.prune(datetime.now(UTC) + timedelta(seconds=1)) == 2
    assert database.query(LogQuery(limit=None)) == []


def test_every_active_version_is_kept_with_its_text(tmp_path):
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    app = create_app(rules, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    client, state = app.test_client(), app.extensions["rulesvc"]
    first = client.get("/v1/rulesets/versions").json["versions"]
    assert sorted(v["domain"] for v in first) == ["allowance", "payout", "rebate", "recovery"]
    assert all(v["active"] for v in first)
    old_payout = next(v["version"] for v in first if v["domain"] == "payout")
    kept = client.get(f"/v1/rulesets/versions/{old_payout}", headers=AUDIT).json
    assert kept["files"] == {"payout.yaml": (RULES / "payout.yaml").read_text(encoding="utf-8")}
    rebate_version = next(v['version'] for v in first if v['domain'] == 'rebate')
    rebate = client.get(f"/v1/rulesets/versions/{rebate_version}", headers=AUDIT).json
    assert "calendars/cn-2026.yaml" in rebate["files"]  # working days count on the calendar: it is part of the version

    text = (rules / "payout.yaml").read_text(encoding="utf-8").replace('value: "500.00"', 'value: "300.00"')
    (rules / "payout.yaml").write_text(text, encoding="utf-8")
    assert state.reload() == []
    versions = client.get("/v1/rulesets/versions").json["versions"]
    assert len(versions) == 5
    assert {v["version"]: v["active"] for v in versions}[old_payout] is False
    new_payout = next(v["version"] for v in versions if v["domain"] == "payout" and v["active"])
    assert client.get(f"/v1/rulesets/versions/{new_payout}", headers=AUDIT).json["files"]["payout.yaml"] == text
    assert client.get("/v1/rulesets/versions/sha256:nope", headers=AUDIT).status_code == 404
    state.reload()  # the same files again: nothing new to keep
    assert len(client.get("/v1/rulesets/versions").json["versions"]) == 5


def run_cli(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**os.environ, **(env or {})})


def test_cli_decide_logs_only_with_log_and_rulesvc_log_reads_it(tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    facts = json.dumps(payout("350.00", customer={"account": SECRETS[0]}))
    plain = run_cli("decide", "payout.initiate", "--now", NOW.isoformat(), stdin=facts)
    assert plain.returncode == 0, plain.stderr
    assert not (tmp_path / "log.db").exists()
    logged_run = run_cli("decide", "payout.initiate", "--now", NOW.isoformat(), "--log", url, stdin=facts)
    assert logged_run.returncode == 0, logged_run.stderr
    decision_id = json.loads(logged_run.stdout)["decision_id"]
    listed = run_cli("log", "--log", url)
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(entry["decision_id"], entry["source"]) for entry in lines] == [(decision_id, "cli")]
    assert lines[0]["facts"]["customer"]["account"].startswith("hmac:")
    assert SECRETS[0] not in listed.stdout
    assert run_cli("log", "--log", url, "--outcome", "deny").stdout == ""
    versions = run_cli("versions", "--log", url)
    assert versions.returncode == 0 and versions.stdout.count("sha256:") == 4
    prune = run_cli("log", "prune", "--before", "2999-01-01T00:00:00+08:00", "--log", url)
    assert prune.returncode == 0 and "deleted 1 " in prune.stdout
    missing = run_cli("log", "--log", f"sqlite:///{tmp_path}/nothing.db")
    assert missing.returncode == 1 and "no decision log" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()


def test_postgresql_log(postgres_server, tmp_path):
    url = postgres_server.url
    decision_log = open_log(url)
    from engine import load_rulebook

    rulebook = load_rulebook([RULES])
    decision_log.keep_versions(rulebook)
    compiled = rulebook.decision("payout.initiate")
    ids = []
    for amount in ("100.00", "600.00"):
        result, evaluation = compiled.run(payout(amount), now=NOW)
        decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"], source="http",
                            duration_us=5)
        ids.append(result["decision_id"])
    decision_log.close()
    database = LogDatabase(url)
    assert [entry["decision_id"] for entry in database.query(LogQuery(decision="payout.initiate"))][-2:] == ids[::-1]
    assert database.query(LogQuery(code="AMOUNT_OVER_LIMIT", decision_id=ids[1]))[0]["outcome"] == "deny"
    assert {v["domain"] for v in database.versions()} >= {"payout", "rebate"}
    assert Path(tmp_path).exists()


def test_prune_works_on_the_log_given_to_rulesvc_log(tmp_path):
    url, other = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    for log_url in (url, other):
        assert run_cli("decide", "payout.initiate", "--now", NOW.isoformat(), "--log", log_url,
                       stdin=json.dumps(payout("100.00"))).returncode == 0
    pruned = run_cli("log", "--log", other, "prune", "--before", "2999-01-01T00:00:00+08:00")
    assert pruned.returncode == 0 and "deleted 1 " in pruned.stdout
    assert LogDatabase(other).query(LogQuery(limit=None)) == []
    assert len(LogDatabase(url).query(LogQuery(limit=None))) == 1  # the other log is untouched
    refused = run_cli("log", "--log", url, "--decision", "payout.initiate", "prune", "--before", "2999-01-01T00:00:00Z")
    assert refused.returncode == 2 and "takes only its own options" in refused.stderr
    assert len(LogDatabase(url).query(LogQuery(limit=None))) == 1


def test_an_empty_sensitive_value_is_not_masked_and_replays(service):
    from engine.audit.replay import VersionLibrary, explain

    client, state = service
    facts = merged(REBATE, {"report": {"contact_phone": ""}})
    answer = client.post("/v1/decisions/rebate.apply", json={"facts": facts, "now": NOW.isoformat()}).json
    assert answer["reasons"][0]["code"] == "REPORT_INCOMPLETE"
    entry = logged(state)[0]
    assert entry["facts"]["report"]["contact_phone"] == ""  # nothing to hide
    assert explain(entry, VersionLibrary(state.decision_log.database))["reproduced"] is True


def test_a_full_batch_wakes_the_writer_at_once(tmp_path):
    decision_log = DecisionLog(LogDatabase(f"sqlite:///{tmp_path}/log.db"), Masker(b"k"), batch_size=10,
                               flush_seconds=3600)
    from engine import load_rulebook

    compiled = load_rulebook([RULES]).decision("payout.initiate")
    result, evaluation = compiled.run(payout("100.00"), now=NOW)
    for index in range(10):
        decision_log.record(compiled, evaluation, result={**result, "decision_id": f"id-{index}"},
                            decision_id=f"id-{index}", source="http", duration_us=1)
    deadline = time.monotonic() + 10
    while decision_log.written < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert decision_log.written == 10  # not an hour later


def test_the_writers_row_holds_the_same_entry_as_the_commit_path_builds(tmp_path):
    """The writer's one-pass row (validated facts written by orjson, masked before) and the entry a commit
    keeps in its outbox (facts turned to output form, then masked) are the same JSON, for every domain
    — sensitive text, money and instants, defaults, counters — and a sensitive money fact is masked as
    its output form reads."""
    from engine import load_rulebook
    from engine.audit.log.entry import Pending, build_entry, entry_row, row_of
    from engine.jsontext import dumps_text

    from .test_timing import CONTACT

    rulebook = load_rulebook([RULES])
    masker = Masker(b"k" * 32)
    cases = [("payout.initiate", payout("350.00", customer={"account": SECRETS[0]})), ("rebate.apply", REBATE),
             ("recovery.contact", CONTACT)]
    for name, facts in cases:
        compiled = rulebook.decision(name)
        result, evaluation = compiled.run(facts, now=NOW)
        pending = Pending(compiled.decision, compiled.domain.version, compiled.sensitive_paths, evaluation, result,
                          None, result["decision_id"], "http", 7, False, datetime.now(UTC))
        row = entry_row(pending, masker)
        entry = build_entry(pending, masker)
        assert json.loads(row[-1]) == entry, name
        assert row == row_of(entry, row[-1]) and json.loads(row_of(entry, dumps_text(entry))[-1]) == entry
        assert not any(secret in row[-1] for secret in SECRETS), name
    money = {"order": {"amount": Decimal("12.50")}, "when": datetime(2026, 11, 20, 2, tzinfo=UTC)}
    masked, paths = masker.mask(money, ["order.amount", "when"])
    assert masked == {"order": {"amount": masker.mask_value("12.50")},
                      "when": masker.mask_value("2026-11-20T10:00:00+08:00")}
    assert paths == ["order.amount", "when"]
