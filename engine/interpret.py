"""Computing derived values in Python, before matching: exact ``Decimal`` and ``datetime`` arithmetic.

Conditions are never evaluated here (durable_rules matches them); this computes the expressions of
``derived``, counter keys and additions, obligation values, ``until`` instants and message placeholders.
A name that is absent gives null, and so does any operator or function applied to null (except
``coalesce`` and ``exists``), as a comparison with a missing fact is false.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from .calendar import Calendar
from .expressions import Arith, Call, Compare, Expr, ListLit, Lit, Logic, Lookup, Not, Ref
from .functions import FUNCTIONS
from .values import round_fen


def lookup(values: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when any part is absent."""
    current: Any = values
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
        if current is None:
            return None
    return current


def evaluate(expr: Expr, values: Mapping[str, Any], calendar: Calendar | None = None) -> Any:
    """The value of ``expr`` given facts, derived values, counters and ``now`` in ``values``.

    ``calendar`` is the China working-day calendar that calendar functions count on.
    """
    if isinstance(expr, Lit):
        return expr.value
    if isinstance(expr, Ref):
        return lookup(values, expr.path)
    if isinstance(expr, ListLit):
        return [item.value for item in expr.items]
    if isinstance(expr, Lookup):
        return expr.table.rows.get(evaluate(expr.key, values, calendar), {}).get(expr.column)
    if isinstance(expr, Arith):
        try:
            return _arith(expr, evaluate(expr.left, values, calendar), evaluate(expr.right, values, calendar))
        except OverflowError:
            return None  # past the representable calendar (validated facts stay far from it)
    if isinstance(expr, Call):
        function = FUNCTIONS[expr.function]
        args = [evaluate(arg, values, calendar) for arg in expr.args]
        if function.by_reference:
            return function.call(*((arg.path, value) for arg, value in zip(expr.args, args, strict=True)))
        if function.null_in_null_out and any(arg is None for arg in args):
            return None
        try:
            if function.uses_calendar:
                return function.call(calendar or Calendar(), *args)
            return function.call(*args)
        except OverflowError:
            return None
    if isinstance(expr, Not):
        operand = evaluate(expr.operand, values, calendar)
        return None if operand is None else not operand
    if isinstance(expr, Logic):
        results = [evaluate(operand, values, calendar) for operand in expr.operands]
        return all(results) if expr.op == "and" else any(results)
    if isinstance(expr, Compare):
        return _compare(expr.op, evaluate(expr.left, values, calendar), evaluate(expr.right, values, calendar))
    raise TypeError(f"cannot evaluate {type(expr).__name__}")


def _arith(expr: Arith, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if expr.op == "+":
        result = left + right
    elif expr.op == "-":
        result = left - right
    elif expr.op == "*":
        result = left * right
    else:
        if right == 0:
            return None
        result = Decimal(left) / Decimal(right) if not isinstance(left, timedelta) else left / right
    if expr.type.kind == "money":
        return round_fen(Decimal(result))
    return result


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "in":
        return right is not None and left in right
    if op == "not in":
        return right is None or left not in right
    if left is None or right is None:
        if op in ("==", "!="):
            return (left is right) == (op == "==")
        return False
    return {"==": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[op]
