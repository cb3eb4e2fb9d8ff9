"""Counters and idempotency keys in Redis — one server or a Redis Cluster — shared by several
service instances; decision records in SQL, reached through an outbox.

A commit evaluates with the counters it reads, then one Lua script — atomic in Redis — checks that
none of those counters moved, adds the reservations, stores the idempotency key (scoped per
decision) and puts the decision record in the outbox (a Redis hash), and its decision-log entry in
the log outbox (another hash). If a counter moved (another instance committed
meanwhile), the decision is evaluated again with the new values. The answer is given once the
script ran: the record is then durable next to its reservation, and the :class:`OutboxMover`
copies it into the SQL record store (docs/state.md §4). Daily counters expire at the end of their
Shanghai day.

On a Redis Cluster every key of a commit carries the hash tag of the decision's ``partition``
value (``rulesvc:{<tag>}:…``), so the script's keys share one hash slot; the outbox is one hash per
partition, and an index (a sorted set of the partitions whose outbox was written, by time) lets
the mover and record searches find them without scanning the cluster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from engine.jsontext import dumps_text, loads
from engine.state.base import (
    CLUSTER_SCHEME,
    Attempt,
    CounterSlot,
    CountingReader,
    StoredDecision,
    StoreUnavailable,
    legacy_key_of,
    replay,
    storage_expiry,
    unavailable,
)
from engine.state.outbox import LogSink, OutboxMover, recorded_or_none
from engine.state.records import DecisionRecord, RecordQuery, merge_records, record_from_json, record_to_json
from engine.state.sql import SqlRecords

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
MAX_ATTEMPTS = 200
OUTBOX_INDEX = "rulesvc:outbox-partitions"  # cluster only: partition tag -> when its outbox was last written (ms)
INDEX_KEEP_MS = 10_000  # an emptied partition leaves the index this long after its last write
RECONNECT_INTERVAL_SECONDS = 1.0  # a cluster that could not be discovered is asked again after this long

# What redis-py raises when the counter store cannot serve. RedisClusterException (and SlotNotCoveredError,
# one of its kinds) is no RedisError: the cluster client raises it when it cannot discover the cluster —
# at construction, or when it refreshes its slot map after an error.
REDIS_FAILURES = (redis.RedisError, RedisClusterException)

# Why, as the answer says it: the first class that fits (MovedError is an AskError, MasterDownError a
# ClusterDownError; redirections past redis-py's retries end in a ClusterError, "TTL exhausted").
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (redis.ReadOnlyError, "a read-only replica"),
    (ClusterDownError, "the cluster is down or not formed"),
    (TryAgainError, "the cluster is moving slots"),
    (AskError, "the cluster is moving slots"),
    (SlotNotCoveredError, "hash slots not covered by the cluster"),
    (RedisClusterException, "the cluster cannot be discovered: not formed, not in cluster mode or unreachable"),
    (ClusterError, "the cluster cannot serve"),
    (redis.BusyLoadingError, "loading its data"),
    (redis.ConnectionError, "unreachable"),
    (redis.TimeoutError, "no answer in time"),
)

# KEYS[1] idempotency key, KEYS[2] outbox hash, KEYS[3] log outbox hash, KEYS[4..] counter keys
# ARGV[1] stored decision, ARGV[2] its TTL, ARGV[3] decision id, ARGV[4] its record (JSON),
#         ARGV[5] its decision-log entry (JSON, or "" = none),
#         then per counter: expected units (or "" = unchecked), units to add, expiry in epoch seconds (or "0")
_RESERVE = """
local stored = redis.call('GET', KEYS[1])
if stored then return {'exists', stored} end
local n = #KEYS - 3
for i = 1, n do
  local expected = ARGV[6 + (i - 1) * 3]
  if expected ~= '' then
    local current = tonumber(redis.call('GET', KEYS[i + 3]) or '0')
    if current ~= tonumber(expected) then return {'moved', KEYS[i + 3]} end
  end
end
for i = 1, n do
  local add = tonumber(ARGV[7 + (i - 1) * 3])
  local expire_at = tonumber(ARGV[8 + (i - 1) * 3])
  if add ~= 0 then redis.call('INCRBY', KEYS[i + 3], add) end
  if expire_at > 0 then redis.call('EXPIREAT', KEYS[i + 3], expire_at) end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[3], ARGV[5]) end
return {'ok', ''}
"""

# Drop a partition from the index if nothing was written to its outbox since the mover looked.
# KEYS[1] the index; ARGV[1] the partition tag, ARGV[2] the score seen
_FORGET_PARTITION = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1
"""


class KeySpace:
    """The Redis keys of one partition: untagged on one server, ``rulesvc:{<tag>}:…`` on a cluster."""

    def __init__(self, tag: str | None):
        self.tag = tag
        self.prefix = "rulesvc:" if tag is None else f"rulesvc:{{{tag}}}:"

    def counter(self, slot_key: str) -> str:
        return f"{self.prefix}counter:{slot_key}"

    def idempotency(self, decision: str, key: str) -> str:
        """A commit's key, scoped per decision (SPEC §6). Not under ``idempotency:``, where earlier
        versions kept global keys (:meth:`legacy_idempotency`), so no old key can be taken for a new one."""
        return f"{self.prefix}decision-key:{decision}/{key}"

    def legacy_idempotency(self, key: str) -> str:
        """Where a version before per-decision keys kept ``key`` (read only, until it expires)."""
        return f"{self.prefix}idempotency:{key}"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}outbox"

    @property
    def log_outbox(self) -> str:
        """Committed decisions' log entries, written with their records (SPEC §10)."""
        return f"{self.prefix}log-outbox"


def partition_tag(partition: str | None) -> str:
    """A hash tag for a partition value: short, and free of the braces that delimit tags."""
    return hashlib.sha256((partition or "").encode("utf-8")).hexdigest()[:16]


def cluster_client(url: str, **options: Any) -> RedisCluster:
    """redis-py's cluster client for ``redis+cluster://HOST:PORT[,HOST:PORT…]`` (any node will do; it
    finds the others)."""
    nodes = []
    for address in url[len(CLUSTER_SCHEME):].split("/")[0].split(","):
        parts = urlsplit(f"//{address.strip()}")
        if not parts.hostname:
            raise ValueError(f"unsupported store URL {url!r}: write redis+cluster://HOST:PORT[,HOST:PORT…]")
        nodes.append(ClusterNode(parts.hostname, parts.port or 6379))
    return RedisCluster(startup_nodes=nodes, **options)


def redis_unavailable(error: Exception) -> StoreUnavailable:
    """The :class:`StoreUnavailable` for one of redis-py's :data:`REDIS_FAILURES`."""
    reason = next((reason for kind, reason in _REASONS if isinstance(error, kind)), None)
    return unavailable("counter store", error, reason)


class RedisStore:
    def __init__(self, url: str, records: SqlRecords, log: LogSink | None = None):
        self.url = url
        self.cluster = url.startswith(CLUSTER_SCHEME)
        self.records_store = records
        self.mover = OutboxMover(_RedisOutbox(self), records, log)
        self._client: redis.Redis | RedisCluster | None = None
        self._client_lock = threading.Lock()
        self._failure: StoreUnavailable | None = None  # the last failure to make a client, and when
        self._failed_at = 0.0

    @property
    def client(self) -> redis.Redis | RedisCluster:
        """redis-py's client, made on first use — and again after the cluster could not be discovered.

        ``RedisCluster(...)`` asks the nodes for the slot map at once and raises on a cluster that is not
        formed: the service must start anyway, answer what needs no counters, and connect once the
        cluster serves. Raises :class:`StoreUnavailable` (meanwhile at most one attempt a second).
        """
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._connect()
                client = self._client
        return client

    def _connect(self) -> redis.Redis | RedisCluster:
        failure = self._failure
        if failure is not None and time.monotonic() - self._failed_at < RECONNECT_INTERVAL_SECONDS:
            raise StoreUnavailable(str(failure), failure.detail)  # a new one: a raised exception keeps its frames
        options = {"socket_timeout": 5, "socket_connect_timeout": 5}
        try:
            client = cluster_client(self.url, **options) if self.cluster else redis.Redis.from_url(self.url, **options)
        except REDIS_FAILURES as error:
            self._failure, self._failed_at = redis_unavailable(error), time.monotonic()
            raise redis_unavailable(error) from None
        self._failure = None
        self._reserve = client.register_script(_RESERVE)
        self._forget_partition = client.register_script(_FORGET_PARTITION)
        return client

    @contextmanager
    def serving(self) -> Iterator[None]:
        """redis-py's failures as :class:`StoreUnavailable`. A cluster client that could not refresh its slot
        map is dropped, so the next use discovers the cluster anew rather than trusting a broken map."""
        try:
            yield
        except REDIS_FAILURES as error:
            if isinstance(error, RedisClusterException):
                self._client = None  # not closed: other threads may be using it; its sockets close with it
            raise redis_unavailable(error) from None

    def check(self) -> None:
        """Ready when a commit could be served: on a cluster, every primary says ``cluster_state:ok`` (all
        16384 slots served); on one server, it is a primary (a replica refuses writes: READONLY)."""
        with self.serving():
            client = self.client
            if isinstance(client, RedisCluster):
                primaries = client.get_primaries()
                states = [client.cluster_info(target_nodes=node).get("cluster_state") for node in primaries]
                failing = [state for state in states if state != "ok"]
                if failing or not primaries:
                    raise StoreUnavailable(f"counter store unavailable: cluster_state:{failing[0] if failing else 'none'} "
                                           f"on {len(failing)} of {len(primaries)} primaries")
                return
            role = client.role()[0]
            role = role.decode() if isinstance(role, bytes) else role
            if role != "master":
                raise StoreUnavailable(f"counter store unavailable: a read-only replica (ROLE {role})")

    def check_records(self) -> None:
        self.records_store.check()

    def keys(self, partition: str | None) -> KeySpace:
        return KeySpace(partition_tag(partition) if self.cluster else None)

    def _units(self, slot: CounterSlot) -> int:
        with self.serving():
            value = self.client.get(self.keys(slot.partition).counter(slot.key))
        return int(value or 0)

    def _units_many(self, slots: list[CounterSlot]) -> dict[str, int]:
        """The counts of many slots in one round trip (a pipeline on a cluster: the keys span hash slots)."""
        keys = [self.keys(slot.partition).counter(slot.key) for slot in slots]
        with self.serving():
            if self.cluster:
                pipeline = self.client.pipeline()
                for key in keys:
                    pipeline.get(key)
                values = pipeline.execute()
            else:
                values = self.client.mget(keys)
        return {slot.key: int(value or 0) for slot, value in zip(slots, values, strict=True)}

    def reader(self) -> CountingReader:
        return CountingReader(self._units, self._units_many)

    def commit(self, decision: str, idempotency_key: str, fingerprint: str,
               attempt: Callable[[CountingReader], Attempt], partition: str | None = None) -> dict[str, Any]:
        space = self.keys(partition)
        key = space.idempotency(decision, idempotency_key)
        with self.serving():  # a failure before the script wrote nothing; the script writes all or nothing
            for number in range(MAX_ATTEMPTS):
                stored = self.client.get(key)
                if stored is not None:
                    return replay(_stored(stored), fingerprint, idempotency_key)
                if number == 0:
                    # A key an earlier version stored (global, kept 7 days) counts for its own decision.
                    legacy = self.client.get(space.legacy_idempotency(idempotency_key))
                    earlier = legacy_key_of(_stored(legacy) if legacy is not None else None, decision)
                    if earlier is not None:
                        return replay(earlier, fingerprint, idempotency_key)
                    # Redis keeps a key 7 days; the records remember it for good.
                    first = recorded_or_none(self.records_store, decision, idempotency_key)
                    if first is not None:  # known again for 7 days (never over a decision made meanwhile)
                        self.client.set(key, _stored_json(first.fingerprint, first.result), ex=IDEMPOTENCY_TTL_SECONDS,
                                        nx=True)
                        return replay(first, fingerprint, idempotency_key)
                reader = self.reader()
                made = attempt(reader)
                slots = {reservation.slot.key: reservation for reservation in made.reservations}
                checked = sorted(set(reader.seen) | set(slots))
                args: list[Any] = [_stored_json(fingerprint, made.result), IDEMPOTENCY_TTL_SECONDS,
                                   made.record.decision_id, json.dumps(record_to_json(made.record), ensure_ascii=False),
                                   "" if made.log_entry is None else dumps_text(made.log_entry)]
                for slot_key in checked:
                    reservation = slots.get(slot_key)
                    args += [reader.seen.get(slot_key, ""), reservation.units if reservation else 0,
                             _expire_at(reservation.slot.expires_at if reservation else None)]
                if self.cluster:  # before the outbox is written: the mover must find the partition
                    self.client.zadd(OUTBOX_INDEX, {space.tag: int(time.time() * 1000)})
                status, detail = self._reserve(
                    keys=[key, space.outbox, space.log_outbox, *(space.counter(k) for k in checked)], args=args)
                if status == b"exists":
                    return replay(_stored(detail), fingerprint, idempotency_key)
                if status == b"moved":
                    continue  # another instance committed meanwhile: evaluate again with fresh counters
                self.mover.notify()
                return made.result
        raise StoreUnavailable("too many concurrent commits on the same counters; retry")

    def records(self, query: RecordQuery) -> list[DecisionRecord]:
        try:
            pending = self.mover.outbox.pending()  # read first: a record moved meanwhile is then in the store
        except StoreUnavailable as error:
            # Redis down: what reached SQL (all but the last moment's records) rather than nothing.
            log.warning("records listed without the outbox: %s", error)
            pending = []
        return merge_records(self.records_store.query(query), pending, query)

    def start_moving(self) -> None:
        """Move the outbox in the background from now on, in this process (the service does this)."""
        self.mover.notify()

    def drain(self) -> int:
        """Move the outbox to the record store and the decision log now; the number of records moved."""
        moved = self.mover.move()  # the records first: a log that is down holds none back
        self.mover.move_log()
        return moved

    def close(self) -> None:
        self.mover.stop()
        if self._client is not None:  # never made (a cluster that was not formed): nothing to close
            self._client.close()
        self.records_store.engine.dispose()


class _RedisOutbox:
    """The outbox hash (one per partition on a cluster, found through the partition index)."""

    def __init__(self, store: RedisStore):
        self.store = store

    def _spaces(self) -> list[tuple[KeySpace, float | None]]:
        if not self.store.cluster:
            return [(KeySpace(None), None)]
        return [(KeySpace(tag.decode()), score)
                for tag, score in self.store.client.zrange(OUTBOX_INDEX, 0, -1, withscores=True)]

    def pending(self) -> list[DecisionRecord]:
        return [record_from_json(json.loads(raw)) for raw in self._values("outbox")]

    def pending_entries(self) -> list[dict[str, Any]]:
        return [loads(raw) for raw in self._values("log_outbox")]

    def _values(self, hash_name: str) -> list[bytes]:
        """Every value of one outbox hash (``outbox`` or ``log_outbox``) of every partition."""
        with self.store.serving():
            spaces = self._spaces()
            pipeline = self.store.client.pipeline(transaction=False)  # on a cluster: one batch per node
            for space, _ in spaces:
                pipeline.hvals(getattr(space, hash_name))
            outboxes = pipeline.execute()
        return [raw for values in outboxes for raw in values]

    def remove(self, records: list[DecisionRecord]) -> None:
        self._remove("outbox", [record.decision_id for record in records])

    def remove_entries(self, decision_ids: list[str]) -> None:
        self._remove("log_outbox", decision_ids)

    def _remove(self, hash_name: str, ids: list[str]) -> None:
        with self.store.serving():
            client = self.store.client
            if not self.store.cluster:
                client.hdel(getattr(KeySpace(None), hash_name), *ids)
                return
            spaces = self._spaces()
            pipeline = client.pipeline(transaction=False)
            for space, _ in spaces:
                pipeline.hdel(getattr(space, hash_name), *ids)  # each id is in one partition's outbox; elsewhere a no-op
                pipeline.hlen(space.outbox)
                pipeline.hlen(space.log_outbox)
            answers = pipeline.execute()
            now_ms = time.time() * 1000
            for (space, score), records_left, entries_left in zip(spaces, answers[1::3], answers[2::3], strict=True):
                # An empty partition (records and log entries) leaves the index once no commit wrote to
                # it for a while (a commit indexes its partition just before its script writes the outbox).
                if records_left == 0 and entries_left == 0 and score is not None and now_ms - score > INDEX_KEEP_MS:
                    self.store._forget_partition(keys=[OUTBOX_INDEX], args=[space.tag, int(score)])


def _expire_at(expires: datetime | None) -> int:
    """Epoch seconds for EXPIREAT (0: never)."""
    kept_until = storage_expiry(expires)
    return int(kept_until.timestamp()) if kept_until else 0


def _stored_json(fingerprint: str, result: dict[str, Any]) -> str:
    return json.dumps({"fingerprint": fingerprint, "result": result}, ensure_ascii=False)


def _stored(raw: bytes) -> StoredDecision:
    data = json.loads(raw)
    return StoredDecision(data["fingerprint"], data["result"])
