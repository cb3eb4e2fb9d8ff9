"""One decision as formulas: its counters, derived values, which rules fire, the outcome and result.

The order is the engine's (reference/decide.py): counters (a caller's figure, else the stored count),
derived values in declaration order, the rules' conditions as durable_rules matches them, the
outcome by precedence (deny, review, defer, else allow), reasons (the fired rules of the outcome's
effect), warnings, and obligations (the declared defaults, set by the fired ``oblige`` rules in file
order unless the outcome is deny).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from engine.analysis.inputs import Declaration, Inputs
from engine.analysis.terms import Findings, Terms, Where, where_of
from engine.analysis.values import FALSE, TRUE, Obj, Scalar, Seq, Value, constant, null
from engine.language.expressions import Expr, Ref, walk
from engine.language.model import OUTCOME_PRECEDENCE, OUTCOMES, Decision, Invariant
from engine.runtime.calendar import Calendar
from engine.runtime.values import INSTANT, Type, list_of

OUTCOME_TYPE = Type("enum", enum="outcome", values=OUTCOMES)


@dataclass
class EncodedDecision:
    decision: Decision
    inputs: Inputs
    facts: dict[str, Value]
    env: dict[str, Value]
    fired: dict[str, z3.BoolRef]  # rule id -> it fires
    outcome_is: dict[str, z3.BoolRef]
    reasons: dict[str, z3.BoolRef]  # code -> it is among the reasons
    warnings: dict[str, z3.BoolRef]
    obligations: dict[str, Value]
    findings: Findings
    terms: Terms
    axioms: list[z3.BoolRef] = field(default_factory=list)
    counters_from_store: dict[str, z3.BoolRef] = field(default_factory=dict)  # counter -> the store's count is read
    declaration: Declaration | None = None  # the facts as this decision declares them

    @property
    def valid(self) -> z3.BoolRef:
        """The request is valid for this decision (its facts' declarations; nothing undeclared)."""
        assert self.declaration is not None
        return z3.And(*self.declaration.validity, *self.inputs.undeclared(self.declaration))

    @property
    def outcome(self) -> z3.ExprRef:
        term: z3.ExprRef = z3.StringVal("allow")
        for outcome in ("defer", "review", "deny"):
            term = z3.If(self.outcome_is[outcome], z3.StringVal(outcome), term)
        return term

    def assumptions(self, *, valid: bool = True) -> list[z3.BoolRef]:
        """What every request keeps: the encoding's structure and axioms, and (``valid``) its validity."""
        return [*self.inputs.constraints, *self.axioms, *self.terms.axioms, *([self.valid] if valid else [])]

    def invariant(self, invariant: Invariant) -> tuple[z3.BoolRef, z3.BoolRef]:
        """(``when``, ``then``) of an invariant over this decision's request and result."""
        terms = self._result_terms()
        return (terms.condition_of(invariant.when, matcher=False), terms.condition_of(invariant.then, matcher=False))

    def _result_terms(self) -> Terms:
        kept = self.__dict__.get("_result")
        if kept is not None:
            return kept
        codes_type = list_of(Type("str"))
        env = dict(self.env)
        env["outcome"] = Scalar(TRUE, self.outcome, OUTCOME_TYPE)
        # one entry per rule, as the result lists them (two rules with one code: the code twice)
        env["reasons"] = _code_list([(z3.And(self.fired[rule.id], self.outcome_is[rule.effect]), rule.code)
                                     for rule in self.decision.rules
                                     if rule.code and rule.effect in self.outcome_is], codes_type)
        env["warnings"] = _code_list([(self.fired[rule.id], rule.code) for rule in self.decision.rules
                                      if rule.code and rule.effect == "warn"], codes_type)
        env["obligations"] = Obj(TRUE, dict(self.obligations))
        env["values"] = Obj(TRUE, {derived.name: self.env[derived.name] for derived in self.decision.derived
                                   if derived.output and derived.name in self.env})
        # next_eligible_at comes from a search over instants: a free instant on every defer
        # (null when the search finds no instant within its steps)
        env["next_eligible_at"] = Scalar(z3.And(self.outcome_is["defer"], z3.Bool(f"{self.terms.prefix}next_eligible_at?")),
                                         z3.Int(f"{self.terms.prefix}next_eligible_at"), INSTANT)
        terms = Terms(env, self.terms.calendar, self.findings, self.terms.prefix)
        self.__dict__["_result"] = terms
        return terms

    def reads_next_eligible_at(self, invariant: Invariant) -> bool:
        return any(isinstance(node, Ref) and node.path == "next_eligible_at"
                   for expr in (invariant.when, invariant.then) for node in walk(expr))


def encode(decision: Decision, calendar: Calendar, inputs: Inputs | None = None, prefix: str = "") -> EncodedDecision:
    """The formulas of ``decision`` over ``inputs`` (fresh ones unless a diff shares them)."""
    inputs = inputs or Inputs()
    findings = Findings()
    declaration = inputs.declare(decision.facts)
    facts = declaration.facts
    for path in inputs.conflicts:
        findings.abstract(Where(decision.name, 0, 0), f"fact {path} is declared with another type in the other version")
    env: dict[str, Value] = dict(facts)
    env["now"] = inputs.now
    terms = Terms(env, calendar, findings, prefix)
    from_store: dict[str, z3.BoolRef] = {}
    for counter in decision.counters:
        stored = inputs.stored_count(counter)
        supplied = terms.value_of(counter.fact) if counter.fact is not None else null(counter.type)
        if isinstance(supplied, Scalar) and supplied.value is not None:
            from_store[counter.name] = z3.Not(supplied.present)
            env[counter.name] = Scalar(TRUE, z3.If(supplied.present, supplied.value, stored), counter.type)
        else:
            from_store[counter.name] = TRUE
            env[counter.name] = Scalar(TRUE, stored, counter.type)
    for derived in decision.derived:
        if derived.expr is None:
            env[derived.name] = Obj(TRUE, {name: terms.value_of(expr) for name, expr in derived.fields.items()})
        else:
            env[derived.name] = terms.value_of(derived.expr)
    fired = {rule.id: terms.condition_of(rule.when, matcher=True) for rule in decision.rules}

    def any_fired(effect: str) -> z3.BoolRef:
        return z3.Or([fired[rule.id] for rule in decision.rules if rule.effect == effect] or [FALSE])
    outcome_is: dict[str, z3.BoolRef] = {}
    earlier: list[z3.BoolRef] = []
    for effect, outcome in OUTCOME_PRECEDENCE:
        outcome_is[outcome] = z3.And(*earlier, any_fired(effect)) if earlier else any_fired(effect)
        earlier.append(z3.Not(any_fired(effect)))
    outcome_is["allow"] = z3.And(earlier)
    reasons: dict[str, list[z3.BoolRef]] = {}
    warnings: dict[str, list[z3.BoolRef]] = {}
    for rule in decision.rules:
        if rule.code is None:
            continue
        if rule.effect == "warn":
            warnings.setdefault(rule.code, []).append(fired[rule.id])
        elif rule.effect in outcome_is:
            reasons.setdefault(rule.code, []).append(z3.And(fired[rule.id], outcome_is[rule.effect]))
    obligations = _obligations(decision, terms, fired, outcome_is["deny"])
    return EncodedDecision(
        decision=decision, inputs=inputs, facts=facts, env=env, fired=fired, outcome_is=outcome_is,
        reasons={code: z3.Or(holds) for code, holds in reasons.items()},
        warnings={code: z3.Or(holds) for code, holds in warnings.items()},
        obligations=obligations, findings=findings, terms=terms, counters_from_store=from_store,
        declaration=declaration)


def _obligations(decision: Decision, terms: Terms, fired: dict[str, z3.BoolRef], denied: z3.BoolRef
                 ) -> dict[str, Value]:
    result: dict[str, Value] = {}
    for name, default in decision.obligations.items():
        value = _literal_value(default, terms, Where(decision.name, *decision.position))
        for rule in decision.rules:
            if rule.effect != "oblige" or name not in rule.obligations:
                continue
            raw = rule.obligations[name]
            set_to = terms.value_of(raw) if isinstance(raw, Expr) else _literal_value(raw, terms, where_of(rule.when))
            value = choose(z3.And(fired[rule.id], z3.Not(denied)), set_to, value, terms, rule.when)
        result[name] = value
    return result


def _literal_value(raw: object, terms: Terms, where: Where) -> Value:
    """An obligation written as a literal (true, "immediate", 3, null)."""
    if raw is None:
        return null(Type("null"))
    kind = {bool: "bool", int: "int", str: "str"}.get(type(raw))
    if kind is None:
        terms.findings.abstract(where, f"an obligation literal of type {type(raw).__name__}")
        return terms.free(Type("str"), "obligation")
    return constant(Type(kind), raw)


def choose(condition: z3.BoolRef, then: Value, otherwise: Value, terms: Terms, at: Expr) -> Value:
    """``then`` where ``condition`` holds, else ``otherwise`` (scalars of one sort)."""
    if not isinstance(then, Scalar) or not isinstance(otherwise, Scalar):
        terms.findings.abstract(where_of(at), "an obligation that is a list or an object")
        return terms.free(then.type, "obligation")
    if then.value is None and otherwise.value is None:
        return otherwise
    if then.value is None or otherwise.value is None:
        value = then.value if then.value is not None else otherwise.value
        return Scalar(z3.If(condition, then.present, otherwise.present), value,
                      then.type if then.value is not None else otherwise.type)
    if then.value.sort() != otherwise.value.sort():
        terms.findings.abstract(where_of(at), "an obligation set to values of two types")
        return terms.free(then.type, "obligation")
    return Scalar(z3.If(condition, then.present, otherwise.present), z3.If(condition, then.value, otherwise.value),
                  then.type)


def _code_list(items: list[tuple[z3.BoolRef, str]], kind: Type) -> Seq:
    entries = [(holds, Scalar(TRUE, z3.StringVal(code), kind.item or Type("str"))) for holds, code in items]
    length = z3.Sum([z3.If(holds, 1, 0) for holds, _ in items]) if items else z3.IntVal(0)
    return Seq(TRUE, entries, length, FALSE, kind)
