"""Counters and idempotency keys in Redis, shared by several service instances.

A commit evaluates with the counters it reads, then one Lua script — atomic in Redis — checks that
none of those counters moved, adds the reservations and stores the idempotency key. If a counter
moved (another instance committed meanwhile), the decision is evaluated again with the new values.
Daily counters expire at the end of their Shanghai day. Decision records go to the SQL record store;
if writing one fails, the reservation is undone before the error is reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis

from .base import Attempt, CounterSlot, CountingReader, StoredDecision, StoreUnavailable, replay, storage_expiry
from .records import DecisionRecord, DuplicateIdempotencyKey, RecordQuery
from .sql import SqlRecords

IDEMPOTENCY_PREFIX = "rulesvc:idempotency:"
COUNTER_PREFIX = "rulesvc:counter:"
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
MAX_ATTEMPTS = 200

# KEYS[1] idempotency key, KEYS[2..] counter keys
# ARGV[1] stored decision, ARGV[2] its TTL, then per counter: expected units (or "" = unchecked),
#         units to add, expiry in epoch seconds (or "0")
_RESERVE = """
local stored = redis.call('GET', KEYS[1])
if stored then return {'exists', stored} end
local n = #KEYS - 1
for i = 1, n do
  local expected = ARGV[3 + (i - 1) * 3]
  if expected ~= '' then
    local current = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
    if current ~= tonumber(expected) then return {'moved', KEYS[i + 1]} end
  end
end
for i = 1, n do
  local add = tonumber(ARGV[4 + (i - 1) * 3])
  local expire_at = tonumber(ARGV[5 + (i - 1) * 3])
  if add ~= 0 then redis.call('INCRBY', KEYS[i + 1], add) end
  if expire_at > 0 then redis.call('EXPIREAT', KEYS[i + 1], expire_at) end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return {'ok', ''}
"""

_UNDO = """
for i = 2, #KEYS do redis.call('DECRBY', KEYS[i], tonumber(ARGV[i - 1])) end
redis.call('DEL', KEYS[1])
return 1
"""


class RedisStore:
    def __init__(self, url: str, records: SqlRecords):
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.records_store = records
        self._reserve = self.client.register_script(_RESERVE)
        self._undo = self.client.register_script(_UNDO)

    def _units(self, slot: CounterSlot) -> int:
        try:
            value = self.client.get(COUNTER_PREFIX + slot.key)
        except redis.RedisError as error:
            raise StoreUnavailable(f"counter store unavailable: {error.__class__.__name__}") from None
        return int(value or 0)

    def _units_many(self, slots: list[CounterSlot]) -> dict[str, int]:
        try:
            values = self.client.mget([COUNTER_PREFIX + slot.key for slot in slots])
        except redis.RedisError as error:
            raise StoreUnavailable(f"counter store unavailable: {error.__class__.__name__}") from None
        return {slot.key: int(value or 0) for slot, value in zip(slots, values, strict=True)}

    def reader(self) -> CountingReader:
        return CountingReader(self._units, self._units_many)

    def commit(self, idempotency_key: str, fingerprint: str,
               attempt: Callable[[CountingReader], Attempt]) -> dict[str, Any]:
        key = IDEMPOTENCY_PREFIX + idempotency_key
        try:
            for _ in range(MAX_ATTEMPTS):
                stored = self.client.get(key)
                if stored is not None:
                    return replay(_stored(stored), fingerprint, idempotency_key)
                reader = self.reader()
                made = attempt(reader)
                slots = {reservation.slot.key: reservation for reservation in made.reservations}
                checked = sorted(set(reader.seen) | set(slots))
                args: list[Any] = [json.dumps({"fingerprint": fingerprint, "result": made.result}, ensure_ascii=False),
                                   IDEMPOTENCY_TTL_SECONDS]
                for slot_key in checked:
                    reservation = slots.get(slot_key)
                    args += [reader.seen.get(slot_key, ""), reservation.units if reservation else 0,
                             _expire_at(reservation.slot.expires_at if reservation else None)]
                status, detail = self._reserve(keys=[key] + [COUNTER_PREFIX + k for k in checked], args=args)
                if status == b"exists":
                    return replay(_stored(detail), fingerprint, idempotency_key)
                if status == b"moved":
                    continue  # another instance committed meanwhile: evaluate again with fresh counters
                return self._record(made, key, checked, slots, fingerprint, idempotency_key)
        except redis.RedisError as error:
            raise StoreUnavailable(f"counter store unavailable: {error.__class__.__name__}") from None
        raise StoreUnavailable("too many concurrent commits on the same counters; retry")

    def _record(self, made: Attempt, key: str, checked: list[str], slots: dict[str, Any], fingerprint: str,
                idempotency_key: str) -> dict[str, Any]:
        def undo() -> None:
            reserved = [k for k in checked if k in slots]  # only what was added: no key is created here
            self._undo(keys=[key] + [COUNTER_PREFIX + k for k in reserved], args=[slots[k].units for k in reserved])
        try:
            self.records_store.add(made.record)
        except StoreUnavailable:
            undo()
            raise
        except DuplicateIdempotencyKey:
            # Redis forgot the key (its TTL passed) but the record remembers the first decision.
            undo()
            first = self.records_store.by_idempotency_key(idempotency_key)
            if first is None:
                raise StoreUnavailable("conflicting write, retry") from None
            return replay(StoredDecision(first.fingerprint or "", first.result), fingerprint, idempotency_key)
        return made.result

    def records(self, query: RecordQuery) -> list[DecisionRecord]:
        return self.records_store.query(query)

    def close(self) -> None:
        self.client.close()
        self.records_store.engine.dispose()


def _expire_at(expires: datetime | None) -> int:
    """Epoch seconds for EXPIREAT (0: never)."""
    kept_until = storage_expiry(expires)
    return int(kept_until.timestamp()) if kept_until else 0


def _stored(raw: bytes) -> StoredDecision:
    data = json.loads(raw)
    return StoredDecision(data["fingerprint"], data["result"])
