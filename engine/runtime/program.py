"""The decision program: one Python function per decision, generated at load, that makes a whole
decision in one pass over local variables.

``program(raw, facts, now, source, counters_read, calendar, decision_id, later) -> (result, Evaluation)``
reads the request (the generated reader; ``facts`` instead when they were read already), derives the
counters and values, encodes the flat fact, asks durable_rules what fired, and builds the SPEC §4
document. What a set of fired rules decides — the outcome, which rules give reasons and warnings, the
obligations when they read no values — is the same for every request that fires exactly that set, so
it is worked out once per set (:class:`Outcomes`) and the program only renders the messages.

The program leaves three things to its caller, :class:`engine.runtime.evaluation.CompiledDecision`:
facts the fast reader does not take (it raises :class:`engine.runtime.reader.Unusual`), arithmetic past
the calendar or Decimal's precision (``ArithmeticError``: the caller decides that request again, with
the reference path's nulls), and ``next_eligible_at`` (``later``, called only on a defer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.ids import new_id
from engine.language.expressions import Expr
from engine.language.model import OUTCOME_PRECEDENCE, Decision, Rule
from engine.reference.interpret import evaluate
from engine.runtime.codegen import Source
from engine.runtime.compiler import MARKER, FieldNames
from engine.runtime.deriver import derivation_names, emit_derivation
from engine.runtime.encoder import emit_encoding
from engine.runtime.expressions import ExpressionCode
from engine.runtime.values import Type, to_output, within_supported_years

# Fired sets worth remembering: a decision's requests fire a few dozen distinct sets; a caller crafting
# facts to fire every combination only stops the table from growing (the rest are worked out per request).
MAX_OUTCOMES_KEPT = 4_096
# Each step of the next_eligible_at search moves strictly later; a handful covers delay, window and day.
MAX_SOLVER_STEPS = 8


@dataclass(slots=True)
class Evaluation:
    """One decision made: what it was made on and what fired; no id or messages yet."""

    facts: dict[str, Any]  # as validated (defaults filled in)
    now: datetime
    values: dict[str, Any]  # facts, now, counters and derived values as of ``now``
    fired: set[str]  # ids of the rules that fired
    outcome: str
    next_eligible_at: datetime | None
    counters: dict[str, Any]  # the stored counts read, in output form, by counter_label()
    reference: bool = False  # made on the reference path (its result renders messages the reference way too)
    raw_facts: Any = None  # the facts as the caller sent them, when known: the log notes which were defaulted


@dataclass(frozen=True, slots=True)
class Decided:
    """What one set of fired rules decides, whatever the request that fired it."""

    outcome: str
    fired_rules: tuple[Rule, ...]  # in the file's order
    reasons: tuple[Callable[..., dict[str, Any]], ...]  # renderers of the reasons, in the file's order
    warnings: tuple[Callable[..., dict[str, Any]], ...]
    obligations: dict[str, Any] | None  # in output form; None when a fired rule's obligation reads values
    obliging: tuple[Callable[..., dict[str, Any]], ...]  # then: each obliging rule's obligations, computed
    reason_codes: tuple[str, ...]  # sorted, for verdicts
    warning_codes: tuple[str, ...]
    fired_ids: tuple[str, ...]  # qualified ids


class Outcomes:
    """The :class:`Decided` of each fired set met so far (at most :data:`MAX_OUTCOMES_KEPT`)."""

    def __init__(self, decision: Decision, reasons: dict[str, Callable[..., dict[str, Any]]],
                 obliging: dict[str, Callable[..., dict[str, Any]]]):
        self._rules = decision.rules
        self._reasons = reasons
        self._obliging = obliging  # rule id -> its obligations computed (only rules with expressions)
        self._declared = dict(decision.obligations)
        self._default = to_output(decision.obligations)
        self.known: dict[frozenset[str], Decided] = {}

    def of(self, fired: set[str] | frozenset[str]) -> Decided:
        key = frozenset(fired)
        decided = self.known.get(key)
        if decided is None:
            decided = self._decide(key)
            if len(self.known) < MAX_OUTCOMES_KEPT:
                self.known[key] = decided
        return decided

    def obligations(self, decided: Decided, values: dict[str, Any], calendar: Any) -> dict[str, Any]:
        """The obligations of a decision whose obliging rules read values."""
        obligations = dict(self._declared)
        for compute in decided.obliging:
            obligations.update(compute(values, calendar))
        return to_output(obligations)

    def _decide(self, fired: frozenset[str]) -> Decided:
        rules = tuple(rule for rule in self._rules if rule.id in fired)
        effects = {rule.effect for rule in rules}
        outcome = next((outcome for effect, outcome in OUTCOME_PRECEDENCE if effect in effects), "allow")
        # nothing is owed on a refusal
        obliging = [rule for rule in rules if rule.effect == "oblige"] if outcome != "deny" else []
        obligations: dict[str, Any] | None = dict(self._default)
        computed: tuple[Callable[..., dict[str, Any]], ...] = ()
        if any(rule.id in self._obliging for rule in obliging):
            obligations, computed = None, tuple(self._obliging.get(rule.id) or _constant(rule) for rule in obliging)
        elif obliging:
            fixed = dict(self._declared)
            for rule in obliging:
                fixed.update(rule.obligations)
            obligations = to_output(fixed)
        return Decided(
            outcome=outcome, fired_rules=rules,
            reasons=tuple(self._reasons[rule.id] for rule in rules if rule.effect == outcome),
            warnings=tuple(self._reasons[rule.id] for rule in rules if rule.effect == "warn"),
            obligations=obligations, obliging=computed,
            reason_codes=tuple(sorted({rule.code for rule in rules if rule.effect == outcome and rule.code})),
            warning_codes=tuple(sorted({rule.code for rule in rules if rule.effect == "warn" and rule.code})),
            fired_ids=tuple(rule.qualified_id for rule in rules))


def next_eligible_search(rules: list[Rule], calendar: Any, now: datetime, fired: set[str], values: dict[str, Any],
                         again: Callable[[datetime, dict[str, Any]], tuple[dict[str, Any], set[str]]],
                         until: Callable[[Rule, dict[str, Any], Any], datetime | None] | None = None
                         ) -> datetime | None:
    """The earliest instant at which no timing (defer) rule holds back any more.

    Each deferring rule says from when it stops holding (``until``); the latest of those is a
    candidate, and the rules are matched again as of that instant (``again(at, values)`` gives the
    values and fired rules there), since there another one may hold (a delay ending at 20:20 falls
    outside a 09:00-20:00 window: next candidate 09:00). ``until(rule, values, calendar)`` computes a
    rule's ``until`` (the served path's generated code); without it, the interpreter does.
    """
    if until is None:
        def until(rule: Rule, values: dict[str, Any], calendar: Any) -> datetime | None:
            return evaluate(rule.until, values, calendar)
    at = now
    for _ in range(MAX_SOLVER_STEPS):
        deferring = [rule for rule in rules if rule.effect == "defer" and rule.id in fired]
        if not deferring:
            return at
        untils = [until(rule, values, calendar) for rule in deferring if rule.until is not None]
        candidate = max((until for until in untils if until is not None), default=None)
        if candidate is None or candidate <= at:
            return None  # a rule that cannot say when it will stop holding
        if not within_supported_years(candidate):
            return None  # past the instants the service reads and writes (SPEC §4: 1970–2999)
        at = candidate
        values, fired = again(at, values)
    return None


def _constant(rule: Rule) -> Callable[..., dict[str, Any]]:
    fixed = dict(rule.obligations)
    return lambda values, calendar: fixed


def build_obligations(decision: Decision) -> tuple[dict[str, Callable[..., dict[str, Any]]], str]:
    """For each obliging rule whose obligations read values: ``compute(values, calendar) -> {name: value}``
    (the rule's obligations in its order, constants as they are)."""
    source = Source()
    functions: dict[str, str] = {}
    for rule in decision.rules:
        if rule.effect != "oblige" or not any(isinstance(value, Expr) for value in rule.obligations.values()):
            continue
        function = functions[rule.id] = source.name("obligations")
        source.add(0, f"def {function}(values, calendar):")
        code = ExpressionCode(source)
        code.bind_objects(1, [value for value in rule.obligations.values() if isinstance(value, Expr)])
        entries = ", ".join(f"{name!r}: {code.code(value) if isinstance(value, Expr) else source.constant(value)}"
                            for name, value in rule.obligations.items())
        source.add(1, f"return {{{entries}}}")
    from engine.runtime.expressions import HELPERS

    namespace = source.compile(f"<obligations {decision.name}>", HELPERS)
    return {rule: namespace[function] for rule, function in functions.items()}, source.text


def build_program(decision: Decision, ruleset: dict[str, str], *, fields: dict[str, Type], names: FieldNames,
                  partition_key: Callable[[dict[str, Any]], str | None], read: Callable[[Any], dict[str, Any]],
                  fired: Callable[[dict[str, Any]], set[str]], outcomes: Outcomes,
                  outputs: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[Callable[..., Any], str]:
    """The decision program of ``decision`` and its source (``rulesvc check --show-compiled``)."""
    source = Source()
    emit_derivation(source, "def program(raw, facts, now, source, counters_read, calendar, decision_id, later):",
                    decision.counters, decision.derived,
                    prologue=("if facts is None:", "    facts = _read(raw)", "values = dict(facts)", "asked_at = at = now"))
    source.add(1, f"fact = {{{MARKER!r}: _DECISION}}")
    emit_encoding(source, source.code, 1, fields, names, set(decision.facts))
    for line in (
        "fired = _fired(fact)",
        "decided = _KNOWN.get(_frozenset(fired)) or _decide(fired)",
        "outcome = decided.outcome",
        "next_eligible_at = later(facts, now, fired, values, fact, source, counters_read) if outcome == 'defer' else None",
        "obligations = decided.obligations",
        "result = {",
        "    'decision_id': decision_id or _new_id(),",
        "    'decision': _DECISION,",
        "    'outcome': outcome,",
        "    'reasons': [reason(values, calendar) for reason in decided.reasons],",
        "    'warnings': [warning(values, calendar) for warning in decided.warnings],",
        "    'obligations': _obligations(decided, values, calendar) if obligations is None else obligations.copy(),",
        "    'values': _outputs(values),",
        "    'next_eligible_at': None if next_eligible_at is None else _to_output(next_eligible_at),",
        f"    'ruleset': {{'domain': {ruleset['domain']!r}, 'version': {ruleset['version']!r}}},",
        "    'evaluated_at': _to_output(now),",
        "}",
        "return result, _Evaluation(facts, now, values, fired, outcome, next_eligible_at, counters_read, False, raw)",
    ):
        source.add(1, line)
    namespace = source.compile(f"<program {decision.name}>", {
        **derivation_names(decision.name, partition_key), "_read": read, "_fired": fired, "_KNOWN": outcomes.known,
        "_decide": outcomes.of, "_obligations": outcomes.obligations, "_outputs": outputs, "_new_id": new_id,
        "_Evaluation": Evaluation, "_frozenset": frozenset})
    # Taken out of its own module: the module's globals hold the served matcher, and a function in the
    # globals it points to would make a cycle keeping the native ruleset alive after a reload until
    # the cyclic collector happened to run.
    return namespace.pop("program"), source.text
