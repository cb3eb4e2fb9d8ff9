"""Evaluating one decision: validate facts, derive values, match with durable_rules, build the result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from .calendar import Calendar
from .compiler import fact_encoder, leaves, references, ruleset_definition
from .counters import CounterSource, NoCounters
from .expressions import Expr
from .facts import FactsLoader
from .interpret import evaluate
from .loader import PLACEHOLDER
from .matcher import Matcher
from .model import OUTCOME_PRECEDENCE, Decision, Domain, Rule
from .store.base import Reservation, counter_slot, to_units
from .values import to_output, to_shanghai, to_text

# Each step of the next_eligible_at search moves strictly later; a handful covers delay, window and day.
MAX_SOLVER_STEPS = 8


class CompiledDecision:
    """A decision ready to evaluate: its facts schema and its durable_rules rulesets, built once."""

    def __init__(self, decision: Decision, domain: Domain, calendar: Calendar | None = None):
        self.decision = decision
        self.domain = domain
        self.calendar = calendar or Calendar()
        self.facts = FactsLoader(decision.name, decision.facts)
        self.definition = ruleset_definition([(rule.id, rule.when) for rule in decision.rules], decision.name)
        self.matcher = Matcher(decision.name, self.definition)
        self.encode = fact_encoder([rule.when for rule in decision.rules], decision.name)
        self.trace_leaves: dict[str, list[tuple[str, Expr]]] = {
            rule.id: [(f"{rule.id}#{index}", leaf) for index, leaf in enumerate(leaves(rule.when))]
            for rule in decision.rules
        }
        self.trace_definition = ruleset_definition(
            [pair for pairs in self.trace_leaves.values() for pair in pairs], decision.name)
        self.trace_matcher = Matcher(f"{decision.name}/trace", self.trace_definition) if self.trace_definition else None
        self.outputs = [derived.name for derived in decision.derived if derived.output]
        # Messages split once into literal text and placeholder expressions.
        self._templates = {rule.id: {lang: _template(text, rule.placeholders) for lang, text in rule.messages.items()}
                           for rule in decision.rules}

    @property
    def name(self) -> str:
        return self.decision.name

    def evaluate(self, raw_facts: Any, *, now: datetime | None = None, explain: bool = False,
                 counters: CounterSource | None = None, decision_id: str | None = None) -> dict[str, Any]:
        """The decision for ``raw_facts`` at ``now``; raises :class:`InvalidFacts` on bad input."""
        return self.run(raw_facts, now=now, explain=explain, counters=counters, decision_id=decision_id)[0]

    def run(self, raw_facts: Any, *, now: datetime | None = None, explain: bool = False,
            counters: CounterSource | None = None, decision_id: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The decision and the values it was made on (facts, counters, derived values)."""
        return self.run_loaded(self.facts.load(raw_facts), now=now, explain=explain, counters=counters,
                               decision_id=decision_id)

    def run_loaded(self, facts: dict[str, Any], *, now: datetime | None = None, explain: bool = False,
                   counters: CounterSource | None = None,
                   decision_id: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """:meth:`run` for facts already validated by ``self.facts.load`` (a commit's retries reuse them)."""
        now = now or datetime.now(UTC)
        source = counters or NoCounters()
        values = self._values(facts, now, now, source)
        fact = self.encode(values)
        fired = self.matcher.fired(fact)
        result = self._result(fired, values, now, decision_id)
        if result["outcome"] == "defer":
            result["next_eligible_at"] = to_output(self._next_eligible_at(facts, now, fired, values, source))
        if explain:
            result["trace"] = self._trace(fired, fact, values)
        return result, values

    def reservations(self, values: dict[str, Any]) -> list[Reservation]:
        """What committing an allowed decision adds to each of its counters."""
        now, partition = values["now"], self.partition_key(values)
        return [Reservation(counter_slot(self.name, counter, tuple(evaluate(part, values) for part in counter.key), now,
                                         partition),
                            to_units(counter, evaluate(counter.add, values) or 0))
                for counter in self.decision.counters]

    def partition_key(self, facts: dict[str, Any]) -> str | None:
        """The decision's ``partition`` for these (validated) facts, as text; None if it declares none."""
        if self.decision.partition is None:
            return None
        return json.dumps(to_output(evaluate(self.decision.partition, facts)), ensure_ascii=False)

    def business_keys(self, values: dict[str, Any]) -> dict[str, Any]:
        """The record columns a person searches by (order id, customer account, amount…)."""
        return {column: evaluate(expr, values, self.calendar) for column, expr in self.decision.record.items()}

    def label(self, column: str, value: str | None) -> str:
        """The enum label of a record value (``price_difference`` → 补差价), or the value itself."""
        expr = self.decision.record.get(column)
        if value is None or expr is None or expr.type.kind != "enum":
            return value or ""
        return self.decision.enum_labels.get(expr.type.enum or "", {}).get(value, value)

    def _values(self, facts: dict[str, Any], asked_at: datetime, at: datetime, source: CounterSource) -> dict[str, Any]:
        """Facts plus ``now``, counters and derived values, as they are at instant ``at``."""
        values = dict(facts)
        values["now"] = at
        same_day = to_shanghai(asked_at).date() == to_shanghai(at).date()
        partition = self.partition_key(facts) if self.decision.counters else None
        for counter in self.decision.counters:
            # A caller's figure for "today" says nothing about another day.
            supplied = None
            if counter.fact is not None and (counter.reset == "never" or same_day):
                supplied = evaluate(counter.fact, values)
            if supplied is None:
                key = tuple(evaluate(part, values) for part in counter.key)
                supplied = source.read(self.name, counter, key, at, partition)
            values[counter.name] = supplied
        for derived in self.decision.derived:
            if derived.expr is None:
                values[derived.name] = {name: evaluate(expr, values, self.calendar) for name, expr in derived.fields.items()}
            else:
                values[derived.name] = evaluate(derived.expr, values, self.calendar)
        return values

    def _next_eligible_at(self, facts: dict[str, Any], now: datetime, fired: set[str], values: dict[str, Any],
                          source: CounterSource) -> datetime | None:
        """The earliest instant at which no timing (defer) rule holds back any more.

        Each deferring rule says from when it stops holding (``until``); the latest of those is a
        candidate, and the rules are matched again as of that instant, since there another one may
        hold (a delay ending at 20:20 falls outside a 09:00-20:00 window: next candidate 09:00).
        """
        at = now
        for _ in range(MAX_SOLVER_STEPS):
            deferring = [rule for rule in self.decision.rules if rule.effect == "defer" and rule.id in fired]
            if not deferring:
                return at
            untils = [evaluate(rule.until, values, self.calendar) for rule in deferring if rule.until is not None]
            candidate = max((until for until in untils if until is not None), default=None)
            if candidate is None or candidate <= at:
                return None  # a rule that cannot say when it will stop holding
            at = candidate
            values = self._values(facts, now, at, source)
            fired = self.matcher.fired(self.encode(values))
        return None

    def _result(self, fired: set[str], values: dict[str, Any], now: datetime, decision_id: str | None) -> dict[str, Any]:
        fired_rules = [rule for rule in self.decision.rules if rule.id in fired]
        outcome = "allow"
        for effect, effect_outcome in OUTCOME_PRECEDENCE:
            if any(rule.effect == effect for rule in fired_rules):
                outcome = effect_outcome
                break
        obligations = dict(self.decision.obligations)
        for rule in fired_rules if outcome != "deny" else ():  # nothing is owed on a refusal
            if rule.effect == "oblige":
                for name, value in rule.obligations.items():
                    obligations[name] = evaluate(value, values, self.calendar) if isinstance(value, Expr) else value
        return {
            "decision_id": decision_id or str(ULID()),
            "decision": self.name,
            "outcome": outcome,
            "reasons": [self._reason(rule, values) for rule in fired_rules if rule.effect == outcome],
            "warnings": [self._reason(rule, values) for rule in fired_rules if rule.effect == "warn"],
            "obligations": to_output(obligations),
            "values": {name: to_output(values.get(name)) for name in self.outputs},
            "next_eligible_at": None,
            "ruleset": {"domain": self.domain.name, "version": self.domain.version},
            "evaluated_at": to_output(now),
        }

    def _reason(self, rule: Rule, values: dict[str, Any]) -> dict[str, Any]:
        calendar = self.calendar
        message = {lang: "".join(part if isinstance(part, str) else to_text(evaluate(part, values, calendar))
                                 for part in parts)
                   for lang, parts in self._templates[rule.id].items()}
        return {"code": rule.code, "rule": rule.qualified_id, "message": message}

    def _trace(self, fired: set[str], fact: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
        true_leaves = self.trace_matcher.fired(fact) if self.trace_matcher else set()
        trace = []
        for rule in self.decision.rules:
            trace.append({
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
            })
        return trace


def _template(text: str, placeholders: dict[str, Expr]) -> list[str | Expr]:
    parts: list[str | Expr] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        parts += [text[position:match.start()], placeholders[match.group(1)]]
        position = match.end()
    parts.append(text[position:])
    return [part for part in parts if part != ""]
