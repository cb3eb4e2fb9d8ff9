"""Where usage counters come from when the caller does not supply them.

A decision declares its counters in YAML (key, reset, what a commit adds). Evaluation reads them
through a :class:`CounterSource`; the store that counts committed decisions implements it. Until a
store is configured, :class:`NoCounters` reports that nothing has been committed yet.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from engine.language.model import Counter
from engine.runtime.values import to_shanghai


class CounterSource(Protocol):
    def read(self, decision: str, counter: Counter, key: tuple[object, ...], now: datetime,
             partition: str | None = None) -> int | Decimal:
        """The counter's current value for ``key`` (for ``shanghai_day`` counters: on ``now``'s day);
        ``partition`` is the decision's partition value (see :meth:`CompiledDecision.partition_key`)."""
        ...


class NoCounters:
    """No committed usage: every counter reads zero."""

    def read(self, decision: str, counter: Counter, key: tuple[object, ...], now: datetime,
             partition: str | None = None) -> int | Decimal:
        return Decimal("0.00") if counter.type.kind == "money" else 0


class SeededCounters:
    """Stored counts given by name (a scenario step's ``counters``, a proof's witness): the named
    counters read their given value on every key and day, the others what ``base`` holds."""

    def __init__(self, counts: dict[str, int | Decimal], base: CounterSource | None = None):
        self.counts = counts
        self.base = base or NoCounters()

    def read(self, decision: str, counter: Counter, key: tuple[object, ...], now: datetime,
             partition: str | None = None) -> int | Decimal:
        if counter.name in self.counts:
            return self.counts[counter.name]
        return self.base.read(decision, counter, key, now, partition)


def counter_label(counter: Counter, asked_at: datetime, at: datetime) -> str:
    """How the decision log names a stored count read by a decision asked at ``asked_at``: the counter's
    name, or ``name@YYYY-MM-DD`` for a daily counter read for another Shanghai day (``next_eligible_at``
    looks ahead), so a replay can hand every read back."""
    if counter.reset == "shanghai_day":
        day = to_shanghai(at).date()
        if day != to_shanghai(asked_at).date():
            return f"{counter.name}@{day.isoformat()}"
    return counter.name
