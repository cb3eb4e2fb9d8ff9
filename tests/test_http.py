"""Every HTTP endpoint and error through the Flask test client."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from api import create_app

from .conftest import AUDIT, RULES
from .test_payout import INITIATE_OK
from .test_timing import CONTACT

NOW = "2026-11-20T10:00:00+08:00"
TOKEN = "test-admin-token"
YAML = "application/yaml"


@pytest.fixture
def rules_dir(tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


@pytest.fixture
def client(rules_dir, tmp_path):
    return create_app(rules_dir, store_url=f"sqlite:///{tmp_path}/store.db",
                      log_url=f"sqlite:///{tmp_path}/log.db").test_client()


def decide(client, decision: str, **body):
    return client.post(f"/v1/decisions/{decision}", json=body)


# --- decisions --------------------------------------------------------------------------------------

def test_commit_replay_and_conflict(client):
    first = decide(client, "recovery.contact", facts=CONTACT, now=NOW, commit=True, idempotency_key="k1")
    assert first.status_code == 200 and first.get_json()["outcome"] == "allow"
    again = decide(client, "recovery.contact", facts=CONTACT, now=NOW, commit=True, idempotency_key="k1")
    assert again.get_json()["decision_id"] == first.get_json()["decision_id"]
    other = dict(CONTACT, order={**CONTACT["order"], "id": "order-2"})
    conflict = decide(client, "recovery.contact", facts=other, now=NOW, commit=True, idempotency_key="k1")
    assert conflict.status_code == 409 and conflict.get_json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    # the stored counter now defers a plain evaluation for the same customer
    later = decide(client, "recovery.contact", facts=other, now="2026-11-20T11:00:00+08:00")
    assert [r["code"] for r in later.get_json()["reasons"]] == ["DAILY_SMS_LIMIT_REACHED"]


def test_batch_results_in_order_with_errors_in_place(client):
    items = [{"facts": INITIATE_OK, "now": NOW},
             {"facts": {**INITIATE_OK, "payout": {"amount": "600.00", "reason": "other"}}, "now": NOW},
             {"facts": {"actor": {}}}]
    response = client.post("/v1/decisions/payout.initiate/batch", json={"items": items})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r.get("outcome") for r in results] == ["allow", "deny", None]
    assert results[2]["error"]["code"] == "INVALID_FACTS"
    assert "actor.role" in results[2]["error"]["fields"]


@pytest.mark.parametrize("body", [{}, {"items": []}, {"items": "x"}, {"items": [{"facts": {}}], "extra": 1}])
def test_batch_envelope_errors(client, body):
    response = client.post("/v1/decisions/payout.initiate/batch", json=body)
    assert response.status_code == 400


def test_batch_of_unknown_decision(client):
    assert client.post("/v1/decisions/nope.nope/batch", json={"items": [{"facts": {}}]}).status_code == 404


# --- records ---------------------------------------------------------------------------------------------

def test_records_json_csv_and_bad_query(client):
    committed = decide(client, "payout.initiate", facts=INITIATE_OK, now=NOW, commit=True, idempotency_key="p1").get_json()
    listed = client.get("/v1/decisions/records?decision=payout.initiate&outcome=allow", headers=AUDIT).get_json()["records"]
    assert [r["decision_id"] for r in listed] == [committed["decision_id"]]
    # records are searched by when they were made (the server's clock), not by the request's now
    assert listed[0]["now"] == NOW and listed[0]["evaluated_at"] != NOW
    made = datetime.fromisoformat(listed[0]["evaluated_at"])
    after = quote((made + timedelta(seconds=1)).isoformat())
    assert client.get(f"/v1/decisions/records?from={after}", headers=AUDIT).get_json()["records"] == []
    assert len(client.get(f"/v1/decisions/records?to={after}", headers=AUDIT).get_json()["records"]) == 1
    csv_response = client.get(f"/v1/decisions/records?id={committed['decision_id']}&format=csv", headers=AUDIT)
    assert csv_response.mimetype == "text/csv"
    assert csv_response.get_data(as_text=True).splitlines()[1].startswith(
        f"{committed['decision_id']},order-1,jd_buyer_1,补差价,已通过,30.00")
    bad = client.get("/v1/decisions/records?outcome=maybe&from=yesterday&colour=red", headers=AUDIT)
    assert bad.status_code == 400
    assert set(bad.get_json()["error"]["fields"]) == {"outcome", "from", "colour"}


# --- rulesets, validation, reload ----------------------------------------------------------------------------

def test_rulesets(client):
    body = client.get("/v1/rulesets").get_json()
    assert sorted(r["domain"] for r in body["rulesets"]) == ["allowance", "payout", "rebate", "recovery"]
    assert body["last_reload"]["ok"] is True
    assert client.get("/v1/rulesets/rebate").get_json()["decisions"] == ["rebate.apply"]
    assert client.get("/v1/rulesets/nope").status_code == 404


def test_validate_reports_lines_and_activates_nothing(client):
    text = (RULES / "payout.yaml").read_text(encoding="utf-8").replace("when: store.has_arrears", "when: store.has_arears")
    response = client.post("/v1/rulesets/validate?file=payout.yaml", data=text.encode(), content_type="application/yaml")
    body = response.get_json()
    assert body["valid"] is False
    assert len(body["problems"]) == 1
    assert body["problems"][0]["text"].startswith("payout.yaml:")
    assert "undeclared fact store.has_arears" in body["problems"][0]["message"]
    assert client.post("/v1/rulesets/validate", data=(RULES / "rebate.yaml").read_bytes(), content_type=YAML).get_json() == {
        "valid": True, "problems": []}
    assert client.post("/v1/rulesets/validate", data=b"a: [", content_type=YAML).get_json()["valid"] is False


def test_reload_is_disabled_without_a_token(client, monkeypatch):
    monkeypatch.delenv("RULESVC_ADMIN_TOKEN", raising=False)
    response = client.post("/v1/rulesets/reload", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "ADMIN_DISABLED"


def test_reload_needs_the_token(client, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", TOKEN)
    assert client.post("/v1/rulesets/reload").status_code == 401
    assert client.post("/v1/rulesets/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_reload_swaps_valid_rules_and_refuses_broken_ones(client, rules_dir, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    facts = {**INITIATE_OK, "actor": {**INITIATE_OK["actor"], "role": "main"}, "payout": {"amount": "450.00", "reason": "other"}}
    assert decide(client, "payout.initiate", facts=facts, now=NOW).get_json()["outcome"] == "allow"
    payout = rules_dir / "payout.yaml"
    payout.write_text(payout.read_text(encoding="utf-8").replace('value: "500.00"', 'value: "400.00"'), encoding="utf-8")
    reloaded = client.post("/v1/rulesets/reload", headers=auth)
    assert reloaded.status_code == 200
    denied = decide(client, "payout.initiate", facts=facts, now=NOW).get_json()
    assert denied["outcome"] == "deny" and denied["ruleset"]["version"] in reloaded.get_json()["version"]

    payout.write_text(payout.read_text(encoding="utf-8").replace("when: store.has_arrears", "when: store.has_arears"),
                      encoding="utf-8")
    refused = client.post("/v1/rulesets/reload", headers=auth)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["problems"][0].endswith("undeclared fact store.has_arears (did you mean 'has_arrears'?)")
    still = decide(client, "payout.initiate", facts=facts, now=NOW).get_json()
    assert still["outcome"] == "deny" and still["ruleset"]["version"] == denied["ruleset"]["version"]
    assert client.get("/v1/rulesets").get_json()["last_reload"]["ok"] is False


def test_a_reload_that_crashes_is_tried_again_at_the_next_look(client, rules_dir, monkeypatch):
    import api.state

    state = client.application.extensions["rulesvc"]
    before = state.rulebook.version
    payout = rules_dir / "payout.yaml"
    payout.write_text(payout.read_text(encoding="utf-8").replace('value: "500.00"', 'value: "400.00"'), encoding="utf-8")
    real_load = api.state.load_rulebook

    def crash_once(paths, **options):
        monkeypatch.setattr(api.state, "load_rulebook", real_load)
        raise OSError("disk hiccup")

    monkeypatch.setattr(api.state, "load_rulebook", crash_once)
    state.reload_if_changed()  # refused and reported; the watcher looks again a second later
    assert state.rulebook.version == before
    assert state.last_reload["ok"] is False
    assert state.last_reload["problems"] == [f"{rules_dir}:1:1: the rules could not be loaded: OSError: disk hiccup"]
    state.reload_if_changed()
    assert state.rulebook.version != before
    assert state.last_reload["ok"] is True


# --- operations -------------------------------------------------------------------------------------------

def test_health_and_metrics(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json()["decisions"] == 10
    decide(client, "payout.initiate", facts=INITIATE_OK, now=NOW)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'rulesvc_decisions_total{decision="payout.initiate",outcome="allow"}' in text
    assert "rulesvc_decision_seconds_bucket" in text


def test_openapi_documents_every_decisions_facts(client):
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").get_json()
    validate(document)
    for decision in ("payout.enable", "payout.manage", "payout.initiate", "recovery.campaign_create",
                     "recovery.campaign_close", "recovery.contact", "rebate.apply", "allowance.withdraw",
                     "allowance.merchant_refund", "allowance.expire"):
        operation = document["paths"][f"/v1/decisions/{decision}"]["post"]
        facts_ref = operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["facts"]["$ref"]
        assert facts_ref == f"#/components/schemas/{decision}.facts"
    payout = document["components"]["schemas"]["payout.initiate.payout"]
    assert payout["properties"]["reason"]["enum"] == ["price_difference", "shipping_fee", "promotion_compensation", "other"]
    assert payout["required"] == ["amount", "reason"]
    page = client.get("/docs")
    assert page.status_code == 200
    # the page's assets are served locally (no CDN needed), and nothing outside them is
    for asset in ("/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"):
        assert asset in page.get_data(as_text=True)
        response = client.get(asset)
        assert response.status_code == 200 and len(response.get_data()) > 10_000
        response.close()
    assert client.get("/docs/../setup.cfg").status_code == 404
    assert client.get("/docs/nothing.js").status_code == 404


def test_openapi_is_ready_for_client_generators(client):
    """Issue 14: what openapi-python-client and friends need (tests/test_generated_client.py uses one)."""
    import json

    document = client.get("/openapi.json").get_json()
    operations = [(path, method, operation) for path, methods in document["paths"].items()
                  for method, operation in methods.items()]
    assert len(operations) >= 30
    ids = [operation.get("operationId") for _, _, operation in operations]
    assert None not in ids and len(set(ids)) == len(ids)
    assert document["paths"]["/v1/decisions/payout.initiate"]["post"]["operationId"] == "decide_payout_initiate"
    text = json.dumps(document)
    assert "x-minimum" not in text and "x-maximum" not in text
    delay = document["components"]["schemas"]["recovery.contact.campaign"]["properties"]["unpaid_minutes"]
    assert (delay["type"], delay["minimum"], delay["maximum"]) == ("integer", 0, 525600)
    # an optional object is that object or null, never "any object"
    used_today = document["components"]["schemas"]["payout.initiate.actor"]["properties"]["used_today"]
    assert used_today["anyOf"] == [{"$ref": "#/components/schemas/payout.initiate.actor.used_today"},
                                   {"type": "object", "nullable": True, "enum": [None]}]
    assert '{"type": "object", "nullable": true}' not in text
    result = document["components"]["schemas"]["DecisionResult"]["properties"]
    assert result["next_eligible_at"]["format"] == "date-time" and result["next_eligible_at"]["nullable"] is True
    assert result["evaluated_at"]["format"] == "date-time"
    for path in ("/v1/rulesets/validate", "/v1/scenarios/run"):
        parameters = document["paths"][path]["post"]["parameters"]
        assert [p["name"] for p in parameters] == ["file"] and "FILE:LINE:COL" in parameters[0]["description"]
    for path, method, operation in operations:  # every success (200, or 201 for a draft made) is typed
        content = operation["responses"].get("200", operation["responses"].get("201"))["content"]
        for media, body in content.items():
            assert body["schema"] != {"type": "object"}, (path, method, media)
    reload_ok = document["paths"]["/v1/rulesets/reload"]["post"]["responses"]["200"]["content"]["application/json"]
    assert reload_ok["schema"] == {"$ref": "#/components/schemas/ReloadResult"}
    scenario_ok = document["paths"]["/v1/scenarios/run"]["post"]["responses"]["200"]["content"]["application/json"]
    assert scenario_ok["schema"] == {"$ref": "#/components/schemas/ScenarioRun"}
    version = document["info"]["version"]
    assert version.startswith("0.1.0+rules.") and len(version.split("+rules.")[1]) == 64  # a whole sha256
    domains = client.get("/v1/rulesets").get_json()["rulesets"]
    assert document["info"]["x-ruleset-versions"] == {entry["domain"]: entry["version"] for entry in domains}


def test_scenarios_run_over_http(client):
    text = (RULES.parent / "tests" / "scenarios" / "recovery-contact.yaml").read_bytes()
    body = client.post("/v1/scenarios/run?file=recovery-contact.yaml", data=text, content_type=YAML).get_json()
    assert body["failed"] == 0 and body["passed"] == len(body["results"]) >= 3
    assert body["summary"] == f"{body['passed']} passed, 0 failed"
    assert body["coverage"]["recovery.contact/sms-window"]["fired"] >= 1
    broken = text.replace(b"expect: {outcome: allow, values", b"expct: {outcome: allow, values")
    response = client.post("/v1/scenarios/run?file=x.yaml", data=broken, content_type=YAML)
    assert response.status_code == 400
    assert any("unknown key 'expct'" in problem for problem in response.get_json()["error"]["problems"])
    failing = text.replace(b'settlement_amount: "95.00"', b'settlement_amount: "96.00"')
    result = client.post("/v1/scenarios/run", data=failing, content_type=YAML).get_json()
    assert result["failed"] == text.count(b'settlement_amount: "95.00"') >= 1
    failed = [r for r in result["results"] if not r["passed"]]
    assert "values.settlement_amount: expected '96.00', got '95.00'" in failed[0]["failures"]


@pytest.mark.parametrize("body", [b"decision: x\x00", b"a: &a [*a]", b"facts: &f {a: [*f]}",
                                  b"decision: !!python/name:os.system x", b"\xff\xfe junk", b"- - - - -"])
def test_junk_yaml_is_never_a_server_error(client, body):
    validated = client.post("/v1/rulesets/validate", data=body, content_type=YAML)
    assert validated.status_code == 200 and validated.get_json()["valid"] is False
    assert client.post("/v1/scenarios/run", data=body, content_type=YAML).status_code == 400


@pytest.mark.parametrize(("change", "path"), [
    ({"order": {"id": "\ud800"}}, "order.id"),
    ({"order": {"id": "nul\x00"}}, "order.id"),
    ({"customer": {"account": "x" * 2001}}, "customer.account"),
    ({"order": {"payout_count": 10**30}}, "order.payout_count"),
])
def test_text_and_numbers_a_store_cannot_keep_are_invalid(client, change, path):
    import json

    facts = {**INITIATE_OK, **{key: {**INITIATE_OK[key], **value} for key, value in change.items()}}
    body = json.dumps({"facts": facts, "now": NOW, "commit": True, "idempotency_key": "k"})  # \ud800 stays escaped
    response = client.post("/v1/decisions/payout.initiate", data=body, content_type="application/json")
    assert response.status_code == 400
    assert path in response.get_json()["error"]["fields"]


def test_a_huge_unpaid_delay_is_invalid_not_silently_allowed(client):
    facts = {**CONTACT, "campaign": {**CONTACT["campaign"], "unpaid_minutes": 10**12}}
    response = decide(client, "recovery.contact", facts=facts, now=NOW)
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"campaign.unpaid_minutes": ["must be between 0 and 525600"]}


def test_records_query_with_nul_is_a_400(client):
    assert client.get("/v1/decisions/records?id=%00", headers=AUDIT).status_code == 400
