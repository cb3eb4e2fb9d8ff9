"""``/v1/rulesets``: what is active; validate a rule file; reload from disk (admin); the versions ever
active; a candidate file's impact on logged decisions (admin); the shadow rules' agreement so far."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, jsonify, request
from marshmallow import ValidationError

from engine import RuleFileError, load_rule_file
from engine.audit.log import LogQuery
from engine.audit.replay import ShadowTally
from engine.errors import UnknownDecision
from engine.language.model import Domain
from engine.limits import IMPACT_DECISIONS, IMPACT_SECONDS, VALIDATION_SECONDS, VERIFY_SECONDS, Budget
from engine.reference.facts import flatten_errors
from engine.runtime.values import to_output

from .auth import admin_required, audit_required, qa_required
from .bodies import yaml_text
from .decisionlog import log_database
from .errors import InvalidRequest, error_body
from .limits import Busy, audit_read, heavy_run
from .schemas import ImpactQuery, VerifyQuery

blueprint = Blueprint("rulesets", __name__, url_prefix="/v1/rulesets")


def _describe(domain: Domain) -> dict[str, object]:
    return {"domain": domain.name, "decisions": sorted(decision.name for decision in domain.decisions.values()),
            "version": domain.version, "file": domain.file, "loaded_at": domain.loaded_at.isoformat()}


@blueprint.get("")
def list_rulesets():
    state = current_app.extensions["rulesvc"]
    rulebook = state.rulebook
    return jsonify({"version": rulebook.version, "last_reload": state.last_reload,
                    "rulesets": [_describe(domain) for _, domain in sorted(rulebook.domains.items())]})


@blueprint.get("/versions")
def list_versions():
    """Every ruleset version that was ever active (per domain), oldest first, each with who published it,
    when and why (its newest publication; null for a version that only the rules directory had);
    ``publications``: every publication, newest first (SPEC §12.1)."""
    state = current_app.extensions["rulesvc"]
    active = {domain.version for domain in state.rulebook.domains.values()}
    publications = [p.as_json() for p in state.publisher.store.publications()] if state.publisher is not None else []
    newest: dict[str, dict[str, object]] = {}
    for publication in publications:  # newest first: the first seen of a version is its newest
        newest.setdefault(str(publication["version"]), publication)
    versions = log_database().versions() if state.decision_log is not None else []
    logged = {version["version"] for version in versions}
    for publication in reversed(publications):  # published but never logged active (the log is off or new)
        if publication["version"] not in logged:
            logged.add(publication["version"])
            versions.append({"version": publication["version"], "domain": publication["domain"],
                             "file": publication["file"], "first_active_at": publication["published_at"]})
    return jsonify({"versions": [{**version, "active": version["version"] in active,
                                  **{key: newest.get(version["version"], {}).get(key)
                                     for key in ("published_by", "reason", "published_at", "kind")}}
                                 for version in versions],
                    "publications": publications})


@blueprint.get("/versions/<version>")
@audit_required
def one_version(version: str):
    """One kept version with the text of its files."""
    kept = log_database().version(version)
    if kept is None:
        abort(404, description=f"ruleset version {version!r} is not kept in the decision log")
    return jsonify(kept)


class ShadowReports:
    """This worker's shadow tally (one per start of the shadow rules) and the last report it gave."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tally: ShadowTally | None = None
        self._report: dict[str, object] | None = None

    def tally(self, since: datetime) -> ShadowTally:
        with self._lock:
            if self._tally is None or self._tally.since != since:
                self._tally, self._report = ShadowTally(since), None
            return self._tally

    def latest(self, since: datetime) -> dict[str, object] | None:
        with self._lock:
            return self._report if self._tally is not None and self._tally.since == since else None

    def keep(self, since: datetime, report: dict[str, object]) -> None:
        with self._lock:
            if self._tally is not None and self._tally.since == since:
                self._report = report


_shadow_reports = ShadowReports()


@blueprint.get("/shadow")
@audit_required
def shadow():
    """The shadow rules' runs so far, in the impact JSON form (examples: the shadowed decisions' ids);
    ``as_of`` says when it was computed. Each worker folds only the runs logged since its last report;
    while another heavy request holds this worker's slot, the last report it made is answered."""
    state = current_app.extensions["rulesvc"]
    runner = state.shadow
    if runner is None:
        abort(404, description="no shadow rules: start the service with rulesvc serve --shadow DIR")
    since = runner.started_at
    try:
        with audit_read("shadow report"):
            report = {**_shadow_reports.tally(since).update(log_database()), "as_of": to_output(datetime.now(UTC))}
        _shadow_reports.keep(since, report)
    except Busy:
        report = _shadow_reports.latest(since)
        if report is None:
            raise
    candidate = runner.candidate
    return jsonify({**report, "candidate": {
        "dir": str(runner.candidate_dir), "problems": runner.problems,
        "versions": sorted(domain.version for domain in candidate.domains.values()) if candidate else []}})


@blueprint.post("/impact")
@admin_required
def impact_of_candidate():
    """Replay logged decisions on the active rules with the file ``?file=NAME`` replaced by the body."""
    try:
        args = ImpactQuery().load(request.args.to_dict())
    except ValidationError as error:
        raise InvalidRequest(flatten_errors(error.messages)) from None
    state = current_app.extensions["rulesvc"]
    log_database()  # 404 when there is no log
    text, problem = yaml_text(args["file"])
    query = LogQuery(decision=args["decision"], start=args["from_"], end=args["to"], limit=args["limit"])
    try:
        if text is None:
            raise RuleFileError([problem])
        with heavy_run(Budget("impact replay", count=IMPACT_DECISIONS, seconds=IMPACT_SECONDS)):
            report = state.candidate_impact(args["file"], text, query)
    except RuleFileError as error:
        return jsonify(error_body("RULES_INVALID", "the candidate rules have problems; nothing was replayed",
                                  problems=[str(problem) for problem in error.problems])), 422
    return jsonify(report)


@blueprint.post("/verify")
@admin_required
def verify_candidate():
    """Prove the active rules with the file ``?file=NAME`` replaced by the body (SPEC §13): verify's JSON."""
    try:
        args = VerifyQuery().load(request.args.to_dict())
    except ValidationError as error:
        raise InvalidRequest(flatten_errors(error.messages)) from None
    state = current_app.extensions["rulesvc"]
    text, problem = yaml_text(args["file"])
    try:
        if text is None:
            raise RuleFileError([problem])
        with heavy_run(Budget("verify", seconds=VERIFY_SECONDS)) as budget:
            report = state.candidate_verify(args["file"], text, args["decision"], budget.deadline)
    except RuleFileError as error:
        return jsonify(error_body("RULES_INVALID", "the candidate rules have problems; nothing was proved",
                                  problems=[str(problem) for problem in error.problems])), 422
    except UnknownDecision as error:
        raise InvalidRequest({"decision": [str(error)]}) from None
    return jsonify(report)


@blueprint.get("/<domain>")
def one_ruleset(domain: str):
    rulebook = current_app.extensions["rulesvc"].rulebook
    if domain not in rulebook.domains:
        abort(404, description=f"unknown domain {domain!r}")
    return jsonify(_describe(rulebook.domains[domain]))


@blueprint.post("/validate")
@qa_required
def validate():
    """Check a rule file sent as YAML text; nothing is activated."""
    name = request.args.get("file", "rules.yaml")
    text, problem = yaml_text(name)  # a GBK upload: "save it as UTF-8"
    require_partition = current_app.extensions["rulesvc"].require_partitions
    if text is None:
        problems = [problem]
    else:
        with heavy_run(Budget("validation", seconds=VALIDATION_SECONDS)):
            _, problems = load_rule_file(name, text, require_partition=require_partition)
    return jsonify({"valid": not problems, "problems": [
        {"file": p.file, "line": p.line, "column": p.column, "message": p.message, "text": str(p)} for p in problems]})


@blueprint.post("/reload")
@admin_required
def reload():
    state = current_app.extensions["rulesvc"]
    problems = state.reload()
    if problems:
        return jsonify(error_body("RULES_INVALID", "the rule files have problems; the running rules stay active",
                                  problems=[str(problem) for problem in problems],
                                  active_version=state.rulebook.version)), 422
    return jsonify({"reloaded": True, "version": state.rulebook.version})
