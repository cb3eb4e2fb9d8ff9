"""Inputs prepared once, outside the timed loops, for the engines compared with ours.

- zen gets the request facts with money as numbers and instants as Unix seconds, plus ``now``:
  no string parsing, no validation (ours does both inside its timed path) — this favours zen;
- the Python floor gets flat records of plain values (money in fen, instants in Unix seconds);
- raw durable_rules gets exactly the fact ours asserts (``compiled.reference.encode`` of the values ours computes).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from engine.runtime.evaluation import CompiledDecision

from .factsets import PAYOUT, RECOVERY, FactSet

MONEY_PATHS = {
    PAYOUT: ("actor.quota.per_payout_max", "actor.quota.daily_amount_max", "actor.used_today.amount",
             "store.password_free.max_amount", "wallet.balance", "order.amount", "order.refunded_amount",
             "order.payout_total", "payout.amount"),
    RECOVERY: ("campaign.coupon.threshold", "campaign.coupon.discount", "order.amount"),
}
INSTANT_PATHS = {
    PAYOUT: ("order.completed_at",),
    RECOVERY: ("campaign.start_at", "campaign.end_at", "order.created_at"),
}


def lookup(facts: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when any step is absent."""
    value: Any = facts
    for name in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _replace(facts: dict[str, Any], path: str, convert: Any) -> None:
    *parents, leaf = path.split(".")
    holder = lookup(facts, ".".join(parents)) if parents else facts
    if isinstance(holder, dict) and holder.get(leaf) is not None:
        holder[leaf] = convert(holder[leaf])


def unix_seconds(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def fen(text: str | None) -> int | None:
    return None if text is None else int(Decimal(text) * 100)


def zen_input(fact_set: FactSet) -> dict[str, Any]:
    """The facts as zen reads them: money as numbers, instants as Unix seconds, ``now`` added."""
    facts = copy.deepcopy(fact_set.facts)
    for path in MONEY_PATHS[fact_set.decision]:
        _replace(facts, path, float)
    for path in INSTANT_PATHS[fact_set.decision]:
        _replace(facts, path, unix_seconds)
    facts["now"] = int(fact_set.now.timestamp())
    return facts


def durable_fact(compiled: CompiledDecision, fact_set: FactSet) -> dict[str, Any]:
    """The fact ours' reference path asserts into durable_rules for this fact set (nested)."""
    _, evaluation = compiled.run(fact_set.facts, now=fact_set.now)
    return compiled.reference.encode(evaluation.values)


def fast_durable_fact(compiled: CompiledDecision, fact_set: FactSet) -> dict[str, Any]:
    """The fact ours' fast path asserts into durable_rules for this fact set (flat, short names)."""
    _, evaluation = compiled.run(fact_set.facts, now=fact_set.now)
    return compiled.fast_encode(evaluation.values)


# --- the Python floor's records --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PayoutRecord:
    role: str
    menu_permissions: frozenset[str]
    has_quota: bool
    quota_enabled: bool | None
    per_payout_max: int | None
    daily_amount_max: int | None
    daily_count_max: int | None
    used_amount: int | None
    used_count: int | None
    payout_enabled: bool
    has_arrears: bool
    password_free_enabled: bool | None
    password_free_max: int | None
    wallet_balance: int
    order_state: str
    order_amount: int
    refunded_amount: int | None
    payout_total: int | None
    payout_count: int | None
    completed_at: int | None
    amount: int
    now: int


@dataclass(frozen=True, slots=True)
class RecoveryRecord:
    order_state: str
    now: int
    start_at: int
    end_at: int
    closed: bool
    items: tuple[tuple[str, str | None, str | None], ...]  # (sku, category, brand) of each order line
    target_categories: frozenset[str]
    target_brands: frozenset[str]
    target_skus: frozenset[str]
    unpaid_minutes: int
    threshold: int
    order_amount: int
    created_at: int
    abuse_flag: bool
    sms_sent_today: int | None


def _optional_instant(text: str | None) -> int | None:
    return None if text is None else unix_seconds(text)


def payout_record(fact_set: FactSet) -> PayoutRecord:
    facts = fact_set.facts
    get = partial(lookup, facts)
    return PayoutRecord(
        role=get("actor.role"), menu_permissions=frozenset(get("actor.menu_permissions") or ()),
        has_quota=get("actor.quota") is not None, quota_enabled=get("actor.quota.enabled"),
        per_payout_max=fen(get("actor.quota.per_payout_max")), daily_amount_max=fen(get("actor.quota.daily_amount_max")),
        daily_count_max=get("actor.quota.daily_count_max"),
        used_amount=fen(get("actor.used_today.amount")), used_count=get("actor.used_today.count"),
        payout_enabled=get("store.payout_enabled"), has_arrears=get("store.has_arrears"),
        password_free_enabled=get("store.password_free.enabled"), password_free_max=fen(get("store.password_free.max_amount")),
        wallet_balance=fen(get("wallet.balance")), order_state=get("order.state"), order_amount=fen(get("order.amount")),
        refunded_amount=fen(get("order.refunded_amount")), payout_total=fen(get("order.payout_total")),
        payout_count=get("order.payout_count"), completed_at=_optional_instant(get("order.completed_at")),
        amount=fen(get("payout.amount")), now=int(fact_set.now.timestamp()),
    )


def recovery_record(fact_set: FactSet) -> RecoveryRecord:
    facts = fact_set.facts
    get = partial(lookup, facts)
    return RecoveryRecord(
        order_state=get("order.state"), now=int(fact_set.now.timestamp()),
        start_at=unix_seconds(get("campaign.start_at")), end_at=unix_seconds(get("campaign.end_at")),
        closed=get("campaign.closed"),
        items=tuple((item["sku"], item.get("category"), item.get("brand")) for item in get("order.items")),
        target_categories=frozenset(get("campaign.targets.categories") or ()),
        target_brands=frozenset(get("campaign.targets.brands") or ()),
        target_skus=frozenset(get("campaign.targets.skus") or ()),
        unpaid_minutes=get("campaign.unpaid_minutes"), threshold=fen(get("campaign.coupon.threshold")),
        order_amount=fen(get("order.amount")), created_at=unix_seconds(get("order.created_at")),
        abuse_flag=bool(get("customer.abuse_flag")), sms_sent_today=get("customer.sms_sent_today"),
    )


RECORD_BUILDERS = {PAYOUT: payout_record, RECOVERY: recovery_record}
