"""Evaluating one decision: validate facts, derive values, match with durable_rules, build the result.

The served path is the *decision program* generated at load (engine/runtime/program.py): one function
that reads, derives, encodes, matches and builds the SPEC §4 document. Its steps also exist one at a
time, for callers that need only part of them: :meth:`CompiledDecision.judge` makes the decision (an
:class:`Evaluation`: what fired, the outcome, ``next_eligible_at``, the values and stored counters it
was made on) and :meth:`CompiledDecision.result` renders the document (id, messages, trace); replays
compare :meth:`CompiledDecision.verdict`, which needs no messages. The oracle the differential tests
hold all of them to is :class:`engine.reference.decide.ReferenceDecision`, in its own package.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from engine.errors import InvalidFacts
from engine.ids import new_id
from engine.language.expressions import names_read, sensitive_record_columns
from engine.language.model import Counter, Decision, Domain, Rule, sensitive_paths
from engine.reference.decide import ReferenceDecision
from engine.runtime.bookkeeping import build_bookkeeping, served_partition_key, until_of
from engine.runtime.calendar import Calendar
from engine.runtime.deriver import build_counter_reads, build_derivers, build_messages, build_outputs
from engine.runtime.encoder import build_encoder, condition_fields
from engine.runtime.matcher import FlatMatcher
from engine.runtime.program import Evaluation, Outcomes, build_obligations, build_program, next_eligible_search
from engine.runtime.reader import Unusual, build_reader
from engine.runtime.rulesets import decision_rulesets
from engine.runtime.values import to_output
from engine.state.base import Reservation, counter_slot, to_units
from engine.state.counters import CounterSource, NoCounters
from engine.verdict import Verdict

__all__ = ["CompiledDecision", "Evaluation", "Made", "gc_paused"]

_NO_COUNTERS = NoCounters()


@dataclass(slots=True)
class Made:
    """One item of a batch: the decision document, its evaluation, and how long it took."""

    result: dict[str, Any]
    evaluation: Evaluation
    duration_us: int


class CompiledDecision:
    """A decision ready to evaluate: its generated decision program and durable_rules rulesets, built once.

    The program reads facts with code generated from the declarations and matches a flat fact with
    short names on durable_rules. What it leaves goes to the steps one at a time (:meth:`judge`,
    :meth:`result`): facts in unusual shapes or invalid are read by :attr:`reference`'s marshmallow
    reader (every error by path); arithmetic past the calendar takes the oracle's values (its nulls)
    but still the served matcher, and a message or obligation that cannot be computed takes the
    oracle's; explain's trace is the oracle's, which matches the nested fact, asserting and retracting it.
    """

    def __init__(self, decision: Decision, domain: Domain, calendar: Calendar | None = None):
        self.decision = decision
        self.domain = domain
        self.calendar = calendar or Calendar()
        self.sensitive_paths = sensitive_paths(decision.facts)  # masked in the decision log
        self.sensitive_record_columns = sensitive_record_columns(decision)  # and in records, for most readers
        # The rulesets as validation compiled them (engine/runtime/rulesets.py): a loaded file activates.
        rulesets = decision_rulesets(decision.rules)
        fields = condition_fields([rule.when for rule in decision.rules])
        self.field_names = rulesets.field_names
        self.fast_definition = rulesets.definition("fast", decision.name)
        self.fast_matcher = FlatMatcher(decision.name, self.fast_definition)
        self.fast_encode, self.fast_encoder_source = build_encoder(decision.name, fields, self.field_names,
                                                                   set(decision.facts))
        self.read_facts, self.reader_source = build_reader(decision.name, decision.facts)
        self.unusual_facts = 0  # facts the fast reader left to the reference reader (the bench reports it)
        self.bookkeeping = build_bookkeeping(decision)
        # Closures over the decision and its bookkeeping, not bound methods: the generated code would hold
        # this object in a reference cycle, and its native rulesets would outlive a reload until the
        # cyclic collector happened to run.
        self.partition_key = served_partition_key(self.bookkeeping, self.calendar)
        self._until = until_of(self.bookkeeping)
        # What changes with `now`: next_eligible_at recomputes only these at each instant it tries.
        self._derive, self._derive_moving, self.deriver_source = build_derivers(
            decision, _moving_with_now(decision), fields, self.field_names, self.partition_key)
        self._generated_counter_reads, self.counter_reads_source = build_counter_reads(decision, self.partition_key)
        self._messages, reasons, self.messages_source = build_messages(decision, decision.rules)
        self._outputs, self.outputs_source = build_outputs(decision)
        self._ruleset_ref = {"domain": domain.name, "version": domain.version}
        obliging, self.obligations_source = build_obligations(decision)
        self.outcomes = Outcomes(decision, reasons, obliging)
        self._program, self.decide_source = build_program(
            decision, self._ruleset_ref, fields=fields, names=self.field_names, partition_key=self.partition_key,
            read=self.read_facts, fired=self.fast_matcher.fired, outcomes=self.outcomes, outputs=self._outputs)
        self.reference = ReferenceDecision(decision, self._ruleset_ref, self.calendar, rulesets, self.outcomes)
        self.facts = self.reference.facts  # the reference reader: every error by path
        self.outputs = self.reference.outputs

    @property
    def name(self) -> str:
        return self.decision.name

    @property
    def program_source(self) -> str:
        """The Python generated for this decision at load, as it runs (``rulesvc check --show-compiled``):
        the decision program and what it calls — the reader, the messages and reasons, the obligations
        and the output values — and the derivers ``next_eligible_at`` and the fallbacks use."""
        parts = (("the decision program", self.decide_source), ("read the request's facts", self.reader_source),
                 ("render the messages and reasons", self.messages_source),
                 ("obligations that read values", self.obligations_source), ("the output values", self.outputs_source),
                 ("derive values and encode the fact (next_eligible_at, fallbacks)", self.deriver_source),
                 ("the stored counts a batch fetches first", self.counter_reads_source),
                 ("partition key, counter changes, record columns and until instants", self.bookkeeping.source))
        return "\n\n".join(f"# --- {self.name}: {what} ---\n{text}" for what, text in parts)

    def evaluate(self, raw_facts: Any, *, now: datetime | None = None, explain: bool = False,
                 counters: CounterSource | None = None, decision_id: str | None = None) -> dict[str, Any]:
        """The decision for ``raw_facts`` at ``now``; raises :class:`InvalidFacts` on bad input."""
        return self.run(raw_facts, now=now, explain=explain, counters=counters, decision_id=decision_id)[0]

    def run(self, raw_facts: Any, *, now: datetime | None = None, explain: bool = False,
            counters: CounterSource | None = None, decision_id: str | None = None) -> tuple[dict[str, Any], Evaluation]:
        """The decision document and the :class:`Evaluation` behind it (for commits and the decision log).

        The decision program makes it; what it leaves (unusual facts, arithmetic past the calendar, a
        trace) is made by the steps one at a time."""
        now = now or datetime.now(UTC)  # one instant, also when the steps take over
        if not explain:
            made = self._decide(raw_facts, None, now, counters or _NO_COUNTERS, decision_id)
            if made is not None:
                return made
        result, evaluation = self.run_loaded(self.load(raw_facts), now=now, explain=explain, counters=counters,
                                             decision_id=decision_id)
        evaluation.raw_facts = raw_facts
        return result, evaluation

    def _decide(self, raw_facts: Any, facts: dict[str, Any] | None, now: datetime, source: CounterSource,
                decision_id: str | None) -> tuple[dict[str, Any], Evaluation] | None:
        """The decision program's answer; None where it leaves the request to the steps one at a time."""
        try:
            return self._program(raw_facts, facts, now, source, {}, self.calendar, decision_id, self._next_eligible_at)
        except Unusual:
            return None
        except ArithmeticError:  # past the calendar or Decimal's precision: the reference path's nulls decide
            return None

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
        prefetch = getattr(source, "prefetch", None) if self.reference.counter_plan else None
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
        made = self._decide(raw_facts, facts, now, source, None)
        if made is not None:
            return Made(made[0], made[1], int((perf_counter() - started) * 1_000_000))
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
        try:
            return self._generated_counter_reads(dict(facts), now, self.calendar)
        except ArithmeticError:  # past the calendar or Decimal's precision: the interpreter's nulls decide
            values = dict(facts)
            values["now"] = now
            partition = self.partition_key(facts)
            calendar = self.calendar
            return [(counter, tuple(part(values, calendar) for part in key_parts), now, partition)
                    for counter, key_parts, fact in self.reference.counter_plan
                    if fact is None or fact(values, calendar) is None]

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
        (the oracle's way with ``reference``)."""
        if reference:
            return self.reference.judge(facts, now=now, counters=counters)
        source = counters or _NO_COUNTERS
        counters_read: dict[str, Any] = {}
        try:
            values, fact = self._derive(dict(facts), now, now, source, counters_read, self.calendar)
        except ArithmeticError:  # past the calendar or Decimal's precision: the reference path's nulls decide
            counters_read.clear()
            values = self.reference.values(facts, now, now, source, counters_read)
            fact = self.fast_encode(values)
        fired = self.fast_matcher.fired(fact)
        outcome = self.outcomes.of(fired).outcome
        next_eligible_at = None
        if outcome == "defer":
            next_eligible_at = self._next_eligible_at(facts, now, fired, values, fact, source, counters_read)
        return Evaluation(facts, now, values, fired, outcome, next_eligible_at, counters_read)

    def result(self, evaluation: Evaluation, *, decision_id: str | None = None, explain: bool = False) -> dict[str, Any]:
        """The SPEC §4 decision document of an evaluation (with the trace when ``explain``)."""
        if evaluation.reference:
            result = self.reference.result(evaluation, decision_id or new_id())
        else:
            values, outcome = evaluation.values, evaluation.outcome
            decided = self.outcomes.of(evaluation.fired)
            next_eligible_at = evaluation.next_eligible_at
            result = {
                "decision_id": decision_id or new_id(),
                "decision": self.name,
                "outcome": outcome,
                "reasons": [self._reason(rule, values) for rule in decided.fired_rules if rule.effect == outcome],
                "warnings": [self._reason(rule, values) for rule in decided.fired_rules if rule.effect == "warn"],
                "obligations": self._obligations(decided, values),
                "values": self._outputs(values),
                "next_eligible_at": None if next_eligible_at is None else to_output(next_eligible_at),
                "ruleset": dict(self._ruleset_ref),
                "evaluated_at": to_output(evaluation.now),
            }
        if explain:
            result["trace"] = self.reference.trace(evaluation.fired, evaluation.values)
        return result

    def verdict(self, evaluation: Evaluation) -> Verdict:
        """What a replay compares: the decision without its id, messages or trace."""
        values = evaluation.values
        decided = self.outcomes.of(evaluation.fired)
        reference = evaluation.reference
        return Verdict(
            outcome=evaluation.outcome, reasons=decided.reason_codes, warnings=decided.warning_codes,
            fired=decided.fired_ids,
            obligations=(self.reference.obligations(list(decided.fired_rules), evaluation.outcome, values) if reference
                         else self._obligations(decided, values)),
            values=self.reference.output_values(values) if reference else self._outputs(values),
            next_eligible_at=to_output(evaluation.next_eligible_at))

    def reservations(self, values: dict[str, Any]) -> list[Reservation]:
        """What committing an allowed decision adds to each of its counters."""
        now, partition = values["now"], self.partition_key(values)
        return [Reservation(counter_slot(self.name, counter, key, now, partition), to_units(counter, added or 0))
                for counter, key, added in self.bookkeeping.counter_changes(values, self.calendar)]

    def business_keys(self, values: dict[str, Any]) -> dict[str, Any]:
        """The record columns a person searches by (order id, customer account, amount…)."""
        return self.bookkeeping.record_columns(values, self.calendar)

    def label(self, column: str, value: str | None) -> str:
        """The enum label of a record value (``price_difference`` → 补差价), or the value itself."""
        expr = self.decision.record.get(column)
        if value is None or expr is None or expr.type.kind != "enum":
            return value or ""
        return self.decision.enum_labels.get(expr.type.enum or "", {}).get(value, value)

    def _next_eligible_at(self, facts: dict[str, Any], now: datetime, fired: set[str], values: dict[str, Any],
                          fact: dict[str, Any], source: CounterSource, counters_read: dict[str, Any]) -> datetime | None:
        """``next_eligible_at`` of a deferred decision (:func:`next_eligible_search`), computing again at
        each instant tried only what moves with ``now``."""
        current = fact

        def again(at: datetime, earlier: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
            nonlocal current
            try:
                moved, current = self._derive_moving(dict(earlier), current, now, at, source, counters_read,
                                                     self.calendar)
            except ArithmeticError:
                moved = self.reference.values(facts, now, at, source, counters_read)
                current = self.fast_encode(moved)
            return moved, self.fast_matcher.fired(current)

        return next_eligible_search(self.decision.rules, self.calendar, now, fired, values, again, self._until)

    def _obligations(self, decided: Any, values: dict[str, Any]) -> dict[str, Any]:
        if decided.obligations is not None:
            return decided.obligations.copy()
        try:
            return self.outcomes.obligations(decided, values, self.calendar)
        except ArithmeticError:
            return self.reference.obligations(list(decided.fired_rules), decided.outcome, values)

    def _reason(self, rule: Rule, values: dict[str, Any]) -> dict[str, Any]:
        calendar = self.calendar
        try:
            message = {lang: render(values, calendar) for lang, render in self._messages.get(rule.id, {}).items()}
        except ArithmeticError:
            return self.reference.reason(rule, values)
        return {"code": rule.code, "rule": rule.qualified_id, "message": message}


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
