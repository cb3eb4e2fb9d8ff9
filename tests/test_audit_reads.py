"""Reading what decisions were made (SPEC §7.1; issue 20, findings 2, 3 and 5): only with the audit, QA
or admin token; a page of at most 1,000 entries at a time with a cursor; inside the heavy-work slot; the
shadow report not recomputed for every caller; sensitive record columns masked for all but the audit
and admin readers."""

from __future__ import annotations

import csv
import io

import pytest

from api import create_app
from api.limits import heavy_run
from api.pagination import encode_cursor
from engine.limits import Budget
from engine.state import RecordQuery

from .conftest import AUDIT, NOW, RULES, merged
from .test_payout import INITIATE_OK

ADMIN_TOKEN, QA_TOKEN = "admin-token-of-the-tests", "qa-token-of-the-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
QA = {"Authorization": f"Bearer {QA_TOKEN}"}
READS = ["/v1/decisions/log", "/v1/decisions/records", "/v1/decisions/records?format=csv",
         "/v1/decisions/log/01NOSUCH/explain", "/v1/rulesets/versions/sha256:nope"]


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("RULESVC_QA_TOKEN", QA_TOKEN)
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    state = app.extensions["rulesvc"]
    yield app.test_client(), state
    state.decision_log.close()


def commit(client, key: str, account: str) -> dict:
    facts = merged(INITIATE_OK, {"customer": {"account": account}, "order": {"id": f"order-{key}"}})
    response = client.post("/v1/decisions/payout.initiate", json={"facts": facts, "commit": True, "idempotency_key": key})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("path", READS)
def test_audit_reads_need_a_token(service, path):
    client, _ = service
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    for token in (AUDIT, QA, ADMIN):
        assert client.get(path, headers=token).status_code in (200, 404), (path, token)


def test_with_no_reader_token_configured_the_reads_are_off_not_open(service, monkeypatch):
    client, _ = service
    for name in ("RULESVC_AUDIT_TOKEN", "RULESVC_QA_TOKEN", "RULESVC_ADMIN_TOKEN"):
        monkeypatch.delenv(name)
    answer = client.get("/v1/decisions/log")
    assert answer.status_code == 403 and answer.json["error"]["code"] == "AUDIT_DISABLED"


def test_records_show_sensitive_columns_masked_unless_the_reader_may_see_them(service):
    client, state = service
    committed = commit(client, "k-1", "buyer-secret-77")
    mask = state.masker.mask_value("buyer-secret-77")
    for reader, expected in ((AUDIT, "buyer-secret-77"), (ADMIN, "buyer-secret-77"), (QA, mask)):
        records = client.get(f"/v1/decisions/records?id={committed['decision_id']}", headers=reader).json["records"]
        assert [record["customer_account"] for record in records] == [expected]
        exported = client.get("/v1/decisions/records?format=csv", headers=reader).get_data(as_text=True)
        table = list(csv.reader(io.StringIO(exported.lstrip("\ufeff"))))
        assert [row[2] for row in table[1:]] == [expected]
    # The same hmac as the log keeps: a masked record and its log entry still match, neither maps to clear text.
    state.store.drain()
    entry = client.get(f"/v1/decisions/log?id={committed['decision_id']}", headers=QA).json[0]
    assert entry["facts"]["customer"]["account"] == mask


def test_the_log_comes_a_page_at_a_time_with_a_cursor(service):
    client, state = service
    ids = [client.post("/v1/decisions/payout.initiate", json={"facts": INITIATE_OK, "now": NOW.isoformat()}).json
           ["decision_id"] for _ in range(7)]
    state.decision_log.flush()
    seen, path, pages = [], "/v1/decisions/log?limit=3&decision=payout.initiate", 0
    while path:
        answer = client.get(path, headers=AUDIT)
        assert answer.status_code == 200 and len(answer.json) <= 3
        seen += [entry["decision_id"] for entry in answer.json]
        pages += 1
        link = answer.headers.get("Link")
        assert (link is None) == ("Next-Cursor" not in answer.headers)
        path = link[link.index("/v1/"):link.index(">")] if link else None
        assert path is None or "decision=payout.initiate" in path  # the filters carry over
    assert seen == ids[::-1] and pages == 3  # newest first, each entry once
    too_many = client.get("/v1/decisions/log?limit=1001", headers=AUDIT)
    assert too_many.status_code == 400 and "limit" in too_many.json["error"]["fields"]
    for cursor in ("garbage", "eyJ4Ijoxfe", "WyJyZWNvcmRzIiwxXQ",  # not base64 JSON; not a list; another listing's
                   *(encode_cursor("log", position) for position in (2**70, -1, True, {}, "x", 1.5))):
        bad = client.get(f"/v1/decisions/log?cursor={cursor}", headers=AUDIT)
        assert bad.status_code == 400 and "cursor" in bad.json["error"]["fields"], cursor
    for position in ([2**70, "x"], [True, "x"], [1, 2], [1], "x"):  # tampered records cursors: 400, never 500
        bad = client.get(f"/v1/decisions/records?cursor={encode_cursor('records', position)}", headers=AUDIT)
        assert bad.status_code == 400 and "cursor" in bad.json["error"]["fields"], position


def test_an_audit_read_waits_its_turn_with_the_heavy_work(service):
    client, _ = service
    with heavy_run(Budget("a validation")):
        busy = client.get("/v1/decisions/log", headers=AUDIT)
    assert busy.status_code == 429 and busy.json["error"]["code"] == "BUSY" and busy.headers["Retry-After"]
    assert client.get("/v1/decisions/log", headers=AUDIT).status_code == 200


def test_records_come_a_page_at_a_time_and_the_csv_too(service):
    client, state = service
    ids = [commit(client, f"page-{number}", f"buyer-{number}")["decision_id"] for number in range(5)]
    for format_ in ("json", "csv"):
        seen, cursor = [], None
        while True:
            path = f"/v1/decisions/records?limit=2&format={format_}" + (f"&cursor={cursor}" if cursor else "")
            answer = client.get(path, headers=AUDIT)
            assert answer.status_code == 200
            if format_ == "json":
                assert answer.json["next_cursor"] == answer.headers.get("Next-Cursor")
                seen += [record["decision_id"] for record in answer.json["records"]]
            else:
                table = list(csv.reader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
                seen += [row[0] for row in table[1:]]
            cursor = answer.headers.get("Next-Cursor")
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 5, format_  # each record once
    assert client.get("/v1/decisions/records?limit=1001", headers=AUDIT).status_code == 400
    state.store.drain()  # committed decisions reach the log through the commit's outbox
    log_cursor = client.get("/v1/decisions/log?limit=1", headers=AUDIT).headers.get("Next-Cursor")
    assert log_cursor is not None
    refused = client.get(f"/v1/decisions/records?cursor={log_cursor}", headers=AUDIT)
    assert refused.status_code == 400 and "cursor" in refused.json["error"]["fields"]


@pytest.mark.parametrize(("remote", "counted_as"), [
    ("203.0.113.7", "203.0.113.7"), ("::ffff:203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"), ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
])
def test_failed_tokens_count_per_client_and_per_ipv6_block(service, remote, counted_as):
    """Review finding 4: a client rotating its IPv6 addresses inside its /64 keeps one count."""
    from api.auth import client_address

    client, _ = service
    with client.application.test_request_context(environ_base={"REMOTE_ADDR": remote}):
        assert client_address() == counted_as


def test_a_record_of_another_version_has_every_text_column_masked(service):
    """Review finding 10: which columns read sensitive facts is known for the active version only."""
    import dataclasses

    client, state = service
    committed = commit(client, "old-1", "buyer-secret-88")
    record = state.store.records(RecordQuery(decision_id=committed["decision_id"]))[0]
    active = state.masked_records([record])[0]
    assert active.customer_account.startswith("hmac:") and active.order_id == "order-old-1"
    older = state.masked_records([dataclasses.replace(record, ruleset_version="sha256:older")])[0]
    assert older.customer_account.startswith("hmac:") and older.order_id.startswith("hmac:")
