"""The policy rulings of SPEC §5 (issue 14): the campaign-close choice as one constant, the merchant-refund
review, the seed's wording in messages, assumptions marked in the trace, negations shown as written."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest

from engine import load_rulebook

from .conftest import NOW, RULES, codes
from .test_payout import INITIATE_OK

CLOSE = {"campaign": {"id": "c-1", "start_at": "2026-11-21T00:00:00+08:00"}}
STARTED = datetime.fromisoformat("2026-11-22T10:00:00+08:00")


def test_closing_a_started_campaign_is_refused_by_one_named_constant(rulebook):
    constant = rulebook.decision("recovery.campaign_close").decision.constants["close_after_start_allowed"]
    assert constant.value is False
    assert "商家可以随时关闭活动" in constant.note and "不再支持关闭操作" in constant.note
    assert codes(rulebook.decide("recovery.campaign_close", CLOSE, now=STARTED)) == ["CAMPAIGN_ALREADY_STARTED"]


def test_flipping_the_constant_lets_merchants_close_started_campaigns(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    recovery = rules / "recovery.yaml"
    text = recovery.read_text(encoding="utf-8")
    marker = "  close_after_start_allowed:\n    type: bool\n    value: false\n"
    assert marker in text
    recovery.write_text(text.replace(marker, marker.replace("false", "true")), encoding="utf-8")
    flipped = load_rulebook([rules])
    assert flipped.decide("recovery.campaign_close", CLOSE, now=STARTED)["outcome"] == "allow"
    # PC only stays, whatever the constant says
    app = {**CLOSE, "client": "app"}
    assert codes(flipped.decide("recovery.campaign_close", app, now=STARTED)) == ["PC_ONLY"]


def test_campaign_close_client_defaults_to_pc(rulebook):
    before = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
    assert rulebook.decide("recovery.campaign_close", CLOSE, now=before)["outcome"] == "allow"
    assert codes(rulebook.decide("recovery.campaign_close", {**CLOSE, "client": "app"}, now=before)) == ["PC_ONLY"]


def test_a_pending_refund_without_its_request_time_goes_to_review(rulebook):
    result = rulebook.decide("allowance.merchant_refund", {"withdrawal": {"status": "pending"}}, now=NOW)
    assert result["outcome"] == "review"
    assert codes(result) == ["REQUEST_TIME_UNKNOWN"]
    assert "48" in result["reasons"][0]["message"]["zh"]


def test_no_pending_withdrawal_tells_the_merchant_where_the_customer_applies(rulebook):
    result = rulebook.decide("allowance.merchant_refund", {"withdrawal": {"status": "none"}}, now=NOW)
    assert codes(result) == ["NO_PENDING_WITHDRAWAL"]
    assert "请联系用户在【我的膨胀金】页面发起申请" in result["reasons"][0]["message"]["zh"]
    assert "【我的膨胀金】" in result["reasons"][0]["message"]["en"]


def _trace(result: dict, rule: str) -> dict:
    return next(entry for entry in result["trace"] if entry["rule"] == rule)


@pytest.mark.parametrize(("rule", "constant", "value"), [
    ("payout.initiate/amount-limit", "max_payout_amount", "500.00"),
    ("payout.initiate/order-payout-count", "max_payouts_per_order", 3),
    ("payout.initiate/payout-window", "payout_window_days", 90),  # read through days(…)
])
def test_rules_on_assumed_constants_are_marked_in_the_trace(rulebook, rule, constant, value):
    result = rulebook.decide("payout.initiate", INITIATE_OK, now=NOW, explain=True)
    marks = _trace(result, rule)["assumptions"]
    assert [(mark["constant"], mark["value"]) for mark in marks] == [(constant, value)]
    assert marks[0]["note"].startswith("ASSUMPTION to confirm with JD")
    assert _trace(result, "payout.initiate/payout-enabled")["assumptions"] == []  # a platform rule


def test_a_rule_reading_an_assumption_through_a_derived_value_is_marked(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    payout = rules / "payout.yaml"
    text = payout.read_text(encoding="utf-8")
    assert "        when: now > order.completed_at + days(payout_window_days)\n" in text
    payout.write_text(text.replace("        when: now > order.completed_at + days(payout_window_days)\n",
                                   "        when: now > payout_deadline\n"), encoding="utf-8")
    rule = next(rule for rule in load_rulebook([rules]).decision("payout.initiate").decision.rules
                if rule.id == "payout-window")
    assert rule.assumptions == ("payout_window_days",)


def test_campaign_delay_bounds_are_marked_with_both_assumptions(rulebook):
    rule = next(rule for rule in rulebook.decision("recovery.campaign_create").decision.rules if rule.id == "delay-bounds")
    assert rule.assumptions == ("max_unpaid_minutes", "min_unpaid_minutes")


def test_the_trace_shows_a_negated_condition_as_written(rulebook):
    facts = {"store": {"channel": "pop"}, "allowance": {"principal": "80.00", "bonus": "20.00", "consumed": "10.00",
                                                          "valid_until": "2026-12-31T00:00:00+08:00"}}
    result = rulebook.decide("allowance.withdraw", facts, now=NOW, explain=True)
    entry = _trace(result, "allowance.withdraw/something-to-withdraw")
    assert entry["when"] == "not (withdrawable_principal > 0)"
    assert entry["fired"] is False
    assert entry["conditions"] == [{"condition": "not (withdrawable_principal > 0)", "value": False,
                                    "operands": {"withdrawable_principal": "72.00"}}]
    spent = {**facts, "allowance": {**facts["allowance"], "consumed": "100.00"}}
    entry = _trace(rulebook.decide("allowance.withdraw", spent, now=NOW, explain=True),
                   "allowance.withdraw/something-to-withdraw")
    assert entry["fired"] is True and entry["conditions"][0]["value"] is True


def test_a_negated_name_reads_not_name(rulebook):
    facts = dict(INITIATE_OK, store={**INITIATE_OK["store"], "payout_enabled": True})
    entry = _trace(rulebook.decide("payout.initiate", facts, now=NOW, explain=True), "payout.initiate/payout-enabled")
    assert entry["conditions"][0]["condition"] == "not store.payout_enabled"
    assert entry["conditions"][0]["value"] is False
