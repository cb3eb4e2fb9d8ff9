"""Where the console reads past decisions from: committed records and their CSV export, the decision
log (SPEC §10), the explanation of one decision and the impact replay (SPEC §11).

The Log and Impact pages call only the functions below; the pages ask for a reading sign-in and say
whether records are shown masked (``ServiceState.masked_records``). Without a decision log the log
functions answer ``None``, which the pages show as "not available". Reads are bounded as the API's are
(SPEC §7.1): a page shows :data:`RECORDS_SHOWN` rows, an export holds at most one API page of records
and runs in the worker's heavy-work slot within the audit time budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine import RuleFileError
from engine.audit.log import LogQuery
from engine.audit.replay import explain
from engine.limits import IMPACT_DECISIONS, IMPACT_SECONDS, VERIFY_SECONDS, Budget
from engine.state import DecisionRecord, RecordQuery, export_csv

from ..limits import audit_read, heavy_run
from ..pagination import MAX_PAGE_ENTRIES
from ..records import reason_label
from ..state import ServiceState

RECORDS_SHOWN = 200  # rows on the page; the CSV export takes up to RECORDS_EXPORTED
RECORDS_EXPORTED = MAX_PAGE_ENTRIES  # more: the API's pages (GET /v1/decisions/records?format=csv&cursor=…)
IMPACT_REPLAYED = 10_000  # the latest logged decisions a console impact run replays (a page answers in seconds)


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


def records_csv(state: ServiceState, filters: Filters, masked: bool = False) -> str:
    """The merchant's CSV export (打款单号, 订单号, 客户账号, 打款原因, 状态, …) of the matching records,
    with sensitive columns masked when ``masked`` (see :meth:`ServiceState.masked_records`)."""
    with audit_read("records export"):
        found = state.store.records(_record_query(filters, RECORDS_EXPORTED))
    if masked:
        found = state.masked_records(found)
    rulebook = state.rulebook
    return export_csv(found, lambda decision, value: reason_label(rulebook, decision, value))


def _record_query(filters: Filters, limit: int) -> RecordQuery:
    return RecordQuery(decision=filters.decision, start=filters.start, end=filters.end, outcome=filters.outcome,
                       decision_id=filters.decision_id, limit=limit)


# --- decision log, explanation, impact (SPEC §10, §11) -------------------------------------------------


def decision_log_available(state: ServiceState) -> bool:
    """Whether the service keeps a decision log the pages can search."""
    return state.decision_log is not None


def find_log_entries(state: ServiceState, filters: Filters, limit: int = RECORDS_SHOWN) -> list[dict[str, Any]] | None:
    """Decision log entries (SPEC §10) matching ``filters``, newest first by when they were decided
    (``evaluated_at``: two workers' entries reach the log in batches, a little out of that order);
    None while there is no log."""
    if state.decision_log is None:
        return None
    entries = state.decision_log.database.query(LogQuery(
        decision=filters.decision, start=filters.start, end=filters.end, outcome=filters.outcome,
        code=filters.code, decision_id=filters.decision_id, limit=limit))
    return sorted(entries, key=lambda entry: datetime.fromisoformat(entry["evaluated_at"]), reverse=True)


def explain_decision(state: ServiceState, decision_id: str) -> dict[str, Any] | None:
    """SPEC §10's explanation of one logged decision; None when there is no log or no such decision."""
    if state.decision_log is None:
        return None
    entry = state.decision_log.database.entry(decision_id)
    if entry is None:
        return None
    return explain(entry, state.versions, state.rulebook)


def proof_report(state: ServiceState, file_name: str, candidate_text: str, domain: str) -> dict[str, Any] | None:
    """SPEC §13's verify JSON for the active rules with ``file_name`` replaced by ``candidate_text``, for
    the decisions of ``domain`` (the candidate's); None when the candidate does not load with the others."""
    try:
        with heavy_run(Budget("verify", seconds=VERIFY_SECONDS)) as budget:
            return state.candidate_verify(file_name, candidate_text, None, budget.deadline, domain=domain)
    except RuleFileError:
        return None


def impact_report(state: ServiceState, file_name: str, candidate_text: str) -> dict[str, Any] | None:
    """SPEC §11's impact JSON for the active rules with ``file_name`` replaced by ``candidate_text``, over the
    latest logged decisions; None when there is no log. Raises :class:`RuleFileError` when the candidate
    does not load with the other files in force (the page says why)."""
    if state.decision_log is None:
        return None
    with heavy_run(Budget("impact replay", count=IMPACT_DECISIONS, seconds=IMPACT_SECONDS)):
        return state.candidate_impact(file_name, candidate_text, LogQuery(limit=IMPACT_REPLAYED))


