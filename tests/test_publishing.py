"""Drafts, review, publish, roll back (SPEC §12.1) through the HTTP API, on a copy of the rules."""

from __future__ import annotations

import json

import pytest

from api import create_app

from .conftest import AUDIT, ROOT

ALICE, BOB = "alice-token", "bob-token"
AS_ALICE = {"Authorization": f"Bearer {ALICE}"}
AS_BOB = {"Authorization": f"Bearer {BOB}"}
YAML = {"Content-Type": "application/yaml"}
SCENARIOS = ROOT / "tests" / "scenarios"
AT_2030 = "2026-11-20T20:30:00+08:00"


@pytest.fixture
def service(copy, tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKENS", f"alice:{ALICE},bob:{BOB}")
    monkeypatch.delenv("RULESVC_ADMIN_TOKEN", raising=False)
    app = create_app(copy, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db",
                     scenarios_dir=SCENARIOS)
    yield app
    app.extensions["rulesvc"].decision_log.close()


def _contact(client, now: str = AT_2030) -> dict:
    facts = json.loads((ROOT / "examples" / "recovery-contact.json").read_text(encoding="utf-8"))
    response = client.post("/v1/decisions/recovery.contact", json={"now": now, "facts": facts})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _draft_text(copy, old: str = 'value: "20:00"', new: str = 'value: "21:00"') -> str:
    text = (copy / "recovery.yaml").read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


def _make_draft(client, text: str, headers=AS_ALICE, file: str = "recovery.yaml"):
    return client.post(f"/v1/rulesets/drafts?file={file}", data=text.encode(), headers={**headers, **YAML})


def test_a_draft_answers_its_whole_review(service, copy):
    client = service.test_client()
    before = _contact(client)
    assert before["outcome"] == "defer"
    service.extensions["rulesvc"].decision_log.flush()
    response = _make_draft(client, _draft_text(copy))
    assert response.status_code == 201, response.get_json()
    draft = response.get_json()
    assert draft["file"] == "recovery.yaml" and draft["domain"] == "recovery" and draft["author"] == "alice"
    assert draft["base_version"] == service.extensions["rulesvc"].rulebook.domains["recovery"].version
    assert draft["problems"] == []
    [change] = draft["diff"]["domains"]
    assert change["constants"]["changed"][0]["name"] == "sms_window_end"
    assert draft["impact"]["transitions"] == {"defer->allow": 1}  # the one logged decision, at 20:30
    scenarios = draft["scenarios"]
    assert len(scenarios["changed"]) == 4 and scenarios["failed"] == 4
    assert {case["before"]["outcome"] for case in scenarios["changed"]} == {"defer"}
    assert "recovery.contact" in draft["verify"]["decisions"]
    listed = client.get("/v1/rulesets/drafts", headers=AS_BOB).get_json()["drafts"]
    assert [d["draft_id"] for d in listed] == [draft["draft_id"]] and listed[0]["scenarios_changed"] == 4
    kept = client.get(f"/v1/rulesets/drafts/{draft['draft_id']}", headers=AS_BOB).get_json()
    assert kept["text"] == _draft_text(copy) and kept["status"] == "open"


def test_publish_puts_the_draft_live_and_rollback_takes_it_back(service, copy):
    client = service.test_client()
    old_version = service.extensions["rulesvc"].rulebook.domains["recovery"].version
    draft = _make_draft(client, _draft_text(copy)).get_json()
    published = client.post(f"/v1/rulesets/drafts/{draft['draft_id']}/publish", json={"reason": "JD 允许到 21:00"},
                            headers=AS_BOB)
    assert published.status_code == 200, published.get_json()
    body = published.get_json()
    assert body["published_by"] == "bob" and body["reason"] == "JD 允许到 21:00" and body["kind"] == "publish"
    assert _contact(client)["outcome"] == "allow"
    assert 'value: "21:00"' in (copy / "recovery.yaml").read_text(encoding="utf-8")  # the directory holds it
    again = client.post(f"/v1/rulesets/drafts/{draft['draft_id']}/publish", json={"reason": "twice"}, headers=AS_BOB)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "DRAFT_CLOSED"

    rolled = client.post("/v1/rulesets/rollback", json={"domain": "recovery", "version": old_version,
                                                        "reason": "回到 20:00"}, headers=AS_ALICE)
    assert rolled.status_code == 200, rolled.get_json()
    assert rolled.get_json()["kind"] == "rollback" and rolled.get_json()["version"] == old_version
    assert _contact(client)["outcome"] == "defer"
    versions = client.get("/v1/rulesets/versions").get_json()
    recovery = [p for p in versions["publications"] if p["domain"] == "recovery"]
    assert [(p["kind"], p["published_by"]) for p in recovery] == [("rollback", "alice"), ("publish", "bob"),
                                                                  ("seed", "rules directory")]
    live = [v for v in versions["versions"] if v["domain"] == "recovery" and v["active"]]
    assert [(v["version"], v["published_by"], v["reason"]) for v in live] == [(old_version, "alice", "回到 20:00")]
    same = client.post("/v1/rulesets/rollback", json={"domain": "recovery", "version": old_version, "reason": "x"},
                       headers=AS_ALICE)
    assert same.status_code == 409 and same.get_json()["error"]["code"] == "ALREADY_LIVE"


def test_a_draft_of_a_file_changed_since_is_stale(service, copy):
    client = service.test_client()
    first = _make_draft(client, _draft_text(copy)).get_json()
    second = _make_draft(client, _draft_text(copy, new='value: "20:30"')).get_json()
    assert client.post(f"/v1/rulesets/drafts/{first['draft_id']}/publish", json={"reason": "a"},
                       headers=AS_ALICE).status_code == 200
    stale = client.post(f"/v1/rulesets/drafts/{second['draft_id']}/publish", json={"reason": "b"}, headers=AS_ALICE)
    assert stale.status_code == 409
    error = stale.get_json()["error"]
    assert error["code"] == "DRAFT_STALE" and error["base_version"] == second["base_version"]
    assert error["live_version"] != second["base_version"]
    assert _contact(client)["outcome"] == "allow"  # 21:00, the first draft, stays live


def test_a_draft_with_problems_is_kept_but_never_published(service, copy):
    client = service.test_client()
    broken = _draft_text(copy, new="value: 21:00")  # unquoted: YAML reads a number of minutes
    draft = _make_draft(client, broken).get_json()
    assert draft["problems"] and draft["problems"][0]["file"] == "recovery.yaml"
    assert draft["diff"] is None and draft["impact"] is None
    refused = client.post(f"/v1/rulesets/drafts/{draft['draft_id']}/publish", json={"reason": "x"}, headers=AS_ALICE)
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "RULES_INVALID"
    assert _contact(client)["outcome"] == "defer"
    assert 'value: "20:00"' in (copy / "recovery.yaml").read_text(encoding="utf-8")


def test_two_approvals_need_another_admin(service, copy, monkeypatch):
    monkeypatch.setenv("RULESVC_PUBLISH_APPROVALS", "2")
    app = create_app(copy, store_url="sqlite://", log_url="none", scenarios_dir=SCENARIOS)
    client = app.test_client()
    draft = _make_draft(client, _draft_text(copy)).get_json()
    assert draft["impact"] == {"unavailable": "the decision log is off: nothing to replay"}
    path = f"/v1/rulesets/drafts/{draft['draft_id']}"
    refused = client.post(f"{path}/publish", json={"reason": "x"}, headers=AS_ALICE)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "APPROVAL_REQUIRED"
    own = client.post(f"{path}/approve", headers=AS_ALICE)
    assert own.status_code == 409 and own.get_json()["error"]["code"] == "OWN_DRAFT"
    approved = client.post(f"{path}/approve", headers=AS_BOB)
    assert approved.status_code == 200 and [a["admin"] for a in approved.get_json()["approvals"]] == ["bob"]
    assert client.post(f"{path}/publish", json={"reason": "x"}, headers=AS_ALICE).status_code == 200


def test_requests_that_do_not_fit_are_400_and_tokens_are_named(service, copy):
    client = service.test_client()
    assert client.post("/v1/rulesets/drafts?file=recovery.yaml", data=b"x", headers=YAML).status_code == 401
    assert client.post("/v1/rulesets/drafts?file=../x.yaml", data=b"x", headers={**AS_ALICE, **YAML}).status_code == 400
    draft = _make_draft(client, _draft_text(copy)).get_json()
    no_reason = client.post(f"/v1/rulesets/drafts/{draft['draft_id']}/publish", json={}, headers=AS_ALICE)
    assert no_reason.status_code == 400 and "reason" in no_reason.get_json()["error"]["fields"]
    unknown = client.post("/v1/rulesets/drafts/01NOPE/publish", json={"reason": "x"}, headers=AS_ALICE)
    assert unknown.status_code == 404
    bad = client.post("/v1/rulesets/rollback", json={"domain": "recovery", "version": "v1", "reason": ""},
                      headers=AS_ALICE)
    assert bad.status_code == 400 and set(bad.get_json()["error"]["fields"]) == {"version", "reason"}
    not_kept = client.post("/v1/rulesets/rollback", json={"domain": "recovery", "version": "sha256:" + "0" * 64,
                                                          "reason": "x"}, headers=AS_ALICE)
    assert not_kept.status_code == 404
    assert client.get("/v1/rulesets/drafts", headers=AUDIT).status_code == 401  # reading drafts is an admin's


def test_malformed_admin_tokens_stop_the_start(copy, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKENS", "alice:a,bob")
    with pytest.raises(ValueError, match="entry 2 must be name:token"):
        create_app(copy, store_url="sqlite://", log_url="none")
