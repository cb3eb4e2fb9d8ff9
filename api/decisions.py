"""``/v1/decisions``: evaluate a decision."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from engine import InvalidFacts
from engine.commit import commit_decision
from engine.evaluation import CompiledDecision

from .schemas import DecisionRequest

blueprint = Blueprint("decisions", __name__, url_prefix="/v1/decisions")
_request_schema = DecisionRequest()


def _envelope(compiled: CompiledDecision) -> dict[str, Any]:
    """The request body, checked; with a bad envelope the facts are checked too, so every error is listed."""
    try:
        # force: a JSON body is JSON whatever content type the client forgot to send
        body = request.get_json(force=True, silent=True)
    except RecursionError:
        body = None
    if not isinstance(body, dict):
        raise InvalidFacts({"body": ["must be a JSON object such as {\"facts\": {...}}"]})
    try:
        return _request_schema.load(body)
    except ValidationError as error:
        fields = {str(key): list(messages) for key, messages in error.messages.items()}
    if "facts" in body:
        try:
            compiled.facts.load(body["facts"])
        except InvalidFacts as facts_error:
            fields.update(facts_error.fields)
    raise InvalidFacts(fields)


@blueprint.post("/<decision>")
def decide(decision: str):
    state = current_app.extensions["rulesvc"]
    compiled = state.rulebook.decision(decision)  # 404 before judging the body
    envelope = _envelope(compiled)
    if envelope["commit"]:
        result = commit_decision(compiled, envelope["facts"], idempotency_key=envelope["idempotency_key"],
                                 store=state.store, now=envelope["now"])
    else:
        result = compiled.evaluate(envelope["facts"], now=envelope["now"], explain=envelope["explain"],
                                   counters=state.counters())
    return jsonify(result)
