"""``/v1/decisions/records``: committed decisions, as JSON or as the CSV a merchant exports.

Reading them needs the audit, QA or admin token (SPEC §7.1); record columns that come from sensitive
facts (a customer's account…) are shown masked as the decision log keeps them (``hmac:…``) unless the
reader holds the audit or admin token."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import ValidationError

from engine import Rulebook, UnknownDecision
from engine.limits import checkpoint
from engine.reference.facts import flatten_errors
from engine.state import RecordQuery, csv_lines, record_order

from .auth import audit_required, bearer_token, sees_sensitive_facts
from .errors import InvalidRequest
from .limits import audit_read
from .pagination import encode_cursor, record_position, with_next_page
from .schemas import RecordsQuery

blueprint = Blueprint("records", __name__, url_prefix="/v1/decisions")
_query_schema = RecordsQuery()


@blueprint.get("/records")
@audit_required
def list_records():
    """A page of committed records, oldest first (``limit`` ≤ 1,000); the next page's address in the
    ``Link`` header, its cursor in ``Next-Cursor``. The CSV is streamed a line at a time."""
    try:
        args = _query_schema.load(request.args.to_dict())
    except ValidationError as error:
        raise InvalidRequest(flatten_errors(error.messages)) from None
    after = record_position(args["cursor"])
    state = current_app.extensions["rulesvc"]
    limit = args["limit"]
    query = RecordQuery(decision=args["decision"], start=args["from_"], end=args["to"], outcome=args["outcome"],
                        decision_id=args["id"], order_id=args["order_id"], store_id=args["store_id"], limit=limit + 1,
                        after=after)
    with audit_read("records page"):
        found = state.store.records(query)
        checkpoint()
    cursor = encode_cursor("records", list(record_order(found[limit - 1]))) if len(found) > limit else None
    found = found[:limit]
    if not sees_sensitive_facts(bearer_token()):
        found = state.masked_records(found)
    if args["format"] == "csv":
        rulebook = state.rulebook
        lines = csv_lines(found, lambda decision, value: reason_label(rulebook, decision, value))
        response = Response(lines, mimetype="text/csv", headers={
            "Content-Disposition": 'attachment; filename="decision-records.csv"'})
    else:
        response = jsonify({"records": [record.as_json() for record in found], "next_cursor": cursor})
    return with_next_page(response, cursor)


def reason_label(rulebook: Rulebook, decision: str, value: str | None) -> str:
    """The label of a record's reason (补差价 for price_difference), for the CSV export."""
    try:
        return rulebook.decision(decision).label("reason", value)
    except UnknownDecision:
        return value or ""
