"""A decision reduced to what a replay compares: outcome, codes, fired rules, obligations, values and
``next_eligible_at`` — no id, messages or trace. Built from an evaluation or from a decision-log entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str
    reasons: tuple[str, ...] = ()  # codes of the rules behind the outcome, sorted
    warnings: tuple[str, ...] = ()  # codes of the warnings, sorted
    fired: tuple[str, ...] = ()  # qualified ids of every rule that fired (oblige rules too)
    obligations: dict[str, Any] = field(default_factory=dict)  # output form
    values: dict[str, Any] = field(default_factory=dict)  # output form
    next_eligible_at: str | None = None

    def differences(self, other: Verdict) -> list[str]:
        """What differs from ``other``: ``outcome``, ``reasons``, ``warnings``, ``obligations``,
        ``next_eligible_at`` and ``values.<name>`` for each output value that changed."""
        changed = [name for name in ("outcome", "reasons", "warnings", "obligations", "next_eligible_at")
                   if getattr(self, name) != getattr(other, name)]
        changed += [f"values.{name}" for name in sorted(set(self.values) | set(other.values))
                    if self.values.get(name) != other.values.get(name)]
        return changed

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        """From :meth:`as_json`'s form — which is also how a decision-log entry keeps its decision."""
        return cls(outcome=data["outcome"], reasons=tuple(sorted(set(data["reasons"]))),
                   warnings=tuple(sorted(set(data["warnings"]))), fired=tuple(data.get("rules_fired") or ()),
                   obligations=data.get("obligations") or {}, values=data.get("values") or {},
                   next_eligible_at=data.get("next_eligible_at"))

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reasons": list(self.reasons), "warnings": list(self.warnings),
                "rules_fired": list(self.fired), "obligations": self.obligations, "values": self.values,
                "next_eligible_at": self.next_eligible_at}
