"""Counters, idempotency keys and decision records, behind one interface chosen by URL.

``sqlite:///var/rulesvc.db`` (the default) keeps everything in one embedded file;
``redis://host:port/db`` keeps counters and idempotency keys in Redis for several instances, with
records in SQLite or ``postgresql://…``.
"""

from __future__ import annotations

from engine.state.base import (
    CLUSTER_SCHEME,
    Attempt,
    CounterSlot,
    CountingReader,
    IdempotencyConflict,
    Reservation,
    Store,
    StoreUnavailable,
    counter_slot,
    to_units,
    unavailable,
)
from engine.state.outbox import LogSink
from engine.state.records import CSV_HEADER, DecisionRecord, RecordQuery, build_record, csv_lines, export_csv, record_order
from engine.state.sql import SqliteStore, SqlRecords, make_engine

DEFAULT_STORE_URL = "sqlite:///var/rulesvc.db"


def is_cluster(store_url: str) -> bool:
    """A Redis Cluster store: every decision must then declare its partition."""
    return store_url.startswith(CLUSTER_SCHEME)


def open_store(store_url: str = DEFAULT_STORE_URL, records_url: str | None = None, log: LogSink | None = None) -> Store:
    """The store for ``store_url`` (sqlite:// or redis://) with records at ``records_url``.

    Records default to the store's SQLite file, or to the default SQLite file next to Redis. With
    ``log`` (the service's decision log), the log entries commits put in the outbox are moved there.
    """
    if store_url.startswith(("redis://", "rediss://", "unix://", "redis+cluster://")):
        from engine.state.redis_store import RedisStore

        return RedisStore(store_url, SqlRecords(make_engine(records_url or DEFAULT_STORE_URL)), log)
    if not store_url.startswith("sqlite"):
        raise ValueError(f"unsupported store URL {store_url!r}: use sqlite:///PATH, redis://HOST:PORT/DB or "
                         "redis+cluster://HOST:PORT[,HOST:PORT…]")
    engine = make_engine(store_url)
    records_engine = engine if records_url in (None, store_url) else make_engine(records_url)
    return SqliteStore(engine, SqlRecords(records_engine), log)


__all__ = [
    "CLUSTER_SCHEME", "CSV_HEADER", "DEFAULT_STORE_URL", "Attempt", "CounterSlot", "CountingReader", "DecisionRecord",
    "IdempotencyConflict", "RecordQuery", "Reservation", "SqliteStore", "Store", "StoreUnavailable", "build_record",
    "counter_slot", "csv_lines", "export_csv", "record_order", "is_cluster", "open_store", "to_units", "unavailable",
]
