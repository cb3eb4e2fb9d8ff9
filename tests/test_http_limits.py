"""SPEC §7.1 through the Flask test client: content types, body sizes, bounded heavy runs, tokens
(issue 12, findings 1, 4 and 5). The same under gunicorn: tests/test_service.py."""

from __future__ import annotations

import io
import json

import pytest

from api import create_app
from api.limits import heavy_run
from engine import limits, tester
from engine.limits import SCENARIO_STEPS, VALIDATION_SECONDS, Budget, Limit

from .conftest import RULES
from .test_payout import INITIATE_OK

NOW = "2026-11-20T10:00:00+08:00"
ADMIN, QA = "admin-token-1", "qa-token-1"
YAML = "application/yaml"
SCENARIO = (RULES.parent / "tests" / "scenarios" / "recovery-contact.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    directory = tmp_path_factory.mktemp("limits")
    return create_app(RULES, store_url=f"sqlite:///{directory}/store.db").test_client()


def aliased_scenario(cases: int) -> bytes:
    """The issue's attack: one committing case repeated through YAML aliases (4.7 KB for 1,000)."""
    defaults = SCENARIO.split("defaults:\n", 1)[1].split("cases:")[0]
    return (f"decision: recovery.contact\ndefaults:\n{defaults}"
            "cases: [&s {name: s, steps: [{commit: true, expect: {outcome: allow}}]}" + ", *s" * (cases - 1) + "]\n"
            ).encode()


# --- content types -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/decisions/payout.initiate", "/v1/decisions/payout.initiate/batch"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/yaml"])
def test_decision_endpoints_take_json_only(client, path, content_type):
    body = json.dumps({"facts": INITIATE_OK, "now": NOW, "items": [{"facts": INITIATE_OK}]})
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(path, data=body, headers=headers)
    assert response.status_code == 415
    error = response.get_json()["error"]
    assert error["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert error["message"].startswith("this endpoint takes application/json, not ")


@pytest.mark.parametrize("path", ["/v1/rulesets/validate", "/v1/scenarios/run"])
def test_yaml_endpoints_take_the_three_yaml_types_only(client, path):
    body = (RULES / "rebate.yaml").read_bytes() if "validate" in path else SCENARIO.encode()
    for content_type in ("application/json", "text/plain", None, "application/x-www-form-urlencoded"):
        response = client.post(path, data=body, headers={"Content-Type": content_type} if content_type else {})
        assert response.status_code == 415, content_type
        assert "application/yaml or application/x-yaml or text/yaml" in response.get_json()["error"]["message"]
    for content_type in ("application/yaml", "application/x-yaml", "text/yaml", "text/yaml; charset=utf-8"):
        assert client.post(path, data=body, content_type=content_type).status_code == 200, content_type


# --- body sizes ----------------------------------------------------------------------------------------

def test_yaml_bodies_over_1_mib_are_a_json_413(client):
    for path in ("/v1/rulesets/validate", "/v1/scenarios/run"):
        response = client.post(path, data=b"#" * (1024 * 1024 + 1), content_type=YAML)
        assert response.status_code == 413
        assert response.get_json()["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"


def test_a_streamed_body_over_1_mib_is_a_413_not_a_cut_body(client):
    # a chunked request has no Content-Length: the server hands the body over as a stream
    body = json.dumps({"facts": INITIATE_OK, "now": NOW, "pad": "x" * (1024 * 1024)}).encode()
    response = client.post("/v1/decisions/payout.initiate", input_stream=io.BytesIO(body), content_type="application/json",
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"


def test_the_batch_takes_10000_payouts_in_up_to_16_mib(client):
    items = [{"facts": INITIATE_OK, "now": NOW}] * 10_000
    body = json.dumps({"items": items}).encode()
    assert 1024 * 1024 < len(body) <= 16 * 1024 * 1024  # over the 1 MiB that stopped it at ~1,500 items
    response = client.post("/v1/decisions/payout.initiate/batch", data=body, content_type="application/json")
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert len(results) == 10_000 and {result["outcome"] for result in results} == {"allow"}
    too_many = json.dumps({"items": items + items[:1]}).encode()
    response = client.post("/v1/decisions/payout.initiate/batch", data=too_many, content_type="application/json")
    assert response.status_code == 400
    over = b'{"items": [' + b" " * (16 * 1024 * 1024) + b"]}"
    response = client.post("/v1/decisions/payout.initiate/batch", data=over, content_type="application/json")
    assert response.status_code == 413


# --- bounded scenario runs and validations ----------------------------------------------------------------

def test_1000_aliased_committing_cases_are_refused_at_once(client, monkeypatch):
    body = aliased_scenario(1000)
    assert len(body) < 6000

    def no_case_may_run(*args, **kwargs):
        raise AssertionError("a case ran: the step count must be refused before any runs (it took 11 s)")

    monkeypatch.setattr(tester, "run_case", no_case_may_run)
    response = client.post("/v1/scenarios/run", data=body, content_type=YAML)
    assert response.status_code == 413
    assert response.get_json()["error"] == {
        "code": "LIMIT_EXCEEDED", "message": "the scenario run asks for more than 500 steps (RULESVC_SCENARIO_MAX_STEPS)",
        "limit": "RULESVC_SCENARIO_MAX_STEPS", "maximum": 500, "unit": "steps"}


class SteppedClock:
    """A budget clock that moves ``step`` seconds each time it is read: the time budget is tested by
    what it stops, not by wall-clock durations on a noisy machine."""

    def __init__(self, step: float):
        self.step, self.now, self.readings = step, 0.0, 0

    def __call__(self) -> float:
        self.readings += 1
        self.now += self.step
        return self.now


def test_a_run_within_the_step_limit_is_stopped_between_steps_by_the_shipped_time_budget(client, monkeypatch):
    monkeypatch.delenv("RULESVC_SCENARIO_SECONDS")  # the shipped default budget: 2 s
    ran: list[str] = []
    run_case = tester.run_case
    monkeypatch.setattr(tester, "run_case", lambda *args, **kwargs: ran.append("case") or run_case(*args, **kwargs))
    clock = SteppedClock(0.01)  # every checkpoint costs 10 ms of budget
    monkeypatch.setattr(limits, "_clock", clock)
    response = client.post("/v1/scenarios/run", data=aliased_scenario(int(SCENARIO_STEPS.default)), content_type=YAML)
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "LIMIT_EXCEEDED", "message": "the scenario run took longer than 2 seconds and was stopped "
        "(RULESVC_SCENARIO_SECONDS)", "limit": "RULESVC_SCENARIO_SECONDS", "maximum": 2, "unit": "seconds"}
    # Stopped at the first checkpoint past 2 s (about 200 readings), never after all 500 cases ran.
    assert 150 < clock.readings < 260 and len(ran) < 500


def test_a_run_within_both_limits_answers_in_full(client, monkeypatch):
    monkeypatch.delenv("RULESVC_SCENARIO_SECONDS")  # the shipped default budget: 2 s
    clock = SteppedClock(0.001)
    monkeypatch.setattr(limits, "_clock", clock)
    response = client.post("/v1/scenarios/run", data=aliased_scenario(int(SCENARIO_STEPS.default)), content_type=YAML)
    assert response.status_code == 200
    assert response.get_json()["summary"] == "500 passed, 0 failed"
    assert clock.readings < 2000  # within the 2 s the stepped clock gives 2,000 readings


def test_the_limits_are_configurable(client, monkeypatch):
    monkeypatch.setenv("RULESVC_SCENARIO_MAX_STEPS", "10")
    response = client.post("/v1/scenarios/run", data=aliased_scenario(11), content_type=YAML)
    assert response.status_code == 413 and response.get_json()["error"]["maximum"] == 10
    assert client.post("/v1/scenarios/run", data=aliased_scenario(10), content_type=YAML).status_code == 200

    monkeypatch.setenv("RULESVC_SCENARIO_SECONDS", "0.001")  # 10 committing cases take longer
    response = client.post("/v1/scenarios/run", data=aliased_scenario(10), content_type=YAML)
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "LIMIT_EXCEEDED", "message": "the scenario run took longer than 0.001 seconds and was stopped "
                                             "(RULESVC_SCENARIO_SECONDS)",
        "limit": "RULESVC_SCENARIO_SECONDS", "maximum": 0.001, "unit": "seconds"}

    monkeypatch.setenv("RULESVC_VALIDATION_SECONDS", "0.000001")
    response = client.post("/v1/rulesets/validate", data=(RULES / "payout.yaml").read_bytes(), content_type=YAML)
    assert response.status_code == 422 and response.get_json()["error"]["limit"] == "RULESVC_VALIDATION_SECONDS"

    monkeypatch.setenv("RULESVC_VALIDATION_SECONDS", "not a number")  # ignored: the default applies
    assert VALIDATION_SECONDS.value() == VALIDATION_SECONDS.default
    assert client.post("/v1/rulesets/validate", data=(RULES / "payout.yaml").read_bytes(),
                       content_type=YAML).get_json()["valid"] is True


def test_one_heavy_run_per_worker_others_get_429_with_retry_after(client):
    with heavy_run(Budget("impact replay", seconds=Limit("RULESVC_TEST_SECONDS", 500, "seconds"))):
        for path, body in (("/v1/scenarios/run", SCENARIO.encode()),
                           ("/v1/rulesets/validate", (RULES / "rebate.yaml").read_bytes())):
            response = client.post(path, data=body, content_type=YAML)
            assert response.status_code == 429
            assert response.get_json()["error"]["code"] == "BUSY"
            assert 490 <= int(response.headers["Retry-After"]) <= 500
        # decisions are not heavy: they go on
        decided = client.post("/v1/decisions/payout.initiate", json={"facts": INITIATE_OK, "now": NOW})
        assert decided.status_code == 200
    assert client.post("/v1/scenarios/run", data=SCENARIO.encode(), content_type=YAML).status_code == 200


# --- tokens -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_matched_in_any_case(client, monkeypatch, scheme):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", ADMIN)
    response = client.post("/v1/rulesets/reload", headers={"Authorization": f"{scheme} {ADMIN}"})
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["Basic " + ADMIN, "Bearer", "Bearer " + ADMIN + "x", ADMIN, "Bearer  "])
def test_anything_but_the_admin_bearer_token_is_a_401(client, monkeypatch, header):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", ADMIN)
    response = client.post("/v1/rulesets/reload", headers={"Authorization": header})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_the_qa_token_guards_scenario_runs_and_validation(client, monkeypatch):
    body = {"/v1/scenarios/run": SCENARIO.encode(), "/v1/rulesets/validate": (RULES / "rebate.yaml").read_bytes()}
    for path, data in body.items():  # open without the variable
        assert client.post(path, data=data, content_type=YAML).status_code == 200
    monkeypatch.setenv("RULESVC_QA_TOKEN", QA)
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", ADMIN)
    for path, data in body.items():
        for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 401),
                                ({"Authorization": f"Bearer {QA}"}, 200), ({"Authorization": f"bearer {QA}"}, 200),
                                ({"Authorization": f"Bearer {ADMIN}"}, 200)):
            response = client.post(path, data=data, content_type=YAML, headers=headers)
            assert response.status_code == status, (path, headers)
            if status == 401:
                assert response.get_json()["error"]["code"] == "UNAUTHORIZED"
    # the QA token is not an admin token
    assert client.post("/v1/rulesets/reload", headers={"Authorization": f"Bearer {QA}"}).status_code == 401
