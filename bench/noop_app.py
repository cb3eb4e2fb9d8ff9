"""The no-op baseline: a Flask app whose endpoint returns a small JSON and does nothing else.

Served by gunicorn with the worker count and class ``rulesvc serve`` uses (bench/http_load.py).
"""

from __future__ import annotations

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@app.post("/v1/decisions/<decision>")
def noop(decision: str):
    return jsonify({"decision": decision, "outcome": "allow"})
