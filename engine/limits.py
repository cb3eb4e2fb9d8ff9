"""Bounded work: the most a caller may ask of one scenario run, validation or impact replay.

A :class:`Budget` is a count limit and a time budget for one piece of work. The code doing the work
calls :func:`checkpoint` at its natural steps (a scenario step, a rule file's decision, a replayed
decision); past either limit it raises :class:`LimitExceeded`, which names the setting that bounds
it, so a caller can be told exactly what to change. Outside ``with budget.active():`` checkpoints
cost nothing and limit nothing (the command line is not bounded).

Each limit is a :class:`Limit`: an environment variable with a default (documented in the README,
"Limits"). Values are read when a budget is made, so a test or an operator can change them without
a restart of the code that defines them::

    with Budget("scenario run", count=SCENARIO_STEPS, seconds=SCENARIO_SECONDS).active():
        checkpoint(len(steps))          # all steps at once: refused before any runs if too many
        for step in steps:
            checkpoint()                 # the time budget, between steps
            ...
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from engine.errors import RulesvcError


@dataclass(frozen=True)
class Limit:
    """One configurable bound: its environment variable, default and unit (``steps``, ``seconds``…)."""

    variable: str
    default: float
    unit: str

    def value(self) -> float:
        """The configured value: the environment variable if it holds a positive number, else the default."""
        raw = os.environ.get(self.variable, "").strip()
        try:
            value = float(raw)
        except ValueError:
            return self.default
        return value if value > 0 else self.default


SCENARIO_STEPS = Limit("RULESVC_SCENARIO_MAX_STEPS", 500, "steps")
SCENARIO_SECONDS = Limit("RULESVC_SCENARIO_SECONDS", 2.0, "seconds")
VALIDATION_SECONDS = Limit("RULESVC_VALIDATION_SECONDS", 2.5, "seconds")
IMPACT_DECISIONS = Limit("RULESVC_IMPACT_MAX_DECISIONS", 100_000, "decisions")
IMPACT_SECONDS = Limit("RULESVC_IMPACT_SECONDS", 10, "seconds")
REVIEW_SCENARIO_SECONDS = Limit("RULESVC_REVIEW_SCENARIO_SECONDS", 10.0, "seconds")  # a draft's shipped cases, run twice
VERIFY_SECONDS = Limit("RULESVC_VERIFY_SECONDS", 20.0, "seconds")  # one verify request, all its decisions
AUDIT_SECONDS = Limit("RULESVC_AUDIT_SECONDS", 5.0, "seconds")  # one page of the log or records, a shadow report


class LimitExceeded(RulesvcError):
    """Work past a :class:`Limit`. ``kind`` is ``count`` (the request asks for too much: refused
    before or while running) or ``time`` (the time budget ran out)."""

    def __init__(self, what: str, limit: Limit, maximum: float, kind: str):
        self.what = what
        self.limit = limit
        self.maximum = maximum
        self.kind = kind
        shown = f"{maximum:g} {limit.unit}"
        if kind == "count":
            message = f"the {what} asks for more than {shown} ({limit.variable})"
        else:
            message = f"the {what} took longer than {shown} and was stopped ({limit.variable})"
        super().__init__(message)


# The clock budgets read: a module attribute so a test can step time deterministically instead of
# asserting wall-clock durations on a noisy machine.
_clock = time.monotonic


class Budget:
    """A count limit and a time budget for one piece of work, started when made."""

    def __init__(self, what: str, *, count: Limit | None = None, seconds: Limit | None = None):
        self.what = what
        self.count_limit = count
        self.time_limit = seconds
        self.max_count = count.value() if count else None
        self.max_seconds = seconds.value() if seconds else None
        self.started = _clock()
        self.used = 0

    @property
    def deadline(self) -> float | None:
        """When the time budget runs out, on the budgets' clock (:func:`time.monotonic` outside tests)."""
        return None if self.max_seconds is None else self.started + self.max_seconds

    def start(self) -> None:
        """Count the time budget from now (work that waited for a slot is not charged the wait)."""
        self.started = _clock()

    def seconds_left(self) -> float | None:
        """What is left of the time budget (negative once it has run out), or None without one."""
        deadline = self.deadline
        return None if deadline is None else deadline - _clock()

    def spend(self, count: int = 0) -> None:
        """Count ``count`` more units of work and check the time; raise :class:`LimitExceeded` past a limit."""
        self.used += count
        if self.max_count is not None and self.used > self.max_count:
            raise LimitExceeded(self.what, self.count_limit, self.max_count, "count")
        if self.max_seconds is not None and _clock() - self.started > self.max_seconds:
            raise LimitExceeded(self.what, self.time_limit, self.max_seconds, "time")

    @contextmanager
    def active(self) -> Iterator[Budget]:
        """Make this the budget :func:`checkpoint` charges, in this thread, for the ``with`` block."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)


_active: ContextVar[Budget | None] = ContextVar("rulesvc_budget", default=None)


def checkpoint(count: int = 0) -> None:
    """Charge ``count`` units of work to the active budget and check its time (no budget: nothing)."""
    budget = _active.get()
    if budget is not None:
        budget.spend(count)
