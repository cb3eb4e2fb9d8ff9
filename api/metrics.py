"""Prometheus metrics. Under gunicorn they are collected across workers (multiprocess mode):
``rulesvc serve`` sets PROMETHEUS_MULTIPROC_DIR before this module is imported."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

DECISIONS = Counter("rulesvc_decisions_total", "Decisions evaluated", ["decision", "outcome"])
LATENCY = Histogram("rulesvc_decision_seconds", "Time to evaluate one decision (validation to result)", ["decision"],
                    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
RELOADS = Counter("rulesvc_reloads_total", "Rule reloads", ["result"])
STORE_ERRORS = Counter("rulesvc_store_errors_total", "Store operations that failed (served as 503)")
LOG_WRITTEN = Counter("rulesvc_decision_log_written_total", "Decision-log entries written")
LOG_DROPPED = Counter("rulesvc_decision_log_dropped_total",
                      "Decision-log entries dropped (queue full or log unavailable); decisions never wait for the log")
SHADOW_DECISIONS = Counter("rulesvc_shadow_decisions_total", "Decisions also evaluated on the shadow rules",
                           ["decision", "agreed"])
SHADOW_SKIPPED = Counter("rulesvc_shadow_skipped_total", "Shadow runs skipped because the shadow queue was full")


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
