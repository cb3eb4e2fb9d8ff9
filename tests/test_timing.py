"""Timing policies: recovery (seed 002), rebate (seed 003) and allowance (seed 001), with their boundaries."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from typing import Any

import pytest

from .conftest import RULES, codes, merged


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- recovery.contact ---------------------------------------------------------------------------

CONTACT: dict[str, Any] = {
    "campaign": {"id": "camp-1", "start_at": "2026-11-01T00:00:00+08:00", "end_at": "2026-12-01T00:00:00+08:00",
                 "closed": False, "targets": {"categories": ["手机"], "brands": ["华为"], "skus": ["sku-9"]},
                 "unpaid_minutes": 30, "coupon": {"threshold": "100.00", "discount": "5.00"}},
    "order": {"id": "order-1", "state": "wait_pay", "created_at": "2026-11-20T08:00:00+08:00", "amount": "100.00",
              "items": [{"sku": "sku-1", "category": "手机", "brand": "小米"}]},
    "customer": {"id": "buyer-1"},
}


def contact(rulebook, now: str, **changes):
    return rulebook.decide("recovery.contact", merged(CONTACT, changes), now=at(now))


def test_contact_allowed_settles_the_discounted_amount(rulebook):
    result = contact(rulebook, "2026-11-20T10:00:00+08:00")
    assert result["outcome"] == "allow"
    assert result["values"] == {
        "coupon": {"threshold": "100.00", "discount": "5.00", "payment_methods": ["quick_bank_card"],
                   "stacks_with": ["shop_coupon", "product_coupon", "jd_beans"]},
        "settlement_amount": "95.00",
    }


@pytest.mark.parametrize(("now", "outcome", "next_eligible_at"), [
    ("2026-11-20T08:59:59+08:00", "defer", "2026-11-20T09:00:00+08:00"),
    ("2026-11-20T09:00:00+08:00", "allow", None),
    ("2026-11-20T19:59:59+08:00", "allow", None),
    ("2026-11-20T20:00:00+08:00", "defer", "2026-11-21T09:00:00+08:00"),
    ("2026-11-20T12:00:00Z", "defer", "2026-11-21T09:00:00+08:00"),      # 20:00 in Shanghai
    ("2026-11-20T01:00:00Z", "allow", None),                              # 09:00 in Shanghai
    ("2026-11-20T23:30:00+08:00", "defer", "2026-11-21T09:00:00+08:00"),
    ("2026-11-21T00:30:00+08:00", "defer", "2026-11-21T09:00:00+08:00"),
])
def test_sms_window_boundaries(rulebook, now, outcome, next_eligible_at):
    result = contact(rulebook, now, order={"created_at": "2026-11-19T08:00:00+08:00"})
    assert result["outcome"] == outcome
    assert codes(result) == ([] if outcome == "allow" else ["OUTSIDE_SMS_WINDOW"])
    assert result["next_eligible_at"] == next_eligible_at


def test_unpaid_delay_defers_until_it_ends(rulebook):
    result = contact(rulebook, "2026-11-20T10:10:00+08:00", order={"created_at": "2026-11-20T10:00:00+08:00"})
    assert result["outcome"] == "defer"
    assert codes(result) == ["WAITING_UNPAID_DELAY"]
    assert result["next_eligible_at"] == "2026-11-20T10:30:00+08:00"


def test_unpaid_delay_ends_exactly_at_created_plus_minutes(rulebook):
    result = contact(rulebook, "2026-11-20T10:30:00+08:00", order={"created_at": "2026-11-20T02:00:00Z"})
    assert result["outcome"] == "allow"


def test_a_delay_ending_after_20_00_waits_for_the_next_morning(rulebook):
    result = contact(rulebook, "2026-11-20T19:55:00+08:00", order={"created_at": "2026-11-20T19:50:00+08:00"})
    assert result["outcome"] == "defer"
    assert codes(result) == ["WAITING_UNPAID_DELAY"]  # only the delay holds now; 20:20 is outside the window
    assert result["next_eligible_at"] == "2026-11-21T09:00:00+08:00"


def test_daily_sms_limit_defers_to_next_morning(rulebook):
    result = contact(rulebook, "2026-11-20T15:00:00+08:00", customer={"sms_sent_today": 1})
    assert result["outcome"] == "defer"
    assert codes(result) == ["DAILY_SMS_LIMIT_REACHED"]
    assert result["next_eligible_at"] == "2026-11-21T09:00:00+08:00"


@pytest.mark.parametrize(("now", "next_eligible_at"), [
    ("2999-12-30T21:00:00+08:00", "2999-12-31T09:00:00+08:00"),  # the last morning the service can name
    ("2999-12-31T21:00:00+08:00", None),  # 3000-01-01 09:00 is past the instants the service reads and writes
])
def test_next_eligible_at_stays_within_the_supported_years(rulebook, now, next_eligible_at):
    result = contact(rulebook, now, campaign={"start_at": "1970-01-01T00:00:00+08:00", "end_at": "2999-12-31T23:59:59+08:00"},
                     order={"created_at": "2999-12-30T08:00:00+08:00"})
    assert result["outcome"] == "defer"
    assert codes(result) == ["OUTSIDE_SMS_WINDOW"]
    assert result["next_eligible_at"] == next_eligible_at


def test_every_timing_rule_at_once(rulebook):
    result = contact(rulebook, "2026-11-20T20:10:00+08:00", order={"created_at": "2026-11-20T20:00:00+08:00"},
                     customer={"sms_sent_today": 1})
    assert codes(result) == ["WAITING_UNPAID_DELAY", "OUTSIDE_SMS_WINDOW", "DAILY_SMS_LIMIT_REACHED"]
    assert result["next_eligible_at"] == "2026-11-21T09:00:00+08:00"


@pytest.mark.parametrize(("changes", "code"), [
    ({"order": {"state": "wait_ship"}}, "ORDER_NOT_AWAITING_PAYMENT"),
    ({"campaign": {"closed": True}}, "CAMPAIGN_NOT_ACTIVE"),
    ({"campaign": {"start_at": "2026-11-20T10:00:01+08:00"}}, "CAMPAIGN_NOT_ACTIVE"),
    ({"campaign": {"end_at": "2026-11-20T10:00:00+08:00"}}, "CAMPAIGN_NOT_ACTIVE"),
    ({"order": {"items": [{"sku": "sku-2", "category": "电脑", "brand": "联想"}]}}, "ORDER_NOT_TARGETED"),
    ({"order": {"amount": "99.99"}}, "BELOW_COUPON_THRESHOLD"),
    ({"customer": {"abuse_flag": True}}, "ABUSE_SUSPECTED"),
])
def test_contact_denials(rulebook, changes, code):
    result = contact(rulebook, "2026-11-20T10:00:00+08:00", **changes)
    assert result["outcome"] == "deny"
    assert codes(result) == [code]


@pytest.mark.parametrize("item", [
    {"sku": "x", "category": "手机"}, {"sku": "x", "brand": "华为"}, {"sku": "sku-9"},
])
def test_targeting_by_any_item_category_brand_or_sku(rulebook, item):
    result = contact(rulebook, "2026-11-20T10:00:00+08:00", order={"items": [{"sku": "other"}, item]})
    assert result["outcome"] == "allow"


def test_deny_outranks_defer(rulebook):
    result = contact(rulebook, "2026-11-20T21:00:00+08:00", customer={"abuse_flag": True})
    assert result["outcome"] == "deny"
    assert result["next_eligible_at"] is None


def test_moving_the_window_end_in_a_copy_allows_20_30(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    recovery = rules / "recovery.yaml"
    recovery.write_text(recovery.read_text(encoding="utf-8").replace('value: "20:00"', 'value: "21:00"'), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "cli.main", "decide", "recovery.contact", "--rules", str(rules),
                          "--now", "2026-11-20T20:30:00+08:00"], input=json.dumps(CONTACT), capture_output=True,
                         text=True, cwd=RULES.parent, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["outcome"] == "allow"


# --- recovery.campaign_create / campaign_close ----------------------------------------------------

CREATE: dict[str, Any] = {
    "store": {"channel": "pop", "business_mode": "sop", "cross_border": False},
    "merchant": {"agreement_signed": True}, "client": "pc",
    "campaign": {"targets": {"categories": ["手机"]}, "unpaid_minutes": 30,
                 "coupon": {"threshold": "100.00", "discount": "5.00"},
                 "start_at": "2026-11-21T00:00:00+08:00", "end_at": "2026-11-30T00:00:00+08:00"},
}


@pytest.mark.parametrize(("changes", "reasons"), [
    ({}, []),
    ({"store": {"channel": "self_operated"}}, ["STORE_TYPE_NOT_ELIGIBLE"]),
    ({"store": {"business_mode": "fcs"}}, ["STORE_TYPE_NOT_ELIGIBLE"]),
    ({"store": {"cross_border": True}}, ["STORE_TYPE_NOT_ELIGIBLE"]),
    ({"merchant": {"agreement_signed": False}}, ["AGREEMENT_NOT_SIGNED"]),
    ({"campaign": {"targets": {"categories": []}}}, ["TARGETS_REQUIRED"]),
    ({"campaign": {"unpaid_minutes": 9}}, ["DELAY_OUT_OF_RANGE"]),
    ({"campaign": {"unpaid_minutes": 10}}, []),
    ({"campaign": {"unpaid_minutes": 1441}}, ["DELAY_OUT_OF_RANGE"]),
    ({"campaign": {"coupon": {"discount": "0"}}}, ["COUPON_INVALID"]),
    ({"campaign": {"coupon": {"discount": "100.00"}}}, ["COUPON_INVALID"]),
    ({"campaign": {"coupon": {"discount": "99.99"}}}, []),
    ({"campaign": {"end_at": "2026-11-21T00:00:00+08:00"}}, ["SCHEDULE_INVALID"]),
    ({"client": "app"}, ["PC_ONLY"]),
])
def test_campaign_create(rulebook, changes, reasons):
    result = rulebook.decide("recovery.campaign_create", merged(CREATE, changes), now=at("2026-11-20T10:00:00+08:00"))
    assert codes(result) == reasons
    assert result["outcome"] == ("deny" if reasons else "allow")


@pytest.mark.parametrize(("now", "outcome"), [
    ("2026-11-20T23:59:59+08:00", "allow"), ("2026-11-21T00:00:00+08:00", "deny"), ("2026-11-20T16:00:00Z", "deny"),
])
def test_campaign_close_only_before_start(rulebook, now, outcome):
    facts = {"campaign": {"id": "c", "start_at": "2026-11-21T00:00:00+08:00"}}
    result = rulebook.decide("recovery.campaign_close", facts, now=at(now))
    assert result["outcome"] == outcome
    assert codes(result) == ([] if outcome == "allow" else ["CAMPAIGN_ALREADY_STARTED"])


# --- rebate.apply --------------------------------------------------------------------------------

REBATE: dict[str, Any] = {
    "platform": "taobao",
    "subscription": {"confirmed": True, "ordered_at": "2026-11-16", "order_no": "TB-1"},
    "report": {"shop_name": "小店", "order_no": "TB-1", "ordered_at": "2026-11-16", "amount": "300.00",
               "contact_phone": "13800000000"},
    "payee": {"account_type": "bank", "bank_name": "招商银行", "account_no": "6225000000000000", "account_name": "张三"},
}


def rebate(rulebook, now: str, **changes):
    ordered_at = changes.get("subscription", {}).get("ordered_at")
    if ordered_at and "report" not in changes:  # the 报备 describes the platform's order
        changes["report"] = {"ordered_at": ordered_at}
    return rulebook.decide("rebate.apply", merged(REBATE, changes), now=at(now))


@pytest.mark.parametrize(("platform", "ordered_at", "eligible_from"), [
    ("taobao", "2026-11-16", "2026-11-24"),
    ("tmall", "2026-11-16", "2026-11-24"),
    ("jd", "2026-09-24", "2026-10-30"),          # Mid-Autumn, National Day and the 10-10 make-up workday
    ("paipai", "2026-01-31", "2026-04-01"),
    ("paipai", "2025-12-31", "2026-03-01"),      # + 2 months = 02-28 (no 02-31)
    ("yhd", "2024-02-29", "2025-03-01"),         # + 1 year = 2025-02-28
    ("taobao", "2026-02-13", "2026-02-28"),      # Spring Festival: 14 (make-up Sat), 24, 25, 26, 27
    ("taobao", "2026-04-29", "2026-05-10"),      # Labour Day: 30, 6, 7, 8 and the make-up Saturday 9th
    ("taobao", "2026-09-29", "2026-10-13"),      # National Day: 30, 8, 9, make-up Saturday 10th, Monday 12th
])
def test_rebate_eligible_from(rulebook, platform, ordered_at, eligible_from):
    result = rebate(rulebook, "2026-11-20T10:00:00+08:00", platform=platform,
                    subscription={"ordered_at": ordered_at})
    assert result["values"]["eligible_from"] == eligible_from
    assert result["outcome"] in ("allow", "defer")


def test_rebate_before_the_wait_defers_to_midnight_shanghai(rulebook):
    result = rebate(rulebook, "2026-11-23T23:59:59+08:00")
    assert result["outcome"] == "defer"
    assert codes(result) == ["REBATE_WAIT_NOT_ELAPSED"]
    assert result["next_eligible_at"] == "2026-11-24T00:00:00+08:00"
    assert result["values"]["eligible_from"] == "2026-11-24"


@pytest.mark.parametrize("now", ["2026-11-24T00:00:00+08:00", "2026-11-23T16:00:00Z"])
def test_rebate_allowed_from_midnight(rulebook, now):
    assert rebate(rulebook, now)["outcome"] == "allow"


def test_rebate_platform_without_a_stated_wait_goes_to_review(rulebook):
    result = rebate(rulebook, "2026-11-20T10:00:00+08:00", platform="pinduoduo")
    assert result["outcome"] == "review"
    assert codes(result) == ["REBATE_WAIT_UNDEFINED"]
    assert result["values"]["eligible_from"] is None


@pytest.mark.parametrize(("changes", "code"), [
    ({"subscription": {"confirmed": False}}, "ORDER_NOT_CONFIRMED"),
    ({"subscription": {"ordered_at": None}}, "SUBSCRIPTION_DATE_REQUIRED"),
    ({"payee": {"account_type": "alipay"}}, "PAYEE_ALIPAY_NOT_SUPPORTED"),
    ({"payee": {"account_name": ""}}, "PAYEE_INCOMPLETE"),
])
def test_rebate_denials(rulebook, changes, code):
    result = rebate(rulebook, "2026-12-20T10:00:00+08:00", **changes)
    assert result["outcome"] == "deny"
    assert codes(result) == [code]


def test_rebate_incomplete_report_lists_missing_fields(rulebook):
    result = rebate(rulebook, "2026-12-20T10:00:00+08:00", report={"contact_phone": None, "amount": None})
    assert codes(result) == ["REPORT_INCOMPLETE"]
    assert result["values"]["missing"] == ["report.amount", "report.contact_phone"]
    assert "report.amount, report.contact_phone" in result["reasons"][0]["message"]["zh"]


@pytest.mark.parametrize(("expires_at", "warned"), [
    ("2026-12-20T10:00:00+08:00", True), ("2026-12-20T10:00:01+08:00", False),
])
def test_rebate_authorization_expiry_warning(rulebook, expires_at, warned):
    result = rebate(rulebook, "2026-12-20T10:00:00+08:00", authorization={"expires_at": expires_at})
    assert result["outcome"] == "allow"
    assert codes(result, "warnings") == (["AUTHORIZATION_EXPIRED"] if warned else [])


def test_rebate_period_past_the_calendar_data_is_estimated(rulebook):
    result = rebate(rulebook, "2026-12-20T10:00:00+08:00", platform="jd", subscription={"ordered_at": "2026-12-20"})
    assert result["outcome"] == "defer"
    assert codes(result, "warnings") == ["CALENDAR_ESTIMATED"]
    assert result["values"]["eligible_from"] == "2027-01-19"  # 2027-01-01 (元旦, estimated) is a day off


def test_rebate_across_the_year_skips_the_estimated_new_year(rulebook):
    """JD ordered 2026-12-04: 19 working days to 12-31, 元旦 2027-01-01 off, the 20th is Monday 01-04."""
    result = rebate(rulebook, "2026-12-20T10:00:00+08:00", platform="jd", subscription={"ordered_at": "2026-12-04"})
    assert result["values"]["eligible_from"] == "2027-01-05"
    assert result["next_eligible_at"] == "2027-01-05T00:00:00+08:00"
    assert codes(result, "warnings") == ["CALENDAR_ESTIMATED"]


def test_a_report_that_differs_from_the_platforms_order_is_denied(rulebook):
    result = rebate(rulebook, "2026-11-20T10:00:00+08:00", subscription={"ordered_at": "2026-10-01"},
                    report={"ordered_at": "2026-11-16"})
    assert result["outcome"] == "deny"
    assert codes(result) == ["REPORT_MISMATCH"]
    assert result["values"]["mismatched"] == ["report.ordered_at"]
    assert "report.ordered_at" in result["reasons"][0]["message"]["en"]


def test_rebate_version_covers_the_calendar(rulebook):
    payout, rebate_domain = rulebook.domains["payout"], rulebook.domains["rebate"]
    import hashlib
    file_hash = "sha256:" + hashlib.sha256((RULES / "rebate.yaml").read_bytes()).hexdigest()
    assert rebate_domain.version != file_hash
    assert payout.version == "sha256:" + hashlib.sha256((RULES / "payout.yaml").read_bytes()).hexdigest()


# --- allowance --------------------------------------------------------------------------------------

ALLOWANCE = {"principal": "80.00", "bonus": "20.00", "consumed": "10.00", "valid_until": "2026-12-31T23:59:59+08:00"}


def withdraw(rulebook, now="2026-11-20T10:00:00+08:00", **allowance):
    facts = {"store": {"channel": "pop"}, "allowance": {**ALLOWANCE, **allowance}}
    return rulebook.decide("allowance.withdraw", facts, now=at(now))


def test_withdraw_80_for_100_used_10(rulebook):
    result = withdraw(rulebook)
    assert result["outcome"] == "allow"
    assert result["values"] == {"withdrawable_principal": "72.00", "forfeited_bonus": "18.00"}
    assert result["obligations"] == {"refund_mode": "scheduled", "refund_at": "2026-11-22T10:00:00+08:00"}


def test_withdraw_nothing_consumed_is_refunded_immediately(rulebook):
    result = withdraw(rulebook, consumed="0.00")
    assert result["values"] == {"withdrawable_principal": "80.00", "forfeited_bonus": "20.00"}
    assert result["obligations"] == {"refund_mode": "immediate", "refund_at": "2026-11-20T10:00:00+08:00"}


def test_withdraw_rounds_half_up_to_the_fen(rulebook):
    # 10.00 × 33.33 / 30.00 = 11.11; 10 × 1.01 / 3.00 = 3.3666… → 3.37
    result = withdraw(rulebook, principal="1.00", bonus="2.00", consumed="1.99")
    assert result["values"] == {"withdrawable_principal": "0.34", "forfeited_bonus": "0.67"}


@pytest.mark.parametrize(("changes", "code"), [
    ({"consumed": "100.00"}, "NOTHING_TO_WITHDRAW"),
    ({"valid_until": "2026-11-20T10:00:00+08:00"}, "ALLOWANCE_EXPIRED"),
])
def test_withdraw_denials(rulebook, changes, code):
    assert codes(withdraw(rulebook, **changes)) == [code]


def test_withdraw_from_a_non_pop_store(rulebook):
    facts = {"store": {"channel": "self_operated"}, "allowance": ALLOWANCE}
    result = rulebook.decide("allowance.withdraw", facts, now=at("2026-11-20T10:00:00+08:00"))
    assert codes(result) == ["STORE_NOT_COVERED"]


def test_withdraw_scheduled_refund_counts_from_the_request(rulebook):
    facts = {"store": {"channel": "pop"}, "allowance": ALLOWANCE, "request": {"requested_at": "2026-11-19T23:30:00Z"}}
    result = rulebook.decide("allowance.withdraw", facts, now=at("2026-11-20T10:00:00+08:00"))
    assert result["obligations"]["refund_at"] == "2026-11-22T07:30:00+08:00"


@pytest.mark.parametrize(("now", "outcome", "reasons"), [
    ("2026-11-22T09:59:59+08:00", "allow", []),
    ("2026-11-22T10:00:00+08:00", "deny", ["ALREADY_AUTO_REFUNDED"]),   # 48 h exactly
])
def test_merchant_refund_within_48_hours(rulebook, now, outcome, reasons):
    facts = {"withdrawal": {"status": "pending", "requested_at": "2026-11-20T10:00:00+08:00"}}
    result = rulebook.decide("allowance.merchant_refund", facts, now=at(now))
    assert result["outcome"] == outcome
    assert codes(result) == reasons


@pytest.mark.parametrize("status", ["none", "cancelled", "refunded"])
def test_merchant_refund_needs_a_pending_request(rulebook, status):
    result = rulebook.decide("allowance.merchant_refund", {"withdrawal": {"status": status}},
                             now=at("2026-11-20T10:00:00+08:00"))
    assert codes(result) == ["NO_PENDING_WITHDRAWAL"]


@pytest.mark.parametrize(("now", "outcome", "next_eligible_at"), [
    ("2026-12-31T23:59:58+08:00", "defer", "2026-12-31T23:59:59+08:00"),
    ("2026-12-31T23:59:59+08:00", "allow", None),
])
def test_expire_refunds_the_remaining_principal(rulebook, now, outcome, next_eligible_at):
    result = rulebook.decide("allowance.expire", {"allowance": ALLOWANCE}, now=at(now))
    assert result["outcome"] == outcome
    assert result["next_eligible_at"] == next_eligible_at
    assert result["values"] == {"refund_amount": "72.00"}


def test_withdraw_never_reports_negative_money_and_owes_nothing_when_refused(rulebook):
    over = withdraw(rulebook, consumed="110.00")
    assert codes(over) == ["NOTHING_TO_WITHDRAW"]
    assert over["values"] == {"withdrawable_principal": "0.00", "forfeited_bonus": "0.00"}
    assert over["obligations"] == {"refund_mode": None, "refund_at": None}
    empty = withdraw(rulebook, principal="0", bonus="0", consumed="0")
    assert empty["values"] == {"withdrawable_principal": "0.00", "forfeited_bonus": "0.00"}


def test_calendar_estimate_only_counts_days_after_the_subscription(rulebook):
    inside = rebate(rulebook, "2026-12-20T10:00:00+08:00", platform="jd", subscription={"ordered_at": "2019-12-31"})
    assert codes(inside, "warnings") == []  # 2020-01-01 onwards is in cn-2020.yaml
    assert inside["values"]["eligible_from"] == "2020-02-06"
