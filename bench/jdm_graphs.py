"""payout.initiate and recovery.contact as GoRules JDM decision graphs, for zen-engine.

Run ``python bench/jdm_graphs.py`` after changing a rule here; it rewrites ``bench/jdm/*.json``
(the harness refuses to run when the committed graphs differ from what this script generates).

Each graph is input → three expression nodes → output:
1. ``rules``: one boolean per rule (``fired.<rule>``), the rule's ``when`` in zen's expression language;
2. ``codes``: per effect, the list of codes of the rules that fired — ``filter([...], # != null)``;
3. ``outcome``: the outcome (deny before defer before allow), its reasons, warnings, and obligations
   (none on a deny, as ours).
Sibling expressions of one node cannot see each other, hence one node per step.

Zen's input is the facts converted once (bench/conversions.py): money as numbers, instants as Unix
seconds, plus ``now`` in Unix seconds. Everything else — defaults, counters read from the facts,
the Shanghai time of day, the unpaid delay's end — zen computes here itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JDM_DIR = Path(__file__).resolve().parent / "jdm"
CONTENT_TYPE = "application/vnd.gorules.decision"
EFFECT_ORDER = ("deny", "defer", "warn", "oblige")


@dataclass(frozen=True)
class JdmRule:
    """One rule: its id in the rule file, effect, reason code (or the obligation it sets) and zen condition."""

    id: str
    effect: str
    label: str
    when: str

    @property
    def key(self) -> str:
        return "fired." + self.id.replace("-", "_")


SUB = "actor.role == 'sub'"
QUOTA = "actor.quota != null"

PAYOUT_RULES = (
    JdmRule("payout-enabled", "deny", "PAYOUT_NOT_ENABLED", "store.payout_enabled != true"),
    JdmRule("order-state", "deny", "ORDER_STATE_NOT_ALLOWED",
            "order.state in ['wait_pay', 'locked', 'cancelling', 'cancelled']"),
    JdmRule("sub-menu-permissions", "deny", "MENU_PERMISSION_MISSING",
            f"{SUB} and some(['compensation_list', 'compensation_apply', 'compensation_records'], "
            "not (# in (actor.menu_permissions ?? [])))"),
    JdmRule("sub-quota-configured", "deny", "QUOTA_NOT_CONFIGURED", f"{SUB} and actor.quota == null"),
    JdmRule("sub-quota-enabled", "deny", "QUOTA_DISABLED", f"{SUB} and {QUOTA} and actor.quota.enabled == false"),
    JdmRule("sub-quota-per-payout", "deny", "QUOTA_PER_PAYOUT_EXCEEDED",
            f"{SUB} and {QUOTA} and payout.amount > actor.quota.per_payout_max"),
    JdmRule("sub-quota-daily-amount", "deny", "QUOTA_DAILY_AMOUNT_EXCEEDED",
            f"{SUB} and {QUOTA} and (actor.used_today.amount ?? 0) + payout.amount > actor.quota.daily_amount_max"),
    JdmRule("sub-quota-daily-count", "deny", "QUOTA_DAILY_COUNT_EXCEEDED",
            f"{SUB} and {QUOTA} and (actor.used_today.count ?? 0) >= actor.quota.daily_count_max"),
    JdmRule("amount-limit", "deny", "AMOUNT_OVER_LIMIT", "payout.amount > 500"),
    JdmRule("order-payout-count", "deny", "ORDER_PAYOUT_COUNT_EXCEEDED", "(order.payout_count ?? 0) >= 3"),
    JdmRule("payout-window", "deny", "PAYOUT_WINDOW_EXPIRED",
            "order.completed_at != null and now > order.completed_at + 90 * 86400"),
    JdmRule("wallet-balance", "deny", "INSUFFICIENT_WALLET_BALANCE", "wallet.balance < payout.amount"),
    JdmRule("arrears", "deny", "MERCHANT_ARREARS", "store.has_arrears == true"),
    JdmRule("sms-verification", "oblige", "sms_verification_required",
            "not (store.password_free.enabled == true and store.password_free.max_amount != null "
            "and payout.amount <= store.password_free.max_amount)"),
    JdmRule("double-compensation", "warn", "DOUBLE_COMPENSATION_RISK",
            "(order.payout_total ?? 0) + (order.refunded_amount ?? 0) + payout.amount > order.amount"),
)


def _targeted(field: str, targets: str) -> str:
    return f"some(order.items, #.{field} != null and #.{field} in (campaign.targets.{targets} ?? []))"


RECOVERY_RULES = (
    JdmRule("order-awaiting-payment", "deny", "ORDER_NOT_AWAITING_PAYMENT", "order.state != 'wait_pay'"),
    JdmRule("campaign-active", "deny", "CAMPAIGN_NOT_ACTIVE",
            "now < campaign.start_at or now >= campaign.end_at or campaign.closed == true"),
    JdmRule("targeted", "deny", "ORDER_NOT_TARGETED",
            f"not ({_targeted('category', 'categories')} or {_targeted('brand', 'brands')} or {_targeted('sku', 'skus')})"),
    JdmRule("coupon-threshold", "deny", "BELOW_COUPON_THRESHOLD", "order.amount < campaign.coupon.threshold"),
    JdmRule("abuse", "deny", "ABUSE_SUSPECTED", "customer.abuse_flag == true"),
    JdmRule("unpaid-delay", "defer", "WAITING_UNPAID_DELAY", "now < order.created_at + campaign.unpaid_minutes * 60"),
    # The window is [09:00, 20:00) Shanghai time; both ends are whole hours, so the local hour decides.
    JdmRule("sms-window", "defer", "OUTSIDE_SMS_WINDOW", "not (d(now * 1000, 'Asia/Shanghai').hour() in [9..20))"),
    JdmRule("daily-sms-limit", "defer", "DAILY_SMS_LIMIT_REACHED", "(customer.sms_sent_today ?? 0) >= 1"),
)

RULES: dict[str, tuple[JdmRule, ...]] = {"payout.initiate": PAYOUT_RULES, "recovery.contact": RECOVERY_RULES}


def _codes_list(rules: list[JdmRule]) -> str:
    items = ", ".join(f"{rule.key} ? '{rule.label}' : null" for rule in rules)
    return f"filter([{items}], # != null)"


def _expression_node(node_id: str, expressions: dict[str, str], pass_through: bool) -> dict[str, Any]:
    return {
        "id": node_id, "name": node_id, "type": "expressionNode",
        "content": {"expressions": [{"id": f"{node_id}-{index}", "key": key, "value": value}
                                    for index, (key, value) in enumerate(expressions.items())],
                    "passThrough": pass_through, "inputField": None, "outputPath": None, "executionMode": "single"},
    }


def graph(rules: tuple[JdmRule, ...]) -> dict[str, Any]:
    """The JDM document of one decision."""
    by_effect = {effect: [rule for rule in rules if rule.effect == effect] for effect in EFFECT_ORDER}
    fired = {rule.key: rule.when for rule in rules}
    codes = {f"codes.{effect}": _codes_list(members) if members else "[]" for effect, members in by_effect.items()}
    outcome = {
        "outcome": "len(codes.deny) > 0 ? 'deny' : (len(codes.defer) > 0 ? 'defer' : 'allow')",
        "reasons": "len(codes.deny) > 0 ? codes.deny : codes.defer",
        "warnings": "codes.warn",
        "obligations": "len(codes.deny) > 0 ? [] : codes.oblige",  # nothing is owed on a refusal
    }
    nodes = [
        {"id": "request", "name": "request", "type": "inputNode", "content": {}},
        _expression_node("rules", fired, pass_through=True),
        _expression_node("codes", codes, pass_through=True),
        _expression_node("outcome", outcome, pass_through=False),
        {"id": "response", "name": "response", "type": "outputNode", "content": {}},
    ]
    chain = [node["id"] for node in nodes]
    edges = [{"id": f"{source}-{target}", "sourceId": source, "targetId": target, "type": "edge"}
             for source, target in zip(chain, chain[1:], strict=False)]
    return {"contentType": CONTENT_TYPE, "nodes": nodes, "edges": edges}


def graph_path(decision: str) -> Path:
    return JDM_DIR / f"{decision}.json"


def graph_text(decision: str) -> str:
    return json.dumps(graph(RULES[decision]), ensure_ascii=False, indent=2) + "\n"


def write_graphs() -> list[Path]:
    JDM_DIR.mkdir(exist_ok=True)
    written = []
    for decision in RULES:
        path = graph_path(decision)
        path.write_text(graph_text(decision), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_graphs():
        print(written_path)
