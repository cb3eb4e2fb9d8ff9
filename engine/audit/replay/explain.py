"""Explaining a logged decision (SPEC §10): replay it on the version it was made with, at its ``now``,
with its counters, and show whether it reproduces, with the trace."""

from __future__ import annotations

from typing import Any

from engine.audit.replay.replayer import NotReplayable, Replayer
from engine.audit.replay.versions import VersionLibrary
from engine.rulebook import Rulebook
from engine.runtime.values import parse_instant
from engine.verdict import Verdict


def explain(entry: dict[str, Any], versions: VersionLibrary, active: Rulebook | None = None) -> dict[str, Any]:
    """``{"decision_id", "reproduced", "logged", "replayed", "why_not", "differences"}``; ``active`` is the
    rulebook being served (tried first for the entry's version)."""
    answer: dict[str, Any] = {"decision_id": entry["decision_id"], "reproduced": False, "logged": entry,
                              "replayed": None, "why_not": None, "differences": []}
    rulebook, missing = versions.rulebook(entry["ruleset_version"], active)
    if rulebook is None:
        answer["why_not"] = missing
        return answer
    try:
        compiled, evaluation = Replayer(rulebook).evaluation(
            entry["decision"], entry["facts"], entry.get("masked") or [], parse_instant(entry["now"]),
            entry.get("counters") or {}, entry.get("defaulted"))
    except NotReplayable as why:
        answer["why_not"] = f"cannot be replayed: {why}"
        return answer
    answer["replayed"] = compiled.result(evaluation, decision_id=entry["decision_id"], explain=True)
    differences = Verdict.from_json(entry).differences(compiled.verdict(evaluation))
    answer["differences"] = differences
    answer["reproduced"] = not differences
    if differences:
        answer["why_not"] = ("the replay differs in " + ", ".join(differences)
                             + " (the engine, not the rules, changed since the decision was made)")
    return answer
