"""Appending to the decision log off the request path.

``record`` only appends a reference to a bounded deque (no copying, encoding or I/O); a background
thread per process builds the entries' rows (engine/audit/log/entry.py) and writes them in batches,
one statement per batch. When the deque is full the entry
is dropped and counted: logging never delays or fails a decision. ``close`` (on SIGTERM, at exit)
writes what is still waiting.

Committed decisions take another way (SPEC §10): :meth:`DecisionLog.commit_entry` builds the entry
during the commit, the store writes it into its outbox in the same atomic step as the record, and
the store's outbox mover hands it to :meth:`DecisionLog.write_committed` — so a process killed at
any moment never leaves a committed decision missing from the log. They are never sampled away.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from engine.audit.log.entry import Pending, build_entry, entry_row, row_of
from engine.audit.log.masking import Masker
from engine.audit.log.process import WriterGone, WriterProcess, capture, entry_text, known_decision
from engine.audit.log.sql import LogDatabase, LogUnavailable
from engine.jsontext import dumps_text

if TYPE_CHECKING:
    from engine.rulebook import Rulebook
    from engine.runtime.evaluation import CompiledDecision, Evaluation
    from engine.verdict import Verdict

log = logging.getLogger("rulesvc.decisionlog")

DEFAULT_CAPACITY = 20_000
DEFAULT_BATCH = 2_000
DEFAULT_FLUSH_SECONDS = 0.5
WRITERS = ("thread", "process")  # who builds and writes the entries: a thread of this process, or a child
_FIRST_USE = threading.Lock()  # two threads using a log for the first time start one writer


class DecisionLog:
    """The decision log of one service (or one CLI run): sampling, masking, a bounded queue, a writer."""

    def __init__(self, database: LogDatabase, masker: Masker, *, sample: float = 1.0,
                 capacity: int = DEFAULT_CAPACITY, batch_size: int = DEFAULT_BATCH,
                 flush_seconds: float = DEFAULT_FLUSH_SECONDS, writer: str = "thread",
                 on_drop: Callable[[int], None] | None = None, on_write: Callable[[int], None] | None = None):
        if not 0 < sample <= 1:
            raise ValueError("the log sample rate must be in (0, 1]")
        if writer not in WRITERS:
            raise ValueError(f"the decision-log writer is one of {', '.join(WRITERS)}, not {writer!r}")
        # "process": entries are built and written by a child process (engine/audit/log/process.py)
        self.writer = writer
        self.database = database
        self.masker = masker
        self.sample = sample
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.dropped = 0
        self.written = 0
        self._on_drop = on_drop
        self._on_write = on_write
        self._pending: deque[Pending] = deque()
        self._in_flight = 0
        self._wake = threading.Condition()
        self._closing = False
        self._flush_wanted = False  # flush() asks the writer to write now, not at its next batch or tick
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._process: WriterProcess | None = None
        self._known: dict[tuple[str, str], Any] = {}  # decisions the thread rebuilds captures of itself

    @property
    def url(self) -> str:
        return self.database.url

    def sampled(self) -> bool:
        """Whether the next decision is to be logged (``--log-sample``)."""
        return self.sample >= 1 or random.random() < self.sample

    def record(self, compiled: CompiledDecision, evaluation: Evaluation, *, decision_id: str, source: str,
               duration_us: int, committed: bool = False, result: dict[str, Any] | None = None,
               verdict: Verdict | None = None, shadow: dict[str, Any] | None = None,
               mask_also: tuple[str, ...] = ()) -> bool:
        """Queue a decision (its ``result`` document, or a shadow run's ``verdict``); False if it was dropped."""
        if self._pid != os.getpid():
            self._ensure_writer()
        pending = self._pending
        if len(pending) >= self.capacity:
            self._drop(1)
            return False
        captured = None
        if (self._process is not None and result is not None and verdict is None and shadow is None
                and not mask_also and evaluation.raw_facts is not None):
            try:  # the served decision: one orjson call here, the rest in the writer process
                captured = capture(decision_id, compiled.name, compiled.domain.version, source, duration_us,
                                   committed, time.time_ns() // 1000, evaluation.raw_facts, result,
                                   list(evaluation.fired), evaluation.counters)
            except TypeError:
                pass
        if captured is not None:
            pending.append((captured, compiled.decision, compiled.domain.version))
        else:
            pending.append(Pending(compiled.decision, compiled.domain.version, compiled.sensitive_paths, evaluation,
                                   result, verdict, decision_id, source, duration_us, committed, datetime.now(UTC),
                                   shadow, mask_also))
        if len(pending) == self.batch_size:  # a batch is ready: wake the writer now
            with self._wake:
                self._wake.notify()
        return True

    def commit_entry(self, compiled: CompiledDecision, evaluation: Evaluation, result: dict[str, Any], *,
                     logged_at: datetime, duration_us: int, committed: bool) -> dict[str, Any]:
        """The entry of a committed decision, built now (facts masked): its store keeps it in the outbox
        with the record until :meth:`write_committed` has it written. Not sampled: every one is logged."""
        pending = Pending(compiled.decision, compiled.domain.version, compiled.sensitive_paths, evaluation, result,
                          None, str(result["decision_id"]), "commit", duration_us, committed, logged_at)
        return build_entry(pending, self.masker)

    def write_committed(self, entries: list[dict[str, Any]]) -> None:
        """Write committed decisions' entries from an outbox; one already logged is skipped, so an outbox
        moved twice (after a crash, or by two processes) logs each once. Raises :class:`LogUnavailable`."""
        written = self.database.write(entries)
        self.written += written
        if self._on_write and written:
            self._on_write(written)

    def keep_versions(self, rulebook: Rulebook) -> None:
        """Store every domain version of ``rulebook`` that the log does not know yet, with its files' text."""
        now = datetime.now(UTC)
        for domain in rulebook.domains.values():
            name = os.path.basename(domain.file)
            try:
                self.database.keep_version(domain.version, domain.name, name, rulebook.domain_files(domain), now)
            except LogUnavailable as error:
                log.warning("ruleset version %s not kept: %s", domain.version, error)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (True) or ``timeout`` passes (False)."""
        if self._thread is None or self._pid != os.getpid():
            return self._write_now()
        deadline = time.monotonic() + timeout
        with self._wake:
            self._flush_wanted = True
            self._wake.notify_all()
            return self._wake.wait_for(lambda: not self._pending and not self._in_flight,
                                       max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is waiting and stop the writer (SIGTERM, exit)."""
        self.flush(timeout)
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        if self._process is not None and self._pid == os.getpid():
            self._process.close(timeout)

    # --- the writer ----------------------------------------------------------------------------------

    def _ensure_writer(self) -> None:
        with _FIRST_USE:
            if self._pid == os.getpid():
                return
            self._start_writer()

    def _start_writer(self) -> None:
        # First use in this process (gunicorn workers are forks: no thread crosses a fork).
        self._pending = deque()
        self._in_flight = 0
        self._wake = threading.Condition()
        self._closing = False
        self._flush_wanted = False
        # A fork's own writer process (the parent's pipes are not this process's to write to).
        self._process = WriterProcess(self.database.url, self.masker.key) if self.writer == "process" else None
        self._known = {}
        self._thread = threading.Thread(target=self._run, name="rulesvc-decision-log", daemon=True)
        self._thread.start()
        atexit.register(self.close, 5.0)
        self._pid = os.getpid()

    def _run(self) -> None:
        if self._process is not None:
            # Started now, not at the first batch: its imports (~0.3 s) overlap the first decisions,
            # instead of holding up the first batch's entries.
            try:
                self._process.start()
            except WriterGone as why:
                log.warning("the decision-log writer process did not start (%s): it is tried again per batch", why)
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._closing or self._flush_wanted or len(self._pending) >= self.batch_size,
                                    self.flush_seconds)
                self._flush_wanted = False
                if self._closing and not self._pending:
                    return
            self._write_now()

    def _write_now(self) -> bool:
        """Write everything waiting, a batch per transaction."""
        while self._pending:
            with self._wake:  # taken together, so flush() never sees "nothing waiting" mid-handover
                batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                self._in_flight = len(batch)
            entries: list[Any] = []
            try:
                captures = [item for item in batch if type(item) is tuple]
                if captures:
                    self._hand_over(captures)
                for pending in batch:
                    if type(pending) is tuple:
                        continue
                    try:
                        entries.append(self._row(pending))
                    except Exception:  # one entry the writer cannot build is lost alone, and said
                        log.exception("decision-log entry for %s not written", pending.decision_id)
                        self._drop(1)
                self.database.write_rows(entries)
                self._count_written(len(entries))
            except LogUnavailable as error:
                log.warning("%d decision-log entries lost: %s", len(entries), error)
                self._drop(len(entries))
            except Exception:  # a bug must not stop the writer; the entries are counted as lost
                log.exception("decision-log writer")
                self._drop(len(entries))
            finally:
                with self._wake:
                    self._in_flight = 0
                    self._wake.notify_all()
        return True

    def _hand_over(self, captures: list[tuple[bytes, Any, str]]) -> None:
        """Captured decisions to the writer process; if it is gone, this thread writes them itself."""
        assert self._process is not None
        try:
            written, failed = self._process.write(captures)
        except WriterGone as why:
            log.warning("the decision-log writer process is gone (%s): this batch is written in-process", why)
            rows = []
            for captured, decision, version in captures:
                known = self._known.get((version, decision.name))
                if known is None:
                    known = self._known[(version, decision.name)] = known_decision(decision)
                try:
                    rows.append(entry_text(known, orjson.loads(captured), self.masker))
                except Exception:
                    log.exception("decision-log entry not written")
                    self._drop(1)
            try:
                self.database.write_rows(rows)
            except LogUnavailable as error:
                log.warning("%d decision-log entries lost: %s", len(rows), error)
                self._drop(len(rows))
                return
            written, failed = len(rows), 0
        self._count_written(written)
        if failed:
            self._drop(failed)

    def _count_written(self, count: int) -> None:
        self.written += count
        if self._on_write and count:
            self._on_write(count)

    def _row(self, pending: Pending) -> tuple[Any, ...]:
        try:
            return entry_row(pending, self.masker)
        except TypeError:  # a value orjson cannot write (an integer past 64 bits): the standard library can
            entry = build_entry(pending, self.masker)
            return row_of(entry, dumps_text(entry))

    def _drop(self, count: int) -> None:
        self.dropped += count
        if self._on_drop:
            self._on_drop(count)
