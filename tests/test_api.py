"""The thin HTTP layer (the full API arrives with the HTTP issue): decisions, errors, rulesets, health."""

from __future__ import annotations

import pytest

from api import create_app

from .test_payout import INITIATE_OK

NOW = "2026-11-20T10:00:00+08:00"


@pytest.fixture(scope="module")
def client(rulebook, tmp_path_factory):
    directory = tmp_path_factory.mktemp("store")
    return create_app(rulebook=rulebook, store_url=f"sqlite:///{directory}/rulesvc.db",
                      log_url=f"sqlite:///{directory}/log.db").test_client()


def test_decision(client):
    response = client.post("/v1/decisions/payout.initiate", json={"facts": INITIATE_OK, "now": NOW, "explain": True})
    assert response.status_code == 200
    body = response.get_json()
    assert body["outcome"] == "allow"
    assert body["evaluated_at"] == NOW
    assert len(body["trace"]) == 15


def test_invalid_envelope_and_facts_are_listed_together(client):
    facts = {**INITIATE_OK, "payout": {"amount": "1.234", "reason": "price_difference"}}
    response = client.post("/v1/decisions/payout.initiate", json={"facts": facts, "now": "2026-11-20 10:00", "x": 1})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_REQUEST"  # the envelope is wrong: the request's problem
    assert response.get_json()["error"]["fields"] == {
        "now": ["must carry a UTC offset (e.g. +08:00 or Z)"],
        "x": ["Unknown field."],
        "payout.amount": ["must have at most two decimal places (fen)"],
    }


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", ""])
def test_malformed_json_is_a_400(client, body):
    response = client.post("/v1/decisions/payout.initiate", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_REQUEST"  # the request, not its facts (SPEC §6)


def test_unknown_decision_is_a_404(client):
    response = client.post("/v1/decisions/payout.unknown", json={"facts": {}})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "UNKNOWN_DECISION"


def test_wrong_method_is_a_405(client):
    assert client.get("/v1/decisions/payout.initiate").status_code == 405


def test_body_over_the_limit_is_a_413(client):
    response = client.post("/v1/decisions/payout.initiate", data="x" * (2 * 1024 * 1024), content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"


def test_rulesets_and_health(client):
    rulesets = client.get("/v1/rulesets").get_json()["rulesets"]
    payout = next(ruleset for ruleset in rulesets if ruleset["domain"] == "payout")
    assert payout["decisions"] == ["payout.enable", "payout.initiate", "payout.manage"]
    assert payout["version"].startswith("sha256:")
    assert client.get("/v1/rulesets/payout").get_json()["version"] == payout["version"]
    assert client.get("/v1/rulesets/nope").status_code == 404
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_deeply_nested_json_is_a_400(client):
    body = '{"facts": ' + "[" * 200_000 + "]" * 200_000 + "}"
    response = client.post("/v1/decisions/payout.initiate", data=body, content_type="application/json")
    assert response.status_code == 400


def test_a_json_body_without_the_json_content_type_is_a_415(client):
    import json

    body = json.dumps({"facts": INITIATE_OK, "now": NOW})
    # text/plain and form bodies are what a web page can make a browser send to another site
    for headers in ({}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}):
        response = client.post("/v1/decisions/payout.initiate", data=body, headers=headers)
        assert response.status_code == 415
        assert response.get_json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    charset = client.post("/v1/decisions/payout.initiate", data=body, content_type="application/json; charset=utf-8")
    assert charset.status_code == 200
