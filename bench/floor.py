"""The same rules hand-written as Python ``if`` statements on prepared records: the physical limit of
Python for these decisions (no validation, no parsing, no rule engine, no result document).

Each function returns ``(outcome, reasons, warnings, obligations)`` as lists of codes/names. Limits
are the rule files' constants, written in by hand (money in fen, instants in Unix seconds).
"""

from __future__ import annotations

from .conversions import PayoutRecord, RecoveryRecord
from .factsets import PAYOUT, RECOVERY

Verdict = tuple[str, list[str], list[str], list[str]]

BLOCKED_ORDER_STATES = frozenset({"wait_pay", "locked", "cancelling", "cancelled"})
REQUIRED_MENUS = frozenset({"compensation_list", "compensation_apply", "compensation_records"})
MAX_PAYOUT_FEN = 500_00
MAX_PAYOUTS_PER_ORDER = 3
PAYOUT_WINDOW_SECONDS = 90 * 86_400
SHANGHAI_OFFSET_SECONDS = 8 * 3600
SMS_WINDOW_SECONDS = (9 * 3600, 20 * 3600)
MAX_SMS_PER_DAY = 1


def _outcome(deny: list[str], defer: list[str], warnings: list[str], obligations: list[str]) -> Verdict:
    if deny:
        return "deny", deny, warnings, []  # nothing is owed on a refusal
    if defer:
        return "defer", defer, warnings, obligations
    return "allow", [], warnings, obligations


def _sub_account_denials(r: PayoutRecord) -> list[str]:
    deny = []
    if not REQUIRED_MENUS <= r.menu_permissions:
        deny.append("MENU_PERMISSION_MISSING")
    if not r.has_quota:
        deny.append("QUOTA_NOT_CONFIGURED")
        return deny
    if r.quota_enabled is False:
        deny.append("QUOTA_DISABLED")
    if r.amount > r.per_payout_max:
        deny.append("QUOTA_PER_PAYOUT_EXCEEDED")
    if (r.used_amount or 0) + r.amount > r.daily_amount_max:
        deny.append("QUOTA_DAILY_AMOUNT_EXCEEDED")
    if (r.used_count or 0) >= r.daily_count_max:
        deny.append("QUOTA_DAILY_COUNT_EXCEEDED")
    return deny


def payout_initiate(r: PayoutRecord) -> Verdict:
    deny = _sub_account_denials(r) if r.role == "sub" else []
    if not r.payout_enabled:
        deny.append("PAYOUT_NOT_ENABLED")
    if r.order_state in BLOCKED_ORDER_STATES:
        deny.append("ORDER_STATE_NOT_ALLOWED")
    if r.amount > MAX_PAYOUT_FEN:
        deny.append("AMOUNT_OVER_LIMIT")
    if (r.payout_count or 0) >= MAX_PAYOUTS_PER_ORDER:
        deny.append("ORDER_PAYOUT_COUNT_EXCEEDED")
    if r.completed_at is not None and r.now > r.completed_at + PAYOUT_WINDOW_SECONDS:
        deny.append("PAYOUT_WINDOW_EXPIRED")
    if r.wallet_balance < r.amount:
        deny.append("INSUFFICIENT_WALLET_BALANCE")
    if r.has_arrears:
        deny.append("MERCHANT_ARREARS")
    warnings = []
    if (r.payout_total or 0) + (r.refunded_amount or 0) + r.amount > r.order_amount:
        warnings.append("DOUBLE_COMPENSATION_RISK")
    password_free = r.password_free_enabled and r.password_free_max is not None and r.amount <= r.password_free_max
    return _outcome(deny, [], warnings, [] if password_free else ["sms_verification_required"])


def _targeted(r: RecoveryRecord) -> bool:
    return any(sku in r.target_skus or category in r.target_categories or brand in r.target_brands
               for sku, category, brand in r.items)


def recovery_contact(r: RecoveryRecord) -> Verdict:
    deny = []
    if r.order_state != "wait_pay":
        deny.append("ORDER_NOT_AWAITING_PAYMENT")
    if r.now < r.start_at or r.now >= r.end_at or r.closed:
        deny.append("CAMPAIGN_NOT_ACTIVE")
    if not _targeted(r):
        deny.append("ORDER_NOT_TARGETED")
    if r.order_amount < r.threshold:
        deny.append("BELOW_COUPON_THRESHOLD")
    if r.abuse_flag:
        deny.append("ABUSE_SUSPECTED")
    defer = []
    if r.now < r.created_at + r.unpaid_minutes * 60:
        defer.append("WAITING_UNPAID_DELAY")
    local_seconds = (r.now + SHANGHAI_OFFSET_SECONDS) % 86_400
    if not SMS_WINDOW_SECONDS[0] <= local_seconds < SMS_WINDOW_SECONDS[1]:
        defer.append("OUTSIDE_SMS_WINDOW")
    if (r.sms_sent_today or 0) >= MAX_SMS_PER_DAY:
        defer.append("DAILY_SMS_LIMIT_REACHED")
    return _outcome(deny, defer, [], [])


FLOORS = {PAYOUT: payout_initiate, RECOVERY: recovery_contact}
