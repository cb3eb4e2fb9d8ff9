"""``/v1/decisions/log``: the decision log — query it a page at a time, and explain one logged decision
(SPEC §10). Reading it needs the audit, QA or admin token, and each read runs in the worker's
heavy-work slot within the audit time budget (SPEC §7.1)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request
from marshmallow import ValidationError

from engine.audit.log import LogDatabase, LogQuery
from engine.audit.replay import explain
from engine.limits import checkpoint
from engine.reference.facts import flatten_errors

from .auth import audit_required
from .errors import InvalidRequest
from .limits import audit_read
from .pagination import encode_cursor, log_position, with_next_page
from .schemas import LogQuery as LogQuerySchema

blueprint = Blueprint("decisionlog", __name__, url_prefix="/v1/decisions")
_query_schema = LogQuerySchema()


def log_database() -> LogDatabase:
    decision_log = current_app.extensions["rulesvc"].decision_log
    if decision_log is None:
        abort(404, description="the decision log is off (the service runs with --log none)")
    return decision_log.database


@blueprint.get("/log")
@audit_required
def list_entries():
    """Logged decisions, newest first: a JSON list of up to ``limit`` (≤ 1,000) entries; the next page's
    address in the ``Link`` header, its cursor in ``Next-Cursor``."""
    try:
        args = _query_schema.load(request.args.to_dict())
    except ValidationError as error:
        raise InvalidRequest(flatten_errors(error.messages)) from None
    query = LogQuery(decision=args["decision"], start=args["from_"], end=args["to"], outcome=args["outcome"],
                     code=args["code"], decision_id=args["id"], limit=args["limit"], shadow=args["shadow"],
                     before_seq=log_position(args["cursor"]))
    with audit_read("decision log page"):
        entries, next_seq = log_database().page(query)
        checkpoint()
        response = jsonify(entries)
    return with_next_page(response, None if next_seq is None else encode_cursor("log", next_seq))


@blueprint.get("/log/<decision_id>/explain")
@audit_required
def explain_entry(decision_id: str):
    """Replay one logged decision on the rules it was made with; say whether it reproduces, with the trace."""
    state = current_app.extensions["rulesvc"]
    with audit_read("explain"):
        entry = log_database().entry(decision_id)
        if entry is None:
            abort(404, description=f"no decision {decision_id!r} in the decision log")
        return jsonify(explain(entry, state.versions, state.rulebook))
