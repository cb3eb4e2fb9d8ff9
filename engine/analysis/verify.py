"""The verifier: one function per property of SPEC §13, each a solver query whose witness is checked.

A query is ``assumptions ∧ goal``. *unsat* is a proof (the encoding over-approximates what it cannot
express exactly, so a proof stays a proof). *sat* gives a model; the concretizer turns it into a
request, the service decides it, and only when the service agrees is it reported as a witness. When
it does not, the calendar functions the model guessed are computed in Python and added as lemmas,
and the query runs again (a few rounds); still no agreement, or the solver's own *unknown* or
timeout, is ``unknown`` with the positions of what the encoding left free — never a pass.

Witnesses are first looked for with every list within the bound the encoding represents item by
item (:data:`~engine.analysis.values.LIST_BOUND`), where every value is exact.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import z3

from engine.analysis.concretize import Witness, WitnessTooLarge, concretize, run_witness
from engine.analysis.decision import EncodedDecision, encode
from engine.analysis.terms import Abstraction, Application, where_of
from engine.errors import InvalidFacts
from engine.language.expressions import Call, Compare, Expr, ListLit, Lit, Logic, Not, children
from engine.language.model import OUTCOMES, Decision, Invariant
from engine.reference.interpret import compare, evaluate
from engine.runtime.evaluation import CompiledDecision
from engine.runtime.program import Evaluation
from engine.runtime.values import parse_date, parse_instant, parse_time

DEFAULT_TIMEOUT = 10.0  # seconds per decision (SPEC §13)
MAX_ROUNDS = 6  # refinement rounds of one query
_NO_AGREEMENT = "no candidate the service agrees with"
_CAPPED = "the query took longer than a region may"
REGION_SECONDS = 1.0  # the most one query may take in the readable or the exact-list region


@dataclass
class Answer:
    """What one query found: ``found`` (a checked witness), ``none`` (proved: no request) or ``unknown``."""

    status: str
    witness: Witness | None = None
    why: str = ""
    result: dict[str, Any] | None = None  # the service's decision on the witness


@dataclass
class Outcome:
    """``(result, evaluation)`` of the service on a witness, or the validation error."""

    result: dict[str, Any] | None
    evaluation: Evaluation | None
    invalid: InvalidFacts | None = None


class Query:
    """Runs goals over one or more encoded decisions sharing a request, within a time budget."""

    def __init__(self, encoded: list[EncodedDecision], deadline: float, rounds: int = MAX_ROUNDS, *,
                 valid: bool = True):
        self.encoded = encoded
        self.deadline = deadline
        self.rounds = rounds
        self.lemmas: list[z3.BoolRef] = []
        # valid=False: the goals say for which versions the request is valid (a diff)
        self.assumptions = [assumption for item in encoded for assumption in item.assumptions(valid=valid)]
        self.assumptions += monotonicity([application for item in encoded for application in item.findings.applications])

    def search(self, goal: z3.BoolRef, confirm: Callable[[Witness], tuple[bool, dict[str, Any] | None]]) -> Answer:
        """A checked witness of ``goal``, a proof that there is none, or unknown. Witnesses are looked for
        in readable requests first, then with every list exact; only the unconstrained query proves."""
        exact = z3.And([item.inputs.exact_lists() for item in self.encoded])
        readable = z3.And([item.inputs.readable() for item in self.encoded])
        for region in (z3.And(exact, readable), exact):
            # a region only makes witnesses nicer: a hard query there moves on to the next one
            answer = self._search(goal, confirm, region, cap=REGION_SECONDS)
            if answer.status == "found" or (answer.status == "unknown" and answer.why not in (_NO_AGREEMENT, _CAPPED)):
                return answer  # a witness, or out of time
        beyond = self._search(goal, confirm, None)  # the only query whose unsat is a proof
        if beyond.status == "unknown" and beyond.why == _NO_AGREEMENT:
            beyond.why = "no candidate the service agrees with (lists past the bound or values left free)"
        return beyond

    def _search(self, goal: z3.BoolRef, confirm: Callable[[Witness], tuple[bool, dict[str, Any] | None]],
                region: z3.BoolRef | None, cap: float | None = None) -> Answer:
        blocked: list[z3.BoolRef] = []
        pinned: z3.BoolRef | None = None
        for _ in range(self.rounds):
            left = self.deadline - clock.monotonic()
            if left <= 0:
                return Answer("unknown", why="timeout")
            solver = z3.Solver()
            solver.set("timeout", max(1, int(min(left, cap or left) * 1000)))
            solver.add(*self.assumptions, *self.lemmas, *blocked, goal)
            if region is not None:
                solver.add(region)
            checked = z3.unknown
            if pinned is not None:  # first where the lemmas just learnt apply: the search converges
                solver.push()
                solver.add(pinned)
                checked = solver.check()
                if checked != z3.sat:
                    solver.pop()
            if checked != z3.sat:
                checked = solver.check()
            if checked == z3.unsat:
                return Answer("none")
            if checked == z3.unknown:
                reason = solver.reason_unknown()
                timed_out = "timeout" in reason or "canceled" in reason
                if timed_out and cap is not None and self.deadline - clock.monotonic() > 0:
                    return Answer("unknown", why=_CAPPED)
                return Answer("unknown", why="timeout" if timed_out else reason)
            model = solver.model()
            try:
                witness = concretize(model, self.encoded)
            except WitnessTooLarge as error:
                return Answer("unknown", why=str(error))
            agreed, result = confirm(witness)
            if agreed:
                return Answer("found", witness, result=result)
            new, pinned = self._lemmas(model)
            if new:
                self.lemmas += new
            else:  # the model leans on a free value: look for another
                pinned = None
                blocked.append(z3.Not(z3.And([decl() == model[decl] for decl in model.decls() if decl.arity() == 0])))
        return Answer("unknown", why=_NO_AGREEMENT)

    def _lemmas(self, model: z3.ModelRef) -> tuple[list[z3.BoolRef], z3.BoolRef | None]:
        """For each calendar function the model guessed wrong, Python's answer at those arguments; and
        the arguments themselves, to try next."""
        lemmas: list[z3.BoolRef] = []
        at: list[z3.BoolRef] = []
        seen: set[tuple[str, tuple[int, ...]]] = set()
        for item in self.encoded:
            for application in item.findings.applications:
                lemma = _lemma(model, application, seen)
                if lemma is not None:
                    lemmas.append(lemma)
                    # the request's own variables the arguments read (not other guessed applications)
                    at += [variable == model.eval(variable, model_completion=True)
                           for arg in application.args for variable in _variables(arg)]
        return lemmas, (z3.And(at) if at else None)


# Calendar functions that move later with a later date and a larger count (the count strictly, for
# working days and months: each one counted is at least one more day).
_MONOTONE = {"add_working_days": True, "add_months": True, "add_years": True}


def monotonicity(applications: list[Application]) -> list[z3.BoolRef]:
    """Sound axioms relating the applications of one calendar function to each other: a later date and
    a count no smaller never give an earlier date (from a count of at least 0)."""
    axioms: list[z3.BoolRef] = []
    for first in applications:
        for second in applications:
            if first is second or first.name != second.name or first.name not in _MONOTONE:
                continue
            if str(first.result.decl()) != str(second.result.decl()):
                continue  # two calendars
            (day, count), (other_day, other_count) = first.args, second.args
            both = z3.And(first.defined, second.defined, count >= 0, day <= other_day)
            axioms.append(z3.Implies(z3.And(both, count <= other_count), first.result <= second.result))
            if _MONOTONE[first.name]:
                axioms.append(z3.Implies(z3.And(both, count < other_count), first.result < second.result))
    return axioms


def _variables(term: z3.ExprRef) -> list[z3.ExprRef]:
    """The uninterpreted constants in a term (the request's variables), not through function applications."""
    found: dict[str, z3.ExprRef] = {}
    pending = [term]
    while pending:
        node = pending.pop()
        if z3.is_const(node) and node.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            found.setdefault(str(node), node)
        elif z3.is_app(node) and node.decl().kind() != z3.Z3_OP_UNINTERPRETED:
            pending.extend(node.children())
    return list(found.values())


def _lemma(model: z3.ModelRef, application: Application, seen: set[tuple[str, tuple[int, ...]]]) -> z3.BoolRef | None:
    args = [model.eval(arg, model_completion=True).as_long() for arg in application.args]
    key = (str(application.result.decl()), tuple(args))
    if key in seen:
        return None
    seen.add(key)
    answer = application.compute(args)
    if answer is None:
        return None
    defined, value = answer
    guessed_defined = z3.is_true(model.eval(application.defined, model_completion=True))
    guessed = model.eval(application.result, model_completion=True)
    same_value = (z3.is_true(guessed) == value) if isinstance(value, bool) else guessed.as_long() == value
    if guessed_defined == defined and (not defined or same_value):
        return None
    at = z3.And([arg == concrete for arg, concrete in zip(application.args, args, strict=True)])
    value_term = z3.BoolVal(value) if isinstance(value, bool) else z3.IntVal(value)
    truth = z3.And(application.defined == defined, application.result == value_term) if defined \
        else application.defined == z3.BoolVal(False)
    return z3.Implies(at, truth)


# --- running witnesses ------------------------------------------------------------------------

def decide(compiled: CompiledDecision, witness: Witness) -> Outcome:
    try:
        result, evaluation = run_witness(compiled, witness)
    except InvalidFacts as error:
        return Outcome(None, None, error)
    return Outcome(result, evaluation)


def codes(result: dict[str, Any], key: str = "reasons") -> list[str]:
    return sorted({reason["code"] for reason in result[key]})


# --- verify ------------------------------------------------------------------------------------

@dataclass
class DecisionReport:
    decision: str
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead: list[dict[str, Any]] = field(default_factory=list)
    always: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    invariants: dict[str, dict[str, Any]] = field(default_factory=dict)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def problems(self) -> int:
        violated = sum(1 for item in self.invariants.values() if item["status"] == "violated")
        return len(self.dead) + len(self.always) + len(self.errors) + violated

    def to_json(self) -> dict[str, Any]:
        return {"outcomes": self.outcomes, "dead": self.dead, "always": self.always, "errors": self.errors,
                "invariants": self.invariants, "unknown": self.unknown, "problems": self.problems,
                "seconds": round(self.seconds, 3)}


def verify_decision(compiled: CompiledDecision, *, timeout: float = DEFAULT_TIMEOUT) -> DecisionReport:
    """Every SPEC §13 property of one decision, each proved, refuted with a checked witness, or unknown."""
    started = clock.monotonic()
    decision = compiled.decision
    encoded = encode(decision, compiled.calendar)
    query = Query([encoded], started + timeout)
    report = DecisionReport(decision.name)

    def unknown(what: str, why: str, where: str | None = None) -> None:
        entry = {"property": what, "why": why}
        if where:
            entry["where"] = where
        report.unknown.append(entry)

    for outcome in OUTCOMES:
        answer = query.search(encoded.outcome_is[outcome], _confirm(compiled, lambda out, o=outcome: out.result["outcome"] == o))
        report.outcomes[outcome] = _status(answer, "reachable", "unreachable")
        if answer.status == "unknown":
            unknown(f"outcomes.{outcome}", answer.why)
    for rule in decision.rules:
        where = str(where_of(rule.when))
        fires = query.search(encoded.fired[rule.id], _confirm(compiled, lambda out, r=rule.id: r in out.evaluation.fired))
        if fires.status == "none":
            report.dead.append({"rule": rule.qualified_id, "where": where,
                                "message": f"no valid request fires {rule.qualified_id}"})
        elif fires.status == "unknown":
            unknown(f"dead.{rule.id}", fires.why, where)
        rests = query.search(z3.Not(encoded.fired[rule.id]),
                             _confirm(compiled, lambda out, r=rule.id: r not in out.evaluation.fired))
        if rests.status == "none":
            report.always.append({"rule": rule.qualified_id, "where": where,
                                  "message": f"every valid request fires {rule.qualified_id}"})
        elif rests.status == "unknown":
            unknown(f"always.{rule.id}", rests.why, where)
    for site in encoded.findings.sites:
        answer = query.search(site.failed, _confirm(compiled, lambda out, s=site: _fails(s.expr, out, compiled)))
        if answer.status == "found":
            report.errors.append({"where": str(site.where), "expression": site.text, "what": site.what,
                                  "witness": answer.witness.to_json()})
        elif answer.status == "unknown":
            unknown("errors", answer.why, str(site.where))
    for invariant in decision.invariants:
        when, then = encoded.invariant(invariant)
        answer = query.search(z3.And(when, z3.Not(then)),
                              _confirm(compiled, lambda out, inv=invariant: _violates(inv, out, compiled)))
        entry: dict[str, Any] = {"status": {"none": "proved", "found": "violated", "unknown": "unknown"}[answer.status],
                                 "where": str(where_of(invariant.when)), "when": invariant.when_text,
                                 "then": invariant.then_text, "message": invariant.messages}
        if answer.witness is not None:
            entry["witness"] = answer.witness.to_json()
            entry["result"] = _summary(answer.result)
        if answer.status == "unknown":
            entry["why"] = answer.why
            unknown(f"invariants.{invariant.id}", answer.why, entry["where"])
        report.invariants[invariant.id] = entry
    if report.unknown:
        report.unknown += [_free(abstraction) for abstraction in encoded.findings.abstractions]
    report.seconds = clock.monotonic() - started
    return report


def _free(abstraction: Abstraction) -> dict[str, Any]:
    return {"property": "encoding", "where": str(abstraction.where), "why": abstraction.message}


def _status(answer: Answer, found: str, none: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": {"found": found, "none": none, "unknown": "unknown"}[answer.status]}
    if answer.witness is not None:
        entry["witness"] = answer.witness.to_json()
    if answer.status == "unknown":
        entry["why"] = answer.why
    return entry


def _summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"outcome": result["outcome"], "reasons": codes(result), "obligations": result["obligations"]}


def _confirm(compiled: CompiledDecision, agrees: Callable[[Outcome], bool]
             ) -> Callable[[Witness], tuple[bool, dict[str, Any] | None]]:
    def confirm(witness: Witness) -> tuple[bool, dict[str, Any] | None]:
        outcome = decide(compiled, witness)
        if outcome.result is None:
            return False, None  # not a valid request: never a witness
        return agrees(outcome), outcome.result
    return confirm


def _fails(expr: Expr, outcome: Outcome, compiled: CompiledDecision) -> bool:
    """Whether ``expr`` is null on the witness's values although its operands are not."""
    values = outcome.evaluation.values
    if evaluate(expr, values, compiled.calendar) is not None:
        return False
    return all(evaluate(child, values, compiled.calendar) is not None for child in children(expr))


# --- invariants, concretely ------------------------------------------------------------------

def _violates(invariant: Invariant, outcome: Outcome, compiled: CompiledDecision) -> bool:
    values = result_values(compiled.decision, outcome)
    calendar = compiled.calendar
    return holds(invariant.when, values, calendar) and not holds(invariant.then, values, calendar)


def result_values(decision: Decision, outcome: Outcome) -> dict[str, Any]:
    """The names an invariant reads, in their Python form, for one decided request."""
    result, evaluation = outcome.result, outcome.evaluation
    values = dict(evaluation.values)
    values["outcome"] = result["outcome"]
    values["reasons"] = [reason["code"] for reason in result["reasons"]]
    values["warnings"] = [warning["code"] for warning in result["warnings"]]
    values["obligations"] = {name: _python(value) for name, value in result["obligations"].items()}
    values["values"] = {derived.name: evaluation.values.get(derived.name) for derived in decision.derived if derived.output}
    values["next_eligible_at"] = evaluation.next_eligible_at
    return values


def _python(value: Any) -> Any:
    """An obligation's output form back in its Python form (money, instants, dates, times of day)."""
    if isinstance(value, str):
        for parse in (parse_instant, parse_date, parse_time):
            try:
                return parse(value)
            except ValueError:
                continue
        try:
            return Decimal(value) if value.replace(".", "", 1).isdigit() and "." in value else value
        except ArithmeticError:
            return value
    return value


def holds(expr: Expr, values: dict[str, Any], calendar: Any) -> bool:
    """A condition with the matcher's semantics (a comparison with a missing name is false) on Python values."""
    if isinstance(expr, Logic):
        parts = [holds(operand, values, calendar) for operand in expr.operands]
        return all(parts) if expr.op == "and" else any(parts)
    if isinstance(expr, Not):
        return not holds(expr.operand, values, calendar)
    if isinstance(expr, Lit):
        return expr.value is True
    if isinstance(expr, Call) and expr.function == "exists":
        return evaluate(expr.args[0], values, calendar) is not None
    if isinstance(expr, Compare):
        left, right = expr.left, expr.right
        if expr.op in ("in", "not in"):
            item = evaluate(left, values, calendar)
            items = [entry.value for entry in right.items] if isinstance(right, ListLit) else evaluate(right, values, calendar)
            if isinstance(right, (ListLit, Lit)):
                if item is None:
                    return False
                return (item in items) if expr.op == "in" else (item not in items)
            found = item is not None and items is not None and item in items
            return found if expr.op == "in" else not found
        if isinstance(right, Lit) and right.value is None:
            present = evaluate(left, values, calendar) is not None
            return present if expr.op == "!=" else not present
        a, b = evaluate(left, values, calendar), evaluate(right, values, calendar)
        if a is None or b is None:
            return False
        return compare(expr.op, a, b)
    return evaluate(expr, values, calendar) is True


def verify_rulebook(rulebook: Any, *, decision: str | None = None, domain: str | None = None,
                    timeout: float = DEFAULT_TIMEOUT, deadline: float | None = None) -> dict[str, Any]:
    """``rulesvc verify``'s JSON: every decision of a loaded rulebook (or one, or a domain's), and a summary.

    ``timeout`` bounds each decision; ``deadline`` (``time.monotonic()``) the whole run: a decision
    reached after it is all unknown ("timeout"), never proved."""
    names = [decision] if decision else sorted(name for name in rulebook.decisions
                                               if domain is None or name.split(".")[0] == domain)
    reports: dict[str, DecisionReport] = {}
    for name in names:
        allowed = timeout if deadline is None else min(timeout, deadline - clock.monotonic())
        if allowed <= 0:
            reports[name] = DecisionReport(name, unknown=[{"property": "all", "why": "timeout"}])
            continue
        reports[name] = verify_decision(rulebook.decision(name), timeout=allowed)
    problems = sum(report.problems for report in reports.values())
    unknown = sum(len(report.unknown) for report in reports.values())
    return {
        "decisions": {name: report.to_json() for name, report in reports.items()},
        "summary": {"decisions": len(reports), "problems": problems, "unknown": unknown,
                    "proved": problems == 0 and unknown == 0,
                    "seconds": round(sum(report.seconds for report in reports.values()), 3)},
    }


def exit_code(summary: dict[str, Any]) -> int:
    """SPEC §13: 0 everything proved, 1 a problem, 4 something unknown."""
    if summary["problems"]:
        return 1
    return 4 if summary["unknown"] else 0
