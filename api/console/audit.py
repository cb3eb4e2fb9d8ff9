"""Where the console reads past decisions from — the one place to wire in the decision log.

The Log and Impact pages call only the functions below. Committed decision records exist today (the
store's ``records`` query and its CSV export). The decision log (SPEC §10), its explanation of one
decision and the impact replay (SPEC §11) do not exist yet: their functions answer ``None``, which
the pages show as "not available yet". To wire them in, make these functions call the engine's log,
explain and impact APIs and return the SPEC's JSON shapes (documented on each function); the
templates already render those shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.store import DecisionRecord, RecordQuery, export_csv

from ..records import reason_label
from ..state import ServiceState

RECORDS_SHOWN = 200  # rows on the page; the CSV export takes up to RECORDS_EXPORTED
RECORDS_EXPORTED = 100_000


@dataclass
class Filters:
    """The Log page's filters (SPEC §6 records query and §10 log query)."""

    decision: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    outcome: str | None = None
    decision_id: str | None = None
    code: str | None = None  # decision log only: a reason or warning code


# --- committed records (available) ---------------------------------------------------------------

def find_records(state: ServiceState, filters: Filters, limit: int = RECORDS_SHOWN) -> list[DecisionRecord]:
    """Committed decision records matching ``filters``, oldest first. Raises ``StoreUnavailable``."""
    return state.store.records(_record_query(filters, limit))


def records_csv(state: ServiceState, filters: Filters) -> str:
    """The merchant's CSV export (打款单号, 订单号, 客户账号, 打款原因, 状态, …) of the matching records."""
    found = state.store.records(_record_query(filters, RECORDS_EXPORTED))
    rulebook = state.rulebook
    return export_csv(found, lambda decision, value: reason_label(rulebook, decision, value))


def _record_query(filters: Filters, limit: int) -> RecordQuery:
    return RecordQuery(decision=filters.decision, start=filters.start, end=filters.end, outcome=filters.outcome,
                       decision_id=filters.decision_id, limit=limit)


# --- decision log, explanation, impact (SPEC §10, §11: not built yet) -----------------------------

def decision_log_available(state: ServiceState) -> bool:
    """Whether the service keeps a decision log the pages can search."""
    return False


def find_log_entries(state: ServiceState, filters: Filters, limit: int = RECORDS_SHOWN) -> list[dict[str, Any]] | None:
    """Decision log entries (SPEC §10: ``decision_id``, ``decision``, ``evaluated_at``, ``now``, ``source``,
    ``outcome``, ``reasons``, ``warnings``, ``obligations``, ``values``, ``ruleset_version``,
    ``duration_us``, ``committed``…) matching ``filters``; None while there is no log."""
    return None


def explain_decision(state: ServiceState, decision_id: str) -> dict[str, Any] | None:
    """SPEC §10's explanation of one logged decision: ``{"decision_id", "reproduced", "logged",
    "replayed" (a decision with its trace), "why_not"}``; None while there is no log."""
    return None


def impact_report(state: ServiceState, file_name: str, candidate_text: str) -> dict[str, Any] | None:
    """SPEC §11's impact JSON for the active rules with ``file_name`` replaced by ``candidate_text``:
    ``{"replayed", "unchanged", "not_replayable": {"count", "why"}, "transitions", "reasons_added",
    "reasons_removed", "rules": {rule: {"fired_before", "fired_after"}}, "values_changed",
    "examples": {transition: [decision_id, …]}}``; None while there is no log to replay."""
    return None
