"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    rulebook = current_app.extensions["rulesvc"].rulebook
    return jsonify({"status": "ready", "decisions": len(rulebook.decisions)})
