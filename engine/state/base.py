"""What every store shares: errors, counter slots, the commit attempt, a counting reader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from engine.errors import RulesvcError
from engine.jsontext import dumps_text
from engine.language.model import Counter
from engine.runtime.values import SHANGHAI, to_shanghai
from engine.state.records import DecisionRecord, RecordQuery

CLUSTER_SCHEME = "redis+cluster://"  # --store redis+cluster://HOST:PORT[,HOST:PORT…]


class StoreUnavailable(RulesvcError):
    """The counter or record store cannot be reached or cannot serve (an unformed or CLUSTERDOWN cluster,
    a read-only replica or standby); nothing was written. ``detail`` is the library's own account, for
    the log only: it may name hosts and ports, which an answer to a caller should not."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


def unavailable(store: str, error: BaseException, reason: str | None = None) -> StoreUnavailable:
    """The :class:`StoreUnavailable` for a driver's ``error``, e.g. ``counter store unavailable:
    ClusterDownError (the cluster is down or not formed)``; ``store`` is "counter store" or "record store"."""
    described = error.__class__.__name__ + (f" ({reason})" if reason else "")
    return StoreUnavailable(f"{store} unavailable: {described}", str(error))


class IdempotencyConflict(RulesvcError):
    """The idempotency key was used before with different facts."""


@dataclass(frozen=True)
class CounterSlot:
    """One counted thing, on one Shanghai day for daily counters: its storage key and expiry, and the
    partition of the decision counting it (where a Redis Cluster keeps it)."""

    key: str
    expires_at: datetime | None
    partition: str | None = None


def counter_key(decision: str, counter: Counter, key: tuple[object, ...], now: datetime) -> str:
    """The storage key of a counted thing (on ``now``'s Shanghai day for daily counters): what a read
    looks up, without the expiry a write needs (:func:`counter_slot`)."""
    # JSON keeps the key parts apart whatever characters the ids contain (compact, non-ASCII as is: the
    # same text the standard library writes, checked for every code point, so stored keys stay valid).
    parts = dumps_text([str(part) for part in key])
    if counter.reset == "shanghai_day":
        return f"{decision}/{counter.name}/{shanghai_day(now).isoformat()}/{parts}"
    return f"{decision}/{counter.name}/{parts}"


def counter_slot(decision: str, counter: Counter, key: tuple[object, ...], now: datetime,
                 partition: str | None = None) -> CounterSlot:
    """The slot of a counted thing: its key, when a store may forget it, its partition."""
    stored_as = counter_key(decision, counter, key, now)
    if counter.reset == "shanghai_day":
        next_midnight = datetime.combine(shanghai_day(now) + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        return CounterSlot(stored_as, next_midnight, partition)
    return CounterSlot(stored_as, None, partition)


@lru_cache(maxsize=4096)
def shanghai_day(now: datetime) -> date:
    """``now``'s date in Shanghai; kept for the instants seen last (a batch's items mostly share theirs,
    and the conversion was most of a counter read's cost)."""
    return to_shanghai(now).date()


def storage_expiry(expires_at: datetime | None) -> datetime | None:
    """When a store may forget a counter slot: the end of its Shanghai day, or — for a decision made
    "as of" a day that is already over (QA replays) — a day from now by the wall clock."""
    if expires_at is None:
        return None
    wall_clock = datetime.now(UTC)
    return expires_at if expires_at > wall_clock else wall_clock + timedelta(days=1)


def to_units(counter: Counter, value: int | Decimal) -> int:
    """Stores keep integers: fen for money counters."""
    return int(Decimal(value) * 100) if counter.type.kind == "money" else int(value)


def from_units(counter: Counter, units: int) -> int | Decimal:
    # fen to yuan exactly, two decimals (the same value and exponent as dividing and quantizing, in half the time)
    return Decimal(units).scaleb(-2) if counter.type.kind == "money" else units


@dataclass(frozen=True)
class Reservation:
    slot: CounterSlot
    units: int


@dataclass
class Attempt:
    """One evaluation made for a commit: the result, what it reserves, what it records and — with a
    decision log — its log entry, which goes into the outbox in the same atomic step as the record."""

    result: dict[str, Any]
    reservations: list[Reservation]
    record: DecisionRecord
    log_entry: dict[str, Any] | None = None


class CountingReader:
    """A :class:`~engine.state.counters.CounterSource` over a store; remembers every slot it read."""

    def __init__(self, read_units: Callable[[CounterSlot], int],
                 read_many: Callable[[list[CounterSlot]], dict[str, int]] | None = None):
        self._read_units = read_units
        self._read_many = read_many
        self._prefetched: dict[str, int] = {}
        self.seen: dict[str, int] = {}

    def prefetch(self, decision: str, reads: list[tuple[Counter, tuple[object, ...], datetime, str | None]]) -> None:
        """Fetch the counts a batch will read in one round trip (plain evaluations only: a commit
        must read inside its transaction). ``reads``: (counter, key, now, partition) each."""
        if self._read_many is None or not reads:
            return
        # a read needs a slot's key and partition only, not the expiry a write keeps
        slots = {stored_as: CounterSlot(stored_as, None, partition) for stored_as, partition in
                 ((counter_key(decision, counter, key, now), partition) for counter, key, now, partition in reads)}
        found = self._read_many(list(slots.values()))
        self._prefetched.update({key: found.get(key, 0) for key in slots})

    def read(self, decision: str, counter: Counter, key: tuple[object, ...], now: datetime,
             partition: str | None = None) -> int | Decimal:
        stored_as = counter_key(decision, counter, key, now)
        units = self._prefetched.get(stored_as)
        if units is None:
            units = self._read_units(counter_slot(decision, counter, key, now, partition))
        self.seen[stored_as] = units
        return from_units(counter, units)


@dataclass
class StoredDecision:
    fingerprint: str
    result: dict[str, Any]


class Store(Protocol):
    def reader(self) -> CountingReader:
        """Counters for a plain (uncommitted) evaluation."""
        ...

    def commit(self, decision: str, idempotency_key: str, fingerprint: str,
               attempt: Callable[[CountingReader], Attempt], partition: str | None = None) -> dict[str, Any]:
        """Evaluate through ``attempt`` and, atomically, reserve its counters and record it.

        Keys are scoped per decision: a key seen before *on this decision* returns the first decision,
        marked ``"replayed": true`` (or raises :class:`IdempotencyConflict` if ``fingerprint`` differs);
        the same key on another decision is another commit. Raises :class:`StoreUnavailable` with
        nothing written.
        ``partition`` is the decision's partition value (where a Redis Cluster keeps the commit).
        """
        ...

    def records(self, query: RecordQuery) -> list[DecisionRecord]:
        """The records of ``query``, those still in an outbox included."""
        ...

    def check(self) -> None:
        """Raise :class:`StoreUnavailable` unless a commit could be served now: the counter store answers
        and takes writes (a formed cluster, a primary, a writable file). For readiness: one or a few
        round trips."""
        ...

    def check_records(self) -> None:
        """Raise :class:`StoreUnavailable` unless the record store takes records now (while it does not,
        commits go on and their records wait in the outbox)."""
        ...

    def start_moving(self) -> None:
        """Move records left in an outbox (by a killed process too) from this process, in the background."""
        ...

    def drain(self) -> int:
        """Move the outbox into the record store now; the number of records moved."""
        ...

    def close(self) -> None:
        ...


def replay(stored: StoredDecision, fingerprint: str, idempotency_key: str) -> dict[str, Any]:
    """The first decision for a repeated key, marked ``"replayed": true`` (SPEC §6), or a conflict when
    the facts differ."""
    if stored.fingerprint != fingerprint:
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used with different facts")
    return {**stored.result, "replayed": True}


def legacy_key_of(stored: StoredDecision | None, decision: str) -> StoredDecision | None:
    """A key stored before keys were scoped per decision, honoured for the decision it was used on
    only: after the upgrade it neither vanishes for that decision nor collides with another's."""
    return stored if stored is not None and stored.result.get("decision") == decision else None
