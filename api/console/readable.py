"""Rule conditions as a person reads them: "all of / any of / none of" lists of simple comparisons.

The parsed expression (engine/language/expressions.py) is only walked, never evaluated: ``and``/``or`` become
lists, ``not (a or b)`` becomes "none of", and each comparison keeps its own text, with a note for
every constant (its value), derived value (how it is computed) and fact (its description) it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.language.expressions import Expr, Lit, Logic, Not, Ref, walk
from engine.language.model import Decision
from engine.runtime.values import to_text

from .facts_form import fact_spec


@dataclass
class Condition:
    kind: str  # all | any | none | not_all | leaf
    text: str
    children: list[Condition] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


@dataclass(frozen=True)
class Note:
    """What a name in a condition stands for: a constant's value, a derived value's formula, a fact's description."""

    name: str
    kind: str  # constant | derived | counter | fact
    text: str


def readable(expr: Expr, decision: Decision) -> Condition:
    """The condition ``expr`` of a rule of ``decision`` as a tree of plain comparisons."""
    if isinstance(expr, Logic):
        return Condition("all" if expr.op == "and" else "any", expr.text,
                         [readable(operand, decision) for operand in expr.operands])
    if isinstance(expr, Not) and isinstance(expr.operand, Logic):
        inner = expr.operand
        return Condition("none" if inner.op == "or" else "not_all", expr.text,
                         [readable(operand, decision) for operand in inner.operands])
    return Condition("leaf", " ".join(expr.text.split()), notes=notes(expr, decision))


def notes(expr: Expr, decision: Decision) -> list[Note]:
    """What the names inside ``expr`` stand for, each once, in order of appearance."""
    derived = {value.name: value for value in decision.derived}
    counters = {counter.name: counter for counter in decision.counters}
    found: dict[str, Note] = {}
    for node in walk(expr):
        name = node.text.strip()
        if name in found:
            continue
        if isinstance(node, Lit) and name in decision.constants:
            found[name] = Note(name, "constant", to_text(decision.constants[name].value))
        elif isinstance(node, Ref) and node.kind == "derived" and name in derived:
            value = derived[name]
            formula = " ".join(value.expr.text.split()) if value.expr else ""
            found[name] = Note(name, "derived", value.description or formula)
        elif isinstance(node, Ref) and node.kind == "counter" and name in counters:
            counter = counters[name]
            found[name] = Note(name, "counter", counter.description or ", ".join(key.text for key in counter.key))
        elif isinstance(node, Ref) and node.kind == "fact":
            spec = fact_spec(decision.facts, node.path)
            if spec is not None and spec.description:
                found[name] = Note(name, "fact", spec.description)
    return [note for note in found.values() if note.text]
