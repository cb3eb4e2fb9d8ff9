"""``/v1/decisions``: evaluate a decision, one or a batch, optionally committing it."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify
from marshmallow import ValidationError

from engine import InvalidFacts
from engine.reference.facts import flatten_errors
from engine.runtime.evaluation import CompiledDecision
from engine.runtime.values import parse_instant
from engine.state.commit import commit, commit_time_problem

from . import metrics
from .bodies import MAX_BATCH_BODY_BYTES, json_body
from .errors import InvalidRequest, error_body
from .schemas import MAX_BATCH_ITEMS, BatchItem, BatchRequest, DecisionRequest

blueprint = Blueprint("decisions", __name__, url_prefix="/v1/decisions")
_request_schema = DecisionRequest()
_batch_schema = BatchRequest()
_item_schema = BatchItem()
# The usual envelopes, checked without marshmallow (_plain_envelope); anything else goes through it.
_ITEM_KEYS = frozenset({"facts", "now"})
_EVALUATE_KEYS = frozenset({"facts", "now", "explain"})


def _load(schema: Any, body: Any, compiled: CompiledDecision) -> dict[str, Any]:
    """The envelope, checked; with a bad envelope the facts are checked too, so every error is listed.

    Raises :class:`InvalidRequest` when the request itself is wrong (not a JSON object, a bad ``now``,
    ``commit`` or ``explain``, a commit without its key, an unknown key), else :class:`InvalidFacts`
    (SPEC §6: ``INVALID_FACTS`` is for facts); either lists every problem by path.
    """
    if not isinstance(body, dict):
        raise InvalidRequest({"body": ['must be a JSON object such as {"facts": {...}}']})
    try:
        return schema.load(body)
    except ValidationError as error:
        fields = flatten_errors(error.messages)
    about_request = any(path != "facts" for path in fields)  # "facts" itself missing is about the facts
    if "facts" in body:
        try:
            compiled.facts.load(body["facts"])
        except InvalidFacts as facts_error:
            fields.update(facts_error.fields)
    raise InvalidRequest(fields) if about_request else InvalidFacts(fields)


def _observed(compiled: CompiledDecision, started: float, result: dict[str, Any]) -> int:
    """Count the decision in the metrics; returns its duration in microseconds."""
    seconds = time.perf_counter() - started
    metrics.LATENCY.labels(compiled.name).observe(seconds)
    metrics.DECISIONS.labels(compiled.name, result["outcome"]).inc()
    return int(seconds * 1_000_000)


@blueprint.post("/<decision>")
def decide(decision: str):
    started = time.perf_counter()
    state = current_app.extensions["rulesvc"]
    compiled = state.rulebook.decision(decision)  # 404 before judging the body
    body = json_body()
    plain = _plain_envelope(body, _EVALUATE_KEYS)
    envelope = (_load(_request_schema, body, compiled) if plain is None
                else {"facts": plain[0], "now": plain[1], "explain": plain[2], "commit": False})
    if envelope["commit"]:
        server_now = state.clock()  # the time of a commit is the server's (SPEC §6)
        problem = commit_time_problem(envelope["now"], server_now)
        if problem:
            raise InvalidRequest({"now": [problem]})
        # The commit's log entry goes into the store's outbox with its record, never sampled (SPEC §10).
        committed = commit(compiled, envelope["facts"], idempotency_key=envelope["idempotency_key"],
                           store=state.store, now=envelope["now"], server_now=server_now, log=state.decision_log)
        result = committed.result
        _observed(compiled, started, result)
        if committed.evaluation is not None:  # None: a repeated key answered with the first decision, logged then
            state.shadow_decision(compiled, committed.evaluation, result, "commit")
    else:
        result, evaluation = compiled.run(envelope["facts"], now=envelope["now"], explain=envelope["explain"],
                                          counters=state.counters())
        state.log_decision(compiled, evaluation, result, source="http", duration_us=_observed(compiled, started, result))
    response = jsonify(result)
    if result.get("replayed"):  # a repeated idempotency key: the first decision again (SPEC §6)
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blueprint.post("/<decision>/batch")
def decide_batch(decision: str):
    state = current_app.extensions["rulesvc"]
    compiled = state.rulebook.decision(decision)
    body = json_body(MAX_BATCH_BODY_BYTES)
    items = body.get("items") if type(body) is dict and body.keys() == {"items"} else None
    if type(items) is not list or not 1 <= len(items) <= MAX_BATCH_ITEMS:
        try:  # marshmallow says what is wrong with the envelope
            items = _batch_schema.load(body if isinstance(body, dict) else {"items": None})["items"]
        except ValidationError as error:
            raise InvalidRequest(flatten_errors(error.messages)) from None
    envelopes: list[tuple[Any, Any] | InvalidFacts | InvalidRequest] = [_batch_item(item, compiled) for item in items]
    valid = [envelope for envelope in envelopes if not isinstance(envelope, InvalidFacts | InvalidRequest)]
    made = iter(compiled.run_many(valid, counters=state.counters()))
    results = []
    outcomes: dict[str, int] = {}
    latency = metrics.LATENCY.labels(compiled.name)  # one label lookup per batch, not per item
    for envelope in envelopes:
        answer = envelope if isinstance(envelope, InvalidFacts | InvalidRequest) else next(made)
        if isinstance(answer, InvalidRequest):
            results.append(error_body("INVALID_REQUEST", "the item does not fit this endpoint", fields=answer.fields))
            continue
        if isinstance(answer, InvalidFacts):
            results.append(error_body("INVALID_FACTS", "the facts do not match the decision's declarations",
                                      fields=answer.fields))
            continue
        result = answer.result
        outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
        latency.observe(answer.duration_us / 1_000_000)
        state.log_decision(compiled, answer.evaluation, result, source="batch", duration_us=answer.duration_us)
        results.append(result)
    for outcome, count in outcomes.items():
        metrics.DECISIONS.labels(compiled.name, outcome).inc(count)
    return jsonify({"results": results})


def _batch_item(item: Any, compiled: CompiledDecision) -> tuple[Any, Any] | InvalidFacts | InvalidRequest:
    """``(facts, now)`` of a batch item, or what is wrong with it."""
    plain = _plain_envelope(item, _ITEM_KEYS)
    if plain is not None:
        return plain[0], plain[1]
    try:
        envelope = _load(_item_schema, item, compiled)
    except (InvalidFacts, InvalidRequest) as error:
        return error
    return envelope["facts"], envelope["now"]


def _plain_envelope(body: Any, keys: frozenset[str]) -> tuple[Any, Any, bool] | None:
    """``(facts, now, explain)`` of an envelope with the usual shape — ``facts``, and only ``keys``, each of its
    type — checked without marshmallow; None for any other, which the schema then checks and explains."""
    if type(body) is not dict or "facts" not in body or not body.keys() <= keys:
        return None
    explain = body.get("explain", False)
    now = body.get("now")
    if type(explain) is not bool:
        return None
    if now is not None:
        if type(now) is not str:
            return None
        try:
            now = parse_instant(now)
        except ValueError:
            return None
    return body["facts"], now, explain
