"""A decision-log entry: what the service decided, on what, with which rules (SPEC §10).

The request path hands over a :class:`Pending` (references only, nothing copied or encoded); the
writer turns it into the entry — facts in output form with sensitive ones masked — off that path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..model import Decision, defaulted_paths
from ..values import to_output
from ..verdict import Verdict
from .masking import Masker

if TYPE_CHECKING:
    from ..evaluation import Evaluation

SOURCES = ("http", "batch", "commit", "cli")


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
    evaluation = pending.evaluation
    paths = tuple(dict.fromkeys((*pending.sensitive_paths, *pending.mask_also)))
    facts, masked = masker.mask(to_output(evaluation.facts), paths)
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
