"""``/v1/decisions/log``: the decision log — query it, and explain one logged decision (SPEC §10)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request
from marshmallow import ValidationError

from engine.decisionlog import LogDatabase, LogQuery
from engine.facts import flatten_errors
from engine.replay import explain

from .errors import InvalidRequest
from .schemas import LogQuery as LogQuerySchema

blueprint = Blueprint("decisionlog", __name__, url_prefix="/v1/decisions")
_query_schema = LogQuerySchema()


def log_database() -> LogDatabase:
    decision_log = current_app.extensions["rulesvc"].decision_log
    if decision_log is None:
        abort(404, description="the decision log is off (the service runs with --log none)")
    return decision_log.database


@blueprint.get("/log")
def list_entries():
    """Logged decisions, newest first: a JSON list of entries."""
    try:
        args = _query_schema.load(request.args.to_dict())
    except ValidationError as error:
        raise InvalidRequest(flatten_errors(error.messages)) from None
    entries = log_database().query(LogQuery(decision=args["decision"], start=args["from_"], end=args["to"],
                                            outcome=args["outcome"], code=args["code"], decision_id=args["id"],
                                            limit=args["limit"], shadow=args["shadow"]))
    return jsonify(entries)


@blueprint.get("/log/<decision_id>/explain")
def explain_entry(decision_id: str):
    """Replay one logged decision on the rules it was made with; say whether it reproduces, with the trace."""
    state = current_app.extensions["rulesvc"]
    entry = log_database().entry(decision_id)
    if entry is None:
        abort(404, description=f"no decision {decision_id!r} in the decision log")
    return jsonify(explain(entry, state.versions, state.rulebook))
