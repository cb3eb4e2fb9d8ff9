"""``/v1/decisions``: evaluate a decision, one or a batch, optionally committing it."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify
from marshmallow import ValidationError

from engine import InvalidFacts
from engine.commit import commit_decision
from engine.evaluation import CompiledDecision
from engine.facts import flatten_errors

from . import metrics
from .bodies import MAX_BATCH_BODY_BYTES, json_body
from .errors import error_body
from .schemas import BatchItem, BatchRequest, DecisionRequest

blueprint = Blueprint("decisions", __name__, url_prefix="/v1/decisions")
_request_schema = DecisionRequest()
_batch_schema = BatchRequest()
_item_schema = BatchItem()


def _load(schema: Any, body: Any, compiled: CompiledDecision) -> dict[str, Any]:
    """The envelope, checked; with a bad envelope the facts are checked too, so every error is listed."""
    if not isinstance(body, dict):
        raise InvalidFacts({"body": ['must be a JSON object such as {"facts": {...}}']})
    try:
        return schema.load(body)
    except ValidationError as error:
        fields = flatten_errors(error.messages)
    if "facts" in body:
        try:
            compiled.facts.load(body["facts"])
        except InvalidFacts as facts_error:
            fields.update(facts_error.fields)
    raise InvalidFacts(fields)


def _observed(compiled: CompiledDecision, started: float, result: dict[str, Any]) -> dict[str, Any]:
    metrics.LATENCY.labels(compiled.name).observe(time.perf_counter() - started)
    metrics.DECISIONS.labels(compiled.name, result["outcome"]).inc()
    return result


@blueprint.post("/<decision>")
def decide(decision: str):
    started = time.perf_counter()
    state = current_app.extensions["rulesvc"]
    compiled = state.rulebook.decision(decision)  # 404 before judging the body
    envelope = _load(_request_schema, json_body(), compiled)
    if envelope["commit"]:
        result = commit_decision(compiled, envelope["facts"], idempotency_key=envelope["idempotency_key"],
                                 store=state.store, now=envelope["now"])
    else:
        result = compiled.evaluate(envelope["facts"], now=envelope["now"], explain=envelope["explain"],
                                   counters=state.counters())
    return jsonify(_observed(compiled, started, result))


@blueprint.post("/<decision>/batch")
def decide_batch(decision: str):
    state = current_app.extensions["rulesvc"]
    compiled = state.rulebook.decision(decision)
    body = json_body(MAX_BATCH_BODY_BYTES)
    try:
        items = _batch_schema.load(body if isinstance(body, dict) else {"items": None})["items"]
    except ValidationError as error:
        raise InvalidFacts(flatten_errors(error.messages)) from None
    counters = state.counters()
    results = []
    for item in items:
        started = time.perf_counter()
        try:
            envelope = _load(_item_schema, item, compiled)
            result = compiled.evaluate(envelope["facts"], now=envelope["now"], counters=counters)
        except InvalidFacts as error:
            results.append(error_body("INVALID_FACTS", "the facts do not match the decision's declarations",
                                      fields=error.fields))
            continue
        results.append(_observed(compiled, started, result))
    return jsonify({"results": results})
