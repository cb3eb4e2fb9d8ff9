"""A draft's review (SPEC §12.1): everything a person needs to judge one rule file's candidate text
against the live rules, on one page — its problems, the semantic diff, its impact on logged decisions,
the shipped scenario cases whose result it changes, and the proofs.

Each part is bounded on its own (:mod:`engine.limits`); a part that cannot be computed (no decision
log, a budget run out) says why in ``{"unavailable": …}`` and the others are still given.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from engine.analysis.verify import verify_rulebook
from engine.audit.diff import diff_rulebooks
from engine.audit.log import LogDatabase, LogQuery
from engine.audit.replay import impact
from engine.errors import Problem, RuleFileError
from engine.language.source import read_source
from engine.limits import IMPACT_DECISIONS, IMPACT_SECONDS, REVIEW_SCENARIO_SECONDS, Budget, LimitExceeded
from engine.rulebook import Rulebook, rulebook_from_files
from engine.tester import ScratchStores, load_scenario_file, run_case, scenario_files


def candidate_rulebook(active: Rulebook, file: str, text: str, *, require_partitions: bool = False) -> Rulebook:
    """The active rules with ``file`` replaced by (or added as) ``text``, judged as the service loads them
    (``require_partitions`` for a Redis Cluster store); :class:`RuleFileError` when they do not load.
    Problems name the file by its own name (``recovery.yaml``)."""
    files = active.files()
    files[file] = text
    return rulebook_from_files(files, require_partitions=require_partitions)


def problem_json(problem: Problem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "column": problem.column, "message": problem.message,
            "text": str(problem)}


def draft_domain(active: Rulebook, file: str, text: str, candidate: Rulebook | None) -> str | None:
    """The domain a draft changes: the candidate's domain in ``file``; else what its text says; else the
    live file's."""
    if candidate is not None:
        for domain in candidate.domains.values():
            if os.path.basename(domain.file) == file:
                return domain.name
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("domain"), str):
        return data["domain"]
    for domain in active.domains.values():
        if os.path.basename(domain.file) == file:
            return domain.name
    return None


def impact_report(database: LogDatabase, active: Rulebook, candidate: Rulebook, query: LogQuery) -> dict[str, Any]:
    """SPEC §11's impact JSON of ``candidate`` against what ``active`` decides, in this process."""
    return impact(database, candidate, query, active=active, processes=1).as_json()


def scenario_changes(active: Rulebook, candidate: Rulebook, domain: str, paths: Iterable[str | Path],
                     root: Path | None = None) -> dict[str, Any]:
    """Run every shipped scenario case of ``domain``'s decisions on both rulebooks: how many pass on the
    candidate, and each case whose result (outcome, reason codes, passing) the candidate changes."""
    passed = failed = 0
    changed: list[dict[str, Any]] = []
    problems: list[str] = []
    stores = ScratchStores()
    try:
        for path in scenario_files(list(paths)):
            text, problem = read_source(path)
            if text is None:
                continue
            name = str(path.relative_to(root)) if root and path.is_relative_to(root) else path.name
            before_file, _ = load_scenario_file(name, text, active)
            if before_file is not None and before_file.decision.partition(".")[0] != domain:
                continue
            after_file, after_problems = load_scenario_file(name, text, candidate)
            if after_file is None:
                if before_file is not None or after_problems:
                    problems += [str(problem) for problem in after_problems]
                continue
            if after_file.decision.partition(".")[0] != domain:
                continue
            before_cases = {case.name: case for case in before_file.cases} if before_file else {}
            for case in after_file.cases:
                after = _outcome(run_case(after_file, case, candidate, stores))
                passed, failed = passed + after["passed"], failed + (not after["passed"])
                before_case = before_cases.get(case.name)
                before = _outcome(run_case(before_file, before_case, active, stores)) if before_case else None
                if before != after:
                    changed.append({"suite": name, "case": case.name, "line": case.line,
                                    "decision": after_file.decision, "before": before, "after": after})
    finally:
        stores.close()
    return {"passed": passed, "failed": failed, "changed": changed, "problems": problems}


def _outcome(result: Any) -> dict[str, Any]:
    actual = result.actual or {}
    return {"outcome": actual.get("outcome"), "reasons": [reason["code"] for reason in actual.get("reasons", [])],
            "passed": result.passed, "failures": result.failures[:5]}


def review_draft(active: Rulebook, file: str, text: str, *, database: LogDatabase | None,
                 scenario_paths: Iterable[str | Path], scenarios_root: Path | None = None,
                 query: LogQuery | None = None, verify_deadline: float | None = None,
                 unlogged_why: str = "the decision log is off: nothing to replay",
                 require_partitions: bool = False) -> dict[str, Any]:
    """``{"domain", "problems", "diff", "impact", "scenarios", "verify"}`` for ``text`` as ``file``.
    A candidate that does not load has only its problems: nothing else can be judged."""
    try:
        candidate = candidate_rulebook(active, file, text, require_partitions=require_partitions)
    except RuleFileError as error:
        return {"domain": draft_domain(active, file, text, None), "problems": [problem_json(p) for p in error.problems],
                "diff": None, "impact": None, "scenarios": None, "verify": None}
    domain = draft_domain(active, file, text, candidate)
    review: dict[str, Any] = {"domain": domain, "problems": [], "diff": diff_rulebooks(active, candidate)}
    if database is None:
        review["impact"] = {"unavailable": unlogged_why}
    else:
        review["impact"] = _bounded(lambda: impact_report(database, active, candidate, query or LogQuery()),
                                    Budget("draft impact replay", count=IMPACT_DECISIONS, seconds=IMPACT_SECONDS))
    review["scenarios"] = _bounded(lambda: scenario_changes(active, candidate, domain or "", scenario_paths,
                                                            scenarios_root),
                                   Budget("draft scenario run", seconds=REVIEW_SCENARIO_SECONDS))
    review["verify"] = _bounded(lambda: verify_rulebook(candidate, domain=domain, deadline=verify_deadline),
                                Budget("draft proofs"))
    return review


def _bounded(work: Any, budget: Budget) -> dict[str, Any]:
    try:
        with budget.active():
            return work()
    except LimitExceeded as error:
        return {"unavailable": str(error)}
