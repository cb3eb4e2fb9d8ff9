"""Idempotency keys are scoped per decision (SPEC §6; issue 20, item 7): the same key on two decisions is
two commits, on every store; a repeated key answers the first decision marked replayed; keys stored
by earlier versions neither vanish for their decision nor block another's."""

from __future__ import annotations

import json
import sqlite3

import pytest

from api import create_app
from engine.state import RecordQuery, open_store
from engine.state.commit import commit_decision
from engine.state.sql import SqlRecords, make_engine

from .conftest import RULES
from .test_commit_time import make_old_records
from .test_store import NOW, contact_facts, payout_facts


@pytest.fixture
def store_url(request, tmp_path):
    """Each store: the SQLite default, one Redis server, a Redis Cluster (records in SQLite)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/rulesvc.db"
    if request.param == "redis":
        import redis

        server = request.getfixturevalue("redis_server")
        redis.Redis.from_url(server.url).flushdb()
        return server.url
    cluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    return cluster.url


@pytest.mark.parametrize("store_url", ["sqlite", "redis", "cluster"], indirect=True)
def test_the_same_key_on_two_decisions_is_two_commits(store_url, rulebook, tmp_path):
    store = open_store(store_url, None if store_url.startswith("sqlite") else f"sqlite:///{tmp_path}/records.db")
    try:
        initiate, contact = rulebook.decision("payout.initiate"), rulebook.decision("recovery.contact")
        payout = commit_decision(initiate, payout_facts("order-1"), idempotency_key="shared", store=store, now=NOW)
        # before: 409 IDEMPOTENCY_CONFLICT, the key being global
        sms = commit_decision(contact, contact_facts("order-1"), idempotency_key="shared", store=store, now=NOW)
        assert payout["outcome"] == sms["outcome"] == "allow" and payout["decision_id"] != sms["decision_id"]
        assert "replayed" not in payout and "replayed" not in sms
        # each key replays its own decision's first answer
        again = commit_decision(contact, contact_facts("order-1"), idempotency_key="shared", store=store, now=NOW)
        assert again == {**sms, "replayed": True}
        assert commit_decision(initiate, payout_facts("order-1"), idempotency_key="shared", store=store,
                               now=NOW)["decision_id"] == payout["decision_id"]
        store.drain()
        assert sorted(r.decision for r in store.records(RecordQuery())) == ["payout.initiate", "recovery.contact"]
    finally:
        store.close()


def test_a_repeated_key_is_marked_replayed_over_http(tmp_path):
    client = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url="none").test_client()
    body = {"facts": contact_facts("order-1"), "now": NOW.isoformat(), "commit": True, "idempotency_key": "k"}
    first = client.post("/v1/decisions/recovery.contact", json=body)
    assert "Idempotent-Replayed" not in first.headers and "replayed" not in first.get_json()
    again = client.post("/v1/decisions/recovery.contact", json=body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == {**first.get_json(), "replayed": True}
    other = client.post("/v1/decisions/payout.initiate", json={**body, "facts": payout_facts("order-1")})
    assert other.status_code == 200 and "Idempotent-Replayed" not in other.headers


def _stored(result: dict) -> str:
    return json.dumps({"fingerprint": "f-old", "result": result})


OLD_RESULT = {"decision_id": "01OLD", "decision": "recovery.contact", "outcome": "allow", "reasons": [],
              "ruleset": {"version": "sha256:old"}, "evaluated_at": "2026-11-20T10:00:00+08:00"}


def test_an_sqlite_file_of_global_keys_is_upgraded_without_losing_one(tmp_path, rulebook):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:  # the tables as the version before made them
        make_old_records(connection)
        connection.execute("CREATE TABLE idempotency_keys (key VARCHAR(256) PRIMARY KEY, fingerprint VARCHAR(64) "
                           "NOT NULL, result TEXT NOT NULL)")
        connection.execute("INSERT INTO idempotency_keys VALUES ('old-key', 'f-old', ?)", (json.dumps(OLD_RESULT),))
        connection.execute("INSERT INTO decision_records VALUES ('01OLD', 'recovery.contact', 'allow', '', "
                           "'sha256:old', 1795053600000, 1, 'old-key', 'o-0', NULL, NULL, NULL, NULL, ?, 'f-old')",
                           (json.dumps(OLD_RESULT),))
    store = open_store(f"sqlite:///{path}")
    try:
        contact, initiate = rulebook.decision("recovery.contact"), rulebook.decision("payout.initiate")
        # the old key still replays on the decision it was used on (a different fingerprint: a conflict, as before)
        with pytest.raises(Exception, match="different facts"):
            commit_decision(contact, contact_facts("o-0"), idempotency_key="old-key", store=store, now=NOW)
        # and is free on another decision
        made = commit_decision(initiate, payout_facts("o-1"), idempotency_key="old-key", store=store, now=NOW)
        assert made["outcome"] == "allow"
        ids = [record.decision_id for record in store.records(RecordQuery())]
        assert ids == ["01OLD", made["decision_id"]]  # the old record kept, with its key
        assert store.records(RecordQuery(decision_id="01OLD"))[0].idempotency_key == "old-key"
    finally:
        store.close()
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
        moved = connection.execute("select decision, key from decision_idempotency_keys order by key").fetchall()
    assert "idempotency_keys" not in tables and "decision_records_before_upgrade" not in tables
    assert ("recovery.contact", "old-key") in moved and ("payout.initiate", "old-key") in moved
    open_store(f"sqlite:///{path}").close()  # a second start finds nothing to upgrade


def test_a_global_key_left_in_redis_counts_for_its_decision_only(redis_server, rulebook, tmp_path):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    contact, initiate = rulebook.decision("recovery.contact"), rulebook.decision("payout.initiate")
    store = open_store(redis_server.url, f"sqlite:///{tmp_path}/records.db")
    try:
        first = commit_decision(contact, contact_facts("o-1"), idempotency_key="probe", store=store, now=NOW)
        store.drain()
        # as an earlier version stored it: under the global key, with no record (still in its outbox, say)
        client.set("rulesvc:idempotency:old-key", json.dumps({"fingerprint": _fingerprint(contact, "o-1"),
                                                                "result": first}))
        again = commit_decision(contact, contact_facts("o-1"), idempotency_key="old-key", store=store, now=NOW)
        assert again == {**first, "replayed": True}
        other = commit_decision(initiate, payout_facts("o-1"), idempotency_key="old-key", store=store, now=NOW)
        assert other["decision"] == "payout.initiate" and "replayed" not in other
    finally:
        store.close()


def _fingerprint(compiled, order: str) -> str:
    from engine.state.commit import fingerprint

    return fingerprint(compiled.name, compiled.load(contact_facts(order)))


def test_a_postgresql_record_table_of_global_keys_is_upgraded(postgres_server):
    import psycopg

    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS upgrade_keys")
        admin.execute("CREATE DATABASE upgrade_keys")
    url = postgres_server.url.rsplit("/", 1)[0] + "/upgrade_keys"
    with psycopg.connect(url, autocommit=True) as connection:
        make_old_records(connection)
        connection.execute("INSERT INTO decision_records VALUES ('01OLD', 'recovery.contact', 'allow', '', "
                           "'sha256:old', 1795053600000, true, 'old-key', 'o-0', NULL, NULL, NULL, NULL, %s, 'f-old')",
                           (json.dumps(OLD_RESULT),))
    for _ in range(2):  # the second start finds the table upgraded
        records = SqlRecords(make_engine(url))
        assert records.recorded("recovery.contact", "old-key").result["decision_id"] == "01OLD"
        assert records.recorded("payout.initiate", "old-key") is None
        records.engine.dispose()
    records = SqlRecords(make_engine(url))
    try:
        from engine.state import build_record

        made = build_record({**OLD_RESULT, "decision_id": "01NEW", "decision": "payout.initiate"}, {}, True,
                            "old-key", NOW, "f-new", now=NOW)
        records.add(made)  # before: a unique violation on idempotency_key
        assert records.recorded("payout.initiate", "old-key").result["decision_id"] == "01NEW"
        assert [r.now for r in records.query(RecordQuery(decision_id="01NEW"))] == [NOW]
    finally:
        records.engine.dispose()
