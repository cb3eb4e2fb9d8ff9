"""The time of a commit is the server's (SPEC §6; issue 20, item 6): a caller may not date a commit into
another day to pass a daily limit; records keep the server's evaluated_at and the request's now; a
problem with the request itself is INVALID_REQUEST, INVALID_FACTS is for facts."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest

from api import create_app

from .conftest import AUDIT, RULES, merged
from .test_timing import CONTACT

SERVER_NOW = datetime.fromisoformat("2026-11-20T10:00:00+08:00")  # in the SMS window: the first SMS is allowed


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.delenv("RULESVC_COMMIT_SKEW")  # the default: 300 seconds
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    app.extensions["rulesvc"].clock = lambda: SERVER_NOW
    return app


def contact(client, order: str, now: datetime | None, key: str, **extra):
    body = {"facts": merged(CONTACT, {"order": {"id": order}}), "commit": True, "idempotency_key": key, **extra}
    if now is not None:
        body["now"] = now.isoformat()
    return client.post("/v1/decisions/recovery.contact", json=body)


def test_a_commit_dated_a_day_later_is_refused_and_passes_no_daily_limit(app):
    client = app.test_client()
    assert contact(client, "o-1", SERVER_NOW, "sms-1").get_json()["outcome"] == "allow"
    # The attack: the customer's second SMS of the day, dated tomorrow so that today's count is not read.
    refused = contact(client, "o-2", SERVER_NOW + timedelta(days=1), "sms-2")
    assert refused.status_code == 400
    error = refused.get_json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert list(error["fields"]) == ["now"]
    assert "300 seconds" in error["fields"]["now"][0] and "RULESVC_COMMIT_SKEW" in error["fields"]["now"][0]
    # backdated too
    assert contact(client, "o-2", SERVER_NOW - timedelta(hours=1), "sms-2").status_code == 400
    # within the skew the commit is made, and the day's limit holds
    deferred = contact(client, "o-2", SERVER_NOW + timedelta(seconds=299), "sms-2").get_json()
    assert deferred["outcome"] == "defer" and [r["code"] for r in deferred["reasons"]] == ["DAILY_SMS_LIMIT_REACHED"]
    # without a now the server clock is the commit's time
    assert contact(client, "o-3", None, "sms-3").get_json()["outcome"] == "defer"


def test_the_skew_is_configurable(app, monkeypatch):
    monkeypatch.setenv("RULESVC_COMMIT_SKEW", "90000")  # 25 hours
    client = app.test_client()
    assert contact(client, "o-1", SERVER_NOW + timedelta(days=1), "sms-1").status_code == 200
    monkeypatch.setenv("RULESVC_COMMIT_SKEW", "60")
    error = contact(client, "o-2", SERVER_NOW + timedelta(seconds=61), "sms-2").get_json()["error"]
    assert error["code"] == "INVALID_REQUEST" and "60 seconds" in error["fields"]["now"][0]


def test_records_keep_the_server_time_and_the_request_now(app):
    client = app.test_client()
    asked = SERVER_NOW + timedelta(seconds=120)
    made = contact(client, "o-1", asked, "sms-1").get_json()
    assert made["evaluated_at"] == asked.isoformat()  # the decision document: the instant evaluated as of
    [record] = client.get("/v1/decisions/records?decision=recovery.contact", headers=AUDIT).get_json()["records"]
    assert (record["evaluated_at"], record["now"]) == (SERVER_NOW.isoformat(), asked.isoformat())
    csv_lines = client.get("/v1/decisions/records?format=csv", headers=AUDIT).get_data(as_text=True).splitlines()
    assert csv_lines[0].split(",")[7] == "申请时间" and csv_lines[0].split(",")[-1] == "请求时间(now)"
    assert csv_lines[1].split(",")[7] == SERVER_NOW.isoformat() and csv_lines[1].split(",")[-1] == asked.isoformat()


def test_qa_suites_keep_their_case_times(app):
    """A scenario run commits at its cases' instants against its own fresh store: no skew applies."""
    text = (RULES.parent / "tests" / "scenarios" / "recovery-contact.yaml").read_bytes()
    app.extensions["rulesvc"].clock = lambda: SERVER_NOW + timedelta(days=400)
    body = app.test_client().post("/v1/scenarios/run?file=recovery-contact.yaml", data=text,
                                  content_type="application/yaml").get_json()
    assert body["failed"] == 0 and body["passed"] >= 3


@pytest.mark.parametrize(("extra", "path"), [
    ({"idempotency_key": None}, "idempotency_key"),  # a commit without its key
    ({"commit": "yes"}, "commit"),
    ({"explain": 1}, "explain"),
    ({"now": "2026-11-20 10:00"}, "now"),
    ({"colour": "red"}, "colour"),
])
def test_request_problems_are_invalid_request_and_facts_problems_invalid_facts(app, extra, path):
    client = app.test_client()
    body = {"facts": CONTACT, "now": SERVER_NOW.isoformat(), "commit": True, "idempotency_key": "k", **extra}
    error = client.post("/v1/decisions/recovery.contact", json=body).get_json()["error"]
    assert (error["code"], list(error["fields"])) == ("INVALID_REQUEST", [path])
    # a request problem and a facts problem together: every path listed, under INVALID_REQUEST
    body["facts"] = merged(CONTACT, {"order": {"amount": "-1.00"}})
    error = client.post("/v1/decisions/recovery.contact", json=body).get_json()["error"]
    assert error["code"] == "INVALID_REQUEST" and set(error["fields"]) == {path, "order.amount"}
    # the facts alone wrong: INVALID_FACTS
    body = {"facts": merged(CONTACT, {"order": {"amount": "-1.00"}}), "commit": True, "idempotency_key": "k"}
    error = client.post("/v1/decisions/recovery.contact", json=body).get_json()["error"]
    assert (error["code"], list(error["fields"])) == ("INVALID_FACTS", ["order.amount"])


def test_batch_items_say_which_problem_is_whose(app):
    items = [{"facts": CONTACT, "now": "tomorrow"}, {"facts": merged(CONTACT, {"order": {"amount": "-1.00"}})}]
    results = app.test_client().post("/v1/decisions/recovery.contact/batch", json={"items": items}).get_json()["results"]
    assert [(r["error"]["code"], list(r["error"]["fields"])) for r in results] == [
        ("INVALID_REQUEST", ["now"]), ("INVALID_FACTS", ["order.amount"])]
    response = app.test_client().post("/v1/decisions/recovery.contact/batch", json={"items": "all"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "INVALID_REQUEST"


# a record table as the version before this one made it: no request_now column, keys unique globally
OLD_RECORDS = """CREATE TABLE decision_records (
    decision_id VARCHAR(32) NOT NULL, decision VARCHAR(128) NOT NULL, outcome VARCHAR(16) NOT NULL,
    reason_codes TEXT NOT NULL, ruleset_version VARCHAR(80) NOT NULL, evaluated_ms BIGINT NOT NULL,
    committed BOOLEAN NOT NULL, idempotency_key VARCHAR(256), order_id TEXT, customer_account TEXT,
    store_id TEXT, amount NUMERIC(16, 2), reason VARCHAR(64), result TEXT NOT NULL, fingerprint VARCHAR(64),
    PRIMARY KEY (decision_id), UNIQUE (idempotency_key))"""
OLD_RECORD_INDEXES = ("CREATE INDEX ix_records_decision_time ON decision_records (decision, evaluated_ms)",
                      "CREATE INDEX ix_records_order ON decision_records (order_id)")


def make_old_records(connection) -> None:
    """The old table and some of its indexes, on a DB-API connection (sqlite3 or psycopg)."""
    for statement in (OLD_RECORDS, *OLD_RECORD_INDEXES):
        connection.execute(statement)


def test_a_record_table_made_before_keeps_working(tmp_path, app):
    path = tmp_path / "old.db"
    old_result = ('{"decision_id": "01OLD", "decision": "recovery.contact", "outcome": "allow", "reasons": [], '
                  '"ruleset": {"version": "sha256:old"}, "evaluated_at": "2026-11-19T10:00:00+08:00"}')
    with sqlite3.connect(path) as connection:
        make_old_records(connection)
        connection.execute("INSERT INTO decision_records VALUES ('01OLD', 'recovery.contact', 'allow', '', "
                           "'sha256:old', 1795053600000, 1, 'old-key', 'o-0', NULL, NULL, NULL, NULL, ?, 'f')",
                           (old_result,))
    client = create_app(RULES, store_url=f"sqlite:///{path}", log_url="none").test_client()
    client.application.extensions["rulesvc"].clock = lambda: SERVER_NOW
    assert contact(client, "o-1", None, "sms-1").status_code == 200
    records = client.get("/v1/decisions/records?decision=recovery.contact", headers=AUDIT).get_json()["records"]
    assert [(r["decision_id"], r["now"]) for r in records][0] == ("01OLD", "2026-11-19T10:00:00+08:00")
    assert records[1]["now"] == records[1]["evaluated_at"] == SERVER_NOW.isoformat()
