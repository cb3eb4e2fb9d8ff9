"""SQL storage through SQLAlchemy Core: decision records (SQLite or PostgreSQL) and the embedded
SQLite counter store.

SQLite commits run in ``BEGIN IMMEDIATE`` transactions: the write lock is taken before counters
are read, so two commits — from threads or from several worker processes on one file — are
serialised and can never both pass a limit. WAL mode lets plain reads go on meanwhile.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    false,
    insert,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from engine.jsontext import dumps_text, loads
from engine.runtime.values import epoch_ms, from_epoch_us, parse_instant
from engine.state.base import (
    Attempt,
    CounterSlot,
    CountingReader,
    StoredDecision,
    StoreUnavailable,
    replay,
    storage_expiry,
    unavailable,
)
from engine.state.outbox import LogSink, OutboxMover, recorded_or_none
from engine.state.records import (
    DecisionRecord,
    DuplicateIdempotencyKey,
    RecordQuery,
    merge_records,
    record_from_json,
    record_to_json,
)

log = logging.getLogger(__name__)

metadata = MetaData()

counters = Table(
    "counters", metadata,
    Column("key", String(512), primary_key=True),
    Column("units", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=True, index=True),
)

# Idempotency keys are scoped per decision (SPEC §6): the same key on two decisions is two commits.
idempotency = Table(
    "decision_idempotency_keys", metadata,
    Column("decision", String(128), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("result", Text, nullable=False),
)

# The global keys of earlier versions: moved into ``idempotency`` (with the decision each was used
# on) and dropped when a store opens the file (upgrade_idempotency_keys).
legacy_idempotency = Table(
    "idempotency_keys", MetaData(),
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
    Column("idempotency_key", String(256), nullable=True),
    Column("order_id", Text, nullable=True),
    Column("customer_account", Text, nullable=True),
    Column("store_id", Text, nullable=True),
    Column("amount", Numeric(16, 2), nullable=True),
    Column("reason", String(64), nullable=True),
    Column("result", Text, nullable=False),
    Column("fingerprint", String(64), nullable=True),
    # The request's `now` (ISO 8601); evaluated_ms is the server's clock (SPEC §6). Added by
    # upgrade_records for tables made before it; NULL there (their decision document has the instant).
    Column("request_now", Text, nullable=True),
    Index("ix_records_decision_time", "decision", "evaluated_ms"),
    Index("ix_records_order", "order_id"),
    Index("ix_records_store", "store_id", "evaluated_ms"),
    Index("ix_records_customer", "customer_account"),
    Index("uq_records_decision_key", "decision", "idempotency_key", unique=True),  # keys are per decision
)


# Records on their way to a record store in another database (docs/state.md §4): written in the
# commit's transaction, moved by the OutboxMover.
outbox = Table(
    "record_outbox", metadata,
    Column("decision_id", String(32), primary_key=True),
    Column("record", Text, nullable=False),
)

# Committed decisions' decision-log entries on their way to the log (SPEC §10), written in the
# commit's transaction whichever database the records are in; moved by the OutboxMover.
log_outbox = Table(
    "log_outbox", metadata,
    Column("decision_id", String(32), primary_key=True),
    Column("entry", Text, nullable=False),
)

_UNITS = select(counters.c.units).where(counters.c.key == bindparam("key"))
_UNITS_SQL = "SELECT units FROM counters WHERE key = ?"  # _UNITS for the sqlite3 driver itself


def sql_unavailable(store: str, error: SQLAlchemyError | sqlite3.Error) -> StoreUnavailable:
    """The :class:`StoreUnavailable` for a database error, saying why when the driver's error tells:
    a read-only SQLite file (SQLITE_READONLY), a PostgreSQL standby in recovery or a database with
    ``default_transaction_read_only`` (psycopg's ReadOnlySqlTransaction, SQLSTATE 25006)."""
    cause = error if isinstance(error, sqlite3.Error) else getattr(error, "orig", None)
    reason = None
    if isinstance(cause, sqlite3.Error) and (getattr(cause, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_READONLY:
        reason = "a read-only database file"
    elif type(cause).__module__.startswith("psycopg"):  # psycopg is imported only once it is in use
        from psycopg.errors import ReadOnlySqlTransaction

        if isinstance(cause, ReadOnlySqlTransaction):
            reason = "read-only: a standby in recovery, or default_transaction_read_only"
    return unavailable(store, error, reason)


def check_writable(engine: Engine, table: Table, store: str) -> None:
    """Raise :class:`StoreUnavailable` unless ``engine`` reaches its database and may write ``table``: a
    write that changes nothing, rolled back. A standby, a read-only transaction default and a read-only
    SQLite file all refuse it, with the error a commit would get (``pg_is_in_recovery()`` would miss
    ``default_transaction_read_only``; SQLite has no query for a read-only file)."""
    try:
        with engine.connect() as connection:  # begins (SQLite: BEGIN IMMEDIATE, as a commit would)
            connection.execute(delete(table).where(false()))
            connection.rollback()
    except SQLAlchemyError as error:
        raise sql_unavailable(store, error) from None


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
            upgrade_records(engine)
        except SQLAlchemyError as error:
            raise sql_unavailable("record store", error) from None

    def check(self) -> None:
        """Raise :class:`StoreUnavailable` unless records can be written now."""
        check_writable(self.engine, decision_records, "record store")

    def move(self, records: list[DecisionRecord]) -> None:
        """Write the records this store does not have yet, in one transaction: idempotent on
        ``decision_id``, so an outbox can be moved again after a crash, or by two processes at once."""
        try:
            with self.engine.begin() as connection:
                ids = [record.decision_id for record in records]
                present = set(connection.execute(
                    select(decision_records.c.decision_id).where(decision_records.c.decision_id.in_(ids))).scalars())
                for record in records:
                    if record.decision_id not in present:
                        self._insert_new(connection, record)
        except SQLAlchemyError as error:
            raise sql_unavailable("record store", error) from None

    def _insert_new(self, connection: Connection, record: DecisionRecord) -> None:
        try:
            with connection.begin_nested():  # a savepoint: a conflict leaves the batch going
                self.add(record, connection)
            return
        except IntegrityError:
            pass
        exists = select(decision_records.c.decision_id).where(decision_records.c.decision_id == record.decision_id)
        if connection.execute(exists).first() is not None:
            return  # another mover wrote it meanwhile
        # The idempotency key belongs to an earlier decision, a case the commit checks for and rules
        # out but for two commits racing across Redis Cluster partitions (docs/state.md §4). The
        # decision was answered, so it is kept; its key stays in its result, not in the key column.
        log.warning("decision %s reused idempotency key %r of an earlier decision; recorded without the key",
                    record.decision_id, record.idempotency_key)
        self.add(dataclasses.replace(record, idempotency_key=None), connection)

    def add(self, record: DecisionRecord, connection: Connection | None = None) -> None:
        row = {
            "decision_id": record.decision_id, "decision": record.decision, "outcome": record.outcome,
            "reason_codes": " ".join(record.reason_codes), "ruleset_version": record.ruleset_version,
            "evaluated_ms": epoch_ms(record.evaluated_at), "committed": record.committed,
            "idempotency_key": record.idempotency_key, "order_id": record.order_id,
            "customer_account": record.customer_account, "store_id": record.store_id, "amount": record.amount,
            "reason": record.reason, "result": json.dumps(record.result, ensure_ascii=False),
            "fingerprint": record.fingerprint, "request_now": None if record.now is None else record.now.isoformat(),
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
            raise sql_unavailable("record store", error) from None

    def recorded(self, decision: str, key: str) -> StoredDecision | None:
        """The decision recorded under idempotency ``key`` for ``decision``, for a replay; None if there is none."""
        first = self.by_idempotency_key(decision, key)
        return None if first is None else StoredDecision(first.fingerprint or "", first.result)

    def by_idempotency_key(self, decision: str, key: str) -> DecisionRecord | None:
        try:
            with self.engine.connect() as connection:
                statement = select(decision_records).where(decision_records.c.decision == decision,
                                                           decision_records.c.idempotency_key == key)
                row = connection.execute(statement).mappings().first()
        except SQLAlchemyError as error:
            raise sql_unavailable("record store", error) from None
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
        if query.after is not None:
            after_ms, after_id = query.after
            statement = statement.where(or_(decision_records.c.evaluated_ms > after_ms, and_(
                decision_records.c.evaluated_ms == after_ms, decision_records.c.decision_id > after_id)))
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(statement.limit(query.limit)).mappings().all()
        except SQLAlchemyError as error:
            raise sql_unavailable("record store", error) from None
        return [_record(row) for row in rows]


def upgrade_records(engine: Engine) -> None:
    """Bring a record table an earlier version made up to this one (docs/state.md §7): idempotency keys
    unique per decision rather than globally, and the ``request_now`` column. Run at every start by
    every process; each check is repeated inside the write transaction, so processes starting at
    once change the table once. Every record is kept, with its key."""
    if _global_key_constraint(engine) is not None:
        with engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE, so the look and the change are one step
            name = _global_key_constraint(connection)
            if name is not None and engine.dialect.name == "postgresql":
                connection.execute(text(f'ALTER TABLE decision_records DROP CONSTRAINT IF EXISTS "{name}"'))
                _records_key_index().create(connection, checkfirst=True)
            elif name is not None:
                _rebuild_sqlite_records(connection)
    if "request_now" in _columns(engine):
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE decision_records ADD COLUMN IF NOT EXISTS request_now TEXT"))
        elif "request_now" not in _columns(connection):
            connection.execute(text("ALTER TABLE decision_records ADD COLUMN request_now TEXT"))


def _records_key_index() -> Index:
    return next(index for index in decision_records.indexes if index.name == "uq_records_decision_key")


def _global_key_constraint(bind: Engine | Connection) -> str | None:
    """The name of an earlier version's unique constraint on ``idempotency_key`` alone, or None when
    the table has none. SQLite's is an automatic index, found through its PRAGMAs (SQLAlchemy does not
    reflect every spelling of it)."""
    if bind.dialect.name != "sqlite":
        for constraint in inspect(bind).get_unique_constraints("decision_records"):
            if constraint["column_names"] == ["idempotency_key"]:
                return constraint["name"]
        return None
    with _connection(bind) as connection:
        for index in connection.exec_driver_sql("PRAGMA index_list(decision_records)").mappings():
            if index["unique"] and index["origin"] == "u":
                columns = connection.exec_driver_sql(f'PRAGMA index_info("{index["name"]}")').mappings()
                if [column["name"] for column in columns] == ["idempotency_key"]:
                    return str(index["name"])
    return None


@contextmanager
def _connection(bind: Engine | Connection) -> Iterator[Connection]:
    """``bind`` itself if it is a connection, else a new one for the block."""
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.connect() as connection:
        yield connection


def _rebuild_sqlite_records(connection: Connection) -> None:
    """SQLite cannot drop a column's inline UNIQUE: the table is made anew and every row copied into it,
    in the caller's transaction (a crash leaves the old table as it was)."""
    kept = sorted(_columns(connection) & {column.name for column in decision_records.columns})
    for index in inspect(connection).get_indexes("decision_records"):
        if index["name"] and not index["name"].startswith("sqlite_"):  # names are per database, not per table
            connection.execute(text(f'DROP INDEX "{index["name"]}"'))
    connection.execute(text("ALTER TABLE decision_records RENAME TO decision_records_before_upgrade"))
    decision_records.create(connection)
    listed = ", ".join(f'"{name}"' for name in kept)
    connection.execute(text(f"INSERT INTO decision_records ({listed}) SELECT {listed} FROM decision_records_before_upgrade"))
    connection.execute(text("DROP TABLE decision_records_before_upgrade"))
    log.info("decision records: idempotency keys are now unique per decision (table rebuilt, every record kept)")


def upgrade_idempotency_keys(engine: Engine) -> None:
    """Move an earlier version's global idempotency keys into the per-decision table, each under the
    decision it was used on (from its stored result), then drop the old table: an old key still
    replays on its decision and no longer blocks the same key on another."""
    if not inspect(engine).has_table(legacy_idempotency.name):
        return
    with engine.begin() as connection:
        if not inspect(connection).has_table(legacy_idempotency.name):
            return  # another process moved them meanwhile
        rows = connection.execute(select(legacy_idempotency)).all()
        moved = [{"decision": json.loads(row.result)["decision"], "key": row.key, "fingerprint": row.fingerprint,
                  "result": row.result} for row in rows]
        if moved:
            connection.execute(sqlite_insert(idempotency).on_conflict_do_nothing(), moved)
        legacy_idempotency.drop(connection)
    log.info("idempotency keys: %d moved to per-decision keys", len(moved))


def _columns(bind: Engine | Connection) -> set[str]:
    return {column["name"] for column in inspect(bind).get_columns("decision_records")}


def _record(row: Any) -> DecisionRecord:
    result = json.loads(row["result"])
    return DecisionRecord(
        decision_id=row["decision_id"], decision=row["decision"], outcome=row["outcome"],
        reason_codes=row["reason_codes"].split() if row["reason_codes"] else [],
        ruleset_version=row["ruleset_version"], evaluated_at=from_epoch_us(row["evaluated_ms"] * 1000),
        now=None if row["request_now"] is None else parse_instant(row["request_now"]),
        committed=bool(row["committed"]), idempotency_key=row["idempotency_key"], result=result,
        order_id=row["order_id"], customer_account=row["customer_account"], store_id=row["store_id"],
        amount=None if row["amount"] is None else Decimal(row["amount"]).quantize(Decimal("0.01")),
        reason=row["reason"], fingerprint=row["fingerprint"])


class SqliteStore:
    """Counters and idempotency keys in an SQLite file: the embedded default. Records go in the same
    transaction to the same file, or — with a record store elsewhere — through an outbox table."""

    def __init__(self, engine: Engine, records: SqlRecords, log: LogSink | None = None):
        self.engine = engine
        self.records_store = records
        self._same_database = records.engine is engine
        # Records in this file are written by the commit itself; committed log entries always go through the outbox.
        moves = not self._same_database or log is not None
        self.mover = OutboxMover(_SqliteOutbox(engine), None if self._same_database else records, log) if moves else None
        # Plain evaluations read through their own engine: no write lock, so they never queue behind commits.
        url = engine.url.render_as_string(hide_password=False)
        self._read_engine = engine if url in ("sqlite://", "sqlite:///:memory:") else make_engine(url, write_lock=False)
        self._readers = threading.local()
        try:
            metadata.create_all(engine)
            upgrade_idempotency_keys(engine)
        except SQLAlchemyError as error:
            raise sql_unavailable("counter store", error) from None

    @staticmethod
    def _units(connection: Connection, slot: CounterSlot) -> int:
        return int(connection.execute(_UNITS, {"key": slot.key}).scalar() or 0)

    def reader(self) -> CountingReader:
        # Plain evaluations read on the thread's own sqlite3 connection (one per thread, kept, as a
        # pooled SQLAlchemy connection was before): one prepared statement per read, without SQLAlchemy's
        # per-execute work, which cost ~10x the query itself (measured for issue 21). Autocommit: a
        # SELECT holds no transaction, so every read sees every commit.
        def driver_connection() -> sqlite3.Connection:
            kept = getattr(self._readers, "pooled", None)
            if kept is None:
                # the pooled connection itself is kept: dropping it would hand its sqlite3 connection back
                # to the pool while this thread still uses it
                kept = self._readers.pooled = self._read_engine.raw_connection()
            return kept.driver_connection

        def forget() -> None:
            pooled, self._readers.pooled = getattr(self._readers, "pooled", None), None
            if pooled is not None:
                pooled.invalidate()

        def read_many(slots: list[CounterSlot]) -> dict[str, int]:
            found: dict[str, int] = {}
            try:
                driver = driver_connection()
                for start in range(0, len(slots), 500):
                    keys = [slot.key for slot in slots[start:start + 500]]
                    rows = driver.execute(f"SELECT key, units FROM counters WHERE key IN ({', '.join('?' * len(keys))})",
                                          keys)
                    found.update((key, int(units)) for key, units in rows)
                return found
            except (SQLAlchemyError, sqlite3.Error) as error:
                forget()
                raise sql_unavailable("counter store", error) from None

        def read(slot: CounterSlot) -> int:
            try:
                row = driver_connection().execute(_UNITS_SQL, (slot.key,)).fetchone()
            except (SQLAlchemyError, sqlite3.Error) as error:
                forget()
                raise sql_unavailable("counter store", error) from None
            return int(row[0]) if row is not None and row[0] is not None else 0
        return CountingReader(read, read_many)

    def commit(self, decision: str, idempotency_key: str, fingerprint: str,
               attempt: Callable[[CountingReader], Attempt], partition: str | None = None) -> dict[str, Any]:
        # With records elsewhere (shared by several hosts), a key another host committed is replayed.
        first = None if self._same_database else recorded_or_none(self.records_store, decision, idempotency_key)
        try:
            with self.engine.begin() as connection:  # BEGIN IMMEDIATE: the write lock, held to the end
                stored = connection.execute(
                    select(idempotency.c.fingerprint, idempotency.c.result).where(
                        idempotency.c.decision == decision, idempotency.c.key == idempotency_key)
                ).first()
                if stored is not None:
                    return replay(StoredDecision(stored.fingerprint, json.loads(stored.result)), fingerprint,
                                  idempotency_key)
                if first is not None:
                    return replay(first, fingerprint, idempotency_key)
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
                    decision=decision, key=idempotency_key, fingerprint=fingerprint,
                    result=json.dumps(made.result, ensure_ascii=False)))
                # The record joins this transaction: in the record table when it is in this file,
                # else in the outbox, which the mover empties into the record store.
                if self._same_database:
                    self.records_store.add(made.record, connection)
                else:
                    connection.execute(insert(outbox).values(
                        decision_id=made.record.decision_id,
                        record=json.dumps(record_to_json(made.record), ensure_ascii=False)))
                if made.log_entry is not None:  # and the log entry with it (SPEC §10)
                    connection.execute(insert(log_outbox).values(decision_id=made.record.decision_id,
                                                                 entry=dumps_text(made.log_entry)))
        except IntegrityError as error:
            raise StoreUnavailable(f"conflicting write, retry: {error.__class__.__name__}") from None
        except SQLAlchemyError as error:
            raise sql_unavailable("counter store", error) from None
        if self.mover is not None:
            self.mover.notify()
        return made.result

    def check(self) -> None:
        check_writable(self.engine, counters, "counter store")

    def check_records(self) -> None:
        if not self._same_database:  # else check() looked at that very file
            self.records_store.check()

    def records(self, query: RecordQuery) -> list[DecisionRecord]:
        if self.mover is None or self._same_database:
            return self.records_store.query(query)
        pending = self.mover.outbox.pending()  # read first: a record moved meanwhile is then in the store
        return merge_records(self.records_store.query(query), pending, query)

    def start_moving(self) -> None:
        """Move the outbox in the background from now on, in this process (the service does this)."""
        if self.mover is not None:
            self.mover.notify()

    def drain(self) -> int:
        """Move the outbox to the record store and the decision log now; the number of records moved."""
        if self.mover is None:
            return 0
        moved = self.mover.move()  # the records first: a log that is down holds none back
        self.mover.move_log()
        return moved

    def clear(self) -> None:
        """Forget every counter, idempotency key and record (QA runs reuse one in-memory store)."""
        with self.engine.begin() as connection:
            for table in (counters, idempotency, *([decision_records] if self._same_database else [])):
                connection.execute(delete(table))

    def close(self) -> None:
        if self.mover is not None:
            self.mover.stop()
        self.engine.dispose()
        self._read_engine.dispose()
        if not self._same_database:
            self.records_store.engine.dispose()


class _SqliteOutbox:
    """The outbox table of an SQLite counter store."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def pending(self) -> list[DecisionRecord]:
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(select(outbox.c.record)).scalars().all()
        except SQLAlchemyError as error:
            raise sql_unavailable("counter store", error) from None
        return [record_from_json(json.loads(row)) for row in rows]

    def remove(self, records: list[DecisionRecord]) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(delete(outbox).where(outbox.c.decision_id.in_([r.decision_id for r in records])))
        except SQLAlchemyError as error:
            raise sql_unavailable("counter store", error) from None

    def pending_entries(self) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(select(log_outbox.c.entry)).scalars().all()
        except SQLAlchemyError as error:
            raise sql_unavailable("counter store", error) from None
        return [loads(row) for row in rows]

    def remove_entries(self, decision_ids: list[str]) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(delete(log_outbox).where(log_outbox.c.decision_id.in_(decision_ids)))
        except SQLAlchemyError as error:
            raise sql_unavailable("counter store", error) from None

