"""Computing derived values in Python, before matching: exact ``Decimal`` and ``datetime`` arithmetic.

Conditions are never evaluated here (durable_rules matches them); this computes the expressions of
``derived``, counter keys and additions, obligation values, ``until`` instants and message placeholders.
A name that is absent gives null, and so does any operator or function applied to null (except
``coalesce`` and ``exists``), as a comparison with a missing fact is false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from engine.language.expressions import Arith, Call, Compare, Expr, ListLit, Lit, Logic, Lookup, Not, Ref
from engine.language.functions import FUNCTIONS, Function
from engine.runtime.calendar import Calendar
from engine.runtime.values import round_fen

Evaluator = Callable[[Mapping[str, Any], "Calendar | None"], Any]


def evaluate(expr: Expr, values: Mapping[str, Any], calendar: Calendar | None = None) -> Any:
    """The value of ``expr`` given facts, derived values, counters and ``now`` in ``values``.

    ``calendar`` is the China working-day calendar that calendar functions count on. Each expression
    is turned into Python closures once (on first use) and the closures run from then on.
    """
    return evaluator(expr)(values, calendar)


def evaluator(expr: Expr) -> Evaluator:
    """The compiled form of ``expr``: call it with ``(values, calendar)``; made once per expression."""
    compiled = expr.__dict__.get("_evaluator")
    if compiled is None:
        compiled = expr.__dict__["_evaluator"] = _compile(expr)
    return compiled


def _compile(expr: Expr) -> Evaluator:
    if isinstance(expr, Lit):
        constant = expr.value
        return lambda values, calendar: constant
    if isinstance(expr, Ref):
        parts = expr.path.split(".")
        if len(parts) == 1:
            name = parts[0]
            return lambda values, calendar: values.get(name)
        return lambda values, calendar: _lookup_parts(values, parts)
    if isinstance(expr, ListLit):
        items = [item.value for item in expr.items]
        return lambda values, calendar: list(items)
    if isinstance(expr, Lookup):
        rows, column, key = expr.table.rows, expr.column, _compile(expr.key)
        return lambda values, calendar: rows.get(key(values, calendar), {}).get(column)
    if isinstance(expr, Arith):
        left, right = _compile(expr.left), _compile(expr.right)
        return lambda values, calendar: arith(expr, left(values, calendar), right(values, calendar))
    if isinstance(expr, Call):
        return _compile_call(expr)
    if isinstance(expr, Not):
        operand = _compile(expr.operand)

        def negate(values: Mapping[str, Any], calendar: Calendar | None) -> Any:
            value = operand(values, calendar)
            return None if value is None else not value
        return negate
    if isinstance(expr, Logic):
        operands = [_compile(operand) for operand in expr.operands]
        if expr.op == "and":
            return lambda values, calendar: all([operand(values, calendar) for operand in operands])
        return lambda values, calendar: any([operand(values, calendar) for operand in operands])
    if isinstance(expr, Compare):
        left, right, op = _compile(expr.left), _compile(expr.right), expr.op
        return lambda values, calendar: compare(op, left(values, calendar), right(values, calendar))
    raise TypeError(f"cannot evaluate {type(expr).__name__}")


def _compile_call(expr: Call) -> Evaluator:
    function = FUNCTIONS[expr.function]
    arguments = [_compile(arg) for arg in expr.args]
    paths = [getattr(arg, "path", "") for arg in expr.args]

    def call(values: Mapping[str, Any], calendar: Calendar | None) -> Any:
        return apply_function(function, paths, [argument(values, calendar) for argument in arguments], calendar)
    return call


def apply_function(function: Function, paths: list[str], args: list[Any], calendar: Calendar | None) -> Any:
    """A rule-language function applied to evaluated arguments (``paths``: the argument names, for
    functions that take facts by reference): null in, null out; past the calendar, null."""
    if function.by_reference:
        return function.call(*zip(paths, args, strict=True))
    if function.null_in_null_out and None in args:
        return None
    try:
        if function.uses_calendar:
            return function.call(calendar or Calendar(), *args)
        return function.call(*args)
    except ArithmeticError:
        return None  # past the representable calendar, or past Decimal's precision (validated facts stay far)


def _lookup_parts(values: Mapping[str, Any], parts: list[str]) -> Any:
    current: Any = values
    for part in parts:
        if not isinstance(current, dict):
            return None
        current = current.get(part)
        if current is None:
            return None
    return current


def arith(expr: Arith, left: Any, right: Any) -> Any:
    """``left op right`` as ``expr`` says (its operator and type): null in, null out; money to the fen."""
    if left is None or right is None:
        return None
    try:
        return _arith_values(expr, left, right)
    except ArithmeticError:
        return None  # past the representable calendar, or past Decimal's precision (validated facts stay far)


def _arith_values(expr: Arith, left: Any, right: Any) -> Any:
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


def compare(op: str, left: Any, right: Any) -> bool:
    """A comparison of evaluated operands: with a null operand only ``==``/``!=`` can hold."""
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
