"""SQL storage through SQLAlchemy Core: decision records (SQLite or PostgreSQL) and the embedded
SQLite counter store.

SQLite commits run in ``BEGIN IMMEDIATE`` transactions: the write lock is taken before counters
are read, so two commits — from threads or from several worker processes on one file — are
serialised and can never both pass a limit. WAL mode lets plain reads go on meanwhile.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..values import epoch_ms, parse_instant
from .base import Attempt, CounterSlot, CountingReader, StoredDecision, StoreUnavailable, replay, storage_expiry
from .records import DecisionRecord, DuplicateIdempotencyKey, RecordQuery

metadata = MetaData()

counters = Table(
    "counters", metadata,
    Column("key", String(512), primary_key=True),
    Column("units", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=True, index=True),
)

idempotency = Table(
    "idempotency_keys", metadata,
    Column("key", String(256), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("result", Text, nullable=False),
)

decision_records = Table(
    "decision_records", metadata,
    Column("decision_id", String(32), primary_key=True),
    Column("decision", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason_codes", Text, nullable=False),
    Column("ruleset_version", String(80), nullable=False),
    Column("evaluated_ms", BigInteger, nullable=False),
    Column("committed", Boolean, nullable=False),
    Column("idempotency_key", String(256), nullable=True, unique=True),
    Column("order_id", Text, nullable=True),
    Column("customer_account", Text, nullable=True),
    Column("store_id", Text, nullable=True),
    Column("amount", Numeric(16, 2), nullable=True),
    Column("reason", String(64), nullable=True),
    Column("result", Text, nullable=False),
    Column("fingerprint", String(64), nullable=True),
    Index("ix_records_decision_time", "decision", "evaluated_ms"),
    Index("ix_records_order", "order_id"),
    Index("ix_records_store", "store_id", "evaluated_ms"),
    Index("ix_records_customer", "customer_account"),
)


_UNITS = select(counters.c.units).where(counters.c.key == bindparam("key"))


def make_engine(url: str, *, write_lock: bool = True) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and — for writers — ``BEGIN
    IMMEDIATE`` (``write_lock=False`` gives plain readers that never wait for a commit)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    memory = url in ("sqlite://", "sqlite:///:memory:")
    if not memory:
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           **({"poolclass": StaticPool} if memory else {}))

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see below)
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    if write_lock:
        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class SqlRecords:
    """Decision records in SQLite or PostgreSQL."""

    def __init__(self, engine: Engine):
        self.engine = engine
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"record store unavailable: {error.__class__.__name__}") from None

    def add(self, record: DecisionRecord, connection: Connection | None = None) -> None:
        row = {
            "decision_id": record.decision_id, "decision": record.decision, "outcome": record.outcome,
            "reason_codes": " ".join(record.reason_codes), "ruleset_version": record.ruleset_version,
            "evaluated_ms": epoch_ms(record.evaluated_at), "committed": record.committed,
            "idempotency_key": record.idempotency_key, "order_id": record.order_id,
            "customer_account": record.customer_account, "store_id": record.store_id, "amount": record.amount,
            "reason": record.reason, "result": json.dumps(record.result, ensure_ascii=False),
            "fingerprint": record.fingerprint,
        }
        if connection is not None:
            connection.execute(insert(decision_records).values(row))
            return
        try:
            with self.engine.begin() as own:
                own.execute(insert(decision_records).values(row))
        except IntegrityError:
            raise DuplicateIdempotencyKey(record.idempotency_key) from None
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"record store unavailable: {error.__class__.__name__}") from None

    def by_idempotency_key(self, key: str) -> DecisionRecord | None:
        try:
            with self.engine.connect() as connection:
                statement = select(decision_records).where(decision_records.c.idempotency_key == key)
                row = connection.execute(statement).mappings().first()
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"record store unavailable: {error.__class__.__name__}") from None
        return None if row is None else _record(row)

    def query(self, query: RecordQuery) -> list[DecisionRecord]:
        statement = select(decision_records).order_by(decision_records.c.evaluated_ms, decision_records.c.decision_id)
        if query.decision:
            statement = statement.where(decision_records.c.decision == query.decision)
        if query.outcome:
            statement = statement.where(decision_records.c.outcome == query.outcome)
        if query.decision_id:
            statement = statement.where(decision_records.c.decision_id == query.decision_id)
        if query.order_id:
            statement = statement.where(decision_records.c.order_id == query.order_id)
        if query.store_id:
            statement = statement.where(decision_records.c.store_id == query.store_id)
        if query.start:
            statement = statement.where(decision_records.c.evaluated_ms >= epoch_ms(query.start))
        if query.end:
            statement = statement.where(decision_records.c.evaluated_ms < epoch_ms(query.end))
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(statement.limit(query.limit)).mappings().all()
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"record store unavailable: {error.__class__.__name__}") from None
        return [_record(row) for row in rows]


def _record(row: Any) -> DecisionRecord:
    result = json.loads(row["result"])
    return DecisionRecord(
        decision_id=row["decision_id"], decision=row["decision"], outcome=row["outcome"],
        reason_codes=row["reason_codes"].split() if row["reason_codes"] else [],
        ruleset_version=row["ruleset_version"], evaluated_at=parse_instant(result["evaluated_at"]),
        committed=bool(row["committed"]), idempotency_key=row["idempotency_key"], result=result,
        order_id=row["order_id"], customer_account=row["customer_account"], store_id=row["store_id"],
        amount=None if row["amount"] is None else Decimal(row["amount"]).quantize(Decimal("0.01")),
        reason=row["reason"], fingerprint=row["fingerprint"])


class SqliteStore:
    """Counters and idempotency keys in an SQLite file: the embedded default."""

    def __init__(self, engine: Engine, records: SqlRecords):
        self.engine = engine
        self.records_store = records
        self._same_database = records.engine is engine
        # Plain evaluations read through their own engine: no write lock, so they never queue behind commits.
        url = engine.url.render_as_string(hide_password=False)
        self._read_engine = engine if url in ("sqlite://", "sqlite:///:memory:") else make_engine(url, write_lock=False)
        self._readers = threading.local()
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"counter store unavailable: {error.__class__.__name__}") from None

    @staticmethod
    def _units(connection: Connection, slot: CounterSlot) -> int:
        return int(connection.execute(_UNITS, {"key": slot.key}).scalar() or 0)

    def reader(self) -> CountingReader:
        def read(slot: CounterSlot) -> int:
            try:
                # one connection per thread, kept: a batch reads many counters
                connection = getattr(self._readers, "connection", None)
                if connection is None or connection.closed:
                    connection = self._readers.connection = self._read_engine.connect()
                units = self._units(connection, slot)
                connection.rollback()  # end the implicit read so the next one sees new commits
                return units
            except SQLAlchemyError as error:
                self._readers.connection = None
                raise StoreUnavailable(f"counter store unavailable: {error.__class__.__name__}") from None
        return CountingReader(read)

    def commit(self, idempotency_key: str, fingerprint: str,
               attempt: Callable[[CountingReader], Attempt]) -> dict[str, Any]:
        try:
            with self.engine.begin() as connection:  # BEGIN IMMEDIATE: the write lock, held to the end
                stored = connection.execute(
                    select(idempotency.c.fingerprint, idempotency.c.result).where(idempotency.c.key == idempotency_key)
                ).first()
                if stored is not None:
                    return replay(StoredDecision(stored.fingerprint, json.loads(stored.result)), fingerprint,
                                  idempotency_key)
                made = attempt(CountingReader(lambda slot: self._units(connection, slot)))
                # Forget finished days by the wall clock, never by the caller's `now` (QA may send any instant).
                connection.execute(delete(counters).where(counters.c.expires_ms < epoch_ms(datetime.now(UTC))))
                for reservation in made.reservations:
                    kept_until = storage_expiry(reservation.slot.expires_at)
                    expires = None if kept_until is None else epoch_ms(kept_until)
                    upsert = sqlite_insert(counters).values(key=reservation.slot.key, units=reservation.units,
                                                            expires_ms=expires)
                    connection.execute(upsert.on_conflict_do_update(
                        index_elements=[counters.c.key], set_={"units": counters.c.units + reservation.units}))
                connection.execute(insert(idempotency).values(
                    key=idempotency_key, fingerprint=fingerprint, result=json.dumps(made.result, ensure_ascii=False)))
                # In one database the record joins this transaction; otherwise it is written before
                # the counters commit, so a failure leaves neither.
                self.records_store.add(made.record, connection if self._same_database else None)
                return made.result
        except DuplicateIdempotencyKey:
            # The shared record store knew the key (its counters live elsewhere): this attempt was rolled
            # back, the first decision is the answer.
            first = self.records_store.by_idempotency_key(idempotency_key)
            if first is None:
                raise StoreUnavailable("conflicting write, retry") from None
            return replay(StoredDecision(first.fingerprint or "", first.result), fingerprint, idempotency_key)
        except IntegrityError as error:
            raise StoreUnavailable(f"conflicting write, retry: {error.__class__.__name__}") from None
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"counter store unavailable: {error.__class__.__name__}") from None

    def records(self, query: RecordQuery) -> list[DecisionRecord]:
        return self.records_store.query(query)

    def clear(self) -> None:
        """Forget every counter, idempotency key and record (QA runs reuse one in-memory store)."""
        with self.engine.begin() as connection:
            for table in (counters, idempotency, *([decision_records] if self._same_database else [])):
                connection.execute(delete(table))

    def close(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()
        if not self._same_database:
            self.records_store.engine.dispose()

