"""In-process decisions per second: ours one at a time and through the engine's batch API, zen-engine,
durable_rules alone (the fastest correct use, and our reference matcher) and the Python floor.

Every contender is first run once on every fact set of the mix and must reach ours' verdict
(outcome, reason codes, warning codes, obligations); any disagreement stops the harness. Then the
contenders are timed in interleaved rounds over the same mix and each one's median rate is kept.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import durable_rules_engine
import orjson
import zen

from engine.language.model import OUTCOME_PRECEDENCE
from engine.rulebook import Rulebook, load_rulebook
from engine.runtime.evaluation import CompiledDecision
from engine.runtime.matcher import FACTS_PER_STATE

from .conversions import RECORD_BUILDERS, durable_fact, fast_durable_fact, zen_input
from .factsets import DECISIONS, FactSet, fact_sets
from .floor import FLOORS
from .jdm_graphs import RULES, graph_path, graph_text
from .paths import RULES_DIR
from .stages import STAGES, logged_rates, stage_profile

CONTENDERS = ("ours", "ours_batch", "zen", "raw_durable_fast", "raw_durable", "python_floor")
RATE_KEYS = {"ours": "ours_per_s", "ours_batch": "ours_batch_per_s", "zen": "zen_per_s",
             "raw_durable_fast": "raw_durable_fast_per_s", "raw_durable": "raw_durable_per_s",
             "python_floor": "python_floor_per_s"}
BATCH_SIZE = 500  # items per call of the engine's batch API

# (outcome, reason codes, warning codes, obligations set to true)
Verdict = tuple[str, frozenset[str], frozenset[str], frozenset[str]]


class Disagreement(AssertionError):
    """A contender reached another verdict than ours on some fact set."""


@dataclass
class Contender:
    """One way of deciding: prepared inputs (one per fact set), the call timed, and its verdict reader."""

    name: str
    inputs: list[Any]
    call: Callable[[Any], Any]
    verdict: Callable[[Any], Verdict]
    per_input: int = 1  # decisions per input (a batch)


def load_rules() -> Rulebook:
    return load_rulebook([RULES_DIR])


# --- verdicts ---------------------------------------------------------------------------------------

def ours_verdict(result: dict[str, Any]) -> Verdict:
    return (result["outcome"], frozenset(reason["code"] for reason in result["reasons"]),
            frozenset(warning["code"] for warning in result["warnings"]),
            frozenset(name for name, value in result["obligations"].items() if value is True))


def zen_verdict(response: dict[str, Any]) -> Verdict:
    """The graph's output node: outcome, and lists of reason codes, warning codes and obligation names."""
    result = response["result"]
    return (result["outcome"], frozenset(result["reasons"]), frozenset(result["warnings"]),
            frozenset(result["obligations"]))


def fired_verdict(compiled: CompiledDecision, fired: set[str]) -> Verdict:
    """The verdict implied by the rules durable_rules reports as fired."""
    rules = [rule for rule in compiled.decision.rules if rule.id in fired]
    outcome = next((outcome for effect, outcome in OUTCOME_PRECEDENCE if any(rule.effect == effect for rule in rules)), "allow")
    obliged = [name for rule in rules if rule.effect == "oblige" and outcome != "deny"  # nothing is owed on a refusal
               for name, value in rule.obligations.items() if value is True]
    return (outcome, frozenset(rule.code for rule in rules if rule.effect == outcome),
            frozenset(rule.code for rule in rules if rule.effect == "warn"), frozenset(obliged))


def floor_verdict(verdict: tuple[str, list[str], list[str], list[str]]) -> Verdict:
    outcome, reasons, warnings, obligations = verdict
    return outcome, frozenset(reasons), frozenset(warnings), frozenset(obligations)


# --- contenders -------------------------------------------------------------------------------------

def ours(compiled: CompiledDecision, mix: list[FactSet]) -> Contender:
    evaluate = compiled.evaluate
    return Contender("ours", [(fact_set.facts, fact_set.now) for fact_set in mix],
                     lambda pair: evaluate(pair[0], now=pair[1]), ours_verdict)


def zen_contender(decision: str, mix: list[FactSet]) -> Contender:
    """zen's fastest path from Python: a static loader (the graph compiled once and cached by the engine)
    and JSON text in; ``ZenDecision.evaluate`` recompiles on every call and is about ten times slower."""
    graph = json.loads(graph_path(decision).read_text(encoding="utf-8"))
    engine = zen.ZenEngine({"loader": {"type": "static", "content": {decision: graph}}})
    return Contender("zen", [json.dumps(zen_input(fact_set)) for fact_set in mix], partial(engine.evaluate, decision),
                     zen_verdict)


def ours_batch(compiled: CompiledDecision, mix: list[FactSet]) -> Contender:
    """The engine's batch API, ``BATCH_SIZE`` items a call; its verdicts are checked item by item."""
    items = [(fact_set.facts, fact_set.now) for fact_set in mix]
    chunks = [items[start:start + BATCH_SIZE] for start in range(0, len(items), BATCH_SIZE)]
    return Contender("ours_batch", chunks, compiled.run_many, lambda made: ours_verdict(made.result),
                     per_input=BATCH_SIZE)


def raw_durable(compiled: CompiledDecision, mix: list[FactSet]) -> Contender:
    """Our reference path's use of durable_rules: the nested fact, asserted and retracted, one at a time."""
    fired = compiled.reference.matcher.fired
    return Contender("raw_durable", [durable_fact(compiled, fact_set) for fact_set in mix],
                     lambda fact: fired(dict(fact)), lambda rules: fired_verdict(compiled, rules))


class FastestDurable:
    """The fastest correct use of durable_rules the bench can build on the facts ours asserts: the flat
    fact serialised beforehand (with its id), asserted on the served ruleset, the fired rules' names read
    from the action messages, no retract — the state is deleted every FACTS_PER_STATE facts (ids repeat
    across passes only after their state is gone, so none is refused)."""

    def __init__(self, compiled: CompiledDecision, mix: list[FactSet]):
        self.handle = durable_rules_engine.create_ruleset(f"bench-{compiled.name}-{id(self)}",
                                                         json.dumps(compiled.fast_definition))
        self.payloads = [orjson.dumps({**fast_durable_fact(compiled, fact_set), "id": index}).decode()
                         for index, fact_set in enumerate(mix)]
        self.stored = 0

    def __call__(self, payload: str) -> set[str]:
        status, state = durable_rules_engine.assert_fact(self.handle, payload)
        fired: set[str] = set()
        if status == 0:
            started = durable_rules_engine.start_action_for_state(self.handle, state)
            message = started[1] if started else None
            while message:
                fired.add(message[2:message.index('"', 2)])
                message = durable_rules_engine.complete_and_start_action(self.handle, state)
        self.stored += 1
        if self.stored == FACTS_PER_STATE:
            durable_rules_engine.delete_state(self.handle, "0")
            self.stored = 0
        return fired


def raw_durable_fast(compiled: CompiledDecision, mix: list[FactSet]) -> Contender:
    fastest = FastestDurable(compiled, mix)
    return Contender("raw_durable_fast", fastest.payloads, fastest, lambda rules: fired_verdict(compiled, rules))


def python_floor(decision: str, mix: list[FactSet]) -> Contender:
    build = RECORD_BUILDERS[decision]
    return Contender("python_floor", [build(fact_set) for fact_set in mix], FLOORS[decision], floor_verdict)


def contenders(compiled: CompiledDecision, mix: list[FactSet]) -> list[Contender]:
    return [ours(compiled, mix), ours_batch(compiled, mix), zen_contender(compiled.name, mix),
            raw_durable_fast(compiled, mix), raw_durable(compiled, mix), python_floor(compiled.name, mix)]


# --- checks -----------------------------------------------------------------------------------------

def check_jdm_graph(compiled: CompiledDecision) -> None:
    """The committed graph is what jdm_graphs.py generates, and names the same rules as the rule file."""
    decision = compiled.name
    if graph_path(decision).read_text(encoding="utf-8") != graph_text(decision):
        raise Disagreement(f"{graph_path(decision)} is stale: run python bench/jdm_graphs.py")
    expected = [(rule.id, rule.effect, rule.code or next(iter(rule.obligations), "")) for rule in compiled.decision.rules]
    translated = [(rule.id, rule.effect, rule.label) for rule in RULES[decision]]
    if expected != translated:
        raise Disagreement(f"{decision}: the JDM rules {translated} no longer match the rule file's {expected}")


def reference_reader_share(compiled: CompiledDecision, mix: list[FactSet]) -> float:
    """The share of the mix the fast reader leaves to the reference reader (unusual shapes)."""
    from engine.runtime.reader import Unusual

    left = 0
    for fact_set in mix:
        try:
            compiled.read_facts(fact_set.facts)
        except Unusual:
            left += 1
    return left / len(mix)


def _answers(contender: Contender) -> list[Verdict]:
    """The contender's verdict on every fact set of the mix, in order."""
    if contender.per_input == 1:
        return [contender.verdict(contender.call(item)) for item in contender.inputs]
    return [contender.verdict(answer) for chunk in contender.inputs for answer in contender.call(chunk)]


def _describe(fact_set: FactSet, verdicts: dict[str, Verdict]) -> str:
    lines = [f"  now={fact_set.now.isoformat()} facts={fact_set.facts}"]
    lines += [f"    {name}: {verdict[0]} reasons={sorted(verdict[1])} warnings={sorted(verdict[2])} "
              f"obligations={sorted(verdict[3])}" for name, verdict in verdicts.items()]
    return "\n".join(lines)


def check_agreement(decision: str, mix: list[FactSet], field: list[Contender]) -> Counter[str]:
    """Every contender's verdict on every fact set; raises :class:`Disagreement`. Returns ours' outcomes."""
    outcomes: Counter[str] = Counter()
    problems = []
    answers = {contender.name: _answers(contender) for contender in field}
    for index, fact_set in enumerate(mix):
        verdicts = {name: found[index] for name, found in answers.items()}
        outcomes[verdicts["ours"][0]] += 1
        if len(set(verdicts.values())) > 1:
            problems.append(_describe(fact_set, verdicts))
    if problems:
        raise Disagreement(f"{decision}: {len(problems)} of {len(mix)} fact sets decided differently, e.g.\n"
                           + "\n".join(problems[:5]))
    return outcomes


# --- timing -----------------------------------------------------------------------------------------

def decisions_per_second(contender: Contender, seconds: float) -> float:
    """Whole passes over the mix until ``seconds`` have elapsed."""
    call, inputs = contender.call, contender.inputs
    done = 0
    started = time.perf_counter()
    while True:
        for item in inputs:
            call(item)
        done += sum(len(item) for item in inputs) if contender.per_input > 1 else len(inputs)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def timed_rates(fields: dict[str, list[Contender]], rounds: int, seconds: float) -> dict[str, dict[str, float]]:
    """Median rate of each contender of each decision over interleaved rounds."""
    samples: dict[str, dict[str, list[float]]] = {d: {c.name: [] for c in field} for d, field in fields.items()}
    for _ in range(rounds):
        for decision, field in fields.items():
            for contender in field:
                samples[decision][contender.name].append(decisions_per_second(contender, seconds))
    return {d: {name: statistics.median(rates) for name, rates in by_name.items()} for d, by_name in samples.items()}


# --- the section --------------------------------------------------------------------------------------

def mixed_rate(rates: list[float]) -> float:
    """Throughput on a mix with as many decisions of each kind: the harmonic mean of their rates."""
    return len(rates) / sum(1 / rate for rate in rates)


def ratios(rates: dict[str, float]) -> dict[str, float]:
    return {"ours_per_zen": rates["ours"] / rates["zen"], "ours_batch_per_zen": rates["ours_batch"] / rates["zen"],
            "ours_per_raw_durable_fast": rates["ours"] / rates["raw_durable_fast"],
            "ours_per_raw_durable": rates["ours"] / rates["raw_durable"],
            "ours_per_python_floor": rates["ours"] / rates["python_floor"],
            "raw_durable_fast_per_zen": rates["raw_durable_fast"] / rates["zen"]}


def _logged_ratio(pair: dict[str, float]) -> float:
    """With the log over without, both measured back to back in the same rounds (SPEC §9: ≥ 0.9)."""
    return pair["ours_logged_per_s"] / pair["ours_per_s"]


def run_inproc(mix_size: int, seed: int, rounds: int, seconds: float, rulebook: Rulebook | None = None) -> dict[str, Any]:
    rulebook = rulebook or load_rules()
    fields, outcomes, reads = {}, {}, {}
    for decision in DECISIONS:
        compiled = rulebook.decision(decision)
        check_jdm_graph(compiled)
        mix = fact_sets(decision, mix_size, seed)
        fields[decision] = contenders(compiled, mix)
        outcomes[decision] = check_agreement(decision, mix, fields[decision])
        reads[decision] = reference_reader_share(compiled, mix)
    rates = timed_rates(fields, rounds, seconds)
    logged = {decision: logged_rates(rulebook.decision(decision), fact_sets(decision, mix_size, seed), rounds, seconds)
              for decision in DECISIONS}
    profiles = {decision: stage_profile(rulebook.decision(decision), fact_sets(decision, mix_size, seed))
                for decision in DECISIONS}
    overall = {name: mixed_rate([rates[decision][name] for decision in DECISIONS]) for name in CONTENDERS}
    logged_overall = {key: mixed_rate([logged[decision][key] for decision in DECISIONS])
                      for key in ("ours_per_s", "ours_logged_per_s")}
    per_decision = {
        decision: {**{RATE_KEYS[name]: rates[decision][name] for name in CONTENDERS}, "ratios": {
                       **ratios(rates[decision]), "ours_logged_per_ours": _logged_ratio(logged[decision])},
                   "ours_logged_per_s": logged[decision]["ours_logged_per_s"], "logged_pair": logged[decision],
                   "stages_cpu_us": profiles[decision],
                   "fact_sets": mix_size, "outcomes": dict(outcomes[decision]),
                   "reference_reader_share": reads[decision]}
        for decision in DECISIONS
    }
    return {**{RATE_KEYS[name]: overall[name] for name in CONTENDERS},
            "ours_logged_per_s": logged_overall["ours_logged_per_s"], "logged_pair": logged_overall,
            "ratios": {**ratios(overall), "ours_logged_per_ours": _logged_ratio(logged_overall)},
            "stages": list(STAGES),
            "per_decision": per_decision, "agreement": "all contenders agree with ours on every fact set",
            "timing": {"rounds": rounds, "seconds_per_round": seconds, "statistic": "median",
                       "overall": "harmonic mean of the per-decision rates (a 50/50 mix)"}}
