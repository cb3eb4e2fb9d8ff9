"""rules/payout.yaml — 小额打款 (seed 000): every rule firing and not firing, with its boundaries."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import NOW, codes, merged

ENABLE_OK: dict[str, Any] = {
    "actor": {"role": "main"},
    "store": {"channel": "pop", "business_mode": "sop", "subject_type": "enterprise",
              "after_sales_self_service": True, "enterprise_wallet_opened": True,
              "agreement_signed": True, "in_gray_release": True},
}

INITIATE_OK: dict[str, Any] = {
    "actor": {"role": "sub", "id": "kefu-01",
              "menu_permissions": ["compensation_list", "compensation_apply", "compensation_records"],
              "quota": {"enabled": True, "per_payout_max": "50.00", "daily_amount_max": "200.00",
                        "daily_count_max": 5},
              "used_today": {"amount": "100.00", "count": 2}},
    "store": {"id": "store-1", "payout_enabled": True, "has_arrears": False,
              "password_free": {"enabled": True, "max_amount": "20.00"}},
    "wallet": {"balance": "1000.00"},
    "order": {"id": "order-1", "state": "completed", "amount": "199.00", "refunded_amount": "0.00",
              "payout_total": "0.00", "payout_count": 0, "completed_at": "2026-11-10T12:00:00+08:00"},
    "customer": {"account": "jd_buyer_1"},
    "payout": {"amount": "30.00", "reason": "price_difference"},
}


def enable(rulebook, **changes):
    return rulebook.decide("payout.enable", merged(ENABLE_OK, changes), now=NOW)


def initiate(rulebook, now=NOW, **changes):
    return rulebook.decide("payout.initiate", merged(INITIATE_OK, changes), now=now)


# --- payout.enable --------------------------------------------------------------------------------

def test_enable_allows_an_eligible_pop_sop_store(rulebook):
    result = enable(rulebook)
    assert result["outcome"] == "allow"
    assert result["reasons"] == [] and result["warnings"] == []


@pytest.mark.parametrize("store", [
    {"channel": "self_operated", "business_mode": "sop", "subject_type": "jingxi_enterprise"},
    {"channel": "pop", "business_mode": "sop", "subject_type": "jingxi_individual"},
    {"channel": "self_operated", "business_mode": "sop", "subject_type": "xiaodian_individual"},
])
def test_enable_allows_jingxi_and_xiaodian_subjects(rulebook, store):
    assert enable(rulebook, store=store)["outcome"] == "allow"


@pytest.mark.parametrize("store", [
    {"channel": "self_operated"},
    {"business_mode": "fbp"}, {"business_mode": "loc"}, {"business_mode": "card_secret"},
    {"business_mode": "scf"}, {"business_mode": "fcs"},
    {"subject_type": "natural_person"},
    # an eligible subject type does not rescue an excluded cooperation mode
    {"subject_type": "jingxi_enterprise", "business_mode": "fcs"},
])
def test_enable_denies_ineligible_store_types(rulebook, store):
    result = enable(rulebook, store=store)
    assert result["outcome"] == "deny"
    assert codes(result) == ["STORE_TYPE_NOT_ELIGIBLE"]


@pytest.mark.parametrize(("store", "code"), [
    ({"after_sales_self_service": False}, "AFTER_SALES_SELF_SERVICE_REQUIRED"),
    ({"enterprise_wallet_opened": False}, "ENTERPRISE_WALLET_REQUIRED"),
    ({"agreement_signed": False}, "AGREEMENT_NOT_SIGNED"),
    ({"in_gray_release": False}, "FEATURE_NOT_RELEASED"),
])
def test_enable_store_requirements(rulebook, store, code):
    result = enable(rulebook, store=store)
    assert result["outcome"] == "deny"
    assert codes(result) == [code]


def test_enable_gray_release_defaults_to_not_released(rulebook):
    facts = merged(ENABLE_OK, {})
    del facts["store"]["in_gray_release"]
    assert codes(rulebook.decide("payout.enable", facts, now=NOW)) == ["FEATURE_NOT_RELEASED"]


def test_enable_needs_the_main_account_and_collects_every_reason(rulebook):
    result = enable(rulebook, actor={"role": "sub"}, store={"agreement_signed": False})
    assert result["outcome"] == "deny"
    assert codes(result) == ["AGREEMENT_NOT_SIGNED", "MAIN_ACCOUNT_REQUIRED"]
    assert result["reasons"][1]["rule"] == "payout.enable/main-account"
    assert result["reasons"][1]["message"]["zh"] == "仅主账号有权限进行此操作。"


# --- payout.manage --------------------------------------------------------------------------------

def test_manage_main_account_with_positive_quota_is_allowed(rulebook):
    facts = {"actor": {"role": "main"}, "action": "configure_quota",
             "quota": {"per_payout_max": "50.00", "daily_amount_max": "200.00", "daily_count_max": 5}}
    assert rulebook.decide("payout.manage", facts, now=NOW)["outcome"] == "allow"


def test_manage_by_sub_account_is_denied(rulebook):
    result = rulebook.decide("payout.manage", {"actor": {"role": "sub"}, "action": "grant_menu"}, now=NOW)
    assert codes(result) == ["MAIN_ACCOUNT_REQUIRED"]


@pytest.mark.parametrize("facts", [
    {"quota": {"per_payout_max": "0"}},
    {"quota": {"daily_amount_max": "0.00"}},
    {"quota": {"daily_count_max": 0}},
    {"quota": {"daily_count_max": -1}},
    {"password_free": {"max_amount": 0}},
])
def test_manage_quota_must_be_positive(rulebook, facts):
    result = rulebook.decide("payout.manage", {"actor": {"role": "main"}, "action": "configure_quota", **facts}, now=NOW)
    assert codes(result) == ["QUOTA_INVALID"]


def test_manage_smallest_positive_amounts_are_valid(rulebook):
    facts = {"actor": {"role": "main"}, "action": "set_password_free", "password_free": {"max_amount": "0.01"},
             "quota": {"daily_count_max": 1}}
    assert rulebook.decide("payout.manage", facts, now=NOW)["outcome"] == "allow"


# --- payout.initiate ------------------------------------------------------------------------------

def test_initiate_allowed_sub_account_payout(rulebook):
    result = initiate(rulebook)
    assert result["outcome"] == "allow"
    assert result["reasons"] == [] and result["warnings"] == []
    assert result["obligations"] == {"sms_verification_required": True}
    assert result["next_eligible_at"] is None
    assert result["ruleset"]["domain"] == "payout"
    assert result["ruleset"]["version"].startswith("sha256:")
    assert result["evaluated_at"] == "2026-11-20T10:00:00+08:00"


def test_initiate_payout_not_enabled(rulebook):
    assert codes(initiate(rulebook, store={"payout_enabled": False})) == ["PAYOUT_NOT_ENABLED"]


@pytest.mark.parametrize("state", ["wait_pay", "locked", "cancelling", "cancelled"])
def test_initiate_blocked_order_states(rulebook, state):
    result = initiate(rulebook, order={"state": state})
    assert result["outcome"] == "deny"
    assert codes(result) == ["ORDER_STATE_NOT_ALLOWED"]
    assert state in result["reasons"][0]["message"]["en"]


@pytest.mark.parametrize("state", ["wait_ship", "shipped", "completed", "after_sale"])
def test_initiate_allowed_order_states(rulebook, state):
    assert initiate(rulebook, order={"state": state})["outcome"] == "allow"


def test_initiate_sub_account_missing_one_menu_permission(rulebook):
    result = initiate(rulebook, actor={"menu_permissions": ["compensation_list", "compensation_records"]})
    assert codes(result) == ["MENU_PERMISSION_MISSING"]
    assert "compensation_apply" in result["reasons"][0]["message"]["zh"]


def test_initiate_sub_account_without_menu_permissions(rulebook):
    facts = merged(INITIATE_OK, {})
    del facts["actor"]["menu_permissions"]
    assert codes(rulebook.decide("payout.initiate", facts, now=NOW)) == ["MENU_PERMISSION_MISSING"]


def test_initiate_main_account_needs_no_menu_permissions_nor_quota(rulebook):
    facts = merged(INITIATE_OK, {"actor": {"role": "main", "quota": None, "menu_permissions": []}})
    assert rulebook.decide("payout.initiate", facts, now=NOW)["outcome"] == "allow"


def test_initiate_sub_account_quota_not_configured(rulebook):
    facts = merged(INITIATE_OK, {"actor": {"quota": None}})
    assert codes(rulebook.decide("payout.initiate", facts, now=NOW)) == ["QUOTA_NOT_CONFIGURED"]


def test_initiate_sub_account_quota_disabled(rulebook):
    assert codes(initiate(rulebook, actor={"quota": {"enabled": False}})) == ["QUOTA_DISABLED"]


@pytest.mark.parametrize(("amount", "outcome"), [("50.00", "allow"), ("50.01", "deny")])
def test_initiate_per_payout_quota_boundary(rulebook, amount, outcome):
    result = initiate(rulebook, payout={"amount": amount})
    assert result["outcome"] == outcome
    assert codes(result) == ([] if outcome == "allow" else ["QUOTA_PER_PAYOUT_EXCEEDED"])


@pytest.mark.parametrize(("used", "outcome"), [("170.00", "allow"), ("170.01", "deny")])
def test_initiate_daily_amount_quota_boundary(rulebook, used, outcome):
    result = initiate(rulebook, actor={"used_today": {"amount": used}})
    assert result["outcome"] == outcome
    if outcome == "deny":
        assert codes(result) == ["QUOTA_DAILY_AMOUNT_EXCEEDED"]
        assert result["reasons"][0]["message"]["en"].startswith("170.01 paid today; another 30.00")


@pytest.mark.parametrize(("count", "outcome"), [(4, "allow"), (5, "deny")])
def test_initiate_daily_count_quota_boundary(rulebook, count, outcome):
    result = initiate(rulebook, actor={"used_today": {"count": count}})
    assert result["outcome"] == outcome
    assert codes(result) == ([] if outcome == "allow" else ["QUOTA_DAILY_COUNT_EXCEEDED"])


def test_initiate_usage_today_defaults_to_committed_usage(rulebook):
    # No store is configured: nothing committed, so a first payout of exactly the daily quota passes.
    facts = merged(INITIATE_OK, {"actor": {"used_today": None, "quota": {"per_payout_max": "200.00"}},
                                 "payout": {"amount": "200.00"}})
    assert rulebook.decide("payout.initiate", facts, now=NOW)["outcome"] == "allow"


@pytest.mark.parametrize(("amount", "outcome", "reasons"), [
    ("500.00", "allow", []),
    ("500.01", "deny", ["AMOUNT_OVER_LIMIT"]),
])
def test_initiate_platform_amount_limit(rulebook, amount, outcome, reasons):
    result = initiate(rulebook, actor={"role": "main"}, payout={"amount": amount})
    assert result["outcome"] == outcome
    assert codes(result) == reasons


@pytest.mark.parametrize(("count", "outcome"), [(2, "allow"), (3, "deny")])
def test_initiate_order_payout_count_limit(rulebook, count, outcome):
    result = initiate(rulebook, order={"payout_count": count})
    assert result["outcome"] == outcome
    assert codes(result) == ([] if outcome == "allow" else ["ORDER_PAYOUT_COUNT_EXCEEDED"])


@pytest.mark.parametrize(("completed_at", "outcome"), [
    ("2026-08-22T10:00:00+08:00", "allow"),   # exactly 90 days before now
    ("2026-08-22T09:59:59+08:00", "deny"),    # one second more
    ("2026-08-22T01:59:59Z", "deny"),         # the same instant in UTC
])
def test_initiate_payout_window_after_completion(rulebook, completed_at, outcome):
    result = initiate(rulebook, order={"completed_at": completed_at})
    assert result["outcome"] == outcome
    assert codes(result) == ([] if outcome == "allow" else ["PAYOUT_WINDOW_EXPIRED"])


def test_initiate_no_window_while_the_order_has_no_completion_time(rulebook):
    facts = merged(INITIATE_OK, {"order": {"completed_at": None, "state": "shipped"}})
    assert rulebook.decide("payout.initiate", facts, now=NOW)["outcome"] == "allow"


@pytest.mark.parametrize(("balance", "outcome"), [("30.00", "allow"), ("29.99", "deny")])
def test_initiate_wallet_balance(rulebook, balance, outcome):
    result = initiate(rulebook, wallet={"balance": balance})
    assert result["outcome"] == outcome
    assert codes(result) == ([] if outcome == "allow" else ["INSUFFICIENT_WALLET_BALANCE"])


def test_initiate_arrears(rulebook):
    assert codes(initiate(rulebook, store={"has_arrears": True})) == ["MERCHANT_ARREARS"]


@pytest.mark.parametrize(("password_free", "amount", "sms"), [
    ({"enabled": True, "max_amount": "20.00"}, "20.00", False),   # equal to the password-free maximum
    ({"enabled": True, "max_amount": "20.00"}, "20.01", True),
    ({"enabled": False, "max_amount": "20.00"}, "5.00", True),
    (None, "5.00", True),                                          # no 小额免密 configured
])
def test_initiate_sms_verification_obligation(rulebook, password_free, amount, sms):
    result = initiate(rulebook, store={"password_free": password_free}, payout={"amount": amount})
    assert result["outcome"] == "allow"
    assert result["obligations"] == {"sms_verification_required": sms}


@pytest.mark.parametrize(("refunded", "warned"), [("169.00", False), ("169.01", True)])
def test_initiate_double_compensation_warning(rulebook, refunded, warned):
    # order 199.00: refunded + 0.00 paid before + 30.00 now
    result = initiate(rulebook, order={"refunded_amount": refunded})
    assert result["outcome"] == "allow"  # a warning never changes the outcome
    assert codes(result, "warnings") == (["DOUBLE_COMPENSATION_RISK"] if warned else [])


def test_initiate_double_compensation_counts_earlier_payouts(rulebook):
    result = initiate(rulebook, order={"refunded_amount": None, "payout_total": "170.00", "payout_count": 1})
    assert codes(result, "warnings") == ["DOUBLE_COMPENSATION_RISK"]
    assert "200.00" in result["warnings"][0]["message"]["zh"]


def test_initiate_every_failing_rule_is_reported(rulebook):
    result = initiate(rulebook, store={"payout_enabled": False, "has_arrears": True},
                      order={"state": "locked"}, wallet={"balance": "0"}, payout={"amount": "600.00"})
    assert result["outcome"] == "deny"
    assert codes(result) == ["PAYOUT_NOT_ENABLED", "ORDER_STATE_NOT_ALLOWED", "QUOTA_PER_PAYOUT_EXCEEDED",
                             "QUOTA_DAILY_AMOUNT_EXCEEDED", "AMOUNT_OVER_LIMIT", "INSUFFICIENT_WALLET_BALANCE",
                             "MERCHANT_ARREARS"]


@pytest.mark.parametrize("amount", ["0", "0.00", "-1.00", "1.001", "abc", True])
def test_initiate_rejects_invalid_payout_amounts(rulebook, amount):
    from engine import InvalidFacts
    with pytest.raises(InvalidFacts) as raised:
        initiate(rulebook, payout={"amount": amount})
    assert list(raised.value.fields) == ["payout.amount"]
