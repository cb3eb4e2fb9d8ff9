"""Generated code for what a decision computes beside its document: its partition key, what a commit
adds to each counter, the record columns a person searches by, and each defer rule's ``until``.

These ran on the reference interpreter's closures (the oracle's), on every commit and every deferred
decision. Now each is a function generated at load like the rest of the fast path
(:class:`~engine.runtime.expressions.ExpressionCode`: the interpreter's semantics, inline), and counts
on the decision's loaded calendar. Generated code lets an ``ArithmeticError`` (past the representable
calendar) propagate where the interpreter gives null at the node; each caller then asks the interpreter,
as the derivers do. tests/test_fastpath.py checks both agree on every scenario step and the bench mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.language.expressions import Expr
from engine.language.model import Counter, Decision, Rule
from engine.reference.interpret import evaluate
from engine.runtime.calendar import Calendar
from engine.runtime.codegen import Source
from engine.runtime.expressions import HELPERS, ExpressionCode
from engine.runtime.values import partition_text

Values = dict[str, Any]


@dataclass(frozen=True)
class Bookkeeping:
    """The generated functions of one decision; each takes the decision's values and its calendar."""

    partition_value: Callable[[Values, Calendar], Any] | None  # None: the decision declares no partition
    counter_changes: Callable[[Values, Calendar], list[tuple[Counter, tuple[Any, ...], Any]]]
    record_columns: Callable[[Values, Calendar], dict[str, Any]]
    untils: dict[str, Callable[[Values, Calendar], datetime | None]]  # defer rule id -> its until
    source: str


def build_bookkeeping(decision: Decision) -> Bookkeeping:
    """The bookkeeping functions of ``decision`` and their source (``rulesvc check --show-compiled``)."""
    source = Source()
    partition = _function(source, "partition_value", [decision.partition] if decision.partition else [],
                          lambda code: code.code(decision.partition)) if decision.partition is not None else None
    counters = [(source.constant(counter, "COUNTER"), counter) for counter in decision.counters]
    changes = _function(
        source, "counter_changes", [expr for counter in decision.counters for expr in (*counter.key, counter.add)],
        lambda code: "[" + ", ".join(
            f"({name}, ({''.join(code.code(part) + ', ' for part in counter.key)}), {code.code(counter.add)})"
            for name, counter in counters) + "]")
    columns = _function(source, "record_columns", list(decision.record.values()), lambda code: "{" + ", ".join(
        f"{column!r}: {code.code(expr)}" for column, expr in decision.record.items()) + "}")
    untils = {rule.id: _function(source, "until", [rule.until], lambda code, rule=rule: code.code(rule.until))
              for rule in decision.rules if rule.effect == "defer" and rule.until is not None}
    namespace = source.compile(f"<bookkeeping {decision.name}>", HELPERS)
    return Bookkeeping(
        partition_value=namespace[partition] if partition else None, counter_changes=namespace[changes],
        record_columns=namespace[columns], untils={rule: namespace[name] for rule, name in untils.items()},
        source=source.text)


def _function(source: Source, prefix: str, expressions: list[Expr], body: Callable[[ExpressionCode], str]) -> str:
    name = source.name(prefix)
    source.add(0, f"def {name}(values, calendar):")
    code = ExpressionCode(source)
    code.bind_objects(1, expressions)
    source.add(1, f"return {body(code)}")
    return name


# --- what the served path calls: the generated function, the interpreter past the calendar -------------

def served_partition_key(decision: Decision, bookkeeping: Bookkeeping, calendar: Calendar
                         ) -> Callable[[Values], str | None]:
    """``partition_key(facts)``: the decision's partition value as text, or None if it declares none."""
    generated, partition = bookkeeping.partition_value, decision.partition

    def partition_key(facts: Values) -> str | None:
        if generated is None:
            return None
        try:
            return partition_text(generated(facts, calendar))
        except ArithmeticError:
            return partition_text(evaluate(partition, facts, calendar))

    return partition_key


def counter_changes(decision: Decision, bookkeeping: Bookkeeping, values: Values, calendar: Calendar
                    ) -> list[tuple[Counter, tuple[Any, ...], Any]]:
    """Each counter with the key a commit on ``values`` counts under and what it adds (null: nothing)."""
    try:
        return bookkeeping.counter_changes(values, calendar)
    except ArithmeticError:
        return [(counter, tuple(evaluate(part, values, calendar) for part in counter.key),
                 evaluate(counter.add, values, calendar)) for counter in decision.counters]


def record_columns(decision: Decision, bookkeeping: Bookkeeping, values: Values, calendar: Calendar) -> dict[str, Any]:
    """The record columns of a commit on ``values``."""
    try:
        return bookkeeping.record_columns(values, calendar)
    except ArithmeticError:
        return {column: evaluate(expr, values, calendar) for column, expr in decision.record.items()}


def until_of(bookkeeping: Bookkeeping) -> Callable[[Rule, Values, Calendar], datetime | None]:
    """``until(rule, values, calendar)`` for :func:`~engine.runtime.program.next_eligible_search`."""
    untils = bookkeeping.untils

    def until(rule: Rule, values: Values, calendar: Calendar) -> datetime | None:
        try:
            return untils[rule.id](values, calendar)
        except ArithmeticError:
            return evaluate(rule.until, values, calendar)

    return until
