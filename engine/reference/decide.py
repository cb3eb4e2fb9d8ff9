"""The oracle's decision: the same semantics as the decision program, made the slow, plain way.

Facts are read by marshmallow (:class:`~engine.reference.facts.FactsLoader`, every error by path),
counters and derived values are computed by the interpreter's closures, the *nested* fact is asserted
and retracted on its own durable_rules ruleset, and messages are filled in from their templates. The
differential tests (tests/test_fastpath.py) hold the decision program to it; explain's trace is made
here; the served path comes here only for facts its reader leaves (unusual shapes, invalid facts) and
arithmetic past the calendar or Decimal's precision, where the interpreter's nulls decide.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine.language.expressions import Expr
from engine.language.loader import PLACEHOLDER
from engine.language.model import Decision, Rule
from engine.reference.facts import FactsLoader
from engine.reference.interpret import evaluate, evaluator
from engine.reference.trace import assumption_marks
from engine.runtime.calendar import Calendar
from engine.runtime.compiler import fact_encoder, references
from engine.runtime.durable import Matcher
from engine.runtime.program import Evaluation, Outcomes, next_eligible_search
from engine.runtime.rulesets import DecisionRulesets
from engine.runtime.values import partition_text, to_output, to_shanghai, to_text
from engine.state.counters import CounterSource, NoCounters, counter_label

_NO_COUNTERS = NoCounters()


class ReferenceDecision:
    """One decision as the oracle makes it (built once per load, beside the decision program)."""

    def __init__(self, decision: Decision, ruleset: dict[str, str], calendar: Calendar, rulesets: DecisionRulesets,
                 outcomes: Outcomes):
        self.decision = decision
        self.ruleset = ruleset  # {"domain", "version"}
        self.calendar = calendar
        partition = evaluator(decision.partition) if decision.partition is not None else None
        self.partition_key: Callable[[dict[str, Any]], str | None] = (
            (lambda facts: partition_text(partition(facts, calendar))) if partition else (lambda facts: None))
        self.outcomes = outcomes  # what a fired set decides: rules and effects only, the same on both paths
        self.facts = FactsLoader(decision.name, decision.facts)
        self.definition = rulesets.definition("reference", decision.name)
        self.matcher = Matcher(decision.name, self.definition)
        self.encode = fact_encoder([rule.when for rule in decision.rules], decision.name)
        self.counter_plan = [(counter, [evaluator(part) for part in counter.key],
                              evaluator(counter.fact) if counter.fact is not None else None)
                             for counter in decision.counters]
        self._derived_plan = [(derived.name, evaluator(derived.expr) if derived.expr is not None else None,
                               [(name, evaluator(expr)) for name, expr in derived.fields.items()])
                              for derived in decision.derived]
        self.outputs = [derived.name for derived in decision.derived if derived.output]
        self._default_obligations = to_output(decision.obligations)
        # Messages split once into literal text and placeholder expressions.
        self._templates = {rule.id: {lang: _template(text, rule.placeholders, decision, lang)
                                     for lang, text in rule.messages.items()} for rule in decision.rules}
        self.trace_leaves: dict[str, list[tuple[str, Expr]]] = rulesets.trace_leaves
        self.trace_definition = rulesets.definition("trace", decision.name)
        self.trace_matcher = Matcher(f"{decision.name}/trace", self.trace_definition) if self.trace_definition else None

    def judge(self, facts: dict[str, Any], *, now: datetime, counters: CounterSource | None = None) -> Evaluation:
        """The decision on validated ``facts`` as of ``now``, every step by the interpreter."""
        source = counters or _NO_COUNTERS
        counters_read: dict[str, Any] = {}
        values = self.values(facts, now, now, source, counters_read)
        fired = self.fired(values)
        outcome = self.outcomes.of(fired).outcome
        next_eligible_at = None
        if outcome == "defer":
            def again(at: datetime, _values: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
                moved = self.values(facts, now, at, source, counters_read)  # everything computed again
                return moved, self.fired(moved)

            next_eligible_at = next_eligible_search(self.decision.rules, self.calendar, now, fired, values, again)
        return Evaluation(facts, now, values, fired, outcome, next_eligible_at, counters_read, True)

    def values(self, facts: dict[str, Any], asked_at: datetime, at: datetime, source: CounterSource,
               counters_read: dict[str, Any]) -> dict[str, Any]:
        """Facts plus ``now``, counters and derived values, as they are at instant ``at``; every stored
        count read is noted in ``counters_read`` (the decision log keeps them for replays)."""
        values = dict(facts)
        values["now"] = at
        calendar = self.calendar
        same_day = asked_at is at or to_shanghai(asked_at).date() == to_shanghai(at).date()
        partition = self.partition_key(facts) if self.counter_plan else None
        for counter, key_parts, fact in self.counter_plan:
            # A caller's figure for "today" says nothing about another day.
            supplied = None
            if fact is not None and (counter.reset == "never" or same_day):
                supplied = fact(values, calendar)
            if supplied is None:
                key = tuple(part(values, calendar) for part in key_parts)
                supplied = source.read(self.decision.name, counter, key, at, partition)
                # the first read of a count is the one the outcome was decided on
                counters_read.setdefault(counter_label(counter, asked_at, at), to_output(supplied))
            values[counter.name] = supplied
        for name, expression, fields in self._derived_plan:
            if expression is None:
                values[name] = {field: compute(values, calendar) for field, compute in fields}
            else:
                values[name] = expression(values, calendar)
        return values

    def fired(self, values: dict[str, Any]) -> set[str]:
        """The rules the nested fact of ``values`` matches."""
        return self.matcher.fired(self.encode(values))

    def result(self, evaluation: Evaluation, decision_id: str) -> dict[str, Any]:
        """The SPEC §4 document of an evaluation, every part rendered by the interpreter."""
        decided = self.outcomes.of(evaluation.fired)
        values, outcome = evaluation.values, evaluation.outcome
        return {
            "decision_id": decision_id,
            "decision": self.decision.name,
            "outcome": outcome,
            "reasons": [self.reason(rule, values) for rule in decided.fired_rules if rule.effect == outcome],
            "warnings": [self.reason(rule, values) for rule in decided.fired_rules if rule.effect == "warn"],
            "obligations": self.obligations(list(decided.fired_rules), outcome, values),
            "values": self.output_values(values),
            "next_eligible_at": to_output(evaluation.next_eligible_at),
            "ruleset": dict(self.ruleset),
            "evaluated_at": to_output(evaluation.now),
        }

    def reason(self, rule: Rule, values: dict[str, Any]) -> dict[str, Any]:
        calendar = self.calendar
        message = {lang: "".join([part if type(part) is str else to_text(part(values, calendar)) for part in parts])
                   for lang, parts in self._templates[rule.id].items()}
        return {"code": rule.code, "rule": rule.qualified_id, "message": message}

    def obligations(self, fired_rules: list[Rule], outcome: str, values: dict[str, Any]) -> dict[str, Any]:
        if outcome == "deny" or not any(rule.effect == "oblige" for rule in fired_rules):
            return dict(self._default_obligations)  # nothing is owed on a refusal
        obligations = dict(self.decision.obligations)
        for rule in fired_rules:
            if rule.effect == "oblige":
                for name, value in rule.obligations.items():
                    obligations[name] = evaluate(value, values, self.calendar) if isinstance(value, Expr) else value
        return to_output(obligations)

    def output_values(self, values: dict[str, Any]) -> dict[str, Any]:
        return {name: to_output(values.get(name)) for name in self.outputs}

    def trace(self, fired: set[str], values: dict[str, Any]) -> list[dict[str, Any]]:
        """Each rule with its atomic conditions, the value durable_rules saw for each, and its operands."""
        true_leaves = self.trace_matcher.fired(self.encode(values)) if self.trace_matcher else set()
        return [{
            "rule": rule.qualified_id,
            "effect": rule.effect,
            "code": rule.code,
            "when": rule.when_text,
            "fired": rule.id in fired,
            "conditions": [
                {"condition": leaf.text, "value": name in true_leaves,
                 "operands": {ref.text: to_output(evaluate(ref, values, self.calendar)) for ref in references(leaf)}}
                for name, leaf in self.trace_leaves[rule.id]
            ],
            "assumptions": assumption_marks(rule.assumptions, self.decision.constants),
        } for rule in self.decision.rules]


def _labelled(value_of: Any, labels: dict[str, str]) -> Any:
    def labelled(values: dict[str, Any], calendar: Any) -> Any:
        value = value_of(values, calendar)
        return labels.get(value, value) if isinstance(value, str) else value
    return labelled


def _template(text: str, placeholders: dict[str, Expr], decision: Decision, lang: str) -> list[Any]:
    """A message as literal text and the compiled placeholder expressions between, in order (an enum's
    placeholder in a Chinese message gives its label: :meth:`Decision.message_labels`)."""
    parts: list[Any] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        placeholder = placeholders[match.group(1)]
        value_of = evaluator(placeholder)
        labels = decision.message_labels(placeholder, lang)
        if labels:
            value_of = _labelled(value_of, labels)
        parts += [text[position:match.start()], value_of]
        position = match.end()
    parts.append(text[position:])
    return [part for part in parts if part != ""]
