"""rulesvc diff --prove (SPEC §13) on real edits: witnesses as scenario cases that pass on NEW, fail on OLD."""

from __future__ import annotations

import json

import yaml

from engine import load_rulebook
from engine.analysis.prove import prove_exit_code, prove_rulebooks
from engine.tester import run

from .conftest import RULES, edit
from .test_decision_log import run_cli


def cut(directory, name: str, start: str, end: str) -> str:
    """Remove the text from ``start`` up to ``end`` (kept) and return it."""
    path = directory / name
    text = path.read_text(encoding="utf-8")
    first, last = text.index(start), text.index(end)
    path.write_text(text[:first] + text[last:], encoding="utf-8")
    return text[first:last]


def proof(copy) -> dict:
    return prove_rulebooks(load_rulebook([RULES]), load_rulebook([copy]))


def changed(report: dict) -> dict[str, list[str]]:
    return {name: sorted(item["transitions"]) for name, item in report["decisions"].items()
            if not item["equivalent"]}


def assert_cases_pass_on_new_and_fail_on_old(report: dict, copy, tmp_path) -> None:
    for name, item in report["decisions"].items():
        if not item["transitions"]:
            continue
        scenario = tmp_path / f"{name}.yaml"
        scenario.write_text(yaml.safe_dump({"decision": name, "cases": [entry["case"] for entry in
                                                                          item["transitions"].values()]},
                                           allow_unicode=True), encoding="utf-8")
        on_new = run([scenario], load_rulebook([copy]))
        assert on_new.failed == 0 and on_new.passed == len(item["transitions"]), [r.failures for r in on_new.results]
        on_old = run([scenario], load_rulebook([RULES]))
        assert on_old.passed == 0 and on_old.failed == len(item["transitions"])


def test_sms_window_end_20_to_21(copy, tmp_path):
    edit(copy, "recovery.yaml", 'value: "20:00"', 'value: "21:00"')
    report = proof(copy)
    assert changed(report) == {"recovery.contact": ["defer->allow", "defer->defer"]}
    allowed = report["decisions"]["recovery.contact"]["transitions"]["defer->allow"]
    assert allowed["old"]["reasons"] == ["OUTSIDE_SMS_WINDOW"] and allowed["new"]["outcome"] == "allow"
    assert "20:" in allowed["witness"]["now"].split("T")[1][:3]  # between 20:00 and 21:00
    assert prove_exit_code(report["summary"]) == 1
    assert_cases_pass_on_new_and_fail_on_old(report, copy, tmp_path)


def test_max_payout_amount_500_to_800(copy, tmp_path):
    edit(copy, "payout.yaml", 'value: "500.00"', 'value: "800.00"')
    report = proof(copy)
    assert changed(report) == {"payout.initiate": ["deny->allow", "deny->deny"]}
    amount = float(report["decisions"]["payout.initiate"]["transitions"]["deny->allow"]["witness"]["facts"]
                   ["payout"]["amount"])
    assert 500 < amount <= 800
    assert_cases_pass_on_new_and_fail_on_old(report, copy, tmp_path)


def test_a_platform_wait_of_5_to_7_working_days(copy, tmp_path):
    edit(copy, "rebate.yaml", "taobao: {working_days: 5, wait: 5个工作日 (5 working days)}",
         "taobao: {working_days: 7, wait: 7个工作日 (7 working days)}")
    report = proof(copy)
    assert changed(report) == {"rebate.apply": ["allow->defer"]}
    witness = report["decisions"]["rebate.apply"]["transitions"]["allow->defer"]["witness"]
    assert witness["facts"]["platform"] == "taobao"
    assert_cases_pass_on_new_and_fail_on_old(report, copy, tmp_path)


def test_a_rule_removed(copy, tmp_path):
    cut(copy, "payout.yaml", "      - id: arrears\n", "      - id: sms-verification\n")
    cut(copy, "payout.yaml", "  MERCHANT_ARREARS:\n", "  DOUBLE_COMPENSATION_RISK:\n")
    report = proof(copy)
    assert changed(report) == {"payout.initiate": ["deny->allow", "deny->deny"]}
    witness = report["decisions"]["payout.initiate"]["transitions"]["deny->allow"]["witness"]
    assert witness["facts"]["store"]["has_arrears"] is True
    assert_cases_pass_on_new_and_fail_on_old(report, copy, tmp_path)


def test_a_reorder_of_rules_is_equivalent(copy):
    block = cut(copy, "recovery.yaml", "      - id: abuse\n", "      - id: unpaid-delay\n")
    edit(copy, "recovery.yaml", "      - id: order-awaiting-payment\n", block + "      - id: order-awaiting-payment\n")
    report = proof(copy)
    contact = report["decisions"]["recovery.contact"]
    assert contact["equivalent"] is True and not contact.get("unchanged")
    assert report["summary"]["equivalent"] is True
    assert prove_exit_code(report["summary"]) == 0


def test_the_cli_writes_the_cases_and_exits_1(copy, tmp_path):
    edit(copy, "recovery.yaml", 'value: "20:00"', 'value: "21:00"')
    cases = tmp_path / "cases.yaml"
    done = run_cli("diff", str(RULES), str(copy), "--prove", "--format", "json", "--cases", str(cases))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert set(report["decisions"]["recovery.contact"]["transitions"]) == {"defer->allow", "defer->defer"}
    assert report["decisions"]["payout.initiate"] == {"equivalent": True, "unchanged": True, "transitions": {},
                                                       "unknown": []}
    written = yaml.safe_load(cases.read_text(encoding="utf-8"))
    assert written["decision"] == "recovery.contact" and len(written["cases"]) == 2
    assert run_cli("test", str(cases), "--rules", str(copy)).returncode == 0
    assert run_cli("test", str(cases), "--rules", str(RULES)).returncode == 1
    same = run_cli("diff", str(RULES), str(RULES), "--prove")
    assert same.returncode == 0, same.stdout
