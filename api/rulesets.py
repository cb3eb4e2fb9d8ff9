"""``/v1/rulesets``: what is active; validate a rule file; reload from disk (admin)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request

from engine import load_rule_file
from engine.limits import VALIDATION_SECONDS, Budget
from engine.model import Domain

from .auth import admin_required, qa_required
from .bodies import yaml_text
from .errors import error_body
from .limits import heavy_run

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
    text = yaml_text()
    require_partition = current_app.extensions["rulesvc"].require_partitions
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
