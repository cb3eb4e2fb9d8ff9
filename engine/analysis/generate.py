"""``rulesvc test --generate DECISION``: a scenario file the solver writes (SPEC §13).

For every rule a request that fires it and one that does not; for every comparison of numbers, money,
instants, dates, times of day and durations in a condition, requests at its boundary and one unit on
either side (a fen, a microsecond, a day), as durable_rules compares them. Each case's ``expect`` is
the service's own answer to it; the file says ``generated: true``.
"""

from __future__ import annotations

import time as clock
from typing import Any

import z3

from engine.analysis.concretize import Witness
from engine.analysis.decision import EncodedDecision, encode
from engine.analysis.terms import Unsupported
from engine.analysis.verify import DEFAULT_TIMEOUT, MAX_ROUNDS, Query, codes, decide
from engine.language.expressions import Arith, Compare, Expr
from engine.reference.interpret import evaluate
from engine.runtime.compiler import leaves
from engine.runtime.evaluation import CompiledDecision
from engine.runtime.values import to_matcher

_ORDERED = ("<", "<=", ">", ">=", "==", "!=")
_NUMERIC = ("int", "money", "instant", "date", "time", "duration")
_UNIT = {"int": "1", "money": "0.01", "instant": "1 µs", "date": "1 day", "time": "1 µs", "duration": "1 µs"}


def generate_cases(compiled: CompiledDecision, *, timeout: float = 4 * DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The scenario file (as data) for one decision."""
    started = clock.monotonic()
    decision = compiled.decision
    encoded = encode(decision, compiled.calendar)
    query = Query([encoded], started + timeout, rounds=4 * MAX_ROUNDS)  # time to find every case
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(name: str, goal: z3.BoolRef, holds: Any) -> None:
        def confirm(witness: Witness) -> tuple[bool, Any]:
            outcome = decide(compiled, witness)
            return outcome.result is not None and holds(outcome), None
        answer = query.search(goal, confirm)
        if answer.status != "found":
            return
        key = repr((answer.witness.facts, answer.witness.now, answer.witness.counters))
        if key in seen:
            return
        seen.add(key)
        cases.append(_case(name, answer.witness, compiled))

    for rule in decision.rules:
        add(f"{rule.id} fires", encoded.fired[rule.id], lambda out, r=rule.id: r in out.evaluation.fired)
        add(f"{rule.id} does not fire", z3.Not(encoded.fired[rule.id]),
            lambda out, r=rule.id: r not in out.evaluation.fired)
        for leaf in leaves(rule.when):
            for name, goal, offset in _boundaries(encoded, rule.id, leaf):
                add(name, goal, lambda out, leaf=leaf, offset=offset: _difference(leaf, out, compiled) == offset)
    return {"decision": decision.name, "generated": True,
            "description": f"Written by rulesvc test --generate {decision.name}: every rule firing and not, "
                           "every comparison at its boundary and one unit on either side. Regenerate after a "
                           "rule change; expectations are the engine's answers.",
            "cases": cases}


def _boundaries(encoded: EncodedDecision, rule_id: str, leaf: Expr) -> list[tuple[str, z3.BoolRef, int]]:
    if not isinstance(leaf, Compare) or leaf.op not in _ORDERED:
        return []
    kinds = {leaf.left.type.kind, leaf.right.type.kind} - {"null"}
    if not kinds <= set(_NUMERIC) or not kinds:
        return []
    try:
        (left_present, left), (right_present, right) = encoded.terms.operand(leaf.left), encoded.terms.operand(leaf.right)
    except Unsupported:
        return []
    kind = next(iter(kinds - {"int"}), "int")
    unit = _UNIT[kind]
    present = z3.And(left_present, right_present)
    text = " ".join(leaf.text.split())
    return [(f"{rule_id}: {text} at the boundary", z3.And(present, left == right), 0),
            (f"{rule_id}: {text} with the left side {unit} below", z3.And(present, left == right - 1), -1),
            (f"{rule_id}: {text} with the left side {unit} above", z3.And(present, left == right + 1), 1)]


def _difference(leaf: Compare, outcome: Any, compiled: CompiledDecision) -> int | None:
    """left − right of a comparison as durable_rules saw it on a decided request (None: a side absent)."""
    values = outcome.evaluation.values
    left, right = _matched(leaf.left, values, compiled), _matched(leaf.right, values, compiled)
    if left is None or right is None:
        return None
    return left - right


def _matched(expr: Expr, values: dict[str, Any], compiled: CompiledDecision) -> int | None:
    if isinstance(expr, Arith):
        left, right = _matched(expr.left, values, compiled), _matched(expr.right, values, compiled)
        if left is None or right is None:
            return None
        return {"+": left + right, "-": left - right, "*": left * right}.get(expr.op)
    value = to_matcher(evaluate(expr, values, compiled.calendar))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _case(name: str, witness: Witness, compiled: CompiledDecision) -> dict[str, Any]:
    result = decide(compiled, witness).result
    case: dict[str, Any] = {"name": name, "now": witness.now, "facts": witness.facts}
    if witness.counters:
        case["counters"] = witness.counters
    expect: dict[str, Any] = {"outcome": result["outcome"], "reasons": codes(result),
                              "warnings": codes(result, "warnings")}
    if result["next_eligible_at"] is not None:
        expect["next_eligible_at"] = result["next_eligible_at"]
    if result["obligations"]:
        expect["obligations"] = result["obligations"]
    if result["values"]:
        expect["values"] = result["values"]
    case["expect"] = expect
    return case
