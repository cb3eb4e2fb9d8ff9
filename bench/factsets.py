"""Seeded, realistic fact sets for payout.initiate and recovery.contact.

Each generator draws values around the limits the rules test (quotas, the 500.00 cap, wallet
balances, 90 days after completion, 09:00/20:00, the unpaid delay, one SMS a day…) so that allow,
deny and defer outcomes are mixed and most rules fire somewhere in the mix. Facts are the JSON a
client sends (money as strings, instants as ISO 8601 with an offset); ``now`` is an aware datetime.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

SHANGHAI_OFFSET = timezone(timedelta(hours=8))
PAYOUT = "payout.initiate"
RECOVERY = "recovery.contact"
DECISIONS = (PAYOUT, RECOVERY)

REQUIRED_MENUS = ["compensation_list", "compensation_apply", "compensation_records"]
ORDER_STATES = ["wait_pay", "locked", "cancelling", "cancelled", "wait_ship", "shipped", "completed", "after_sale"]
PAYOUT_REASONS = ["price_difference", "shipping_fee", "promotion_compensation", "other"]
CATEGORIES = ["手机", "电脑", "家电", "服饰", "食品"]
BRANDS = ["华为", "小米", "联想", "海尔", "安踏"]


@dataclass(frozen=True)
class FactSet:
    """One evaluation: the request facts and the instant they are evaluated at."""

    decision: str
    facts: dict[str, Any]
    now: datetime


def money(amount: float) -> str:
    return f"{max(amount, 0):.2f}"


def near(rng: random.Random, value: float, spread: float = 0.02) -> float:
    """A value just below, at, or just above ``value`` (a fen or a few percent away)."""
    return rng.choice([value - 0.01, value, value + 0.01, value * (1 - spread), value * (1 + spread)])


def instant(moment: datetime, rng: random.Random) -> str:
    """``moment`` in ISO 8601, mostly in Shanghai time, sometimes in UTC (same instant)."""
    if rng.random() < 0.2:
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return moment.astimezone(SHANGHAI_OFFSET).isoformat()


def random_now(rng: random.Random) -> datetime:
    """A Shanghai instant in November 2026, half of them within minutes of 09:00 or 20:00."""
    day = datetime(2026, 11, 1, tzinfo=SHANGHAI_OFFSET) + timedelta(days=rng.randrange(30))
    if rng.random() < 0.5:
        edge = day.replace(hour=rng.choice([9, 20]))
        return edge + timedelta(seconds=rng.randint(-600, 600))
    return day + timedelta(seconds=rng.randrange(86_400))


# --- payout.initiate -------------------------------------------------------------------------------

def payout_actor(rng: random.Random, amount: float) -> dict[str, Any]:
    if rng.random() < 0.4:
        return {"role": "main", "id": "owner"}
    actor: dict[str, Any] = {"role": "sub", "id": f"kefu-{rng.randrange(20):02d}"}
    menus = rng.random()
    if menus < 0.85:
        actor["menu_permissions"] = list(REQUIRED_MENUS)
    elif menus < 0.95:
        actor["menu_permissions"] = rng.sample(REQUIRED_MENUS, 2)
    if rng.random() < 0.93:
        daily_amount = rng.choice([100.0, 200.0, 500.0])
        daily_count = rng.randint(1, 10)
        per_payout = rng.choice([near(rng, amount, 0.1), amount * 2, 100.0, 200.0])
        actor["quota"] = {"enabled": rng.random() < 0.95, "per_payout_max": money(per_payout),
                          "daily_amount_max": money(daily_amount), "daily_count_max": daily_count}
        if rng.random() < 0.8:
            used_amount = near(rng, daily_amount - amount, 0.05) if rng.random() < 0.3 else rng.uniform(0, daily_amount / 3)
            used = {"amount": money(used_amount), "count": rng.choice([0, 0, 1, daily_count - 1, daily_count])}
            actor["used_today"] = used if rng.random() < 0.9 else {"count": used["count"]}
    return actor


def payout_order(rng: random.Random, now: datetime, amount: float) -> dict[str, Any]:
    order_amount = rng.choice([amount * 0.8, amount * 2, amount * 5, 199.0, 999.0])
    order: dict[str, Any] = {"id": f"order-{rng.randrange(10**6)}", "amount": money(order_amount),
                             "state": rng.choice(ORDER_STATES[4:] * 6 + ORDER_STATES[:4])}
    if rng.random() < 0.7:
        order["refunded_amount"] = money(rng.choice([0.0, 0.0, order_amount * 0.5, order_amount - amount]))
    if rng.random() < 0.8:
        order["payout_count"] = rng.choice([0, 0, 0, 1, 2, 3])
        order["payout_total"] = money(order["payout_count"] * rng.uniform(5, 40))
    completion = rng.random()
    if completion < 0.5:  # around the 90-day payout window's end
        order["completed_at"] = instant(now - timedelta(days=90, seconds=rng.randint(-5 * 86_400, 86_400)), rng)
    elif completion < 0.85:
        order["completed_at"] = instant(now - timedelta(seconds=rng.randrange(30 * 86_400)), rng)
    return order


def payout_facts(rng: random.Random, now: datetime) -> dict[str, Any]:
    amount = rng.choice([rng.uniform(1, 50), rng.uniform(1, 200), near(rng, 500.0, 0.01), rng.uniform(5, 30)])
    store: dict[str, Any] = {"id": f"store-{rng.randrange(5)}", "payout_enabled": rng.random() < 0.95,
                             "has_arrears": rng.random() < 0.05}
    if rng.random() < 0.6:
        store["password_free"] = {"enabled": rng.random() < 0.8, "max_amount": money(near(rng, amount, 0.2))}
    return {
        "actor": payout_actor(rng, amount),
        "store": store,
        "wallet": {"balance": money(rng.choice([near(rng, amount), 1000.0, 5000.0, 2000.0]))},
        "order": payout_order(rng, now, amount),
        "customer": {"account": f"jd_buyer_{rng.randrange(1000)}"},
        "payout": {"amount": money(max(amount, 0.01)), "reason": rng.choice(PAYOUT_REASONS)},
    }


# --- recovery.contact ------------------------------------------------------------------------------

def recovery_campaign(rng: random.Random, now: datetime) -> dict[str, Any]:
    start = now - timedelta(days=rng.randint(1, 20))
    end = now + timedelta(days=rng.randint(1, 20))
    activity = rng.random()
    if activity < 0.05:
        start = now + timedelta(seconds=rng.randint(0, 3600))  # not started (or starting right now)
    elif activity < 0.1:
        end = now - timedelta(seconds=rng.randint(0, 3600))  # ended (or ending right now)
    threshold = rng.choice([50.0, 100.0, 200.0])
    return {
        "id": f"camp-{rng.randrange(100)}",
        "start_at": instant(start, rng),
        "end_at": instant(end, rng),
        "closed": rng.random() < 0.04,
        "targets": {"categories": rng.sample(CATEGORIES, rng.randint(0, 2)),
                    "brands": rng.sample(BRANDS, rng.randint(0, 2)),
                    "skus": [f"sku-{rng.randrange(20)}" for _ in range(rng.randint(0, 3))]},
        "unpaid_minutes": rng.choice([10, 30, 60, 120, 1440]),
        "coupon": {"threshold": money(threshold), "discount": money(rng.choice([5.0, 10.0, 20.0]))},
    }


def recovery_item(rng: random.Random, targets: dict[str, list[str]]) -> dict[str, Any]:
    """An order line, in the campaign's targets more often than chance would have it."""
    def pick(targeted: list[str], universe: list[str]) -> str:
        return rng.choice(targeted) if targeted and rng.random() < 0.5 else rng.choice(universe)

    item: dict[str, Any] = {"sku": pick(targets["skus"], [f"sku-{n}" for n in range(20)])}
    if rng.random() < 0.8:
        item["category"] = pick(targets["categories"], CATEGORIES)
    if rng.random() < 0.6:
        item["brand"] = pick(targets["brands"], BRANDS)
    return item


def recovery_facts(rng: random.Random, now: datetime) -> dict[str, Any]:
    campaign = recovery_campaign(rng, now)
    threshold = float(campaign["coupon"]["threshold"])
    delay = timedelta(minutes=campaign["unpaid_minutes"])
    created = now - delay + timedelta(seconds=rng.choice([-7200, -60, -1, 0, 1, 60, 600]))
    customer: dict[str, Any] = {"id": f"buyer-{rng.randrange(500)}"}
    if rng.random() < 0.7:
        customer["abuse_flag"] = rng.random() < 0.05
    if rng.random() < 0.75:
        customer["sms_sent_today"] = rng.choice([0, 0, 0, 1, 2])
    return {
        "campaign": campaign,
        "order": {"id": f"order-{rng.randrange(10**6)}",
                  "state": "wait_pay" if rng.random() < 0.9 else rng.choice(ORDER_STATES[1:]),
                  "created_at": instant(created, rng),
                  "amount": money(rng.choice([near(rng, threshold), threshold * 1.5, threshold * 3, threshold * 2])),
                  "items": [recovery_item(rng, campaign["targets"]) for _ in range(rng.randint(1, 4))]},
        "customer": customer,
    }


GENERATORS = {PAYOUT: payout_facts, RECOVERY: recovery_facts}


def fact_sets(decision: str, count: int, seed: int) -> list[FactSet]:
    """``count`` fact sets of ``decision``, the same for the same seed."""
    rng = random.Random(f"{seed}/{decision}")
    generate = GENERATORS[decision]
    mix = []
    for _ in range(count):
        now = random_now(rng)
        mix.append(FactSet(decision, generate(rng, now), now))
    return mix
