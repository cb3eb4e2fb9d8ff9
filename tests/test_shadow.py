"""Shadow rules (SPEC §11): evaluated after the answer, off the request path, compared and logged."""

from __future__ import annotations

import time

import pytest

from api import create_app

from .conftest import AUDIT, NOW, RULES
from .test_decision_log import payout
from .test_impact import AMOUNTS


def shadowed_app(tmp_path, candidate):
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db",
                     shadow_dir=candidate)
    return app, app.extensions["rulesvc"]


def shadow_count(client, agreed: str) -> float:
    """rulesvc_shadow_decisions_total for payout.initiate (metrics are per process: compare before and after)."""
    prefix = f'rulesvc_shadow_decisions_total{{agreed="{agreed}",decision="payout.initiate"}} '
    lines = [line for line in client.get("/metrics").get_data(as_text=True).splitlines() if line.startswith(prefix)]
    return float(lines[0][len(prefix):]) if lines else 0.0


def settle(state) -> None:
    assert state.shadow.wait_idle()
    state.decision_log.flush()


def test_disagreements_are_counted_logged_and_reported(tmp_path, lowered):
    app, state = shadowed_app(tmp_path, lowered)
    plain = create_app(RULES, store_url=f"sqlite:///{tmp_path}/plain.db", log_url="none").test_client()
    client = app.test_client()
    disagreed_before, agreed_before = shadow_count(client, "false"), shadow_count(client, "true")
    answers = {}
    for amount in AMOUNTS:
        body = {"facts": payout(amount), "now": NOW.isoformat()}
        answer = client.post("/v1/decisions/payout.initiate", json=body).json
        expected = plain.post("/v1/decisions/payout.initiate", json=body).json
        assert (answer["outcome"], answer["reasons"]) == (expected["outcome"], expected["reasons"])  # the active rules'
        answers[amount] = answer["decision_id"]
    settle(state)
    report = client.get("/v1/rulesets/shadow", headers=AUDIT).json
    assert report["replayed"] == len(AMOUNTS)
    assert report["transitions"] == {"allow->deny": 5}
    assert report["examples"]["allow->deny"] == [answers[a] for a in ("300.01", "350.00", "420.00", "499.99", "500.00")]
    assert report["candidate"]["problems"] == [] and len(report["candidate"]["versions"]) == 4
    assert shadow_count(client, "false") - disagreed_before == 5
    assert shadow_count(client, "true") - agreed_before == 5
    shadow_runs = client.get("/v1/decisions/log?shadow=true&outcome=deny&limit=100", headers=AUDIT).json
    disagreements = [run for run in shadow_runs if not run["shadow"]["agreed"]]
    assert sorted(run["shadow"]["of"] for run in disagreements) == sorted(
        answers[a] for a in ("300.01", "350.00", "420.00", "499.99", "500.00"))
    assert all(run["shadow"]["before"]["outcome"] == "allow" for run in disagreements)
    # the decision log itself lists the service's decisions only
    assert len(client.get("/v1/decisions/log?limit=1000", headers=AUDIT).json) == len(AMOUNTS)


def test_a_slow_or_failing_candidate_never_holds_up_an_answer(tmp_path, lowered):
    app, state = shadowed_app(tmp_path, lowered)
    client = app.test_client()
    client.post("/v1/decisions/payout.initiate", json={"facts": payout("100.00"), "now": NOW.isoformat()})
    assert state.shadow.wait_idle()  # the shadow thread is running
    evaluation = state.shadow.replayer.evaluation

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return evaluation(*args, **kwargs)

    state.shadow.replayer.evaluation = slow
    answered = [client.post("/v1/decisions/payout.initiate", json={"facts": payout(a), "now": NOW.isoformat()}).status_code
                for a in AMOUNTS]
    assert answered == [200] * len(AMOUNTS)
    assert state.shadow.waiting >= len(AMOUNTS) - 3  # the answers did not wait for the shadow runs

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the candidate")

    state.shadow.replayer.evaluation = broken
    assert client.post("/v1/decisions/payout.initiate", json={"facts": payout("120.00"), "now": NOW.isoformat()}
                       ).json["outcome"] == "allow"
    assert state.shadow.wait_idle(30)
    state.shadow.replayer.evaluation = evaluation
    client.post("/v1/decisions/payout.initiate", json={"facts": payout("350.00"), "now": NOW.isoformat()})
    settle(state)  # the thread survived the failure and goes on
    assert client.get("/v1/rulesets/shadow", headers=AUDIT).json["transitions"]["allow->deny"] >= 1


def test_a_broken_candidate_is_reported_and_decisions_go_on(tmp_path, lowered):
    path = lowered / "payout.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("when: store.has_arrears", "when: store.has_areas"),
                    encoding="utf-8")
    app, state = shadowed_app(tmp_path, lowered)
    client = app.test_client()
    assert client.post("/v1/decisions/payout.initiate", json={"facts": payout("350.00"), "now": NOW.isoformat()}
                       ).json["outcome"] == "allow"
    settle(state)
    report = client.get("/v1/rulesets/shadow", headers=AUDIT).json
    assert report["replayed"] == 0
    assert any("store.has_areas" in problem for problem in report["candidate"]["problems"])


def test_shadow_is_404_without_shadow_rules(tmp_path):
    client = create_app(RULES, store_url=f"sqlite:///{tmp_path}/s.db", log_url=f"sqlite:///{tmp_path}/l.db").test_client()
    assert client.get("/v1/rulesets/shadow", headers=AUDIT).status_code == 404
    with pytest.raises(ValueError, match="need a decision log"):
        create_app(RULES, store_url=f"sqlite:///{tmp_path}/s.db", log_url="none", shadow_dir=RULES)


def test_shadow_runs_mask_what_the_service_calls_sensitive(tmp_path, lowered):
    path = lowered / "payout.yaml"
    text = path.read_text(encoding="utf-8")
    assert "sensitive: true" in text
    path.write_text(text.replace("sensitive: true, ", ""), encoding="utf-8")  # a candidate that forgot the mark
    app, state = shadowed_app(tmp_path, lowered)
    client = app.test_client()
    client.post("/v1/decisions/payout.initiate", json={"facts": payout("350.00", customer={"account": "ACCT-SECRET-4242"}),
                                                        "now": NOW.isoformat()})
    settle(state)
    state.decision_log.database.close()
    content = b"".join(path.read_bytes() for path in tmp_path.glob("log.db*") if path.suffix != ".key")
    assert b"ACCT-SECRET-4242" not in content
    assert client.get("/v1/decisions/log?shadow=true", headers=AUDIT).json[0]["masked"] == ["customer.account"]


def test_the_shadow_tally_folds_each_run_once_and_keeps_what_a_budget_cut_short(tmp_path, lowered):
    """Issue 20, finding 2: the report was recomputed from every run for every caller (2–4 s each after
    30,000 runs). A worker's tally reads only the runs logged since its last report, agrees with a
    report computed from scratch, and keeps its progress when a time budget stops it midway."""
    from engine.audit.replay import ShadowTally, shadow_report
    from engine.limits import Budget, Limit, LimitExceeded

    app, state = shadowed_app(tmp_path, lowered)
    client = app.test_client()
    database = state.decision_log.database
    since = state.shadow.started_at
    tally = ShadowTally(since)
    half = len(AMOUNTS) // 2
    for amount in AMOUNTS[:half]:
        client.post("/v1/decisions/payout.initiate", json={"facts": payout(amount), "now": NOW.isoformat()})
    settle(state)
    assert tally.update(database)["replayed"] == half
    for amount in AMOUNTS[half:]:
        client.post("/v1/decisions/payout.initiate", json={"facts": payout(amount), "now": NOW.isoformat()})
    settle(state)
    read = []
    original = database.entries_after
    database.entries_after = lambda *args: read.extend(found := original(*args)) or found
    folded = tally.update(database)
    assert len(read) == len(AMOUNTS) - half  # only the new runs were read
    database.entries_after = original
    assert folded == shadow_report(database, since=since) and folded["replayed"] == len(AMOUNTS)
    cut_short = ShadowTally(since)
    three_runs = Limit("RULESVC_TEST_SHADOW_RUNS", 3, "runs")
    with pytest.raises(LimitExceeded), Budget("shadow report", count=three_runs).active():
        cut_short.update(database)
    assert cut_short.update(database) == shadow_report(database, since=since)
