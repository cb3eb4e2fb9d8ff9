"""Pages that run work on the server — scenarios, validation, impact — and so need the admin token.

Their forms are open to read; posting them needs an admin session (and, like every console form,
the CSRF token). The work itself is the engine's: ``engine.tester`` runs scenarios,
``load_rule_file`` checks a rule file, and the impact replay comes through :mod:`.audit`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import request, url_for

from engine import Problem, Rulebook, RuleFileError, load_rule_file
from engine.language.model import Domain
from engine.limits import SCENARIO_SECONDS, SCENARIO_STEPS, VALIDATION_SECONDS, Budget
from engine.tester import CaseResult, Report, load_scenario_file, run_text

from ..limits import heavy_run
from . import audit, i18n
from .blueprint import blueprint, page, rulebook, service, suites
from .security import admin_required

MAX_UPLOADED_CASES = 2000  # cases of one uploaded scenario file (each runs in milliseconds)
MAX_NAME = 120


# --- uploads -------------------------------------------------------------------------------------

def posted_text(text_field: str, upload_field: str, name_field: str | None, default_name: str) -> tuple[str, str]:
    """The text of an uploaded file (preferred) or of a textarea, and the file name to report problems with."""
    upload = request.files.get(upload_field)
    name = (request.form.get(name_field, "") if name_field else "").strip()
    if upload is not None and upload.filename:
        raw = upload.read()
        name = name or upload.filename
        text = raw.decode("utf-8", errors="replace")
    else:
        text = request.form.get(text_field, "")
    name = Path(name.replace("\\", "/")).name[:MAX_NAME] or default_name
    return text.replace("\r\n", "\n").replace("\r", "\n"), name


@dataclass
class SourceLine:
    number: int
    before: str = ""
    marked: str = ""  # the character a problem points at ("" on a line without problems)
    after: str = ""
    problems: list[Problem] = field(default_factory=list)
    gap: bool = False  # stands for the lines left out between two excerpts


CONTEXT_LINES = 3


def annotated(text: str, problems: list[Problem], context: int = CONTEXT_LINES) -> list[SourceLine]:
    """The lines around each problem (``context`` before and after), each problem at its line with
    the first one's column marked; a gap line stands for each run of lines left out."""
    by_line: dict[int, list[Problem]] = {}
    for problem in problems:
        by_line.setdefault(problem.line, []).append(problem)
    lines = text.split("\n")
    shown = {number for line in by_line for number in range(line - context, line + context + 1)
             if 1 <= number <= len(lines)}
    excerpt: list[SourceLine] = []
    for number in sorted(shown):
        if excerpt and excerpt[-1].number != number - 1:
            excerpt.append(SourceLine(number - 1, gap=True))
        line = lines[number - 1]
        found = by_line.get(number, [])
        if not found:
            excerpt.append(SourceLine(number, line))
            continue
        column = max(found[0].column, 1) - 1
        padded = line.ljust(column + 1)
        excerpt.append(SourceLine(number, padded[:column], padded[column], padded[column + 1:].rstrip(), found))
    return excerpt


def replaced_domain(book: Rulebook, name: str | None) -> Domain | None:
    return book.domains.get(name) if name else None


# --- scenarios -------------------------------------------------------------------------------------

@dataclass
class CoverageRow:
    rule: str
    effect: str
    code: str | None
    fired: int
    not_fired: int


def coverage(report: Report, book: Rulebook) -> list[tuple[str, list[CoverageRow], float]]:
    """Per decision that a case of the run exercised: each rule's counts and the share that fired."""
    exercised = {rule for result in report.results for rule in result.fired | result.not_fired}
    groups = []
    for name in sorted({rule.split("/", 1)[0] for rule in exercised}):
        decision = book.decisions.get(name)
        if decision is None:
            continue
        rows = [CoverageRow(rule.qualified_id, rule.effect, rule.code, *report.coverage.get(rule.qualified_id, [0, 0]))
                for rule in decision.decision.rules]
        share = 100.0 * sum(1 for row in rows if row.fired) / len(rows) if rows else 100.0
        groups.append((name, rows, share))
    return groups


def try_links(report: Report, book: Rulebook) -> dict[tuple[str, int], str]:
    """For the cases of shipped files: the Try page prefilled with that case."""
    links = {}
    parsed = suites().parsed(book)
    for result in report.results:
        name = suites().display_name(result.file)
        scenario = parsed.get(name)
        if scenario is None:
            continue
        for index, case in enumerate(scenario.cases):
            if case.line == result.line:
                links[(result.file, result.line)] = url_for("console.try_decision", decision=scenario.decision,
                                                            **{"from": f"case:{name}:{index}"})
    return links


def by_file(report: Report) -> list[tuple[str, list[CaseResult]]]:
    files: dict[str, list[CaseResult]] = {}
    for result in report.results:
        files.setdefault(suites().display_name(result.file), []).append(result)
    return list(files.items())


def _shipped() -> list[dict[str, Any]]:
    parsed = suites().parsed(rulebook())
    return [{"name": name, "decision": parsed[name].decision if name in parsed else "",
             "cases": len(parsed[name].cases) if name in parsed else 0} for name in suites().file_names()]


@blueprint.get("/scenarios")
def scenarios():
    return page("scenarios.html", shipped=_shipped(), report=None)


@blueprint.post("/scenarios")
@admin_required
def scenarios_run():
    book = rulebook()
    upload = request.files.get("upload")
    report: Report | None = None
    message = ""
    if upload is not None and upload.filename:
        text, name = posted_text("", "upload", None, "scenario.yaml")
        scenario, problems = load_scenario_file(name, text, book)
        if scenario is not None and len(scenario.cases) > MAX_UPLOADED_CASES:
            message = i18n.t("scen.too_many", limit=MAX_UPLOADED_CASES)
        else:
            with _scenario_budget():
                report = run_text(name, text, book)
    else:
        # "all": the files people wrote; the generated suites (hundreds of cases, run by CI) one by one
        names = suites().file_names(generated=False) if request.form.get("all") else request.form.getlist("file")
        if names:
            with _scenario_budget():
                report = suites().run(book, names)
        else:
            message = i18n.t("scen.pick_one")
    context: dict[str, Any] = {"shipped": _shipped(), "report": report, "message": message,
                               "chosen": set(request.form.getlist("file"))}
    if report is not None:
        context.update(files=by_file(report), coverage=coverage(report, book), links=try_links(report, book))
    return page("scenarios.html", 200 if report is not None else 400, **context)


def _scenario_budget():
    return heavy_run(Budget("scenario run", count=SCENARIO_STEPS, seconds=SCENARIO_SECONDS))


# --- validate ----------------------------------------------------------------------------------------

@blueprint.get("/validate")
def validate():
    book = rulebook()
    start = book.domains.get(request.args.get("from", ""))
    text, name = "", "rules.yaml"
    if start is not None:
        text, name = start.text, Path(start.file).name
    return page("validate.html", domains=sorted(book.domains), text=text, name=name, checked=False,
                current=request.args.get("from", ""))


_DOMAIN_LINE = re.compile(r"^domain:\s*([a-z][a-z0-9_]*)\s*(#.*)?$", re.MULTILINE)


def _file_name(name: str, text: str) -> str:
    """The name problems are reported under: the one given, or for pasted text left at the default
    ``rules.yaml``, its domain's file (``recovery.yaml``), as the file will be called."""
    found = _DOMAIN_LINE.search(text) if name == "rules.yaml" else None
    return f"{found.group(1)}.yaml" if found else name


@blueprint.post("/validate")
@admin_required
def validate_run():
    book = rulebook()
    text, name = posted_text("text", "upload", "name", "rules.yaml")
    name = _file_name(name, text)
    if not text.strip():
        return page("validate.html", 400, domains=sorted(book.domains), text=text, name=name, checked=False,
                    message=i18n.t("val.empty"))
    with heavy_run(Budget("validation", seconds=VALIDATION_SECONDS)):
        domain, problems = load_rule_file(name, text)
    problems = sorted(problems)
    replaces = replaced_domain(book, domain.name if domain else None)
    proofs = None
    if domain is not None and not problems:
        proofs = audit.proof_report(service(), _file_of(replaces, domain, name), text, domain.name)
    return page("validate.html", domains=sorted(book.domains), text=text, name=name, checked=True, domain=domain,
                problems=problems, lines=annotated(text, problems), replaces=replaces, current=Path(name).stem,
                proofs=proofs)


def _file_of(replaces: Any, domain: Any, name: str) -> str:
    """The file a candidate takes the place of: the one of its domain in force, else its own name."""
    if replaces is not None:
        return Path(replaces.file).name
    return f"{domain.name}.yaml" if domain is not None else Path(name).name


# --- impact ------------------------------------------------------------------------------------------

def _files(book: Rulebook) -> list[str]:
    return sorted(Path(domain.file).name for domain in book.domains.values())


@blueprint.get("/impact")
def impact():
    book = rulebook()
    start = book.domains.get(request.args.get("from", ""))
    text = start.text if start is not None else ""
    return page("impact.html", files=_files(book), available=audit.decision_log_available(service()),
                text=text, name=Path(start.file).name if start is not None else "", checked=False,
                domains=sorted(book.domains), current=request.args.get("from", ""))


@blueprint.post("/impact")
@admin_required
def impact_run():
    book = rulebook()
    text, name = posted_text("text", "upload", "name", "rules.yaml")
    context: dict[str, Any] = {"files": _files(book), "available": audit.decision_log_available(service()),
                               "text": text, "name": name, "checked": True, "domains": sorted(book.domains),
                               "current": Path(name).stem}
    if not text.strip():
        return page("impact.html", 400, **{**context, "checked": False, "message": i18n.t("val.empty")})
    with heavy_run(Budget("validation", seconds=VALIDATION_SECONDS)):
        domain, problems = load_rule_file(name, text)
    problems = sorted(problems)
    context.update(domain=domain, problems=problems, lines=annotated(text, problems), report=None)
    if not problems and domain is not None:
        # The file a candidate replaces is its domain's, whatever the select says (a recovery file
        # uploaded with allowance.yaml selected replaces recovery.yaml).
        replaced = _file_of(replaced_domain(book, domain.name), domain, name)
        if replaced != name:
            context["replaced_instead"] = {"chosen": name, "file": replaced}
        context["name"] = replaced
        try:
            report = audit.impact_report(service(), replaced, text)
        except RuleFileError as error:
            report, context["replay_problems"] = None, [str(problem) for problem in error.problems]
        context.update(report=report, bars=transition_bars(report) if report else [])
        context["proofs"] = audit.proof_report(service(), replaced, text, domain.name)
    return page("impact.html", 200 if not problems else 400, **context)


@dataclass
class Bar:
    transition: str
    before: str
    after: str
    count: int
    share: float  # of the replayed decisions, in percent
    width: float  # of the chart's bar area, 0..100


def transition_bars(report: dict[str, Any]) -> list[Bar]:
    """The impact report's transitions, largest first, scaled for the inline SVG chart."""
    replayed = max(int(report.get("replayed") or 0), 1)
    transitions = sorted((report.get("transitions") or {}).items(), key=lambda item: (-item[1], item[0]))
    largest = max((count for _, count in transitions), default=1) or 1
    bars = []
    for transition, count in transitions:
        before, _, after = transition.partition("->")
        bars.append(Bar(transition, before, after, count, 100.0 * count / replayed, 100.0 * count / largest))
    return bars
