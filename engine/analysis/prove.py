"""``rulesvc diff OLD NEW --prove``: is a rule change equivalent, and if not, a request for each change.

Both versions of a decision are encoded over one request (the same variables for the same fact paths,
both versions' validity assumed). For each pair of outcomes ``OLD->NEW`` the solver looks for a
request that OLD decides one way and NEW the other (for ``X->X``: the same outcome with other reason
codes or obligations); each witness is decided by both versions through the service before it is
reported, and becomes a ready scenario case that passes on NEW and fails on OLD.
"""

from __future__ import annotations

import time as clock
from typing import Any

import z3

from engine.analysis.concretize import Witness
from engine.analysis.decision import EncodedDecision, encode
from engine.analysis.inputs import Inputs
from engine.analysis.values import FALSE, Scalar, Value
from engine.analysis.verify import DEFAULT_TIMEOUT, Outcome, Query, codes, decide
from engine.language.model import OUTCOMES
from engine.rulebook import Rulebook
from engine.runtime.evaluation import CompiledDecision


def prove_rulebooks(before: Rulebook, after: Rulebook, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """``diff --prove``'s JSON: ``{"decisions": {D: {"equivalent", "transitions", "unknown"}}, "summary"}``."""
    decisions: dict[str, Any] = {}
    for name in sorted(set(before.decisions) | set(after.decisions)):
        if name not in after.decisions:
            decisions[name] = {"equivalent": False, "removed": True, "transitions": {}, "unknown": []}
        elif name not in before.decisions:
            decisions[name] = {"equivalent": False, "added": True, "transitions": {}, "unknown": []}
        elif _same_source(before, after, name):
            decisions[name] = {"equivalent": True, "unchanged": True, "transitions": {}, "unknown": []}
        else:
            decisions[name] = prove_decision(before.decision(name), after.decision(name), timeout=timeout)
    different = sum(1 for item in decisions.values()
                    if item["transitions"] or (not item["equivalent"] and not item["unknown"]))
    unknown = sum(1 for item in decisions.values() if item["unknown"])
    return {"decisions": decisions,
            "summary": {"decisions": len(decisions), "different": different, "unknown": unknown,
                        "equivalent": different == 0 and unknown == 0}}


def prove_exit_code(summary: dict[str, Any]) -> int:
    """SPEC §13: 0 equivalent, 1 different, 4 unknown."""
    if summary["different"]:
        return 1
    return 4 if summary["unknown"] else 0


def _same_source(before: Rulebook, after: Rulebook, name: str) -> bool:
    old, new = before.decision(name), after.decision(name)
    old_domain, new_domain = before.domains[old.decision.domain], after.domains[new.decision.domain]
    same_calendar = not old_domain.uses_calendar or before.calendar.texts == after.calendar.texts
    return old_domain.version == new_domain.version and same_calendar


def prove_decision(old: CompiledDecision, new: CompiledDecision, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    started = clock.monotonic()
    inputs = Inputs()
    before = encode(old.decision, old.calendar, inputs, prefix="old:")
    after = encode(new.decision, new.calendar, inputs, prefix="new:")
    # the goals say for which version a request is valid: one valid for only one of them is a change too
    query = Query([before, after], started + timeout, valid=False)
    same = _same_details(before, after)
    transitions: dict[str, Any] = {}
    unknown: list[dict[str, Any]] = [{"where": path, "why": "declared with another type in the other version"}
                                     for path in inputs.conflicts]
    # (state, OLD is in it, NEW is in it): each outcome on a valid request, or an invalid request
    states = [(outcome, z3.And(before.valid, before.outcome_is[outcome]), z3.And(after.valid, after.outcome_is[outcome]))
              for outcome in OUTCOMES]
    states.append(("invalid", z3.Not(before.valid), z3.Not(after.valid)))
    for was, old_is, _ in states:
        for becomes, _, new_is in states:
            if was == becomes == "invalid":
                continue
            goal = z3.And(old_is, new_is)
            if was == becomes:
                goal = z3.And(goal, z3.Not(same))
            key = f"{was}->{becomes}"

            def confirm(witness: Witness, was: str = was, becomes: str = becomes) -> tuple[bool, dict[str, Any] | None]:
                first, second = decide(old, witness), decide(new, witness)
                if first.result is None and second.result is None:
                    return False, None
                agrees = _state(first) == was and _state(second) == becomes
                if was == becomes:
                    agrees = agrees and _details(first) != _details(second)
                return agrees, {"old": first, "new": second}
            answer = query.search(goal, confirm)
            if answer.status == "found":
                results = answer.result
                transitions[key] = {
                    "witness": answer.witness.to_json(),
                    "old": _summary(results["old"]), "new": _summary(results["new"]),
                    "case": scenario_case(key, answer.witness, results["new"]),
                }
            elif answer.status == "unknown":
                unknown.append({"transition": key, "why": answer.why})
    if unknown:
        unknown += [{"where": str(abstraction.where), "why": abstraction.message}
                    for encoded in (before, after) for abstraction in encoded.findings.abstractions]
    return {"equivalent": not transitions and not unknown, "transitions": transitions, "unknown": unknown,
            "seconds": round(clock.monotonic() - started, 3)}


def _same_details(before: EncodedDecision, after: EncodedDecision) -> z3.BoolRef:
    """Both versions give the same reason codes and obligations."""
    same = [before.reasons.get(code, FALSE) == after.reasons.get(code, FALSE)
            for code in sorted(set(before.reasons) | set(after.reasons))]
    for name in sorted(set(before.obligations) | set(after.obligations)):
        same.append(_equal(before.obligations.get(name), after.obligations.get(name)))
    return z3.And(same) if same else z3.BoolVal(True)


def _equal(first: Value | None, second: Value | None) -> z3.BoolRef:
    if not isinstance(first, Scalar) or not isinstance(second, Scalar):
        return z3.BoolVal(first is None and second is None)
    if first.value is None or second.value is None or first.value.sort() != second.value.sort():
        both_absent = z3.And(z3.Not(first.present), z3.Not(second.present))
        return both_absent if first.value is None or second.value is None else z3.BoolVal(False)
    return z3.And(first.present == second.present, z3.Implies(first.present, first.value == second.value))


def _state(outcome: Outcome) -> str:
    return "invalid" if outcome.result is None else outcome.result["outcome"]


def _details(outcome: Outcome) -> tuple[Any, ...]:
    if outcome.result is None:
        return ()
    return tuple(codes(outcome.result)), tuple(sorted(outcome.result["obligations"].items(), key=lambda item: item[0]))


def _summary(outcome: Outcome) -> dict[str, Any]:
    if outcome.result is None:
        return {"outcome": None, "invalid_facts": sorted(outcome.invalid.fields)}
    result = outcome.result
    return {"outcome": result["outcome"], "reasons": codes(result), "obligations": result["obligations"]}


def scenario_case(transition: str, witness: Witness, new: Outcome) -> dict[str, Any]:
    """A QA scenario case (SPEC §8) with the witness and NEW's answer: it passes on NEW, fails on OLD."""
    case: dict[str, Any] = {"name": f"{transition} (rulesvc diff --prove)", "now": witness.now,
                            "facts": witness.facts}
    if witness.counters:
        case["counters"] = witness.counters
    if new.result is None:
        case["expect"] = {"error": {"fields": sorted(new.invalid.fields)}}
    else:
        case["expect"] = {"outcome": new.result["outcome"], "reasons": codes(new.result),
                          "obligations": new.result["obligations"]}
    return case


def scenario_files(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One scenario file per decision with transitions: ``{decision: {"decision", "cases"}}``."""
    return {name: {"decision": name, "cases": [entry["case"] for entry in item["transitions"].values()]}
            for name, item in report["decisions"].items() if item["transitions"]}
