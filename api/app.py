"""Application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from engine import Rulebook, load_rulebook

from . import decisions, health, rulesets
from .errors import register_error_handlers

MAX_BODY_BYTES = 1024 * 1024


def create_app(rules_dir: str | Path = "rules", rulebook: Rulebook | None = None) -> Flask:
    """A Flask app serving the rules in ``rules_dir`` (loaded and compiled once, here)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["rulesvc.rulebook"] = rulebook or load_rulebook([rules_dir])
    for module in (decisions, rulesets, health):
        app.register_blueprint(module.blueprint)
    register_error_handlers(app)
    return app
