"""The fast path's derivation: counters and derived values as one generated function per decision.

``derive(values, asked_at, at, source, counters_read, calendar)`` completes ``values`` (a copy of the
facts, or of the values at another instant) in the declared order, exactly as
:meth:`engine.evaluation.CompiledDecision._compute` does with the interpreter's closures; a second
function does only what moves with ``now``, for ``next_eligible_at``. Message placeholders get the
same treatment: one generated renderer per rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..counters import counter_label
from ..model import Counter, Decision, Derived, Rule
from ..values import to_output, to_shanghai, to_text
from .codegen import Source
from .expressions import HELPERS, ExpressionCode

Deriver = Callable[..., dict[str, Any]]


def build_derivers(decision: Decision, moving: set[str]) -> tuple[Deriver, Deriver, str]:
    """The full deriver, the one for what moves with ``now``, and their source."""
    source = Source()
    _function(source, "derive", decision.counters, decision.derived)
    _function(source, "derive_moving", [c for c in decision.counters if c.name in moving],
              [d for d in decision.derived if d.name in moving])
    namespace = source.compile(f"<deriver {decision.name}>", {
        **HELPERS, "_to_output": to_output, "_label": counter_label, "_shanghai": to_shanghai,
        "_DECISION": decision.name})
    return namespace["derive"], namespace["derive_moving"], source.text


def _function(source: Source, name: str, counters: list[Counter], derived: list[Derived]) -> None:
    source.add(0, f"def {name}(values, asked_at, at, source, counters_read, calendar):")
    source.add(1, "values['now'] = at")
    code = ExpressionCode(source)
    expressions = [part for counter in counters for part in (*counter.key, *([counter.fact] if counter.fact else []))]
    expressions += [expr for item in derived for expr in ([item.expr] if item.expr else item.fields.values())]
    code.bind_objects(1, expressions)
    if any(counter.reset == "shanghai_day" and counter.fact is not None for counter in counters):
        source.add(1, "same_day = asked_at is at or _shanghai(asked_at).date() == _shanghai(at).date()")
    for counter in counters:
        value = source.name("c")
        constant = source.constant(counter, "COUNTER")
        source.add(1, f"{value} = None")
        if counter.fact is not None:  # a caller's figure for "today" says nothing about another day
            condition = "same_day" if counter.reset == "shanghai_day" else "True"
            source.add(1, f"if {condition}:")
            source.add(2, f"{value} = {code.code(counter.fact)}")
        source.add(1, f"if {value} is None:")
        key = ", ".join(code.code(part) for part in counter.key)
        source.add(2, f"{value} = source.read(_DECISION, {constant}, ({key}{',' if len(counter.key) == 1 else ''}), at)")
        source.add(2, f"counters_read[_label({constant}, asked_at, at)] = _to_output({value})")
        source.add(1, f"values[{counter.name!r}] = {value}")
        code.local[counter.name] = value
    for item in derived:
        value = source.name("d")
        if item.expr is not None:
            source.add(1, f"{value} = {code.code(item.expr)}")
        else:
            fields = ", ".join(f"{field!r}: {code.code(expr)}" for field, expr in item.fields.items())
            source.add(1, f"{value} = {{{fields}}}")
        source.add(1, f"values[{item.name!r}] = {value}")
        code.local[item.name] = value
    source.add(1, "return values")


def build_messages(decision: Decision, rules: list[Rule]) -> tuple[dict[str, dict[str, Callable[..., str]]], str]:
    """For each rule with messages, a renderer per language: ``render(values, calendar) -> str``."""
    from ..loader import PLACEHOLDER

    source = Source()
    names: dict[str, dict[str, str]] = {}
    for rule in rules:
        for lang, text in rule.messages.items():
            function = source.name("message")
            names.setdefault(rule.id, {})[lang] = function
            source.add(0, f"def {function}(values, calendar):")
            code = ExpressionCode(source)
            placeholders = [rule.placeholders[match.group(1)] for match in PLACEHOLDER.finditer(text)]
            code.bind_objects(1, placeholders)
            parts, position = [], 0
            for match in PLACEHOLDER.finditer(text):
                if match.start() > position:
                    parts.append(repr(text[position:match.start()]))
                parts.append(f"_to_text({code.code(rule.placeholders[match.group(1)])})")
                position = match.end()
            if position < len(text) or not parts:
                parts.append(repr(text[position:]))
            source.add(1, f"return {' + '.join(parts)}")
    namespace = source.compile(f"<messages {decision.name}>", {**HELPERS, "_to_text": to_text})
    return {rule: {lang: namespace[function] for lang, function in langs.items()} for rule, langs in names.items()}, \
        source.text
