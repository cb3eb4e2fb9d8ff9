"""Every error leaves as JSON, in one place: bad input is a 4xx with a reason, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from engine import InvalidFacts, UnknownDecision
from engine.store import IdempotencyConflict, StoreUnavailable

log = logging.getLogger(__name__)


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(InvalidFacts)
    def invalid_facts(error: InvalidFacts):
        return jsonify(error_body("INVALID_FACTS", "the facts do not match the decision's declarations",
                                  fields=error.fields)), 400

    @app.errorhandler(UnknownDecision)
    def unknown_decision(error: UnknownDecision):
        return jsonify(error_body("UNKNOWN_DECISION", str(error), known=sorted(error.known))), 404

    @app.errorhandler(IdempotencyConflict)
    def conflict(error: IdempotencyConflict):
        return jsonify(error_body("IDEMPOTENCY_CONFLICT", str(error))), 409

    @app.errorhandler(StoreUnavailable)
    def unavailable(error: StoreUnavailable):
        log.warning("store unavailable: %s", error)
        return jsonify(error_body("STORE_UNAVAILABLE", str(error))), 503

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").upper().replace(" ", "_")
        return jsonify(error_body(code, error.description or error.name)), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unexpected error")
        return jsonify(error_body("INTERNAL_ERROR", "unexpected server error; it has been logged")), 500
