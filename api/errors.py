"""Every error leaves as JSON, in one place: bad input is a 4xx with a reason, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from engine import InvalidFacts, UnknownDecision
from engine.audit.log import LogUnavailable
from engine.bundle.publisher import ChangeRefused
from engine.bundle.store import RulesStoreUnavailable
from engine.limits import LimitExceeded
from engine.state import IdempotencyConflict, StoreUnavailable

from . import metrics
from .access import Throttled
from .limits import Busy

log = logging.getLogger(__name__)


class InvalidRequest(Exception):
    """Query parameters or a body (other than facts) that do not fit; ``fields`` maps names to messages."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__(str(fields))


# The code each HTTP status is answered with. Ours, not werkzeug's or gunicorn's reason phrase: those follow
# the RFCs' renamings (RFC 9110 calls 413 "Content Too Large", and gunicorn 27 already says so), while
# callers match on the code.
HTTP_ERROR_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE", 408: "REQUEST_TIMEOUT", 409: "CONFLICT", 410: "GONE", 411: "LENGTH_REQUIRED",
    412: "PRECONDITION_FAILED", 413: "REQUEST_ENTITY_TOO_LARGE", 414: "URI_TOO_LONG", 415: "UNSUPPORTED_MEDIA_TYPE",
    416: "REQUESTED_RANGE_NOT_SATISFIABLE", 417: "EXPECTATION_FAILED", 422: "UNPROCESSABLE_ENTITY", 428: "PRECONDITION_REQUIRED",
    429: "TOO_MANY_REQUESTS", 431: "REQUEST_HEADER_FIELDS_TOO_LARGE", 500: "INTERNAL_ERROR", 501: "NOT_IMPLEMENTED",
    502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT", 505: "HTTP_VERSION_NOT_SUPPORTED",
}


def http_error_code(status: int) -> str:
    """The error code of an answer with this status (``HTTP_<status>`` for one the table lacks)."""
    return HTTP_ERROR_CODES.get(status, f"HTTP_{status}")


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(InvalidFacts)
    def invalid_facts(error: InvalidFacts):
        return jsonify(error_body("INVALID_FACTS", "the facts do not match the decision's declarations",
                                  fields=error.fields)), 400

    @app.errorhandler(InvalidRequest)
    def invalid_request(error: InvalidRequest):
        return jsonify(error_body("INVALID_REQUEST", "the request does not fit this endpoint", fields=error.fields)), 400

    @app.errorhandler(UnknownDecision)
    def unknown_decision(error: UnknownDecision):
        return jsonify(error_body("UNKNOWN_DECISION", str(error), known=sorted(error.known))), 404

    @app.errorhandler(IdempotencyConflict)
    def conflict(error: IdempotencyConflict):
        return jsonify(error_body("IDEMPOTENCY_CONFLICT", str(error))), 409

    @app.errorhandler(StoreUnavailable)
    def unavailable(error: StoreUnavailable):
        metrics.STORE_ERRORS.inc()
        # One line, with what the driver said (hosts, slot counts); the caller gets the message alone.
        log.warning("store unavailable: %s%s", error, f": {error.detail}" if error.detail else "")
        return jsonify(error_body("STORE_UNAVAILABLE", str(error))), 503

    @app.errorhandler(ChangeRefused)
    def change_refused(error: ChangeRefused):
        return jsonify(error_body(error.code, str(error), **error.details)), error.status

    @app.errorhandler(RulesStoreUnavailable)
    def rules_store_unavailable(error: RulesStoreUnavailable):
        log.warning("rules store unavailable: %s", error)
        return jsonify(error_body("RULES_STORE_UNAVAILABLE", str(error))), 503

    @app.errorhandler(LogUnavailable)
    def log_unavailable(error: LogUnavailable):
        log.warning("decision log unavailable: %s", error)
        return jsonify(error_body("LOG_UNAVAILABLE", str(error))), 503

    @app.errorhandler(LimitExceeded)
    def limit_exceeded(error: LimitExceeded):
        # asked for too much: 413, like a body too large; ran out of time: 422, the request was fine
        status = 413 if error.kind == "count" else 422
        return jsonify(error_body("LIMIT_EXCEEDED", str(error), limit=error.limit.variable,
                                  maximum=error.maximum, unit=error.limit.unit)), status

    @app.errorhandler(Busy)
    def busy(error: Busy):
        response = jsonify(error_body("BUSY", str(error)))
        response.headers["Retry-After"] = str(error.retry_after)
        return response, 429

    @app.errorhandler(Throttled)
    def throttled(error: Throttled):
        response = jsonify(error_body("TOO_MANY_REQUESTS", str(error)))
        response.headers["Retry-After"] = str(error.retry_after)
        return response, 429

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        return jsonify(error_body(http_error_code(status), error.description or error.name)), status

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unexpected error")
        return jsonify(error_body("INTERNAL_ERROR", "unexpected server error; it has been logged")), 500
