"""``/v1/rulesets``: what is active."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify

blueprint = Blueprint("rulesets", __name__, url_prefix="/v1/rulesets")


def _describe(domain) -> dict[str, object]:
    return {"domain": domain.name, "decisions": sorted(decision.name for decision in domain.decisions.values()),
            "version": domain.version, "file": domain.file, "loaded_at": domain.loaded_at.isoformat()}


@blueprint.get("")
def list_rulesets():
    rulebook = current_app.extensions["rulesvc"].rulebook
    return jsonify({"rulesets": [_describe(domain) for _, domain in sorted(rulebook.domains.items())]})


@blueprint.get("/<domain>")
def one_ruleset(domain: str):
    rulebook = current_app.extensions["rulesvc"].rulebook
    if domain not in rulebook.domains:
        abort(404, description=f"unknown domain {domain!r}")
    return jsonify(_describe(rulebook.domains[domain]))
