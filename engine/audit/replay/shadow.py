"""Shadow evaluation (SPEC §11): every logged decision is also decided on candidate rules, after the
answer and off the request path, and the two are compared.

Decisions are handed over by reference to a bounded queue (a full queue skips the shadow run and
counts it); one background thread per process replays them on the candidate, counts agreement and
writes each shadow run to the decision log (``shadow: {of, candidate, agreed, before}``), where
:func:`shadow_report` folds them into the impact JSON form. The candidate can fail to load, be slow
or raise: the service's answers never wait for it or see it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.audit.log import DecisionLog, LogDatabase, LogQuery, verdict_of_result
from engine.audit.replay.impact import ImpactTally
from engine.audit.replay.replayer import NotReplayable, Replayer
from engine.errors import RuleFileError
from engine.ids import new_id
from engine.language.model import defaulted_paths
from engine.limits import checkpoint
from engine.rulebook import Rulebook, load_rulebook, rules_signature
from engine.runtime.evaluation import CompiledDecision, Evaluation
from engine.runtime.values import to_output
from engine.verdict import Verdict

log = logging.getLogger("rulesvc.shadow")

SHADOW_CAPACITY = 10_000
RELOAD_CHECK_SECONDS = 1.0


class ShadowRunner:
    """Candidate rules in ``candidate_dir``, evaluated beside the active ones."""

    def __init__(self, candidate_dir: str | Path, decision_log: DecisionLog, *, capacity: int = SHADOW_CAPACITY,
                 on_result: Callable[[str, str], None] | None = None, on_skip: Callable[[], None] | None = None):
        self.candidate_dir = Path(candidate_dir)
        self.decision_log = decision_log
        self.capacity = capacity
        self.started_at = datetime.now().astimezone()
        self.problems: list[str] = []
        self._on_result = on_result
        self._on_skip = on_skip
        self._signature: tuple[Any, ...] = ()
        self.replayer: Replayer | None = None
        self._load()
        self._pending: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._busy = False
        self._pid: int | None = None

    @property
    def candidate(self) -> Rulebook | None:
        return self.replayer.rulebook if self.replayer else None

    def _load(self) -> None:
        signature = rules_signature(self.candidate_dir)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            self.replayer = Replayer(load_rulebook([self.candidate_dir]))
            self.problems = []
        except RuleFileError as error:
            self.problems = [str(problem) for problem in error.problems]
            log.warning("shadow rules in %s do not load; no shadow runs until they do:\n%s", self.candidate_dir, error)

    def submit(self, compiled: CompiledDecision, evaluation: Evaluation, result: dict[str, Any], source: str) -> None:
        """Queue a decision just answered for a shadow run (never blocks; skipped when the queue is full)."""
        if self._pid != os.getpid():  # first use in this process: gunicorn workers are forks
            self._pid = os.getpid()
            self._pending = deque()
            self._wake = threading.Event()
            threading.Thread(target=self._run, name="rulesvc-shadow", daemon=True).start()
        if len(self._pending) >= self.capacity:
            if self._on_skip:
                self._on_skip()
            return
        self._pending.append((compiled, evaluation, result, source))
        self._wake.set()

    def _run(self) -> None:
        last_check = 0.0
        while True:
            self._wake.wait(RELOAD_CHECK_SECONDS)
            self._wake.clear()
            if time.monotonic() - last_check >= RELOAD_CHECK_SECONDS:
                last_check = time.monotonic()
                try:
                    self._load()
                except Exception:
                    log.exception("shadow rules reload")
            while self._pending:
                self._busy = True
                item = self._pending.popleft()
                try:
                    self._shadow(*item)
                except Exception:  # a broken candidate must never take the thread down
                    log.exception("shadow run")
                finally:
                    self._busy = False

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued shadow run is done (tests, orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while (self._pending or self._busy) and time.monotonic() < deadline:
            time.sleep(0.01)
        return not (self._pending or self._busy)

    @property
    def waiting(self) -> int:
        """Shadow runs queued and not started yet."""
        return len(self._pending)

    def _shadow(self, compiled: CompiledDecision, evaluation: Evaluation, result: dict[str, Any], source: str) -> None:
        replayer = self.replayer
        if replayer is None:
            return
        before = verdict_of_result(compiled.decision, evaluation, result)
        started = time.perf_counter()
        shadow: dict[str, Any] = {"of": result["decision_id"], "before": before.as_json()}
        try:
            candidate, replayed = replayer.evaluation(
                compiled.name, to_output(evaluation.facts), [], evaluation.now, evaluation.counters,
                defaulted_paths(compiled.decision.facts, evaluation.raw_facts) if evaluation.raw_facts is not None else [])
        except NotReplayable as why:
            agreed = "not_replayable"
            shadow.update(candidate=None, agreed=False, not_replayable=str(why))
            logged_as, logged_evaluation, after = compiled, evaluation, before
        else:
            after = candidate.verdict(replayed)
            agreed = "true" if not before.differences(after) else "false"
            shadow.update(candidate=candidate.domain.version, agreed=agreed == "true")
            logged_as, logged_evaluation = candidate, replayed
        if self._on_result:
            self._on_result(compiled.name, agreed)
        self.decision_log.record(logged_as, logged_evaluation, verdict=after, decision_id=new_id(), source=source,
                                 duration_us=int((time.perf_counter() - started) * 1e6), shadow=shadow,
                                 mask_also=compiled.sensitive_paths)  # what the service's rules call sensitive


def _add_run(tally: ImpactTally, entry: dict[str, Any]) -> None:
    shadow = entry["shadow"]
    before = Verdict.from_json(shadow["before"])
    after: Verdict | NotReplayable = (NotReplayable(shadow["not_replayable"]) if shadow.get("not_replayable")
                                      else Verdict.from_json(entry))
    tally.add(shadow["of"], before, after)


def shadow_report(database: LogDatabase, *, since: datetime | None = None) -> dict[str, Any]:
    """Every shadow run logged since ``since``, in the impact JSON form (examples are the shadowed
    decisions' ids). A service keeps a :class:`ShadowTally` instead, which reads each run once."""
    tally = ShadowTally(since)
    return tally.update(database)


class ShadowTally:
    """The shadow report kept current: each :meth:`update` folds only the runs logged since the last one
    (by their log sequence number), so a report over 30,000 runs costs what the new runs cost. Work
    done before a time budget ran out (:func:`~engine.limits.checkpoint`) is kept: the next update
    goes on from there."""

    PAGE = 5000

    def __init__(self, since: datetime | None):
        self.since = since
        self._tally = ImpactTally()
        self._after_seq = 0
        self._lock = threading.Lock()

    def update(self, database: LogDatabase) -> dict[str, Any]:
        with self._lock:
            while True:
                runs = database.entries_after(LogQuery(start=self.since, shadow=True), self._after_seq, self.PAGE)
                for seq, entry in runs:
                    _add_run(self._tally, entry)
                    self._after_seq = seq
                    checkpoint(1)  # a run: a count limit (if any) counts runs
                if len(runs) < self.PAGE:
                    return self._tally.as_json()
