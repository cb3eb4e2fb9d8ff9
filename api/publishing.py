"""``/v1/rulesets/drafts``, ``/v1/rulesets/rollback``: taking a rule-file change live and back (SPEC §12.1).

A draft is one rule file's candidate text; making one answers its whole review. Publishing activates it
the way a reload does (a draft with problems never is) and records who, when and why; a rollback
publishes a kept version again. Every call needs an admin, whose name is recorded.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from marshmallow import Schema, ValidationError

from engine import RuleFileError
from engine.bundle.publisher import Publisher
from engine.bundle.store import Draft
from engine.limits import VERIFY_SECONDS, Budget
from engine.reference.facts import flatten_errors

from .auth import admin_name, admin_required
from .bodies import json_body, yaml_text
from .errors import InvalidRequest, error_body
from .limits import heavy_run
from .schemas import DraftQuery, PublishBody, RollbackBody
from .state import ServiceState

blueprint = Blueprint("publishing", __name__, url_prefix="/v1/rulesets")


def _state() -> ServiceState:
    return current_app.extensions["rulesvc"]


def _publisher() -> Publisher:
    publisher = _state().publisher
    if publisher is None:  # create_app always makes one; a hand-built ServiceState may not
        raise InvalidRequest({"rules_store": ["this service keeps no drafts"]})
    return publisher


def _loaded(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ValidationError as error:
        raise InvalidRequest(flatten_errors(error.messages)) from None


def make_draft(file: str, text: str, author: str) -> Draft:
    """Review ``text`` as ``file`` (bounded like a verify request) and keep it as a draft."""
    state = _state()
    with heavy_run(Budget("draft review", seconds=VERIFY_SECONDS)) as budget:
        review = state.review(file, text, budget.deadline)
    return _publisher().add_draft(state.rulebook, file, text, author, review)


@blueprint.post("/drafts")
@admin_required
def create_draft():
    """A draft of ``?file=NAME`` from the YAML body, with its review (problems, diff, impact, scenarios, verify)."""
    args = _loaded(DraftQuery(), request.args.to_dict())
    text, problem = yaml_text(args["file"])
    if text is None:
        raise InvalidRequest({"body": [str(problem)]})
    draft = make_draft(args["file"], text, admin_name())
    return jsonify(draft.as_json(with_text=False)), 201


@blueprint.get("/drafts")
@admin_required
def list_drafts():
    return jsonify({"drafts": [_summary(draft) for draft in _publisher().store.drafts()]})


@blueprint.get("/drafts/<draft_id>")
@admin_required
def one_draft(draft_id: str):
    return jsonify(_publisher().draft(draft_id).as_json())


@blueprint.post("/drafts/<draft_id>/approve")
@admin_required
def approve_draft(draft_id: str):
    draft = _publisher().approve(draft_id, admin_name())
    return jsonify({"draft_id": draft.draft_id, "approvals": draft.approvals})


@blueprint.post("/drafts/<draft_id>/publish")
@admin_required
def publish_draft(draft_id: str):
    body = _loaded(PublishBody(), json_body())
    return _published(lambda active: _publisher().publish(active, draft_id, admin_name(), body["reason"]))


@blueprint.post("/rollback")
@admin_required
def rollback():
    """Publish a kept version of a domain again: ``{"domain", "version", "reason"}``."""
    body = _loaded(RollbackBody(), json_body())
    state = _state()
    return _published(lambda active: _publisher().rollback(active, body["domain"], body["version"], admin_name(),
                                                           body["reason"], state.kept_version_text))


def _published(change: Any) -> Any:
    state = _state()
    try:
        publication = state.put_live(change)
    except RuleFileError as error:
        return jsonify(error_body("RULES_INVALID", "the rules this makes have problems; nothing was published",
                                  problems=[str(problem) for problem in error.problems])), 422
    return jsonify({**publication.as_json(), "active_version": state.rulebook.version})


def _summary(draft: Draft) -> dict[str, Any]:
    review = draft.review
    scenarios = review.get("scenarios") or {}
    impact = review.get("impact") or {}
    return {"draft_id": draft.draft_id, "file": draft.file, "domain": draft.domain, "author": draft.author,
            "created_at": draft.created_at, "status": draft.status, "base_version": draft.base_version,
            "problems": len(review.get("problems") or []),
            "scenarios_changed": len(scenarios.get("changed", [])) if isinstance(scenarios, dict) else None,
            "transitions": impact.get("transitions") if isinstance(impact, dict) else None}
