"""The fast path's derivation: counters, derived values and the matched fact, as one generated
function per decision.

``derive(values, asked_at, at, source, counters_read, calendar) -> (values, fact)`` completes
``values`` (a copy of the facts) in the declared order, exactly as the oracle does with the
interpreter's closures (:meth:`engine.reference.decide.ReferenceDecision.values`), and encodes the flat fact
from the values at hand. ``derive_moving(values, fact, …)`` does only what moves with ``now`` — on
copies of the values and the fact at an earlier instant — for ``next_eligible_at``. Message
placeholders get the same treatment: one generated renderer per rule and language.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from engine.language.model import Counter, Decision, Derived, Rule
from engine.runtime.codegen import Source
from engine.runtime.compiler import MARKER, FieldNames
from engine.runtime.encoder import HELPERS as ENCODER_HELPERS
from engine.runtime.encoder import emit_encoding
from engine.runtime.expressions import HELPERS, ExpressionCode
from engine.runtime.values import Type, round_fen, to_output, to_shanghai, to_text
from engine.state.counters import counter_label

Deriver = Callable[..., dict[str, Any]]


def build_derivers(decision: Decision, moving: set[str], fields: dict[str, Type], names: FieldNames,
                   partition_key: Callable[[dict[str, Any]], str | None]) -> tuple[Deriver, Deriver, str]:
    """The full deriver, the one for what moves with ``now``, and their source."""
    source = Source()
    facts = set(decision.facts)
    emit_derivation(source, "def derive(values, asked_at, at, source, counters_read, calendar):",
                    decision.counters, decision.derived)
    source.add(1, f"fact = {{{MARKER!r}: _DECISION}}")
    emit_encoding(source, source.code, 1, fields, names, facts)
    source.add(1, "return values, fact")
    emit_derivation(source, "def derive_moving(values, fact, asked_at, at, source, counters_read, calendar):",
                    [c for c in decision.counters if c.name in moving], [d for d in decision.derived if d.name in moving])
    source.add(1, "fact = dict(fact)")
    emit_encoding(source, source.code, 1, {path: kind for path, kind in fields.items() if path.split(".")[0] in moving},
                  names, facts, replacing=True)
    source.add(1, "return values, fact")
    namespace = source.compile(f"<deriver {decision.name}>", derivation_names(decision.name, partition_key))
    return namespace["derive"], namespace["derive_moving"], source.text


def derivation_names(decision: str, partition_key: Callable[[dict[str, Any]], str | None]) -> dict[str, Any]:
    """What the code :func:`emit_derivation` and :func:`emit_encoding` write refers to."""
    return {**HELPERS, **ENCODER_HELPERS, "_to_output": to_output, "_label": counter_label, "_shanghai": to_shanghai,
            "_DECISION": decision, "_partition": partition_key, "_UNSET": object()}


def emit_derivation(source: Source, signature: str, counters: list[Counter], derived: list[Derived],
                    prologue: tuple[str, ...] = ()) -> None:
    """The start of a function deriving values: ``signature``, the ``prologue`` statements, then the
    counters and derived values in declared order, into ``values`` and locals. The function's
    parameters (or its prologue) provide ``values``, ``asked_at``, ``at``, ``source``,
    ``counters_read`` and ``calendar``."""
    source.add(0, signature)
    for line in prologue:
        source.add(1, line)
    source.add(1, "values['now'] = at")
    code = source.code = ExpressionCode(source)
    code.local["now"] = "at"
    expressions = [part for counter in counters for part in (*counter.key, *([counter.fact] if counter.fact else []))]
    expressions += [expr for item in derived for expr in ([item.expr] if item.expr else item.fields.values())]
    code.bind_objects(1, expressions)
    if any(counter.reset == "shanghai_day" and counter.fact is not None for counter in counters):
        source.add(1, "same_day = asked_at is at or _shanghai(asked_at).date() == _shanghai(at).date()")
    if counters:  # the partition is made of facts: computed once, at the first stored count read
        source.add(1, "partition = _UNSET")
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
        source.add(2, "if partition is _UNSET:")
        source.add(3, "partition = _partition(values)")
        source.add(2, f"{value} = source.read(_DECISION, {constant}, ({key}{',' if len(counter.key) == 1 else ''}), at, "
                      "partition)")
        source.add(2, f"counters_read.setdefault(_label({constant}, asked_at, at), _to_output({value}))")
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


def build_counter_reads(decision: Decision, partition_key: Callable[[dict[str, Any]], str | None]
                        ) -> tuple[Callable[..., list[tuple[Any, ...]]], str]:
    """``counter_reads(values, at, calendar) -> [(counter, key, at, partition)]``: the stored counts a decision on
    ``values`` (a copy of the validated facts) at ``at`` will read — those the facts do not supply —
    for a batch to fetch them in one query before deciding."""
    source = Source()
    source.add(0, "def counter_reads(values, at, calendar):")
    source.add(1, "values['now'] = at")
    code = ExpressionCode(source)
    code.local["now"] = "at"
    counters = decision.counters
    code.bind_objects(1, [part for counter in counters for part in (*counter.key, *([counter.fact] if counter.fact else []))])
    source.add(1, "reads = []")
    source.add(1, "partition = _UNSET")
    for counter in counters:
        indent = 1
        if counter.fact is not None:
            source.add(1, f"if ({code.code(counter.fact)}) is None:")
            indent = 2
        key = ", ".join(code.code(part) for part in counter.key)
        source.add(indent, "if partition is _UNSET:")
        source.add(indent + 1, "partition = _partition(values)")
        source.add(indent, f"reads.append(({source.constant(counter, 'COUNTER')}, ({key}{',' if len(counter.key) == 1 else ''}), "
                           "at, partition))")
    source.add(1, "return reads")
    namespace = source.compile(f"<counter reads {decision.name}>", derivation_names(decision.name, partition_key))
    return namespace["counter_reads"], source.text


def _label(labels: dict[str, str], value: Any) -> Any:
    return labels.get(value, value) if isinstance(value, str) else value


def build_messages(decision: Decision, rules: list[Rule]
                   ) -> tuple[dict[str, dict[str, Callable[..., str]]], dict[str, Callable[..., dict[str, Any]]], str]:
    """For each rule with messages, a renderer per language: ``render(values, calendar) -> str``; and for
    every rule its reason as the decision document shows it: ``reason(values, calendar) -> {"code",
    "rule", "message": {lang: text}}``."""
    from engine.language.loader import PLACEHOLDER

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
                placeholder = rule.placeholders[match.group(1)]
                labels = decision.message_labels(placeholder, lang)
                value = code.code(placeholder)
                if labels:  # an enum's label in a Chinese message: 淘宝 rather than taobao
                    value = f"_label({source.constant(labels, 'LABELS')}, {value})"
                parts.append(f"_to_text({value})")
                position = match.end()
            if position < len(text) or not parts:
                parts.append(repr(text[position:]))
            source.add(1, f"return {' + '.join(parts)}")
    reasons: dict[str, str] = {}
    for rule in rules:
        function = reasons[rule.id] = source.name("reason")
        message = ", ".join(f"{lang!r}: {renderer}(values, calendar)" for lang, renderer in names.get(rule.id, {}).items())
        source.add(0, f"def {function}(values, calendar):")
        source.add(1, f"return {{'code': {rule.code!r}, 'rule': {rule.qualified_id!r}, 'message': {{{message}}}}}")
    namespace = source.compile(f"<messages {decision.name}>", {**HELPERS, "_to_text": to_text, "_label": _label})
    return ({rule: {lang: namespace[function] for lang, function in langs.items()} for rule, langs in names.items()},
            {rule: namespace[function] for rule, function in reasons.items()}, source.text)


def build_outputs(decision: Decision) -> tuple[Callable[[dict[str, Any]], dict[str, Any]], str]:
    """``outputs(values)``: the decision's output values in their JSON form (``to_output``), converted by
    their declared types where that is the same and quicker, by :func:`to_output` otherwise."""
    source = Source()
    source.add(0, "def outputs(values):")
    entries = []
    for item in decision.derived:
        if not item.output:
            continue
        value = f"values.get({item.name!r})"
        if item.expr is not None:
            entries.append(f"{item.name!r}: {_output(item.expr.type, value, source)}")
        else:
            holder = source.name("o")
            source.add(1, f"{holder} = {value}")
            fields = ", ".join(f"{field!r}: {_output(expr.type, f'{holder}.get({field!r})', source)}"
                               for field, expr in item.fields.items())
            entries.append(f"{item.name!r}: (None if {holder} is None else {{{fields}}})")
    source.add(1, f"return {{{', '.join(entries)}}}")
    namespace = source.compile(f"<outputs {decision.name}>", {"_to_output": to_output, "_money": _money_output})
    return namespace["outputs"], source.text


def _output(kind: Type, value: str, source: Source) -> str:
    if kind.kind in ("str", "enum", "bool", "int"):
        return value  # to_output leaves these as they are
    if kind.kind == "money":
        return f"_money({value})"
    if kind.kind == "list" and kind.item is not None and kind.item.kind in ("str", "enum"):
        items, item = source.name("l"), source.name("i")
        return f"(None if ({items} := {value}) is None else [{item} if type({item}) is str else _to_output({item}) " \
               f"for {item} in {items}])"
    return f"_to_output({value})"


def _money_output(value: Any) -> Any:
    return str(round_fen(value)) if type(value) is Decimal else to_output(value)
