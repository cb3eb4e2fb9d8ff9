"""The outbox: how a commit's record reaches the record store without ever being lost or doubled.

A store whose counters live apart from the records (Redis; SQLite with ``--records`` elsewhere)
writes the decision record into an *outbox* next to its counters, in the same atomic step as the
reservation and the idempotency key (one Lua script; one SQLite transaction). The commit is answered
from there. A :class:`OutboxMover` — a daemon thread in each process, woken after every commit and
once a second — copies the outbox's records to the record store, skipping those already there (by
``decision_id``), then deletes them from the outbox. Whatever process is killed at whatever moment,
a record is in the outbox, in the record store, or (between the copy and the delete) in both; record
searches read both and count each ``decision_id`` once (:func:`~engine.state.records.merge_records`).

A committed decision's decision-log entry takes the same way (SPEC §10): the commit puts it in the
store's *log outbox* in the same atomic step (also when the records share the counters' SQLite file),
and the mover writes it to the decision log — an insert that skips a ``decision_id`` logged already —
before deleting it. Records and log entries are moved independently: a log that is down holds no
record back, and the other way round.
docs/state.md §4 tells the story for operators.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Protocol

from engine.errors import RulesvcError
from engine.state.base import StoredDecision, StoreUnavailable
from engine.state.records import DecisionRecord

log = logging.getLogger(__name__)
MOVE_INTERVAL_SECONDS = 1.0
MOVE_BATCH = 500  # records per SQL transaction (and per IN (…) list)


class Outbox(Protocol):
    def pending(self) -> list[DecisionRecord]:
        """The records waiting in the outbox."""
        ...

    def remove(self, records: list[DecisionRecord]) -> None:
        """Delete these records from the outbox (they are in the record store)."""
        ...

    def pending_entries(self) -> list[dict[str, Any]]:
        """The committed decisions' log entries waiting in the log outbox."""
        ...

    def remove_entries(self, decision_ids: list[str]) -> None:
        """Delete these entries from the log outbox (they are in the decision log)."""
        ...


class RecordWriter(Protocol):
    def move(self, records: list[DecisionRecord]) -> None:
        """Write the records the record store does not have yet (idempotent on ``decision_id``)."""
        ...


class LogSink(Protocol):
    def write_committed(self, entries: list[dict[str, Any]]) -> None:
        """Write the entries the decision log does not have yet (idempotent on ``decision_id``)."""
        ...


class OutboxMover:
    """Moves an outbox into a record store and a decision log: now (:meth:`move`, :meth:`move_log`) or
    from a daemon thread (:meth:`notify`). ``records`` is None when the records are written in the
    commit's own transaction (SQLite, one file): then only log entries are moved."""

    def __init__(self, outbox: Outbox, records: RecordWriter | None, log: LogSink | None = None):
        self.outbox = outbox
        self.records = records
        self.log = log
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._thread_pid: int | None = None
        self._failing: dict[str, bool] = {}

    def move(self) -> int:
        """Move every pending record now; how many there were. Raises :class:`StoreUnavailable`."""
        if self.records is None:
            return 0
        with self._lock:  # one move at a time per process (other processes may move meanwhile: harmless)
            pending = self.outbox.pending()
            for start in range(0, len(pending), MOVE_BATCH):  # an outbox that filled while SQL was down
                batch = pending[start:start + MOVE_BATCH]
                self.records.move(batch)
                self.outbox.remove(batch)
            return len(pending)

    def move_log(self) -> int:
        """Write every pending log entry to the decision log now; how many there were. Raises
        :class:`StoreUnavailable` (the outbox) or the log's own error (``LogUnavailable``)."""
        if self.log is None:  # --log none: nothing is put in the log outbox
            return 0
        with self._log_lock:
            pending = self.outbox.pending_entries()
            for start in range(0, len(pending), MOVE_BATCH):
                batch = pending[start:start + MOVE_BATCH]
                self.log.write_committed(batch)
                self.outbox.remove_entries([entry["decision_id"] for entry in batch])
            return len(pending)

    def notify(self) -> None:
        """A record was put in the outbox: move it soon (the thread is started in each process on first use)."""
        if self._thread_pid != os.getpid():
            with self._lock:
                if self._thread_pid != os.getpid():  # a fork has no thread: start this process's own
                    self._thread_pid = os.getpid()
                    self._wake = threading.Event()
                    threading.Thread(target=self._run, name="rulesvc-outbox-mover", daemon=True).start()
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def _run(self) -> None:
        wake = self._wake
        while not self._stopped.is_set():
            wake.wait(MOVE_INTERVAL_SECONDS)
            wake.clear()
            if self._stopped.is_set():
                return
            self._try("records", "record store", self.move)
            self._try("log entries", "decision log", self.move_log)

    def _try(self, what: str, where: str, move: Any) -> None:
        """One move; a failure is said once while it lasts, and the move tried again in a second."""
        try:
            move()
            if self._failing.get(what):
                log.info("outbox: the %s is reachable again; %s moved", where, what)
            self._failing[what] = False
        except RulesvcError as error:  # StoreUnavailable, LogUnavailable: they wait in the outbox
            if not self._failing.get(what):
                log.warning("outbox: %s wait for the %s: %s", what, where, error)
            self._failing[what] = True
        except Exception:  # the mover must outlive any surprise, and say what it was
            log.exception("outbox mover (%s)", what)


class RecordLookup(Protocol):
    def recorded(self, decision: str, key: str) -> StoredDecision | None:
        ...


def recorded_or_none(records: RecordLookup, decision: str, idempotency_key: str) -> StoredDecision | None:
    """The decision the record store keeps under ``idempotency_key`` for ``decision`` — a key the
    counter store no longer knows (Redis forgets keys after 7 days; another host may have committed
    it) — or None, also when the record store cannot be reached: the commit then goes on, its record
    waiting in the outbox, rather than failing for a check that almost never finds anything."""
    try:
        return records.recorded(decision, idempotency_key)
    except StoreUnavailable as error:
        log.warning("idempotency key %r not checked against the records: %s", idempotency_key, error)
        return None
