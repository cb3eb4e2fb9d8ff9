"""Committing a decision: evaluate, reserve the counters it depends on and record it, atomically
and idempotently, through a :class:`~engine.store.Store`."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from .evaluation import CompiledDecision
from .store import Attempt, CountingReader, Store, build_record
from .values import to_output


def fingerprint(decision: str, facts: dict[str, Any]) -> str:
    """Equal for the same decision and the same facts however they were written ("10" or 10.00)."""
    canonical = json.dumps({"decision": decision, "facts": to_output(facts)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def commit_decision(compiled: CompiledDecision, raw_facts: Any, *, idempotency_key: str, store: Store,
                    now: datetime | None = None) -> dict[str, Any]:
    """Evaluate and commit. The same key returns the first decision; see :meth:`Store.commit`.

    Only an allowed decision reserves its counters; denied and deferred ones are recorded too.
    """
    facts = compiled.facts.load(raw_facts)  # invalid facts never reach the store
    at = now or datetime.now(UTC)
    facts_fingerprint = fingerprint(compiled.name, facts)

    def attempt(reader: CountingReader) -> Attempt:
        result, values = compiled.run_loaded(facts, now=at, counters=reader)
        allowed = result["outcome"] == "allow"
        reservations = compiled.reservations(values) if allowed else []
        record = build_record(result, compiled.business_keys(values), allowed, idempotency_key, at, facts_fingerprint)
        return Attempt(result, reservations, record)

    return store.commit(idempotency_key, facts_fingerprint, attempt, partition=compiled.partition_key(facts))
