"""Every error leaves as JSON, in one place: bad input is a 4xx with a reason, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from engine import InvalidFacts, UnknownDecision
from engine.decisionlog import LogUnavailable
from engine.limits import LimitExceeded
from engine.store import IdempotencyConflict, StoreUnavailable

from . import metrics
from .limits import Busy

log = logging.getLogger(__name__)


class InvalidRequest(Exception):
    """Query parameters or a body (other than facts) that do not fit; ``fields`` maps names to messages."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__(str(fields))


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
        log.warning("store unavailable: %s", error)
        return jsonify(error_body("STORE_UNAVAILABLE", str(error))), 503

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

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").upper().replace(" ", "_")
        return jsonify(error_body(code, error.description or error.name)), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unexpected error")
        return jsonify(error_body("INTERNAL_ERROR", "unexpected server error; it has been logged")), 500
