"""Liveness, readiness, metrics and the API documentation."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from . import metrics
from .errors import error_body

blueprint = Blueprint("health", __name__)

# Swagger UI served by the service itself (swagger-ui-bundle): /docs works on a machine without internet.
# Its start-up call is a file of ours, not an inline script, so the policy below needs no 'unsafe-inline'
# for scripts; Swagger UI sets style attributes and shows data: images, which the policy allows.
_DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>rulesvc API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/rulesvc-start.js"></script>
<noscript>The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>"""
_DOCS_START = 'SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});\n'
DOCS_CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'none'; "
                                "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    """Ready once the rules are loaded and the store can serve a commit (docs/state.md §4): a load
    balancer then sends no traffic to an instance whose commits would fail. A record store that takes
    no records leaves it ready — commits go on, their records wait in the outbox — and says so."""
    state = current_app.extensions["rulesvc"]
    readiness = state.readiness()
    if readiness["store"] != "ok":
        return jsonify(error_body("STORE_UNAVAILABLE", readiness["store"])), 503
    return jsonify({"status": "ready", "version": state.rulebook.version, "decisions": len(state.rulebook.decisions),
                    **readiness})


@blueprint.get("/metrics")
def prometheus_metrics():
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


@blueprint.get("/openapi.json")
def openapi_document():
    return jsonify(current_app.extensions["rulesvc"].openapi())


@blueprint.get("/docs")
def docs_page():
    return Response(_DOCS_PAGE, mimetype="text/html", headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY})


@blueprint.get("/docs/rulesvc-start.js")
def docs_start():
    return Response(_DOCS_START, mimetype="text/javascript")


@blueprint.get("/docs/<path:filename>")
def docs_asset(filename: str):
    return send_from_directory(swagger_ui_path, filename)
