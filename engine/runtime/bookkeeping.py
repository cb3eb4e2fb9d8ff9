"""Generated code for what a decision computes beside its document: its partition key, what a commit
adds to each counter, the record columns a person searches by, and each defer rule's ``until``.

These ran on the reference interpreter's closures (the oracle's), on every commit and every deferred
decision. Now each is a function generated at load like the rest of the fast path
(:class:`~engine.runtime.expressions.ExpressionCode`: the interpreter's semantics, inline), and counts
on the decision's loaded calendar. Generated code lets an ``ArithmeticError`` (past the representable
calendar) propagate where the interpreter gives null at the node; each function then asks the interpreter,
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
    """The functions of one decision; each takes the decision's values and its calendar, runs the
    generated code and, past the calendar, the interpreter."""

    partition_value: Callable[[Values, Calendar], Any] | None  # None: the decision declares no partition
    counter_changes: Callable[[Values, Calendar], list[tuple[Counter, tuple[Any, ...], Any]]]
    record_columns: Callable[[Values, Calendar], dict[str, Any]]
    untils: dict[str, Callable[[Values, Calendar], datetime | None]]  # defer rule id -> its until
    source: str


def build_bookkeeping(decision: Decision) -> Bookkeeping:
    """The bookkeeping functions of ``decision`` and their source (``rulesvc check --show-compiled``)."""
    source = Source()
    partition = _function(source, "partition_value", [decision.partition],
                          lambda code: code.code(decision.partition)) if decision.partition is not None else None
    counters = [(source.constant(counter, "COUNTER"), counter) for counter in decision.counters]
    changes = _function(
        source, "counter_changes", [expr for counter in decision.counters for expr in (*counter.key, counter.add)],
        lambda code: "[" + ", ".join(
            f"({name}, ({''.join(code.code(part) + ', ' for part in counter.key)}), {code.code(counter.add)})"
            for name, counter in counters) + "]")
    columns = _function(source, "record_columns", list(decision.record.values()), lambda code: "{" + ", ".join(
        f"{column!r}: {code.code(expr)}" for column, expr in decision.record.items()) + "}")
    untils = [(rule, _function(source, "until", [rule.until], lambda code, rule=rule: code.code(rule.until)))
              for rule in decision.rules if rule.effect == "defer" and rule.until is not None]
    namespace = source.compile(f"<bookkeeping {decision.name}>", HELPERS)

    def interpreted_changes(values: Values, calendar: Calendar) -> list[tuple[Counter, tuple[Any, ...], Any]]:
        return [(counter, tuple(evaluate(part, values, calendar) for part in counter.key),
                 evaluate(counter.add, values, calendar)) for counter in decision.counters]

    def interpreted_columns(values: Values, calendar: Calendar) -> dict[str, Any]:
        return {column: evaluate(expr, values, calendar) for column, expr in decision.record.items()}

    return Bookkeeping(
        partition_value=_or_interpreted(namespace[partition], decision.partition) if partition else None,
        counter_changes=_past_the_calendar(namespace[changes], interpreted_changes),
        record_columns=_past_the_calendar(namespace[columns], interpreted_columns),
        untils={rule.id: _or_interpreted(namespace[name], rule.until) for rule, name in untils},
        source=source.text)


def _function(source: Source, prefix: str, expressions: list[Expr], body: Callable[[ExpressionCode], str]) -> str:
    name = source.name(prefix)
    source.add(0, f"def {name}(values, calendar):")
    code = ExpressionCode(source)
    code.bind_objects(1, expressions)
    source.add(1, f"return {body(code)}")
    return name


def _past_the_calendar(generated: Callable[[Values, Calendar], Any], interpreted: Callable[[Values, Calendar], Any]
                       ) -> Callable[[Values, Calendar], Any]:
    """``generated``, and ``interpreted`` where it raises ``ArithmeticError`` (the interpreter's nulls decide)."""
    def call(values: Values, calendar: Calendar) -> Any:
        try:
            return generated(values, calendar)
        except ArithmeticError:
            return interpreted(values, calendar)

    return call


def _or_interpreted(generated: Callable[[Values, Calendar], Any], expr: Expr) -> Callable[[Values, Calendar], Any]:
    return _past_the_calendar(generated, lambda values, calendar: evaluate(expr, values, calendar))


def served_partition_key(bookkeeping: Bookkeeping, calendar: Calendar) -> Callable[[Values], str | None]:
    """``partition_key(facts)``: the decision's partition value as text, or None if it declares none."""
    partition_value = bookkeeping.partition_value
    if partition_value is None:
        return lambda facts: None
    return lambda facts: partition_text(partition_value(facts, calendar))


def until_of(bookkeeping: Bookkeeping) -> Callable[[Rule, Values, Calendar], datetime | None]:
    """``until(rule, values, calendar)`` for :func:`~engine.runtime.program.next_eligible_search`."""
    untils = bookkeeping.untils
    return lambda rule, values, calendar: untils[rule.id](values, calendar)
