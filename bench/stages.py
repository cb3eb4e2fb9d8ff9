"""Where a decision's time goes (SPEC §9): CPU µs per decision of each stage, and the decision log's cost.

Each stage is timed alone, as a loop over the mix with its inputs made beforehand by the stage before
(the fast path's own functions, as the served path calls them), in CPU time of this thread:

- ``read``: the request facts to validated facts (the generated reader);
- ``derive``: counters and derived values, with the matched fact's encoding (the generated deriver),
  less ``encode``, which is timed on its own (the generated encoder on the same values);
- ``durable_rules``: asserting the flat fact and reading what fired;
- ``result``: the SPEC §4 document;
- ``log_entry``: the decision-log entry's row (facts in output form, sensitive ones masked, the JSON text);
- ``log_write``: appending the rows to an SQLite log, a batch per transaction;
- ``between_stages``: a whole decision (``evaluate``) less read, derive, encode, durable_rules and result.

``ours_logged_per_s`` is the in-process rate with the decision log on (SQLite, its writer thread in
the same process, as ``rulesvc serve`` runs it), timed until the log has written every entry.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.audit.log import open_log
from engine.audit.log.entry import Pending, entry_row
from engine.runtime.evaluation import CompiledDecision

from .factsets import FactSet

STAGES = ("read", "derive", "encode", "durable_rules", "result", "log_entry", "log_write", "between_stages")
PASSES = 3  # each stage's loop runs this often; the fastest pass counts (the others met the machine's noise)
WRITE_BATCH = 2_000


def _cpu_us_per_item(work: Callable[[Any], Any], items: list[Any]) -> float:
    best = float("inf")
    for _ in range(PASSES):
        started = time.thread_time()
        for item in items:
            work(item)
        best = min(best, time.thread_time() - started)
    return best * 1_000_000 / len(items)


def _batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def stage_profile(compiled: CompiledDecision, mix: list[FactSet]) -> dict[str, float]:
    """CPU µs per decision of each of :data:`STAGES` on ``mix``."""
    from engine.state.counters import NoCounters

    none = NoCounters()
    calendar = compiled.calendar
    requests = [(fact_set.facts, fact_set.now) for fact_set in mix]
    loaded = [(compiled.load(facts), now) for facts, now in requests]
    derived = [compiled._derive(dict(facts), now, now, none, {}, calendar) for facts, now in loaded]
    evaluations = [compiled.judge(facts, now=now) for facts, now in loaded]
    results = [compiled.result(evaluation) for evaluation in evaluations]
    for evaluation, (facts, _) in zip(evaluations, requests, strict=True):
        evaluation.raw_facts = facts
    profile = {
        "read": _cpu_us_per_item(lambda request: compiled.load(request[0]), requests),
        "derive_and_encode": _cpu_us_per_item(
            lambda item: compiled._derive(dict(item[0]), item[1], item[1], none, {}, calendar), loaded),
        "encode": _cpu_us_per_item(lambda pair: compiled.fast_encode(pair[0]), derived),
        "durable_rules": _cpu_us_per_item(lambda pair: compiled.fast_matcher.fired(dict(pair[1])), derived),
        "result": _cpu_us_per_item(compiled.result, evaluations),
        "whole": _cpu_us_per_item(lambda request: compiled.evaluate(request[0], now=request[1]), requests),
    }
    with tempfile.TemporaryDirectory(prefix="rulesvc-bench-stages-") as directory:
        decision_log = open_log(f"sqlite:///{Path(directory) / 'log.db'}")
        assert decision_log is not None
        logged_at = datetime.now(UTC)
        pendings = [Pending(compiled.decision, compiled.domain.version, compiled.sensitive_paths, evaluation, result,
                            None, str(result["decision_id"]), "http", 1, False, logged_at)
                    for evaluation, result in zip(evaluations, results, strict=True)]
        masker = decision_log.masker
        profile["log_entry"] = _cpu_us_per_item(lambda pending: entry_row(pending, masker), pendings)
        rows = [entry_row(pending, masker) for pending in pendings]
        best = float("inf")
        for attempt in range(PASSES):  # new ids each pass: an id already logged would be skipped, not written
            fresh = [(f"{row[0]}-{attempt}", *row[1:]) for row in rows]
            started = time.thread_time()
            for batch in _batches(fresh, WRITE_BATCH):
                decision_log.database.write_rows(batch)
            best = min(best, time.thread_time() - started)
        profile["log_write"] = best * 1_000_000 / len(rows)
        decision_log.close()
    profile["derive"] = max(0.0, profile.pop("derive_and_encode") - profile["encode"])
    profile["between_stages"] = max(0.0, profile["whole"] - sum(
        profile[stage] for stage in ("read", "derive", "encode", "durable_rules", "result")))
    return {**{stage: round(profile[stage], 2) for stage in STAGES}, "whole_decision": round(profile["whole"], 2),
            "with_log": round(profile["whole"] + profile["log_entry"] + profile["log_write"], 2)}


def logged_rates(compiled: CompiledDecision, mix: list[FactSet], rounds: int, seconds: float) -> dict[str, float]:
    """Decisions per second with and without the decision log, measured back to back each round (medians)."""
    requests = [(fact_set.facts, fact_set.now) for fact_set in mix]
    with tempfile.TemporaryDirectory(prefix="rulesvc-bench-logged-") as directory:
        # a queue that never drops: an entry the writer could not keep up with is waited for, not lost
        decision_log = open_log(f"sqlite:///{Path(directory) / 'log.db'}", capacity=10**8, writer="process")
        assert decision_log is not None
        plain, logged = [], []
        for _ in range(rounds):
            plain.append(_rate(lambda request: compiled.evaluate(request[0], now=request[1]), requests, seconds))
            logged.append(_rate(lambda request: _decide_and_log(compiled, decision_log, request), requests, seconds,
                                finish=lambda: decision_log.flush(300)))
        dropped = decision_log.dropped
        decision_log.close()
    if dropped:
        raise AssertionError(f"the decision log dropped {dropped} entries during the bench")
    return {"ours_per_s": statistics.median(plain), "ours_logged_per_s": statistics.median(logged)}


def _decide_and_log(compiled: CompiledDecision, decision_log: Any, request: tuple[Any, datetime]) -> None:
    started = time.perf_counter()
    result, evaluation = compiled.run(request[0], now=request[1])
    decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"], source="http",
                        duration_us=int((time.perf_counter() - started) * 1_000_000))


def _rate(call: Callable[[Any], Any], items: list[Any], seconds: float,
          finish: Callable[[], Any] | None = None) -> float:
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for item in items:
            call(item)
        done += len(items)
    if finish is not None:
        finish()
    return done / (time.perf_counter() - started)
