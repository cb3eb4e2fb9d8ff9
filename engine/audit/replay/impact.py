"""Impact analysis (SPEC §11): replay logged decisions on candidate rules and count what would change.

"Before" is what the active rules decide: the logged decision itself when it was made with the active
version of its domain (a replay would give it again), else the decision replayed on the active rules —
so that a change shipped since the decision was logged is not counted as the candidate's doing.

The log is cut into chunks of its ``seq`` range and replayed by a pool of processes (durable_rules
and the GIL keep one process on one core); each chunk gives an :class:`ImpactTally`, merged in log
order so that the examples are the same whatever finished first.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from engine.audit.log import LogDatabase, LogQuery
from engine.audit.replay.cluster import replay_on_cluster
from engine.audit.replay.replayer import NotReplayable, Replayer
from engine.limits import checkpoint
from engine.rulebook import Rulebook, rulebook_from_files
from engine.runtime.evaluation import gc_paused
from engine.verdict import Verdict

EXAMPLES_PER_TRANSITION = 10
PAGE = 2_000
MIN_ENTRIES_PER_PROCESS = 5_000  # below this, a pool costs more than it saves


@dataclass
class ImpactTally:
    """What replaying logged decisions on other rules changed, in the SPEC §11 JSON form."""

    replayed: int = 0
    unchanged: int = 0
    changed: int = 0
    not_replayable: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    reasons_added: Counter[str] = field(default_factory=Counter)
    reasons_removed: Counter[str] = field(default_factory=Counter)
    rules: dict[str, list[int]] = field(default_factory=dict)  # rule -> [fired before, fired after]
    values_changed: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, decision_id: str, before: Verdict | NotReplayable, after: Verdict | NotReplayable) -> None:
        """Count one logged decision: as the active rules decide it (``before``) and as the candidate does."""
        self.replayed += 1
        for answer in (before, after):
            if isinstance(answer, NotReplayable):
                self.not_replayable[str(answer)] += 1
                return
        assert isinstance(before, Verdict) and isinstance(after, Verdict)
        for rule in before.fired:
            self.rules.setdefault(rule, [0, 0])[0] += 1
        for rule in after.fired:
            self.rules.setdefault(rule, [0, 0])[1] += 1
        differences = before.differences(after)
        if not differences:
            self.unchanged += 1
            return
        self.changed += 1
        before_codes, after_codes = {*before.reasons, *before.warnings}, {*after.reasons, *after.warnings}
        self.reasons_added.update(after_codes - before_codes)
        self.reasons_removed.update(before_codes - after_codes)
        self.values_changed.update(name.removeprefix("values.") for name in differences if name.startswith("values."))
        if before.outcome != after.outcome:
            transition = f"{before.outcome}->{after.outcome}"
            self.transitions[transition] += 1
            examples = self.examples.setdefault(transition, [])
            if len(examples) < EXAMPLES_PER_TRANSITION:
                examples.append(decision_id)

    def merge(self, other: ImpactTally) -> None:
        """Add ``other``'s counts (a later part of the log: its examples come after ours)."""
        self.replayed += other.replayed
        self.unchanged += other.unchanged
        self.changed += other.changed
        for mine, theirs in ((self.not_replayable, other.not_replayable), (self.transitions, other.transitions),
                             (self.reasons_added, other.reasons_added), (self.reasons_removed, other.reasons_removed),
                             (self.values_changed, other.values_changed)):
            mine.update(theirs)
        for rule, (before, after) in other.rules.items():
            counts = self.rules.setdefault(rule, [0, 0])
            counts[0] += before
            counts[1] += after
        for transition, ids in other.examples.items():
            examples = self.examples.setdefault(transition, [])
            examples.extend(ids[:EXAMPLES_PER_TRANSITION - len(examples)])

    def as_json(self) -> dict[str, Any]:
        return {
            "replayed": self.replayed,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "not_replayable": {"count": sum(self.not_replayable.values()), "why": dict(self.not_replayable.most_common())},
            "transitions": dict(self.transitions.most_common()),
            "reasons_added": dict(self.reasons_added.most_common()),
            "reasons_removed": dict(self.reasons_removed.most_common()),
            "rules": {rule: {"fired_before": before, "fired_after": after}
                      for rule, (before, after) in sorted(self.rules.items())},
            "values_changed": dict(self.values_changed.most_common()),
            "examples": {transition: ids for transition, ids in self.examples.items()},
        }

    def share(self, transition: str) -> float:
        """The part of the replayed decisions that made ``transition`` (0 when none were replayed)."""
        return self.transitions.get(transition, 0) / self.replayed if self.replayed else 0.0


class Baseline:
    """What the active rules decide for a logged decision (None: the logged decisions themselves)."""

    def __init__(self, active: Rulebook | None):
        self.replayer = Replayer(active) if active is not None else None
        self.versions = frozenset(domain.version for domain in active.domains.values()) if active is not None else ()

    def decide(self, entries: list[dict[str, Any]]) -> list[Verdict | NotReplayable]:
        stale = [entry for entry in entries if self.replayer is not None and entry["ruleset_version"] not in self.versions]
        replayed = iter(self.replayer.replay_many(stale) if stale and self.replayer is not None else ())
        answers: list[Verdict | NotReplayable] = []
        for entry in entries:
            if self.replayer is None or entry["ruleset_version"] in self.versions:
                answers.append(Verdict.from_json(entry))
                continue
            answer = next(replayed)
            answers.append(NotReplayable(f"on the active rules, {answer}") if isinstance(answer, NotReplayable)
                           else answer)
        return answers


def tally_entries(replayer: Replayer, entries: Iterator[dict[str, Any]], *, baseline: Baseline | None = None,
                  on_page: Callable[[int], None] | None = None) -> ImpactTally:
    """Replay ``entries`` in pages (the engine's batch path) and tally them against ``baseline``; each page
    checks the active budget's time (``engine.limits``)."""
    tally = ImpactTally()
    baseline = baseline or Baseline(None)
    page: list[dict[str, Any]] = []

    def replay_page() -> None:
        with gc_paused():
            for entry, before, after in zip(page, baseline.decide(page), replayer.replay_many(page), strict=True):
                tally.add(entry["decision_id"], before, after)
        if on_page:
            on_page(len(page))
        page.clear()
        checkpoint()

    for entry in entries:
        page.append(entry)
        if len(page) >= PAGE:
            replay_page()
    if page:
        replay_page()
    return tally


def impact(database: LogDatabase, candidate: Rulebook | dict[str, str], query: LogQuery, *,
           active: Rulebook | dict[str, str] | None = None, processes: int | None = None,
           on_progress: Callable[[int], None] | None = None,
           on_total: Callable[[int], None] | None = None, scheduler: str | None = None) -> ImpactTally:
    """Replay the decisions ``query`` selects on ``candidate`` (a rulebook or its files), against what the
    ``active`` rules decide (None: against the logged decisions as they are).

    ``processes`` (default: one per core) replay chunks in parallel when the log is large enough;
    ``on_total`` hears how many entries will be replayed, ``on_progress`` how many more are done. Under an
    active budget (the HTTP endpoint) more entries than its count limit are refused before any replay.
    With ``scheduler`` (a Dask scheduler's address) the chunks are replayed on that cluster instead
    (engine/audit/replay/cluster.py), with the same report.
    """
    count, first, last = database.span(query)
    checkpoint(count)
    if on_total:
        on_total(count)
    processes = processes or os.cpu_count() or 1
    if count == 0:
        return ImpactTally()
    if scheduler:
        return replay_on_cluster(scheduler, database.url, _files(candidate), _files(active) if active is not None else None,
                                 query, _chunks(first, last, max(16, count // 25_000)), on_progress)
    if processes == 1 or count < 2 * MIN_ENTRIES_PER_PROCESS:
        return tally_entries(Replayer(_rulebook(candidate, "candidate")), database.entries_between(query, first, last),
                             baseline=Baseline(_rulebook(active, "active") if active is not None else None),
                             on_page=on_progress)
    chunks = _chunks(first, last, max(processes * 8, count // 25_000))
    # Not fork: a process with threads (a service's decision-log writer, a test run's) may be inside SQLite
    # or holding another lock at the fork, and the child then waits on it forever (seen in CI). Workers
    # start clean and get everything they need through initargs.
    context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                          else "spawn")
    total = ImpactTally()
    with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_start_worker,
                             initargs=(database.url, _files(candidate),
                                       _files(active) if active is not None else None)) as pool:
        futures = [pool.submit(_replay_chunk, query, low, high) for low, high in chunks]
        for future in futures:  # in log order: examples stay the earliest ones
            tally = future.result()
            total.merge(tally)
            if on_progress:
                on_progress(tally.replayed)
    return total


def _chunks(first: int, last: int, parts: int) -> list[tuple[int, int]]:
    size = max(1, -(-(last - first + 1) // parts))
    return [(low, min(last, low + size - 1)) for low in range(first, last + 1, size)]


def _rulebook(rules: Rulebook | dict[str, str], label: str) -> Rulebook:
    return rules if isinstance(rules, Rulebook) else rulebook_from_files(rules, label)


def _files(rules: Rulebook | dict[str, str]) -> dict[str, str]:
    return rules.files() if isinstance(rules, Rulebook) else rules


_worker: tuple[LogDatabase, Replayer, Baseline] | None = None


def _start_worker(url: str, candidate: dict[str, str], active: dict[str, str] | None) -> None:
    global _worker
    _worker = (LogDatabase(url, create=False), Replayer(rulebook_from_files(candidate, "candidate")),
               Baseline(rulebook_from_files(active, "active") if active is not None else None))


def _replay_chunk(query: LogQuery, low: int, high: int) -> ImpactTally:
    if _worker is None:
        raise RuntimeError("the replay worker was not started")
    database, replayer, baseline = _worker
    return tally_entries(replayer, database.entries_between(query, low, high), baseline=baseline)
