"""Error classes of the engine. Every error a user can cause carries enough to act on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a rule file, reported as ``FILE:LINE:COL: message`` (1-based)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RulesvcError(Exception):
    """Base class of every error the engine raises on purpose."""


class RuleFileError(RulesvcError):
    """A rule file (or set of them) failed validation; nothing from it was activated."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class InvalidFacts(RulesvcError):
    """The facts of a request do not match the decision's declarations.

    ``fields`` maps each field path (``actor.quota.enabled``, ``order.items.0.sku``) to its messages.
    """

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__("; ".join(f"{path}: {', '.join(msgs)}" for path, msgs in sorted(fields.items())))


class UnknownDecision(RulesvcError):
    """No loaded rule file declares this decision."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(f"unknown decision {name!r}; known decisions: {', '.join(sorted(known))}")


class MatcherError(RulesvcError):
    """durable_rules refused a compiled ruleset or a fact; a bug in the engine, never bad input."""


class LimitExceeded(RulesvcError):
    """A caller asked for more work than a configured limit allows; ``limit`` names the limit."""

    def __init__(self, limit: str, message: str):
        self.limit = limit
        super().__init__(message)
