"""The durable_rules rulesets of a decision, and whether durable_rules will take them.

A decision is matched with three native rulesets (engine/runtime/evaluation.py): the *reference* one over the
nested fact, the *fast* one over the flat fact with short names, and the *trace* one with a rule per
atomic condition. They are built here, once for activation and once for validation, so that what
``rulesvc check`` accepts is what the service loads (SPEC §7.1).

durable_rules 2.0.28 refuses some rulesets only when it creates them (src/rules/rete.c, rules.h): each
test of a pattern is a node of its network, and one node's children are limited — 128 in a list
(error 107, ``ERR_RULE_EXISTS_LIMIT_EXCEEDED``: absence tests, and the branches of ``or`` groups), 256
rules ending at one node (108: identical conditions), a few ``and``/``or`` groups inside one another in
one condition (113), and 512 tests in a hash table of 512 slots. That last one is never answered: past
it the engine's look-up of an existing sibling probes the full table forever and the process hangs.
A node's table holds tests the engine shares when identical, so a ruleset of at most 512 different
tests (:data:`MAX_TESTS`; absence tests apart, and ``$iany``/``$iall``, never shared, each counted)
cannot fill one; a ruleset past that is refused before the engine sees it, at the rule that crosses
the bound. Any other refusal is the engine's own answer, to a compile of exactly the rulesets
activation creates, at the first rule whose ruleset it refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.language.expressions import Expr
from engine.language.model import Rule
from engine.reference.trace import trace_conditions
from engine.runtime.compiler import FieldNames, ruleset_definition
from engine.runtime.durable import refusal
from engine.runtime.encoder import condition_fields, field_names

MAX_TESTS = 512  # rules.h NEXT_BUCKET_LENGTH: the slots of a node's table of children
_SWEEP_TESTS = 1  # the sweep rule every native ruleset gets (engine/runtime/durable.py)
_UNSHARED = ("$iany", "$iall")  # rete.c's findAlpha never shares these nodes
ENGINE_ERRORS = {
    106: "a node has more than 512 tests",
    107: "a node has more than 128 absence tests or 'or' branches",
    108: "more than 256 rules have the same condition",
    113: "a condition nests too many 'and'/'or' groups (write it as several rules or derived values)",
}


@dataclass
class DecisionRulesets:
    """The three rulesets of a decision, each as ``[(rule name, condition)]`` and as a definition."""

    field_names: FieldNames
    trace_leaves: dict[str, list[tuple[str, Expr]]]  # rule id -> its atomic conditions, named "<id>#<n>"
    rules: dict[str, list[tuple[str, Expr]]]  # "reference", "fast", "trace"

    def definition(self, kind: str, decision: str, count: int | None = None) -> dict[str, Any]:
        """The durable_rules definition of ruleset ``kind`` (of its first ``count`` rules)."""
        names = self.field_names if kind == "fast" else None
        return ruleset_definition(self.rules[kind][:count], decision, names)


def decision_rulesets(rules: list[Rule]) -> DecisionRulesets:
    """What a decision's rules compile to, as :class:`engine.runtime.evaluation.CompiledDecision` uses it."""
    conditions = [(rule.id, rule.when) for rule in rules]
    names = field_names(condition_fields([rule.when for rule in rules]))
    leaves = {rule.id: [(f"{rule.id}#{index}", leaf) for index, leaf in enumerate(trace_conditions(rule.when))]
              for rule in rules}
    trace = [pair for pairs in leaves.values() for pair in pairs]
    return DecisionRulesets(names, leaves, {"reference": conditions, "fast": conditions, "trace": trace})


def ruleset_problem(decision: str, rules: list[Rule]) -> tuple[str, str] | None:
    """``(rule id, message)`` when durable_rules would refuse a ruleset of ``decision``: the rule that
    crosses the engine's limit, in file order; None when every ruleset can be activated."""
    rulesets = decision_rulesets(rules)
    for kind in rulesets.rules:
        found = _over_a_bound(rulesets, kind, decision) or _refused(rulesets, kind, decision)
        if found is not None:
            return found
    return None


def _over_a_bound(rulesets: DecisionRulesets, kind: str, decision: str) -> tuple[str, str] | None:
    """The first rule whose tests bring ruleset ``kind`` past :data:`MAX_TESTS` different tests."""
    definition = rulesets.definition(kind, decision)
    seen: set[str] = set()
    unshared = _SWEEP_TESTS
    for name, _ in rulesets.rules[kind]:
        for test in _tests(definition[name]["all"][0]["m"]):
            operator = next(iter(test))
            if operator in _UNSHARED:
                unshared += 1
            elif operator != "$nex":  # absence tests are listed apart (error 107), not in the table
                seen.add(json.dumps(test, sort_keys=True))
        if len(seen) + unshared > MAX_TESTS:
            return name.split("#", 1)[0], (
                f"the conditions of {decision} make more than {MAX_TESTS} different comparisons, the most "
                f"durable_rules takes in one ruleset (this rule makes the {len(seen) + unshared}th): split the "
                "decision or simplify its conditions")
    return None


def _tests(pattern: Any) -> Iterator[dict[str, Any]]:
    """The atomic tests of a compiled pattern (each an alpha node of the engine)."""
    if not isinstance(pattern, dict):
        return
    for key, value in pattern.items():
        if key in ("$and", "$or"):
            for part in value:
                yield from _tests(part)
        else:
            yield {key: value}


def _refused(rulesets: DecisionRulesets, kind: str, decision: str) -> tuple[str, str] | None:
    """The engine's own refusal of ruleset ``kind``, at the first rule whose prefix it refuses.

    Rules only add nodes, so a refused ruleset has a shortest refused prefix; bisecting costs a few
    more compiles, and only for a ruleset that is refused anyway."""
    count = len(rulesets.rules[kind])
    code = refusal(f"{decision}.check", rulesets.definition(kind, decision))
    if code is None:
        return None
    accepted, refused = 0, count  # the first `accepted` rules compile; the first `refused` do not
    while refused - accepted > 1:
        middle = (accepted + refused) // 2
        if refusal(f"{decision}.check", rulesets.definition(kind, decision, middle)) is None:
            accepted = middle
        else:
            refused = middle
    rule_id = rulesets.rules[kind][refused - 1][0].split("#", 1)[0]
    reason = ENGINE_ERRORS.get(code, "it refuses the ruleset")
    return rule_id, (f"durable_rules cannot activate {decision} with this rule ({kind} ruleset, engine error "
                     f"{code}: {reason}); simplify the condition or split the decision")
