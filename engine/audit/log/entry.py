"""A decision-log entry: what the service decided, on what, with which rules (SPEC §10).

The request path hands over a :class:`Pending` (references only, nothing copied or encoded); the
writer turns it into the entry's row — facts in output form with sensitive ones masked, the entry as
JSON text (:func:`entry_row`) — off that path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from engine.audit.log.masking import Masker
from engine.language.model import Decision, defaulted_paths
from engine.runtime.values import epoch_us, output_form, to_output
from engine.verdict import Verdict

if TYPE_CHECKING:
    from engine.runtime.evaluation import Evaluation

SOURCES = ("http", "batch", "commit", "cli")
# Instants go to output_form (Shanghai time), as everywhere in the log, not orjson's own way.
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME


@dataclass(slots=True)
class Pending:
    """A decision waiting to be written: its document (``result``) or, for a shadow run, the candidate's verdict."""

    # The decision's model and version, not its CompiledDecision: a queued entry must not keep the
    # native rulesets of rules a reload replaced alive until it is written.
    decision: Decision
    version: str
    sensitive_paths: tuple[str, ...]
    evaluation: Evaluation
    result: dict[str, Any] | None
    verdict: Verdict | None
    decision_id: str
    source: str
    duration_us: int
    committed: bool
    logged_at: datetime
    shadow: dict[str, Any] | None = None
    mask_also: tuple[str, ...] = ()  # a shadow run masks what the service's rules call sensitive too


def verdict_of_result(decision: Decision, evaluation: Evaluation, result: dict[str, Any]) -> Verdict:
    """The verdict of a decision document already built (no second pass over the rules' messages)."""
    return Verdict(
        outcome=result["outcome"],
        reasons=tuple(sorted({reason["code"] for reason in result["reasons"]})),
        warnings=tuple(sorted({warning["code"] for warning in result["warnings"]})),
        fired=tuple(rule.qualified_id for rule in decision.rules if rule.id in evaluation.fired),
        obligations=result["obligations"], values=result["values"], next_eligible_at=result["next_eligible_at"])


def build_entry(pending: Pending, masker: Masker) -> dict[str, Any]:
    """The entry of a pending decision as a JSON-ready dict (a commit keeps it in its outbox)."""
    facts, masked = masker.mask(to_output(pending.evaluation.facts), pending_mask_paths(pending))
    return _entry(pending, facts, masked)


def entry_row(pending: Pending, masker: Masker) -> tuple[Any, ...]:
    """The decision-log row of a pending decision (:data:`~engine.audit.log.sql.ROW_COLUMNS`), the entry's
    JSON text built in one pass: the validated facts are masked where sensitive and written by orjson,
    which turns money and instants into their output form through :func:`output_form` alone, instead of
    walking every value in Python first (issue 21: this was most of an entry's cost). The same text as
    :func:`build_entry`'s entry written as JSON."""
    facts, masked = masker.mask(pending.evaluation.facts, pending_mask_paths(pending))
    entry = _entry(pending, orjson.Fragment(orjson.dumps(facts, default=output_form, option=_PASSTHROUGH)), masked)
    return row_of(entry, orjson.dumps(entry, option=_PASSTHROUGH).decode())


def row_of(entry: dict[str, Any], text: str, evaluated_us: int | None = None) -> tuple[Any, ...]:
    """The table row of an entry and its JSON ``text``: the columns queries filter on, then the text
    (``evaluated_us``: the entry's ``evaluated_at`` in epoch µs, when the caller has it already)."""
    shadow = entry.get("shadow")
    if evaluated_us is None:
        evaluated_us = epoch_us(datetime.fromisoformat(entry["evaluated_at"]))
    return (entry["decision_id"], entry["decision"], evaluated_us,
            entry["source"], entry["outcome"], " " + " ".join([*entry["reasons"], *entry["warnings"]]) + " ",
            entry["ruleset_version"], entry["committed"], shadow["of"] if shadow else None, text)


def pending_mask_paths(pending: Pending) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*pending.sensitive_paths, *pending.mask_also)))


def _entry(pending: Pending, facts: Any, masked: list[str]) -> dict[str, Any]:
    evaluation = pending.evaluation
    verdict = pending.verdict
    if verdict is None:
        if pending.result is None:
            raise ValueError("a pending decision needs its result or its verdict")
        verdict = verdict_of_result(pending.decision, evaluation, pending.result)
    return {
        "decision_id": pending.decision_id,
        "decision": pending.decision.name,
        "evaluated_at": to_output(pending.logged_at),
        "now": to_output(pending.evaluation.now),
        "source": pending.source,
        "facts": facts,
        "masked": masked,
        # filled in by the rules' defaults, not sent: a replay lets the rules it runs on fill them again
        "defaulted": defaulted_paths(pending.decision.facts, evaluation.raw_facts)
        if evaluation.raw_facts is not None else [],
        "counters": pending.evaluation.counters,
        "outcome": verdict.outcome,
        "reasons": list(verdict.reasons),
        "warnings": list(verdict.warnings),
        "rules_fired": list(verdict.fired),
        "obligations": verdict.obligations,
        "values": verdict.values,
        "next_eligible_at": verdict.next_eligible_at,
        "ruleset_version": pending.version,
        "duration_us": pending.duration_us,
        "committed": pending.committed,
        "shadow": pending.shadow,
    }
