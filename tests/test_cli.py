"""The rulesvc command line, run as a user runs it (a subprocess), and policy edits without code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RULES
from .test_payout import INITIATE_OK

NOW = "2026-11-20T10:00:00+08:00"


def rulesvc(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd or RULES.parent, timeout=60)


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def test_check_shipped_rules_exits_zero():
    result = rulesvc("check", "rules/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules/payout.yaml: ok — domain payout, 3 decisions" in result.stdout


def test_check_reports_a_misspelt_fact_at_its_line_and_column(rules_copy):
    payout = rules_copy / "payout.yaml"
    text = payout.read_text(encoding="utf-8")
    line_number = next(i for i, line in enumerate(text.splitlines(), 1) if "when: wallet.balance < payout.amount" in line)
    payout.write_text(text.replace("when: wallet.balance < payout.amount", "when: wallet.balanse < payout.amount"),
                      encoding="utf-8")
    result = rulesvc("check", str(rules_copy))
    assert result.returncode == 1
    column = text.splitlines()[line_number - 1].index("wallet.balance") + len("wallet.") + 1
    assert result.stdout.splitlines() == [
        f"{payout}:{line_number}:{column}: undeclared fact wallet.balanse (did you mean 'balance'?)"]
    assert "nothing was activated" in result.stderr


def test_check_show_compiled_prints_durable_rules_rulesets():
    result = rulesvc("check", "--show-compiled", "rules/")
    assert result.returncode == 0
    compiled = json.loads(result.stdout[result.stdout.index("{"):])
    marked = [line for line in result.stdout.splitlines() if line.startswith("ASSUMPTION ")]
    assert [line.split(":")[0] for line in marked] == [
        "ASSUMPTION payout.initiate/amount-limit", "ASSUMPTION payout.initiate/order-payout-count",
        "ASSUMPTION payout.initiate/payout-window", "ASSUMPTION recovery.campaign_create/delay-bounds",
        "ASSUMPTION recovery.campaign_create/delay-bounds"]
    assert "max_payout_amount = 500.00 (ASSUMPTION to confirm with JD" in marked[0]
    payout = compiled["payout.initiate"]
    assert payout["reference_ruleset"]["order-state"] == {"all": [{"m": {"$and": [
        {"$decision": "payout.initiate"},
        {"$or": [{"order.state": "wait_pay"}, {"order.state": "locked"}, {"order.state": "cancelling"},
                 {"order.state": "cancelled"}]}]}}]}
    state = payout["fields"]["order.state"]  # the served ruleset matches a flat fact with short names
    assert payout["ruleset"]["order-state"] == {"all": [{"m": {"$and": [
        {"$decision": "payout.initiate"},
        {"$or": [{state: "wait_pay"}, {state: "locked"}, {state: "cancelling"}, {state: "cancelled"}]}]}}]}
    # and the Python program generated for each decision, as it runs: it compiles, and it reads the facts,
    # derives and encodes the short-named fact the ruleset matches
    for name, each in compiled.items():
        program = each["program"]
        compile(program, name, "exec")
        assert "def read_object" in program and "def derive(values, asked_at, at" in program, name
        assert "def program(raw, facts, now, source, counters_read, calendar, decision_id, later):" in program, name
    assert f"fact['{state}'] = " in payout["program"]


def test_decide_prints_the_decision(tmp_path):
    facts = tmp_path / "f.json"
    facts.write_text(json.dumps({**INITIATE_OK, "payout": {"amount": "60.00", "reason": "shipping_fee"}}))
    result = rulesvc("decide", "payout.initiate", "--facts", str(facts), "--now", NOW)
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["outcome"] == "deny"
    assert [reason["code"] for reason in decision["reasons"]] == ["QUOTA_PER_PAYOUT_EXCEEDED"]
    assert decision["obligations"] == {"sms_verification_required": False}  # nothing is owed on a refusal
    assert decision["evaluated_at"] == NOW
    assert "trace" not in decision


def test_decide_reads_standard_input_and_explains():
    result = rulesvc("decide", "payout.initiate", "--facts", "-", "--now", NOW, "--explain", stdin=json.dumps(INITIATE_OK))
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["outcome"] == "allow"
    assert len(decision["trace"]) == 15


def test_decide_invalid_facts_exit_2_with_every_field_error():
    facts = {**INITIATE_OK, "payout": {"amount": "-5", "reason": "gift"}}
    del facts["wallet"]
    result = rulesvc("decide", "payout.initiate", "--now", NOW, stdin=json.dumps(facts))
    assert result.returncode == 2
    assert json.loads(result.stdout) == {"error": {"code": "INVALID_FACTS", "fields": {
        "payout.amount": ["must not be negative"],
        "payout.reason": ["must be one of: price_difference, shipping_fee, promotion_compensation, other"],
        "wallet": ["Missing data for required field."]}}}


def test_decide_refuses_a_now_without_offset():
    result = rulesvc("decide", "payout.initiate", "--now", "2026-11-20T10:00:00", stdin="{}")
    assert result.returncode == 2
    assert "must carry a UTC offset" in result.stderr


def test_decide_unknown_decision():
    result = rulesvc("decide", "payout.initate", "--now", NOW, stdin="{}")
    assert result.returncode == 2
    assert "unknown decision 'payout.initate'" in result.stderr


def test_editing_a_constant_changes_the_decision_without_code(rules_copy, tmp_path):
    facts = tmp_path / "f.json"
    facts.write_text(json.dumps({**INITIATE_OK, "actor": {**INITIATE_OK["actor"], "role": "main"},
                                 "payout": {"amount": "450.00", "reason": "other"}}))
    args = ("decide", "payout.initiate", "--facts", str(facts), "--now", NOW, "--rules", str(rules_copy))
    assert json.loads(rulesvc(*args).stdout)["outcome"] == "allow"

    payout = rules_copy / "payout.yaml"
    payout.write_text(payout.read_text(encoding="utf-8").replace('value: "500.00"', 'value: "400.00"'), encoding="utf-8")
    assert rulesvc("check", str(rules_copy)).returncode == 0
    decision = json.loads(rulesvc(*args).stdout)
    assert decision["outcome"] == "deny"
    assert decision["reasons"][0]["code"] == "AMOUNT_OVER_LIMIT"
    assert decision["reasons"][0]["message"]["zh"] == "单笔打款金额不能超过 400.00 元。"
