"""QA scenario files: load and check them, run their cases against a rulebook, report results and
rule coverage. Used by ``rulesvc test``, by pytest (one item per case) and by ``POST /v1/scenarios/run``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from engine.errors import InvalidFacts, Problem
from engine.language.expressions import did_you_mean
from engine.language.source import SourceDocument, load_document, read_source
from engine.language.structure import load_schema, structure_problems
from engine.limits import LimitExceeded, checkpoint
from engine.rulebook import Rulebook
from engine.runtime.values import parse_instant, parse_money
from engine.state import IdempotencyConflict, SqliteStore, open_store
from engine.state.commit import commit_decision
from engine.state.counters import SeededCounters

SCENARIO_SUFFIXES = (".yaml", ".yml")
_SCHEMA, _VALIDATOR = load_schema("scenario-file.schema.json")
_CODE_KEYS = ("reasons", "reasons_include", "warnings", "warnings_include")


def scenario_file_schema() -> dict[str, Any]:
    return _SCHEMA


@dataclass
class Step:
    name: str
    facts: dict[str, Any]
    now: datetime | None
    expect: dict[str, Any]
    commit: bool = False
    idempotency_key: str | None = None
    counters: dict[str, Any] = field(default_factory=dict)  # stored counts given by name (parsed)


@dataclass
class Case:
    name: str
    line: int
    steps: list[Step]
    uses_store: bool  # written with steps: run against a fresh store


@dataclass
class ScenarioFile:
    file: str
    decision: str
    cases: list[Case]


@dataclass
class CaseResult:
    file: str
    case: str
    line: int
    failures: list[str] = field(default_factory=list)
    actual: dict[str, Any] | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    fired: set[str] = field(default_factory=set)
    not_fired: set[str] = field(default_factory=set)

    @property
    def passed(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        """Expected vs actual and the trace of the last evaluation, for a person."""
        lines = [f"{self.file}:{self.line}: case {self.case!r} failed"]
        lines += [f"  {failure}" for failure in self.failures]
        if self.trace:
            lines.append("  trace:")
            for rule in self.trace:
                mark = "fired" if rule["fired"] else "  -  "
                conditions = "; ".join(
                    f"{c['condition']} = {str(c['value']).lower()}"
                    + (f" ({', '.join(f'{k}={v}' for k, v in c['operands'].items())})" if c["operands"] else "")
                    for c in rule["conditions"])
                assumed = "".join(f" [ASSUMPTION {a['constant']}={a['value']}]" for a in rule.get("assumptions", ()))
                lines.append(f"    {mark} {rule['rule']} [{rule['effect']}{' ' + rule['code'] if rule['code'] else ''}]"
                             f" {conditions}{assumed}")
        return "\n".join(lines)


@dataclass
class Report:
    results: list[CaseResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # rule id -> [cases where it fired, cases where it did not], over the decisions below
    coverage: dict[str, list[int]] = field(default_factory=dict)
    decisions: list[str] = field(default_factory=list)  # whose rules the coverage counts
    whole_suite: bool = False  # every decision of the rules counts (a suite directory was run)

    def cover(self, compiled: Any) -> None:
        """Count the rules of this decision in the coverage (once)."""
        if compiled.name in self.decisions:
            return
        self.decisions.append(compiled.name)
        for rule in compiled.decision.rules:
            self.coverage.setdefault(rule.qualified_id, [0, 0])

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def coverage_percent(self) -> float:
        if not self.coverage:
            return 100.0
        return 100.0 * sum(1 for fired, _ in self.coverage.values() if fired) / len(self.coverage)

    @property
    def never_fired(self) -> list[str]:
        return [rule for rule, (fired, _) in self.coverage.items() if not fired]

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"


# --- loading --------------------------------------------------------------------------------------

def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SCENARIO_SUFFIXES))
        else:
            files.append(path)
    return files


def load_scenario_file(file: str, text: str, rulebook: Rulebook) -> tuple[ScenarioFile | None, list[Problem]]:
    """Check a scenario file against its schema and against the rules; cases with defaults merged.

    Every problem is reported in one pass: a case the schema refuses is left out of the later checks,
    the others are still checked (their instants, their codes against the decision's rules).
    """
    document, problems = load_document(file, text)
    if document is None:
        return None, problems
    if not isinstance(document.data, dict):
        return None, problems + [document.problem((), "a scenario file is a mapping with decision and cases")]
    problems += structure_problems(document, _VALIDATOR)
    data = document.data
    broken = {tuple(error.absolute_path)[:2] for error in _VALIDATOR.iter_errors(data)}
    decision = data.get("decision")
    compiled = None
    if isinstance(decision, str) and ("decision",) not in broken:
        compiled = rulebook.decisions.get(decision)
        if compiled is None:
            problems.append(document.problem(("decision",), f"unknown decision {decision!r}"
                                                            f"{did_you_mean(decision, list(rulebook.decisions))}"))
    known_codes = sorted({rule.code for rule in compiled.decision.rules if rule.code}) if compiled else None
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    # A bad defaults.now is one problem, at its own line, not one per case that inherits it.
    if _instant_problem(document, ("defaults", "now"), defaults.get("now"), problems):
        defaults = {key: value for key, value in defaults.items() if key != "now"}
    cases = []
    raw_cases = data.get("cases") if isinstance(data.get("cases"), list) else []
    # Every step is counted before any is merged with the defaults: a run past the step limit is
    # refused at once, whatever aliases made of a short file.
    checkpoint(sum(len(raw_case.get("steps") or [None]) if isinstance(raw_case, dict) else 1 for raw_case in raw_cases))
    for index, raw_case in enumerate(raw_cases):
        checkpoint()
        case_path = ("cases", index)
        if case_path in broken or not isinstance(raw_case, dict):
            continue  # the schema problems say what is wrong with it
        case_now_bad = _instant_problem(document, case_path + ("now",), raw_case.get("now"), problems)
        base = _merge(defaults, {key: raw_case[key] for key in ("now", "facts") if key in raw_case and not
                                 (key == "now" and case_now_bad)})
        raw_steps = raw_case.get("steps") or [{"expect": raw_case.get("expect")}]
        steps = []
        for step_index, raw_step in enumerate(raw_steps):
            step_path = case_path + (("steps", step_index) if "steps" in raw_case else ())
            step_now_bad = "steps" in raw_case and _instant_problem(document, step_path + ("now",),
                                                                    raw_step.get("now"), problems)
            merged = _merge(base, {key: raw_step[key] for key in ("now", "facts") if key in raw_step
                                   and not (key == "now" and step_now_bad)})
            now = parse_instant(merged["now"]) if isinstance(merged.get("now"), str) else None
            expect = raw_step["expect"]
            for key in _CODE_KEYS if known_codes is not None else ():
                for position, code in enumerate(expect.get(key, [])):
                    if code not in known_codes:
                        problems.append(document.problem(
                            step_path + ("expect", key, position),
                            f"{decision} has no rule with code {code!r}{did_you_mean(code, known_codes)}"))
            earlier = expect.get("same_decision_as")
            if earlier is not None and earlier > step_index:
                problems.append(document.problem(step_path + ("expect", "same_decision_as"),
                                                 f"same_decision_as must name an earlier step (1 to {step_index})"))
            counts = {**(raw_case.get("counters") or {}), **(raw_step.get("counters") or {})}
            counters = _counters(document, step_path, counts, compiled, problems) if counts and compiled else {}
            if counts and raw_step.get("commit"):
                problems.append(document.problem(step_path + ("commit",), "a step with counters reads given counts: "
                                                                          "it cannot commit"))
            steps.append(Step(name=str(raw_step.get("name", f"step {step_index + 1}")), facts=merged.get("facts") or {},
                              now=now, expect=expect, commit=bool(raw_step.get("commit", False)),
                              idempotency_key=raw_step.get("idempotency_key"), counters=counters))
        cases.append(Case(name=raw_case["name"], line=document.position(case_path)[0], steps=steps,
                          uses_store="steps" in raw_case))
    # by position, then message: the same order whatever order jsonschema finds them in
    return (ScenarioFile(file, decision, cases) if not problems else None), sorted(problems)


def _counters(document: SourceDocument, path: tuple[Any, ...], raw: dict[str, Any], compiled: Any,
              problems: list[Problem]) -> dict[str, Any]:
    """A step's ``counters``: each a counter of the decision, an int, or money written as a string."""
    declared = {counter.name: counter for counter in compiled.decision.counters}
    counts: dict[str, Any] = {}
    for name, value in raw.items():
        counter = declared.get(name)
        if counter is None:
            problems.append(document.problem(path + ("counters", name), f"{compiled.name} has no counter {name!r}"
                                                                       f"{did_you_mean(name, list(declared))}"))
            continue
        try:
            if counter.type.kind == "money":
                counts[name] = parse_money(value)
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("must be a whole number of at least 0")
            else:
                counts[name] = value
        except ValueError as error:
            problems.append(document.problem(path + ("counters", name), f"counter {name} {error}"))
    return counts


def _instant_problem(document: SourceDocument, path: tuple[Any, ...], raw: Any, problems: list[Problem]) -> bool:
    """Report a ``now`` written at ``path`` that is not an instant; True when it was bad."""
    if not isinstance(raw, str):
        return False
    try:
        parse_instant(raw)
    except ValueError as error:
        problems.append(document.problem(path, f"now {error}"))
        return True
    return False


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge, lists and scalars replace, null sets null."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# --- running ---------------------------------------------------------------------------------------

class ScratchStores:
    """The in-memory store of the cases that use one: opened once per run and emptied for each case,
    so every case starts from a fresh store without paying for a new database (schema and statements)."""

    def __init__(self) -> None:
        self._store: SqliteStore | None = None

    def fresh(self) -> SqliteStore:
        if self._store is None:
            self._store = open_store("sqlite://")
        else:
            self._store.clear()
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def run_case(scenario: ScenarioFile, case: Case, rulebook: Rulebook, stores: ScratchStores | None = None) -> CaseResult:
    compiled = rulebook.decision(scenario.decision)
    result = CaseResult(file=scenario.file, case=case.name, line=case.line)
    own_stores = stores is None
    stores = stores or ScratchStores()
    store = stores.fresh() if case.uses_store else None
    decision_ids: list[str | None] = []
    try:
        for number, step in enumerate(case.steps, start=1):
            checkpoint()
            label = f"{step.name}: " if len(case.steps) > 1 else ""
            counters = store.reader() if store else None
            if step.counters:
                counters = SeededCounters(step.counters, counters)
            try:
                explained = compiled.evaluate(step.facts, now=step.now, explain=True, counters=counters)
                actual = explained
                if step.commit:
                    key = step.idempotency_key or f"{scenario.file}#{case.name}#{number}"
                    if store is None:
                        store = stores.fresh()
                    actual = commit_decision(compiled, step.facts, idempotency_key=key, store=store, now=step.now)
            except InvalidFacts as error:
                decision_ids.append(None)
                result.failures += [label + failure for failure in _check_error(step.expect, error)]
                continue
            except IdempotencyConflict as error:
                decision_ids.append(None)
                if not step.expect.get("conflict"):
                    result.failures.append(f"{label}{error}")
                continue
            decision_ids.append(actual["decision_id"])
            result.actual, result.trace = actual, explained["trace"]
            for rule in explained["trace"]:
                (result.fired if rule["fired"] else result.not_fired).add(rule["rule"])
            result.failures += [label + failure for failure in _check(step.expect, actual, decision_ids)]
    except LimitExceeded:
        raise  # the whole run stops
    except Exception as error:  # a broken case is a failed case, never a crashed run
        result.failures.append(f"{type(error).__name__}: {error}")
    finally:
        if own_stores:
            stores.close()
    return result


def run(paths: Iterable[str | Path], rulebook: Rulebook) -> Report:
    """Run scenario files. Coverage counts the rules of the decisions the files exercise; a directory
    (a suite) counts every decision's rules, so a decision without scenarios shows as not covered."""
    paths = list(paths)
    report = Report()
    if any(Path(path).is_dir() for path in paths):
        report.whole_suite = True
        for name in sorted(rulebook.decisions):
            report.cover(rulebook.decisions[name])
    for path in scenario_files(paths):
        text, problem = read_source(path)
        if text is None:
            report.problems.append(problem)
            continue
        run_text(str(path), text, rulebook, report)
    return report


def run_text(file: str, text: str, rulebook: Rulebook, report: Report | None = None) -> Report:
    report = report or Report()
    scenario, problems = load_scenario_file(file, text, rulebook)
    report.problems += problems
    if scenario is None:
        return report
    report.cover(rulebook.decision(scenario.decision))
    stores = ScratchStores()
    try:
        for case in scenario.cases:
            result = run_case(scenario, case, rulebook, stores)
            report.results.append(result)
            for rule in result.fired:
                report.coverage.setdefault(rule, [0, 0])[0] += 1
            for rule in result.not_fired:
                report.coverage.setdefault(rule, [0, 0])[1] += 1
    finally:
        stores.close()
    return report


# --- expectations ------------------------------------------------------------------------------------

def _check(expect: dict[str, Any], actual: dict[str, Any], decision_ids: list[str | None]) -> list[str]:
    failures = []
    if "error" in expect:
        return [f"expected invalid facts {expect['error']}, got a decision ({actual['outcome']})"]
    if expect.get("conflict"):
        return [f"expected an idempotency conflict, got a decision ({actual['outcome']})"]
    if "outcome" in expect and expect["outcome"] != actual["outcome"]:
        failures.append(f"outcome: expected {expect['outcome']}, got {actual['outcome']}")
    for key, source, exact in (("reasons", "reasons", True), ("reasons_include", "reasons", False),
                               ("warnings", "warnings", True), ("warnings_include", "warnings", False)):
        if key not in expect:
            continue
        got = sorted({entry["code"] for entry in actual[source]})
        wanted = sorted(set(expect[key]))
        if (exact and got != wanted) or (not exact and not set(wanted) <= set(got)):
            failures.append(f"{key}: expected {wanted}, got {got}")
    for key in ("values", "obligations"):
        for name, wanted in (expect.get(key) or {}).items():
            got = actual[key].get(name, _ABSENT)
            if not _same(wanted, got):
                failures.append(f"{key}.{name}: expected {wanted!r}, got {'(absent)' if got is _ABSENT else repr(got)}")
    if "next_eligible_at" in expect and not _same(expect["next_eligible_at"], actual["next_eligible_at"]):
        failures.append(f"next_eligible_at: expected {expect['next_eligible_at']}, got {actual['next_eligible_at']}")
    if "same_decision_as" in expect:
        earlier = decision_ids[expect["same_decision_as"] - 1]
        if earlier != actual["decision_id"]:
            failures.append(f"decision_id: expected the decision of step {expect['same_decision_as']} ({earlier}), "
                            f"got {actual['decision_id']}")
    return failures


def _check_error(expect: dict[str, Any], error: InvalidFacts) -> list[str]:
    wanted = (expect.get("error") or {}).get("fields")
    if "error" not in expect:
        return [f"invalid facts: {error}"]
    missing = [path for path in wanted or [] if path not in error.fields]
    return [f"error: expected field errors for {missing}, got {sorted(error.fields)}"] if missing else []


_ABSENT = object()


def _same(wanted: Any, got: Any) -> bool:
    """Equal as values: money by amount ("95" is "95.00"), instants as instants, mappings key by key."""
    if isinstance(wanted, bool) or isinstance(got, bool):
        return wanted is got  # 1 is not true
    if wanted == got:
        return True
    if isinstance(wanted, dict) and isinstance(got, dict):
        return all(_same(value, got.get(key, _ABSENT)) for key, value in wanted.items())
    if isinstance(wanted, list) and isinstance(got, list):
        return len(wanted) == len(got) and all(_same(w, g) for w, g in zip(wanted, got, strict=True))
    if isinstance(got, str) and isinstance(wanted, (str, int, float)) and not isinstance(wanted, bool):
        try:
            return parse_instant(str(wanted)) == parse_instant(got)
        except ValueError:
            pass
        try:
            return Decimal(str(wanted)) == Decimal(got)
        except InvalidOperation:
            return False
    return False


# --- reports ----------------------------------------------------------------------------------------------

def junit_xml(report: Report) -> str:
    by_file: dict[str, list[CaseResult]] = {}
    for result in report.results:
        by_file.setdefault(result.file, []).append(result)
    root = ElementTree.Element("testsuites", tests=str(len(report.results)), failures=str(report.failed),
                               errors=str(len(report.problems)))
    for file, results in by_file.items():
        suite = ElementTree.SubElement(root, "testsuite", name=file, tests=str(len(results)),
                                       failures=str(sum(not r.passed for r in results)))
        for result in results:
            case = ElementTree.SubElement(suite, "testcase", classname=file, name=result.case, file=file,
                                          line=str(result.line))
            if not result.passed:
                failure = ElementTree.SubElement(case, "failure", message="; ".join(result.failures))
                failure.text = result.describe()
    if report.problems:
        suite = ElementTree.SubElement(root, "testsuite", name="scenario files", tests=str(len(report.problems)),
                                       errors=str(len(report.problems)))
        for problem in report.problems:
            case = ElementTree.SubElement(suite, "testcase", classname=problem.file, name=str(problem))
            ElementTree.SubElement(case, "error", message=str(problem))
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def coverage_lines(report: Report) -> list[str]:
    scope = (f"all {len(report.decisions)} decisions" if report.whole_suite
             else f"decision{'s' if len(report.decisions) != 1 else ''} {', '.join(report.decisions) or 'none'}")
    lines = [f"rule coverage: {report.coverage_percent:.1f}% of {len(report.coverage)} rules fired in some case "
             f"({scope})"]
    width = max((len(rule) for rule in report.coverage), default=10)
    for rule, (fired, not_fired) in report.coverage.items():
        lines.append(f"  {rule:<{width}}  fired in {fired:>3}  not fired in {not_fired:>3}")
    if report.never_fired:
        lines.append("rules never fired: " + ", ".join(report.never_fired))
    return lines


__all__ = ["CaseResult", "Report", "ScratchStores", "coverage_lines", "junit_xml", "load_scenario_file", "run",
           "run_case", "run_text", "scenario_file_schema", "scenario_files"]
