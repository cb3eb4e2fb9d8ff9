"""Evaluating one decision: validate facts, derive values, match with durable_rules, build the result.

The work is split in two so that callers pay only for what they use: :meth:`CompiledDecision.judge`
makes the decision (an :class:`Evaluation`: what fired, the outcome, ``next_eligible_at``, the values
and stored counters it was made on) and :meth:`CompiledDecision.result` renders the SPEC §4 document
(id, messages, trace). Replays compare :meth:`CompiledDecision.verdict`, which needs no messages.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from engine.errors import InvalidFacts
from engine.ids import new_id
from engine.language.expressions import Expr, names_read, sensitive_record_columns
from engine.language.loader import PLACEHOLDER
from engine.language.model import OUTCOME_PRECEDENCE, Counter, Decision, Domain, Rule, sensitive_paths
from engine.reference.facts import FactsLoader
from engine.reference.interpret import evaluate, evaluator
from engine.reference.trace import assumption_marks
from engine.runtime.calendar import Calendar
from engine.runtime.compiler import fact_encoder, references
from engine.runtime.deriver import build_derivers, build_messages, build_outputs
from engine.runtime.durable import Matcher
from engine.runtime.encoder import build_encoder, condition_fields
from engine.runtime.matcher import FlatMatcher
from engine.runtime.reader import Unusual, build_reader
from engine.runtime.rulesets import decision_rulesets
from engine.runtime.values import to_output, to_shanghai, to_text, within_supported_years
from engine.state.base import Reservation, counter_slot, to_units
from engine.state.counters import CounterSource, NoCounters, counter_label
from engine.verdict import Verdict

_NO_COUNTERS = NoCounters()
# Each step of the next_eligible_at search moves strictly later; a handful covers delay, window and day.
MAX_SOLVER_STEPS = 8


@dataclass(slots=True)
class Made:
    """One item of a batch: the decision document, its evaluation, and how long it took."""

    result: dict[str, Any]
    evaluation: Evaluation
    duration_us: int


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


class CompiledDecision:
    """A decision ready to evaluate: its facts schema and its durable_rules rulesets, built once.

    Two paths make the same decision. The *fast path* — the one served — reads facts with code
    generated from the declarations and matches a flat fact with short names on durable_rules. The
    *reference path* reads them with marshmallow and matches the nested fact, asserting and retracting
    it; it reports invalid facts, takes the rare shapes the fast reader leaves to it, gives the trace,
    and is what tests/test_fastpath.py holds the fast path to.
    """

    def __init__(self, decision: Decision, domain: Domain, calendar: Calendar | None = None):
        self.decision = decision
        self.domain = domain
        self.calendar = calendar or Calendar()
        self.facts = FactsLoader(decision.name, decision.facts)
        self.sensitive_paths = sensitive_paths(decision.facts)  # masked in the decision log
        self.sensitive_record_columns = sensitive_record_columns(decision)  # and in records, for most readers
        # The rulesets as validation compiled them (engine/runtime/rulesets.py): a loaded file activates.
        rulesets = decision_rulesets(decision.rules)
        # the reference path
        self.definition = rulesets.definition("reference", decision.name)
        self.matcher = Matcher(decision.name, self.definition)
        self.encode = fact_encoder([rule.when for rule in decision.rules], decision.name)
        # the fast path
        fields = condition_fields([rule.when for rule in decision.rules])
        self.field_names = rulesets.field_names
        self.fast_definition = rulesets.definition("fast", decision.name)
        self.fast_matcher = FlatMatcher(decision.name, self.fast_definition)
        self.fast_encode, self.fast_encoder_source = build_encoder(decision.name, fields, self.field_names,
                                                                   set(decision.facts))
        self.read_facts, self.reader_source = build_reader(decision.name, decision.facts)
        self.unusual_facts = 0  # facts the fast reader left to the reference reader (the bench reports it)
        self._counter_plan = [(counter, [evaluator(part) for part in counter.key],
                               evaluator(counter.fact) if counter.fact is not None else None)
                              for counter in decision.counters]
        self._derived_plan = [(derived.name, evaluator(derived.expr) if derived.expr is not None else None,
                               [(name, evaluator(expr)) for name, expr in derived.fields.items()])
                              for derived in decision.derived]
        # Not a bound method: the generated code would hold this object in a reference cycle, and its
        # native rulesets would outlive a reload until the cyclic collector happened to run.
        self.partition_key = _partition_key_of(decision)
        # What changes with `now`: next_eligible_at recomputes only these at each instant it tries.
        self._derive, self._derive_moving, self.deriver_source = build_derivers(
            decision, _moving_with_now(decision), fields, self.field_names, self.partition_key)
        self._messages, self.messages_source = build_messages(decision, decision.rules)
        self._outputs, self.outputs_source = build_outputs(decision)
        self._ruleset_ref = {"domain": domain.name, "version": domain.version}
        self._effects = {rule.id: rule.effect for rule in decision.rules}
        self._default_obligations = to_output(decision.obligations)
        self.trace_leaves: dict[str, list[tuple[str, Expr]]] = rulesets.trace_leaves
        self.trace_definition = rulesets.definition("trace", decision.name)
        self.trace_matcher = Matcher(f"{decision.name}/trace", self.trace_definition) if self.trace_definition else None
        self.outputs = [derived.name for derived in decision.derived if derived.output]
        # Messages split once into literal text and placeholder expressions.
        self._templates = {rule.id: {lang: _template(text, rule.placeholders) for lang, text in rule.messages.items()}
                           for rule in decision.rules}

    @property
    def name(self) -> str:
        return self.decision.name

    @property
    def program_source(self) -> str:
        """The Python generated for this decision at load, as it runs: reader, deriver (with the fact's
        encoding), messages and outputs (``rulesvc check --show-compiled``)."""
        parts = (("read the request's facts", self.reader_source), ("derive values, encode the fact", self.deriver_source),
                 ("render the messages", self.messages_source), ("the output values", self.outputs_source))
        return "\n\n".join(f"# --- {self.name}: {what} ---\n{text}" for what, text in parts)

    def evaluate(self, raw_facts: Any, *, now: datetime | None = None, explain: bool = False,
                 counters: CounterSource | None = None, decision_id: str | None = None) -> dict[str, Any]:
        """The decision for ``raw_facts`` at ``now``; raises :class:`InvalidFacts` on bad input."""
        return self.run(raw_facts, now=now, explain=explain, counters=counters, decision_id=decision_id)[0]

    def run(self, raw_facts: Any, *, now: datetime | None = None, explain: bool = False,
            counters: CounterSource | None = None, decision_id: str | None = None) -> tuple[dict[str, Any], Evaluation]:
        """The decision document and the :class:`Evaluation` behind it (for commits and the decision log)."""
        result, evaluation = self.run_loaded(self.load(raw_facts), now=now, explain=explain, counters=counters,
                                             decision_id=decision_id)
        evaluation.raw_facts = raw_facts
        return result, evaluation

    def run_many(self, items: list[tuple[Any, datetime | None]], *, counters: CounterSource | None = None
                 ) -> list[Made | InvalidFacts]:
        """The engine's batch path: decide every ``(raw facts, now)`` item, in order; an invalid item gets
        its :class:`InvalidFacts`.

        When the decision reads stored counts and the counter source can ``prefetch`` (a store), every
        item's facts are read first and the counts the batch needs are fetched in one query; otherwise
        each item is decided from start to end while its facts are still in the CPU's caches.
        """
        with gc_paused():
            return self._run_many(items, counters)

    def _run_many(self, items: list[tuple[Any, datetime | None]], counters: CounterSource | None
                  ) -> list[Made | InvalidFacts]:
        clock = datetime.now(UTC)
        source = counters or _NO_COUNTERS
        prefetch = getattr(source, "prefetch", None) if self._counter_plan else None
        if prefetch is None:
            return [self._made(raw_facts, None, now or clock, source) for raw_facts, now in items]
        loaded: list[dict[str, Any] | InvalidFacts] = []
        for raw_facts, _ in items:
            try:
                loaded.append(self.load(raw_facts))
            except InvalidFacts as error:
                loaded.append(error)
        prefetch(self.name, [read for facts, (_, now) in zip(loaded, items, strict=True)
                             if not isinstance(facts, InvalidFacts) for read in self._counter_reads(facts, now or clock)])
        return [facts if isinstance(facts, InvalidFacts) else self._made(raw_facts, facts, now or clock, source)
                for facts, (raw_facts, now) in zip(loaded, items, strict=True)]

    def _made(self, raw_facts: Any, facts: dict[str, Any] | None, now: datetime, source: CounterSource
              ) -> Made | InvalidFacts:
        started = perf_counter()
        if facts is None:
            try:
                facts = self.load(raw_facts)
            except InvalidFacts as error:
                return error
        evaluation = self.judge(facts, now=now, counters=source)
        evaluation.raw_facts = raw_facts
        return Made(self.result(evaluation), evaluation, int((perf_counter() - started) * 1_000_000))

    def _counter_reads(self, facts: dict[str, Any], now: datetime
                       ) -> list[tuple[Counter, tuple[Any, ...], datetime, str | None]]:
        """The stored counts a decision on ``facts`` at ``now`` will read (those the facts do not supply)."""
        values = dict(facts)
        values["now"] = now
        partition = self.partition_key(facts)
        reads = []
        for counter, key_parts, fact in self._counter_plan:
            if fact is None or fact(values, None) is None:
                reads.append((counter, tuple(part(values, None) for part in key_parts), now, partition))
        return reads

    def load(self, raw_facts: Any) -> dict[str, Any]:
        """Validated facts: the fast reader's, else the reference reader's (which lists every error)."""
        try:
            return self.read_facts(raw_facts)
        except Unusual:
            self.unusual_facts += 1
            return self.facts.load(raw_facts)

    def run_loaded(self, facts: dict[str, Any], *, now: datetime | None = None, explain: bool = False,
                   counters: CounterSource | None = None,
                   decision_id: str | None = None) -> tuple[dict[str, Any], Evaluation]:
        """:meth:`run` for facts already validated by ``self.facts.load`` (a commit's retries reuse them)."""
        evaluation = self.judge(facts, now=now or datetime.now(UTC), counters=counters)
        return self.result(evaluation, decision_id=decision_id, explain=explain), evaluation

    def judge(self, facts: dict[str, Any], *, now: datetime, counters: CounterSource | None = None,
              reference: bool = False) -> Evaluation:
        """Make the decision for validated ``facts`` as of ``now``: derive, match, find the outcome
        (on the reference path's matcher with ``reference``)."""
        source = counters or _NO_COUNTERS
        counters_read: dict[str, Any] = {}
        if reference:
            values = self._values(facts, now, now, source, counters_read)
            fired = self._match_reference(values)
        else:
            try:
                values, fact = self._derive(dict(facts), now, now, source, counters_read, self.calendar)
            except ArithmeticError:  # past the calendar or Decimal's precision: the reference path's nulls decide
                counters_read.clear()
                values = self._values(facts, now, now, source, counters_read)
                fact = self.fast_encode(values)
            fired = self.fast_matcher.fired(fact)
        outcome = "allow"
        if fired:
            effects = {self._effects[rule] for rule in fired}
            outcome = next((outcome for effect, outcome in OUTCOME_PRECEDENCE if effect in effects), "allow")
        next_eligible_at = None
        if outcome == "defer":
            next_eligible_at = self._next_eligible_at(facts, now, fired, values, None if reference else fact, source,
                                                      counters_read)
        return Evaluation(facts, now, values, fired, outcome, next_eligible_at, counters_read, reference)

    def _match_reference(self, values: dict[str, Any]) -> set[str]:
        return self.matcher.fired(self.encode(values))

    def result(self, evaluation: Evaluation, *, decision_id: str | None = None, explain: bool = False) -> dict[str, Any]:
        """The SPEC §4 decision document of an evaluation (with the trace when ``explain``)."""
        values, outcome, reference = evaluation.values, evaluation.outcome, evaluation.reference
        fired = evaluation.fired
        fired_rules = [rule for rule in self.decision.rules if rule.id in fired] if fired else []
        next_eligible_at = evaluation.next_eligible_at
        result = {
            "decision_id": decision_id or new_id(),
            "decision": self.name,
            "outcome": outcome,
            "reasons": [self._reason(rule, values, reference) for rule in fired_rules if rule.effect == outcome],
            "warnings": [self._reason(rule, values, reference) for rule in fired_rules if rule.effect == "warn"],
            "obligations": self._obligations(fired_rules, outcome, values),
            "values": ({name: to_output(values.get(name)) for name in self.outputs} if reference
                       else self._outputs(values)),
            "next_eligible_at": None if next_eligible_at is None else to_output(next_eligible_at),
            "ruleset": dict(self._ruleset_ref),
            "evaluated_at": to_output(evaluation.now),
        }
        if explain:
            result["trace"] = self._trace(evaluation.fired, self.encode(values), values)
        return result

    def verdict(self, evaluation: Evaluation) -> Verdict:
        """What a replay compares: the decision without its id, messages or trace."""
        outcome, values = evaluation.outcome, evaluation.values
        fired_rules = [rule for rule in self.decision.rules if rule.id in evaluation.fired] if evaluation.fired else []
        return Verdict(
            outcome=outcome,
            reasons=tuple(sorted({rule.code for rule in fired_rules if rule.effect == outcome and rule.code})),
            warnings=tuple(sorted({rule.code for rule in fired_rules if rule.effect == "warn" and rule.code})),
            fired=tuple(rule.qualified_id for rule in fired_rules),
            obligations=self._obligations(fired_rules, outcome, values),
            values=({name: to_output(values.get(name)) for name in self.outputs} if evaluation.reference
                    else self._outputs(values)),
            next_eligible_at=to_output(evaluation.next_eligible_at))

    def reservations(self, values: dict[str, Any]) -> list[Reservation]:
        """What committing an allowed decision adds to each of its counters."""
        now, partition = values["now"], self.partition_key(values)
        return [Reservation(counter_slot(self.name, counter, tuple(evaluate(part, values) for part in counter.key), now,
                                         partition),
                            to_units(counter, evaluate(counter.add, values) or 0))
                for counter in self.decision.counters]

    def business_keys(self, values: dict[str, Any]) -> dict[str, Any]:
        """The record columns a person searches by (order id, customer account, amount…)."""
        return {column: evaluate(expr, values, self.calendar) for column, expr in self.decision.record.items()}

    def label(self, column: str, value: str | None) -> str:
        """The enum label of a record value (``price_difference`` → 补差价), or the value itself."""
        expr = self.decision.record.get(column)
        if value is None or expr is None or expr.type.kind != "enum":
            return value or ""
        return self.decision.enum_labels.get(expr.type.enum or "", {}).get(value, value)

    def _values(self, facts: dict[str, Any], asked_at: datetime, at: datetime, source: CounterSource,
                counters_read: dict[str, Any]) -> dict[str, Any]:
        """Facts plus ``now``, counters and derived values, as they are at instant ``at``; every stored
        count read is noted in ``counters_read`` (the decision log keeps them for replays). This is
        the reference path's, through the interpreter's closures; the fast path runs the same steps as
        generated code (engine/runtime/deriver.py)."""
        values = dict(facts)
        values["now"] = at
        calendar = self.calendar
        same_day = asked_at is at or to_shanghai(asked_at).date() == to_shanghai(at).date()
        partition = self.partition_key(facts) if self._counter_plan else None
        for counter, key_parts, fact in self._counter_plan:
            # A caller's figure for "today" says nothing about another day.
            supplied = None
            if fact is not None and (counter.reset == "never" or same_day):
                supplied = fact(values, None)
            if supplied is None:
                key = tuple(part(values, None) for part in key_parts)
                supplied = source.read(self.name, counter, key, at, partition)
                # the first read of a count is the one the outcome was decided on
                counters_read.setdefault(counter_label(counter, asked_at, at), to_output(supplied))
            values[counter.name] = supplied
        for name, expression, fields in self._derived_plan:
            if expression is None:
                values[name] = {field: compute(values, calendar) for field, compute in fields}
            else:
                values[name] = expression(values, calendar)
        return values

    def _next_eligible_at(self, facts: dict[str, Any], now: datetime, fired: set[str], values: dict[str, Any],
                          fact: dict[str, Any] | None, source: CounterSource,
                          counters_read: dict[str, Any]) -> datetime | None:
        """The earliest instant at which no timing (defer) rule holds back any more.

        Each deferring rule says from when it stops holding (``until``); the latest of those is a
        candidate, and the rules are matched again as of that instant, since there another one may
        hold (a delay ending at 20:20 falls outside a 09:00-20:00 window: next candidate 09:00).
        The fast path (``fact`` given) computes again only what moves with ``now``.
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
            if not within_supported_years(candidate):
                return None  # past the instants the service reads and writes (SPEC §4: 1970–2999)
            at = candidate
            if fact is None:  # the reference path computes everything again
                values = self._values(facts, now, at, source, counters_read)
                fired = self._match_reference(values)
            else:
                try:
                    values, fact = self._derive_moving(dict(values), fact, now, at, source, counters_read, self.calendar)
                except ArithmeticError:
                    values = self._values(facts, now, at, source, counters_read)
                    fact = self.fast_encode(values)
                fired = self.fast_matcher.fired(fact)
        return None

    def _obligations(self, fired_rules: list[Rule], outcome: str, values: dict[str, Any]) -> dict[str, Any]:
        if outcome == "deny" or not any(rule.effect == "oblige" for rule in fired_rules):
            return dict(self._default_obligations)  # nothing is owed on a refusal
        obligations = dict(self.decision.obligations)
        for rule in fired_rules:
            if rule.effect == "oblige":
                for name, value in rule.obligations.items():
                    obligations[name] = evaluate(value, values, self.calendar) if isinstance(value, Expr) else value
        return to_output(obligations)

    def _reason(self, rule: Rule, values: dict[str, Any], reference: bool = False) -> dict[str, Any]:
        calendar = self.calendar
        if reference:
            message = {lang: "".join([part if type(part) is str else to_text(part(values, calendar)) for part in parts])
                       for lang, parts in self._templates[rule.id].items()}
        else:
            try:
                message = {lang: render(values, calendar) for lang, render in self._messages.get(rule.id, {}).items()}
            except ArithmeticError:
                return self._reason(rule, values, reference=True)
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
                "assumptions": assumption_marks(rule.assumptions, self.decision.constants),
            })
        return trace


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a batch.

    A batch keeps each item's evaluation (its values, for the decision log) until the batch ends; the
    collector would walk those thousands of young containers again and again (a sixth of a batch's time,
    measured), while our objects hold no cycles: reference counting frees them all the same.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _partition_key_of(decision: Decision) -> Callable[[dict[str, Any]], str | None]:
    """The function giving ``decision``'s ``partition`` for (validated) facts, as text; None if it declares none."""
    partition = decision.partition

    def partition_key(facts: dict[str, Any]) -> str | None:
        if partition is None:
            return None
        return json.dumps(to_output(evaluate(partition, facts)), ensure_ascii=False)

    return partition_key


def _moving_with_now(decision: Decision) -> set[str]:
    """The counters and derived values whose value can change with ``now`` (directly or through others):
    daily counters, and whatever reads ``now`` or them."""
    moving = {"now"}
    for counter in decision.counters:
        reads = set().union(*(names_read(part) for part in counter.key), names_read(counter.fact) if counter.fact else set())
        if counter.reset == "shanghai_day" or reads & moving:
            moving.add(counter.name)
    for derived in decision.derived:
        expressions = [derived.expr] if derived.expr is not None else list(derived.fields.values())
        if set().union(*(names_read(expr) for expr in expressions)) & moving:
            moving.add(derived.name)
    return moving


def _template(text: str, placeholders: dict[str, Expr]) -> list[Any]:
    """A message as literal text and the compiled placeholder expressions between, in order."""
    parts: list[Any] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        parts += [text[position:match.start()], evaluator(placeholders[match.group(1)])]
        position = match.end()
    parts.append(text[position:])
    return [part for part in parts if part != ""]
