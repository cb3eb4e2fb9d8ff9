"""Committing a decision: evaluate, reserve the counters it depends on and record it, atomically
and idempotently, through a :class:`~engine.state.Store`."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.limits import Limit
from engine.runtime.evaluation import CompiledDecision, Evaluation
from engine.runtime.values import to_output
from engine.state import Attempt, CountingReader, Store, build_record

if TYPE_CHECKING:
    from engine.audit.log import DecisionLog

# How far a service commit's `now` may be from the server clock (SPEC §6): a caller may not date a
# commit into another day to pass a daily limit. QA suites (engine/tester.py) commit against their own
# store at their cases' instants and are not held to it.
COMMIT_SKEW = Limit("RULESVC_COMMIT_SKEW", 300, "seconds")


def commit_time_problem(now: datetime | None, server_now: datetime) -> str | None:
    """Why a request's ``now`` cannot be the time of a commit the service makes at ``server_now``, or None."""
    if now is None:
        return None
    skew = COMMIT_SKEW.value()
    apart = abs((now - server_now).total_seconds())
    if apart <= skew:
        return None
    return (f"a commit's now must be within {skew:g} seconds of the server clock ({COMMIT_SKEW.variable}); "
            f"this one is {apart:.0f} seconds away")


def fingerprint(decision: str, facts: dict[str, Any]) -> str:
    """Equal for the same decision and the same facts however they were written ("10" or 10.00)."""
    canonical = json.dumps({"decision": decision, "facts": to_output(facts)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class Committed:
    """A commit's answer; ``evaluation`` is None when the key's first decision was returned again."""

    result: dict[str, Any]
    evaluation: Evaluation | None


def commit(compiled: CompiledDecision, raw_facts: Any, *, idempotency_key: str, store: Store,
           now: datetime | None = None, server_now: datetime | None = None,
           log: DecisionLog | None = None) -> Committed:
    """Evaluate as of ``now`` and commit. The same key returns the first decision; see :meth:`Store.commit`.

    Only an allowed decision reserves its counters; denied and deferred ones are recorded too. The
    record keeps ``server_now`` (default: the clock) as its ``evaluated_at`` and ``now`` as its ``now``;
    the service checks ``now`` against the clock first (:func:`commit_time_problem`). With ``log``,
    the decision's log entry is written with its record (SPEC §10): the caller must not log it again.
    """
    started = time.perf_counter()
    facts = compiled.load(raw_facts)  # invalid facts never reach the store
    made_at = server_now or datetime.now(UTC)
    at = now or made_at
    facts_fingerprint = fingerprint(compiled.name, facts)
    attempts: list[tuple[dict[str, Any], Evaluation]] = []

    def attempt(reader: CountingReader) -> Attempt:
        result, evaluation = compiled.run_loaded(facts, now=at, counters=reader)
        evaluation.raw_facts = raw_facts
        attempts.append((result, evaluation))
        allowed = result["outcome"] == "allow"
        values = evaluation.values
        reservations = compiled.reservations(values) if allowed else []
        record = build_record(result, compiled.business_keys(values), allowed, idempotency_key, made_at,
                              facts_fingerprint, now=at)
        entry = None if log is None else log.commit_entry(
            compiled, evaluation, result, logged_at=made_at, committed=allowed,
            duration_us=int((time.perf_counter() - started) * 1_000_000))
        return Attempt(result, reservations, record, entry)

    result = store.commit(compiled.name, idempotency_key, facts_fingerprint, attempt,
                          partition=compiled.partition_key(facts))
    # The store answers with the last attempt's result, or with the first decision of a repeated key
    # (a copy marked replayed).
    made = attempts[-1] if attempts and attempts[-1][0] is result else None
    return Committed(result, made[1] if made else None)


def commit_decision(compiled: CompiledDecision, raw_facts: Any, *, idempotency_key: str, store: Store,
                    now: datetime | None = None, server_now: datetime | None = None) -> dict[str, Any]:
    """:func:`commit`, answering just the decision document."""
    return commit(compiled, raw_facts, idempotency_key=idempotency_key, store=store, now=now,
                  server_now=server_now).result
