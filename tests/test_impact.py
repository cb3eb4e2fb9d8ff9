"""Replaying the decision log (SPEC §10, §11): impact of a candidate, explain a past decision."""

from __future__ import annotations

import importlib
import json
import shutil
from datetime import datetime

from api import create_app
from engine import load_rulebook
from engine.audit.log import LogDatabase, LogQuery, open_log
from engine.audit.replay import VersionLibrary, explain, impact
from engine.rulebook import read_rule_files

from .conftest import AUDIT, NOW, RULES, merged
from .test_decision_log import REBATE, payout, run_cli
from .test_timing import CONTACT

# Amounts either side of both limits: 500.00 today, 300.00 in the candidate.
AMOUNTS = ["120.00", "299.99", "300.00", "300.01", "350.00", "420.00", "499.99", "500.00", "500.01", "650.00"]


def make_log(url: str, rules=RULES) -> dict[str, str]:
    """Decisions of every domain through the engine, logged as the service logs them: {label: decision_id}."""
    rulebook = load_rulebook([rules])
    decision_log = open_log(url)
    decision_log.keep_versions(rulebook)
    made = {}

    def decide(label: str, name: str, facts: dict, now: str = NOW.isoformat()) -> None:
        compiled = rulebook.decision(name)
        result, evaluation = compiled.run(facts, now=datetime.fromisoformat(now))
        decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"], source="http",
                            duration_us=10)
        made[label] = result["decision_id"]

    for amount in AMOUNTS:
        decide(f"payout {amount}", "payout.initiate", payout(amount))
    decide("payout arrears", "payout.initiate", payout("350.00", store={"has_arrears": True}))
    decide("contact 10:00", "recovery.contact", CONTACT, "2026-11-20T10:00:00+08:00")
    decide("contact 20:00", "recovery.contact", CONTACT, "2026-11-20T20:00:00+08:00")
    decide("rebate", "rebate.apply", REBATE)
    decide("withdraw", "allowance.withdraw", {"store": {"channel": "pop"}, "allowance": {
        "principal": "80.00", "bonus": "20.00", "consumed": "10.00", "valid_until": "2026-12-31T00:00:00+08:00"}})
    decision_log.close()
    return made


def test_lowering_the_limit_flips_exactly_the_payouts_between_the_two_limits(tmp_path, lowered):
    url = f"sqlite:///{tmp_path}/log.db"
    made = make_log(url)
    report = impact(LogDatabase(url), load_rulebook([lowered]), LogQuery(limit=None)).as_json()
    flipped = [made[f"payout {amount}"] for amount in ("300.01", "350.00", "420.00", "499.99", "500.00")]
    assert report["transitions"] == {"allow->deny": 5}
    assert report["examples"] == {"allow->deny": flipped}
    assert report["replayed"] == len(made)
    assert report["unchanged"] == len(made) - 5 - 1  # 500.01 and 650.00 were refused already; arrears: one code more
    assert report["reasons_added"] == {"AMOUNT_OVER_LIMIT": 6}
    assert report["rules"]["payout.initiate/amount-limit"] == {"fired_before": 2, "fired_after": 8}
    assert report["not_replayable"] == {"count": 0, "why": {}}


def test_unchanged_rules_reproduce_every_logged_decision(tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    made = make_log(url)
    report = impact(LogDatabase(url), load_rulebook([RULES]), LogQuery(limit=None)).as_json()
    assert report["replayed"] == report["unchanged"] == len(made)
    assert report["transitions"] == {} and report["reasons_added"] == {} and report["values_changed"] == {}


def test_the_process_pool_agrees_with_one_process(tmp_path, lowered, monkeypatch):
    url = f"sqlite:///{tmp_path}/log.db"
    for _ in range(3):
        make_log(url)
    database = LogDatabase(url)
    alone = impact(database, read_rule_files(lowered), LogQuery(limit=None), processes=1).as_json()
    # the package exports the function impact(); the module of the same name holds the threshold
    monkeypatch.setattr(importlib.import_module("engine.audit.replay.impact"), "MIN_ENTRIES_PER_PROCESS", 1)
    pooled = impact(database, read_rule_files(lowered), LogQuery(limit=None), processes=2).as_json()
    assert pooled == alone
    assert alone["transitions"] == {"allow->deny": 15}
    limited = impact(database, read_rule_files(lowered), LogQuery(limit=len(AMOUNTS) + 5), processes=2).as_json()
    assert limited["replayed"] == len(AMOUNTS) + 5  # the latest ones


def test_a_candidate_reading_a_masked_fact_is_not_replayable(tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    made = make_log(url)
    candidate = tmp_path / "reads-account"
    shutil.copytree(RULES, candidate)
    path = candidate / "payout.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "      - id: arrears\n        when: store.has_arrears",
        "      - id: arrears\n        when: store.has_arrears or customer.account == 'blocked'"), encoding="utf-8")
    report = impact(LogDatabase(url), load_rulebook([candidate]), LogQuery(limit=None)).as_json()
    payouts = len(AMOUNTS) + 1
    assert report["not_replayable"] == {"count": payouts, "why": {
        "the rules read customer.account, which the log keeps only as an HMAC (sensitive)": payouts}}
    assert report["unchanged"] == len(made) - payouts
    # a presence test of a masked fact is fine: rebate.apply's report-complete reads contact_phone with missing()
    assert report["rules"]["rebate.apply/wait-not-elapsed"]["fired_after"] == 1


def test_cli_impact_reports_json_markdown_html_and_gates(tmp_path, lowered):
    url = f"sqlite:///{tmp_path}/log.db"
    made = make_log(url)
    as_json = run_cli("impact", "--candidate", str(lowered), "--log", url, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["transitions"] == {"allow->deny": 5}
    assert report["examples"]["allow->deny"][0] == made["payout 300.01"]
    assert as_json.stderr == ""  # quiet: no progress bar outside a terminal or with --format json
    markdown = run_cli("impact", "--candidate", str(lowered), "--log", url)
    assert "| allow->deny | 5 | 33.33% |" in markdown.stdout
    assert "constant `max_payout_amount`: 500.00 → 300.00" in markdown.stdout
    html = run_cli("impact", "--candidate", str(lowered), "--log", url, "--format", "html")
    assert html.stdout.startswith("<!doctype html>") and "<svg" in html.stdout and made["payout 350.00"] in html.stdout
    gate = run_cli("impact", "--candidate", str(lowered), "--log", url, "--format", "json",
                   "--fail-on", "allow->deny>30%")
    assert gate.returncode == 3 and "allow->deny is 33.33%" in gate.stderr
    assert run_cli("impact", "--candidate", str(lowered), "--log", url, "--format", "json",
                   "--fail-on", "allow->deny>40%").returncode == 0
    only = json.loads(run_cli("impact", "--candidate", str(lowered), "--log", url, "--format", "json",
                              "--decision", "recovery.contact").stdout)
    assert (only["replayed"], only["unchanged"]) == (2, 2)
    bad_gate = run_cli("impact", "--candidate", str(lowered), "--log", url, "--fail-on", "deny>5")
    assert bad_gate.returncode == 2 and "BEFORE->AFTER>PCT%" in bad_gate.stderr


def test_a_broken_candidate_is_reported_and_nothing_is_replayed(tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    make_log(url)
    candidate = tmp_path / "broken"
    shutil.copytree(RULES, candidate)
    path = candidate / "payout.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("when: store.has_arrears", "when: store.has_areas"),
                    encoding="utf-8")
    result = run_cli("impact", "--candidate", str(candidate), "--log", url, "--format", "json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{candidate}/payout.yaml:" in result.stderr and "undeclared fact store.has_areas" in result.stderr


def test_http_impact_replaces_one_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RULESVC_ADMIN_TOKEN", "admin-secret")
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    client = app.test_client()
    ids = {amount: client.post("/v1/decisions/payout.initiate", json={
        "facts": payout(amount), "now": NOW.isoformat()}).json["decision_id"] for amount in AMOUNTS}
    app.extensions["rulesvc"].decision_log.flush()
    text = (RULES / "payout.yaml").read_text(encoding="utf-8").replace('value: "500.00"', 'value: "300.00"')
    headers = {"Authorization": "Bearer admin-secret", "Content-Type": "application/yaml"}
    assert client.post("/v1/rulesets/impact?file=payout.yaml", data=text, headers={
        "Content-Type": "application/yaml"}).status_code == 401
    answer = client.post("/v1/rulesets/impact?file=payout.yaml", data=text.encode(), headers=headers)
    assert answer.status_code == 200, answer.json
    assert answer.json["transitions"] == {"allow->deny": 5}
    assert answer.json["examples"]["allow->deny"] == [ids[a] for a in ("300.01", "350.00", "420.00", "499.99", "500.00")]
    broken = client.post("/v1/rulesets/impact?file=payout.yaml", data=text.replace("has_arrears\n", "has_areas\n"),
                         headers=headers)
    assert broken.status_code == 422
    assert any(problem.startswith("payout.yaml:") and "has_areas" in problem for problem in broken.json["error"]["problems"])
    assert client.post("/v1/rulesets/impact?file=../x.yaml", data=text, headers=headers).status_code == 400


# --- explain -------------------------------------------------------------------------------------------

def test_explain_reproduces_an_allow_and_a_defer_after_the_rules_changed(tmp_path, lowered):
    url = f"sqlite:///{tmp_path}/log.db"
    made = make_log(url)
    changed = load_rulebook([lowered])  # now active: the payout version the decisions were made on is not
    versions = VersionLibrary(LogDatabase(url), changed)
    database = LogDatabase(url)
    allow = explain(database.entry(made["payout 350.00"]), versions)
    assert allow["reproduced"] is True and allow["why_not"] is None
    assert allow["replayed"]["outcome"] == "allow" and allow["replayed"]["decision_id"] == made["payout 350.00"]
    rules = {rule["rule"]: rule for rule in allow["replayed"]["trace"]}
    assert rules["payout.initiate/amount-limit"]["fired"] is False
    assert rules["payout.initiate/amount-limit"]["conditions"][0]["operands"] == {
        "payout.amount": "350.00", "max_payout_amount": "500.00"}  # the limit it was made with
    defer = explain(database.entry(made["contact 20:00"]), versions)
    assert defer["reproduced"] is True
    assert defer["replayed"]["next_eligible_at"] == defer["logged"]["next_eligible_at"] == "2026-11-21T09:00:00+08:00"
    assert [reason["code"] for reason in defer["replayed"]["reasons"]] == ["OUTSIDE_SMS_WINDOW"]


def test_explain_a_defer_that_read_stored_counters(tmp_path):
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db")
    client = app.test_client()
    body = {"facts": CONTACT, "now": "2026-11-20T10:00:00+08:00", "commit": True, "idempotency_key": "sms-1"}
    client.post("/v1/decisions/recovery.contact", json=body)
    second = client.post("/v1/decisions/recovery.contact", json={
        **body, "facts": merged(CONTACT, {"order": {"id": "order-2"}}), "idempotency_key": "sms-2",
        "now": "2026-11-20T15:00:00+08:00"}).json
    assert second["reasons"][0]["code"] == "DAILY_SMS_LIMIT_REACHED"
    app.extensions["rulesvc"].store.drain()  # committed decisions reach the log through the store's outbox
    answer = client.get(f"/v1/decisions/log/{second['decision_id']}/explain", headers=AUDIT).json
    assert answer["reproduced"] is True  # with the stored count it read (1 SMS today), not today's store
    assert answer["replayed"]["next_eligible_at"] == "2026-11-21T09:00:00+08:00"
    assert client.get("/v1/decisions/log/01NOSUCHDECISION/explain", headers=AUDIT).status_code == 404


def test_explain_says_why_not_when_it_cannot(tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    made = make_log(url)
    database = LogDatabase(url)
    entry = database.entry(made["payout 350.00"])
    lost = explain({**entry, "ruleset_version": "sha256:" + "0" * 64}, VersionLibrary(database))
    assert lost["reproduced"] is False and lost["replayed"] is None
    assert "is not kept in the decision log" in lost["why_not"]
    # rules whose condition reads the masked account cannot reproduce a decision
    reads = tmp_path / "reads"
    shutil.copytree(RULES, reads)
    path = reads / "payout.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "when: store.has_arrears", "when: store.has_arrears or customer.account == 'x'"), encoding="utf-8")
    masked_url = f"sqlite:///{tmp_path}/masked.db"
    masked_made = make_log(masked_url, rules=reads)
    masked_database = LogDatabase(masked_url)
    answer = explain(masked_database.entry(masked_made["payout 350.00"]), VersionLibrary(masked_database))
    assert answer["reproduced"] is False
    assert answer["why_not"] == ("cannot be replayed: the rules read customer.account, which the log keeps only as an HMAC "
                                 "(sensitive)")


def test_cli_explain(tmp_path, lowered):
    url = f"sqlite:///{tmp_path}/log.db"
    made = make_log(url)
    result = run_cli("explain", made["payout 350.00"], "--log", url, "--rules", str(lowered))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["reproduced"] is True and answer["replayed"]["trace"]
    missing = run_cli("explain", "01NOSUCH", "--log", url)
    assert missing.returncode == 1 and "no decision 01NOSUCH" in missing.stderr


def test_before_is_what_the_active_rules_decide_not_an_older_logged_version(tmp_path, lowered):
    url = f"sqlite:///{tmp_path}/log.db"
    make_log(url)  # logged under the shipped rules (limit 500.00)
    shipped_since = load_rulebook([lowered])  # then the lowered limit was shipped: it is active now
    database = LogDatabase(url)
    against_log = impact(database, load_rulebook([lowered]), LogQuery(limit=None)).as_json()
    assert against_log["transitions"] == {"allow->deny": 5}  # the earlier change, not this candidate's doing
    against_active = impact(database, load_rulebook([lowered]), LogQuery(limit=None), active=shipped_since).as_json()
    assert against_active["transitions"] == {} and against_active["unchanged"] == against_active["replayed"]
    # and from the command line, --rules names the active rules
    result = run_cli("impact", "--candidate", str(lowered), "--rules", str(lowered), "--log", url, "--format", "json")
    report = json.loads(result.stdout)
    assert report["transitions"] == {} and report["compared_with"] == f"the rules in {lowered}"


def test_a_changed_default_is_replayed_with_the_candidates_default(tmp_path):
    url = f"sqlite:///{tmp_path}/log.db"
    rulebook = load_rulebook([RULES])
    decision_log = open_log(url)
    decision_log.keep_versions(rulebook)
    compiled = rulebook.decision("recovery.campaign_close")
    result, evaluation = compiled.run({"campaign": {"id": "c-1", "start_at": "2026-12-01T00:00:00+08:00"}},
                                      now=datetime.fromisoformat("2026-11-20T10:00:00+08:00"))
    assert result["outcome"] == "allow"  # client left out: its default, pc
    decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"], source="http",
                        duration_us=1)
    decision_log.close()
    entry = LogDatabase(url).entry(result["decision_id"])
    assert entry["defaulted"] == ["client"]
    candidate = tmp_path / "app-default"
    shutil.copytree(RULES, candidate)
    path = candidate / "recovery.yaml"
    text = path.read_text(encoding="utf-8")
    assert "default: pc" in text
    path.write_text(text.replace("default: pc", "default: app", 1), encoding="utf-8")
    report = impact(LogDatabase(url), load_rulebook([candidate]), LogQuery(limit=None)).as_json()
    assert report["transitions"] == {"allow->deny": 1} and report["reasons_added"] == {"PC_ONLY": 1}
