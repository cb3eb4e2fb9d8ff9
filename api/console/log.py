"""The Log page: committed decision records with filters and CSV export, the decision log and one
decision's explanation, through :mod:`.audit`. Reading what was decided needs a sign-in with the audit,
QA or admin token (SPEC §7.1); records show sensitive facts masked unless the session holds the audit
or the admin token."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from marshmallow import EXCLUDE, ValidationError, fields

from engine.reference.facts import flatten_errors
from engine.state import StoreUnavailable

from ..records import reason_label
from ..schemas import RecordsQuery
from . import audit, i18n, security
from .blueprint import OUTCOMES, blueprint, not_found, page, rulebook, service


class LogFilters(RecordsQuery):
    """The records query of the API, plus the decision log's reason code; other parameters are ignored."""

    class Meta:
        unknown = EXCLUDE

    code = fields.String(load_default=None)


_filters_schema = LogFilters()


def read_filters() -> tuple[audit.Filters, dict[str, list[str]]]:
    given = {key: value.strip() for key, value in request.args.items() if value.strip()}
    try:
        args = _filters_schema.load(given)
    except ValidationError as error:
        return audit.Filters(), flatten_errors(error.messages)
    return audit.Filters(decision=args["decision"], start=args["from_"], end=args["to"], outcome=args["outcome"],
                         decision_id=args["id"], code=args["code"]), {}


def _records(filters: audit.Filters, limit: int = audit.RECORDS_SHOWN) -> list[Any]:
    """The matching records as this session may see them (masked unless audit or admin)."""
    found = audit.find_records(service(), filters, limit=limit)
    return found if security.sees_sensitive_facts() else service().masked_records(found)


@blueprint.get("/log")
@security.reader_required
def log_page():
    filters, errors = read_filters()
    records: list[Any] = []
    store_error = ""
    if not errors:
        try:
            records = _records(filters)
        except StoreUnavailable as error:
            store_error = str(error)
    entries = None if errors else audit.find_log_entries(service(), filters)
    return page("log.html", 400 if errors else 200, filters=filters, errors=errors, records=records,
                shown=audit.RECORDS_SHOWN, store_error=store_error, entries=entries,
                log_available=audit.decision_log_available(service()), decisions=sorted(rulebook().decisions),
                outcomes=OUTCOMES, args=request.args, label=_label, masked=not security.sees_sensitive_facts())


def _label(decision: str, value: str | None) -> str:
    """A record's reason as people read it: 补差价 (price_difference)."""
    label = reason_label(rulebook(), decision, value)
    return f"{label} ({value})" if value and label != value else (value or "")


@blueprint.get("/log/records.csv")
@security.reader_required
def log_csv():
    filters, errors = read_filters()
    if errors:
        return page("log.html", 400, filters=filters, errors=errors, records=[], shown=audit.RECORDS_SHOWN,
                    store_error="", entries=None, log_available=audit.decision_log_available(service()),
                    decisions=sorted(rulebook().decisions), outcomes=OUTCOMES, args=request.args, label=_label,
                    masked=not security.sees_sensitive_facts())
    body = audit.records_csv(service(), filters, masked=not security.sees_sensitive_facts())
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="decision-records.csv"'})


@blueprint.get("/log/<decision_id>")
@security.reader_required
def log_decision(decision_id: str):
    state = service()
    explanation = audit.explain_decision(state, decision_id)
    records = _records(audit.Filters(decision_id=decision_id), limit=1)
    if explanation is None and not records:
        raise not_found(i18n.t("log.not_found", id=decision_id))
    return page("log_decision.html", decision_id=decision_id, explanation=explanation,
                record=records[0] if records else None, log_available=audit.decision_log_available(state),
                masked=not security.sees_sensitive_facts())
