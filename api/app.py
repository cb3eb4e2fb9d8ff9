"""Application factory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Response

from engine import Rulebook
from engine.audit.log import DEFAULT_LOG_URL, open_log
from engine.audit.log.writer import WRITERS
from engine.audit.replay import ShadowRunner
from engine.bundle.publisher import Publisher
from engine.bundle.store import RulesStore
from engine.state import DEFAULT_STORE_URL, is_cluster, open_store

from . import access, auth, decisionlog, decisions, health, metrics, publishing, records, rulesets, scenarios
from .bodies import MAX_BODY_BYTES
from .console import register_console
from .errors import register_error_handlers
from .jsonio import ServiceJSONProvider
from .state import ServiceState


def log_tuning() -> dict[str, Any]:
    """Decision-log writer settings from the environment (docs/decision-log.md): who writes (a process
    or a thread), queue size, batch size and how long entries may wait before a write."""
    # The service's entries are built and written by a process of their own (engine/audit/log/process.py).
    tuning: dict[str, Any] = {"writer": os.environ.get("RULESVC_LOG_WRITER") or "process"}
    if tuning["writer"] not in WRITERS:
        raise ValueError(f"RULESVC_LOG_WRITER={tuning['writer']!r} must be one of {', '.join(WRITERS)}")
    for variable, option, kind in (("RULESVC_LOG_QUEUE", "capacity", int), ("RULESVC_LOG_BATCH", "batch_size", int),
                                   ("RULESVC_LOG_FLUSH_SECONDS", "flush_seconds", float)):
        if os.environ.get(variable):
            try:
                tuning[option] = kind(os.environ[variable])
            except ValueError:
                raise ValueError(f"{variable}={os.environ[variable]!r} must be a number") from None
    return tuning


RULES_DB_FILE = "rules.db"  # drafts and publication history, beside the service's SQLite files
APPROVALS_VARIABLE = "RULESVC_PUBLISH_APPROVALS"


def publish_approvals() -> int:
    """How many admins a publication needs (``RULESVC_PUBLISH_APPROVALS``): 1, the publisher, or 2, the
    author and another who approves."""
    raw = os.environ.get(APPROVALS_VARIABLE, "").strip() or "1"
    if raw not in ("1", "2"):
        raise ValueError(f"{APPROVALS_VARIABLE}={raw!r} must be 1 or 2")
    return int(raw)


def create_app(rules_dir: str | Path = "rules", rulebook: Rulebook | None = None,
               store_url: str = DEFAULT_STORE_URL, records_url: str | None = None,
               log_url: str = DEFAULT_LOG_URL, log_sample: float = 1.0, shadow_dir: str | Path | None = None,
               rules_store_url: str | None = None, scenarios_dir: str | Path | None = None) -> Flask:
    """A Flask app serving the rules in ``rules_dir`` (loaded and compiled once, here), with
    counters and records in the store at ``store_url`` / ``records_url``, every decision appended to
    the decision log at ``log_url`` (``none``: no log) and, with ``shadow_dir``, also evaluated on the
    rules there. With ``rules_store_url`` the rules come from that store's publications (SPEC §12.1),
    seeded from ``rules_dir``; without it drafts and the publication history are kept beside the
    service's SQLite files and publishing writes into ``rules_dir``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json = ServiceJSONProvider(app)
    decision_log = open_log(log_url, sample=log_sample, on_drop=metrics.LOG_DROPPED.inc,
                            on_write=metrics.LOG_WRITTEN.inc, **log_tuning())
    shadow = None
    if shadow_dir is not None:
        if decision_log is None:
            raise ValueError("shadow rules need a decision log: their runs are compared and kept there")
        shadow = ShadowRunner(shadow_dir, decision_log, on_skip=metrics.SHADOW_SKIPPED.inc,
                              on_result=lambda decision, agreed: metrics.SHADOW_DECISIONS.labels(decision, agreed).inc())
    auth.admin_tokens()  # a malformed RULESVC_ADMIN_TOKENS stops the start, not a request
    # revoked console sessions and failed token checks, shared by the workers (opened in each on first use)
    app.extensions[access.EXTENSION] = access.AccessDatabase(access.default_url(store_url, records_url or "", log_url))
    publisher = Publisher(RulesStore(rules_store_url or access.default_url(store_url, records_url or "", log_url,
                                                                           file_name=RULES_DB_FILE, variable=None)),
                          rules_dir, authoritative=rules_store_url is not None, approvals=publish_approvals(),
                          require_partitions=is_cluster(store_url))
    # The store moves committed decisions' log entries from its outbox to the log (SPEC §10).
    app.extensions["rulesvc"] = ServiceState(rules_dir, rulebook, lambda: open_store(store_url, records_url, decision_log),
                                             decision_log, shadow, require_partitions=is_cluster(store_url),
                                             publisher=publisher, scenarios_dir=scenarios_dir)
    # records and the log before decisions: /v1/decisions/records is not a decision named "records";
    # publishing before rulesets: /v1/rulesets/drafts is not a domain named "drafts"
    for module in (records, decisionlog, decisions, publishing, rulesets, scenarios, health):
        app.register_blueprint(module.blueprint)
    register_console(app)
    register_error_handlers(app)
    app.after_request(_no_sniffing)
    return app


def _no_sniffing(response: Response) -> Response:
    """Every answer is read as the type it says (a JSON error or a CSV export is never run as HTML)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
