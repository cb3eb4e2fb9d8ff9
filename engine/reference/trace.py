"""What an explained decision shows beside each rule: its atomic conditions as written (a negation
stays a negation) and the constants marked ASSUMPTION that it depends on.

The evaluator asks durable_rules for the value of each condition these functions return, so the
trace stays a report of what the matcher saw.
"""

from __future__ import annotations

import ast
from typing import Any

from engine.language.expressions import Expr, Lit, Logic, Not, Ref
from engine.language.model import Constant, Derived
from engine.runtime.values import BOOL, to_output

ASSUMPTION_MARK = "ASSUMPTION"


def trace_conditions(expr: Expr, negated: bool = False) -> list[Expr]:
    """The atomic conditions of ``expr`` in reading order; one under an odd number of ``not`` is
    returned negated (``not (x > 0)``), so its value is the one the rule's condition uses."""
    if isinstance(expr, Logic):
        return [leaf for operand in expr.operands for leaf in trace_conditions(operand, negated)]
    if isinstance(expr, Not):
        return trace_conditions(expr.operand, not negated)
    if isinstance(expr, Lit):
        return []
    if not negated:
        return [expr]
    text = f"not {expr.text}" if isinstance(expr, Ref) else f"not ({expr.text})"
    return [Not(expr.offset, BOOL, text, operand=expr)]


def is_assumption(constant: Constant) -> bool:
    """A value the seeds name without a number, kept as a constant whose note starts with ASSUMPTION."""
    return constant.note.lstrip().upper().startswith(ASSUMPTION_MARK)


def assumptions_read(text: str, constants: dict[str, Constant], derived: dict[str, Derived]) -> tuple[str, ...]:
    """The ASSUMPTION constants an expression reads, directly or through the derived values it uses."""
    found: list[str] = []
    pending, seen = [text], set()
    while pending:
        for name in _names(pending.pop()):
            if name in seen:
                continue
            seen.add(name)
            if name in constants and is_assumption(constants[name]):
                found.append(name)
            elif name in derived:
                pending += [expr.text for expr in (derived[name].expr, *derived[name].fields.values()) if expr]
    return tuple(sorted(found))


def assumption_marks(names: tuple[str, ...], constants: dict[str, Constant]) -> list[dict[str, Any]]:
    """The trace's ``assumptions`` of a rule: each constant with its value and note."""
    return [{"constant": name, "value": to_output(constants[name].value), "note": constants[name].note}
            for name in names]


def _names(text: str) -> set[str]:
    try:
        tree = ast.parse(text.replace("\n", " ").strip(), mode="eval")
    except SyntaxError:  # the loader has reported it
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
