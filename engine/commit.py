"""Committing a decision: evaluate, reserve the counters it depends on and record it, atomically
and idempotently, through a :class:`~engine.store.Store`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .evaluation import CompiledDecision, Evaluation
from .store import Attempt, CountingReader, Store, build_record
from .values import to_output


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
           now: datetime | None = None) -> Committed:
    """Evaluate and commit. The same key returns the first decision; see :meth:`Store.commit`.

    Only an allowed decision reserves its counters; denied and deferred ones are recorded too.
    """
    facts = compiled.load(raw_facts)  # invalid facts never reach the store
    at = now or datetime.now(UTC)
    facts_fingerprint = fingerprint(compiled.name, facts)
    attempts: list[tuple[dict[str, Any], Evaluation]] = []

    def attempt(reader: CountingReader) -> Attempt:
        result, evaluation = compiled.run_loaded(facts, now=at, counters=reader)
        evaluation.raw_facts = raw_facts
        attempts.append((result, evaluation))
        allowed = result["outcome"] == "allow"
        values = evaluation.values
        reservations = compiled.reservations(values) if allowed else []
        record = build_record(result, compiled.business_keys(values), allowed, idempotency_key, at, facts_fingerprint)
        return Attempt(result, reservations, record)

    result = store.commit(idempotency_key, facts_fingerprint, attempt, partition=compiled.partition_key(facts))
    # The store answers with the last attempt's result, or with the first decision of a repeated key.
    made = attempts[-1] if attempts and attempts[-1][0] is result else None
    return Committed(result, made[1] if made else None)


def commit_decision(compiled: CompiledDecision, raw_facts: Any, *, idempotency_key: str, store: Store,
                    now: datetime | None = None) -> dict[str, Any]:
    """:func:`commit`, answering just the decision document."""
    return commit(compiled, raw_facts, idempotency_key=idempotency_key, store=store, now=now).result
