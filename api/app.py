"""Application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from engine import Rulebook
from engine.store import DEFAULT_STORE_URL, is_cluster, open_store

from . import decisions, health, records, rulesets, scenarios
from .bodies import MAX_BODY_BYTES
from .errors import register_error_handlers
from .state import ServiceState


def create_app(rules_dir: str | Path = "rules", rulebook: Rulebook | None = None,
               store_url: str = DEFAULT_STORE_URL, records_url: str | None = None) -> Flask:
    """A Flask app serving the rules in ``rules_dir`` (loaded and compiled once, here), with
    counters and records in the store at ``store_url`` / ``records_url``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["rulesvc"] = ServiceState(rules_dir, rulebook, lambda: open_store(store_url, records_url),
                                             require_partitions=is_cluster(store_url))
    # records before decisions: /v1/decisions/records is not a decision named "records"
    for module in (records, decisions, rulesets, scenarios, health):
        app.register_blueprint(module.blueprint)
    register_error_handlers(app)
    return app
