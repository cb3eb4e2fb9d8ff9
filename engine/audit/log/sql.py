"""The decision log's tables, in SQLite or PostgreSQL through SQLAlchemy Core.

One row per entry: the columns a query filters on, and the whole entry as JSON. Rows are appended in
batches (one transaction each); SQLite runs in WAL mode with a busy timeout, so several gunicorn
workers append to one file while readers go on. ``ruleset_versions`` keeps every version that was
ever active with the text of its files, so an old decision can be explained on the rules it was made with.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from engine.audit.log.entry import row_of
from engine.errors import RulesvcError
from engine.jsontext import dumps_text, loads
from engine.runtime.values import epoch_us, from_epoch_us, to_output
from engine.state.sql import make_engine

metadata = MetaData()

decision_log = Table(
    "decision_log", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("decision_id", String(32), nullable=False, unique=True),
    Column("decision", String(128), nullable=False),
    Column("evaluated_us", BigInteger, nullable=False),  # wall clock, epoch microseconds
    Column("source", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("codes", Text, nullable=False),  # " CODE CODE " of reasons and warnings, for ?code=
    Column("ruleset_version", String(80), nullable=False),
    Column("committed", Boolean, nullable=False),
    Column("shadow_of", String(32), nullable=True),  # a shadow run: the decision it shadowed
    Column("entry", Text, nullable=False),
    Index("ix_log_time", "evaluated_us"),
    Index("ix_log_decision_time", "decision", "evaluated_us"),
    Index("ix_log_shadow", "shadow_of"),
)

ruleset_versions = Table(
    "ruleset_versions", metadata,
    Column("version", String(80), primary_key=True),
    Column("domain", String(128), nullable=False),
    Column("file", Text, nullable=False),
    Column("files", Text, nullable=False),  # JSON {relative name: text}
    Column("first_active_us", BigInteger, nullable=False),
)


# A row of the log: the columns queries filter on, then the entry as JSON text (entry.row_of makes one).
ROW_COLUMNS = ("decision_id", "decision", "evaluated_us", "source", "outcome", "codes", "ruleset_version",
               "committed", "shadow_of", "entry")
# SQLite binds at most 32,766 values a statement (since 3.32): 10 columns a row.
ROWS_PER_STATEMENT = 3_000


@lru_cache(maxsize=64)
def _sqlite_append(rows: int) -> str:
    """INSERT OR IGNORE of ``rows`` rows: an id already logged is skipped (total_changes counts the new ones)."""
    one = "(" + ", ".join("?" * len(ROW_COLUMNS)) + ")"
    return f"INSERT OR IGNORE INTO decision_log ({', '.join(ROW_COLUMNS)}) VALUES " + ", ".join([one] * rows)


class LogUnavailable(RulesvcError):
    """The decision log cannot be reached or read."""


@dataclass
class LogQuery:
    """Which entries: by decision, wall-clock time [start, end), outcome, reason/warning code, id."""

    decision: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    outcome: str | None = None
    code: str | None = None
    decision_id: str | None = None
    limit: int | None = 100
    shadow: bool = False  # False: the service's decisions; True: shadow runs only
    before_seq: int | None = None  # a page: only entries logged before this one (by their sequence number)


def sqlite_path(url: str) -> Path | None:
    """The file of an ``sqlite:///PATH`` URL (None for other databases and in-memory SQLite)."""
    if url.startswith("sqlite:///") and url not in ("sqlite:///", "sqlite:///:memory:"):
        return Path(url[len("sqlite:///"):])
    return None


class LogDatabase:
    """The decision log at ``url``. Connections are made per process (gunicorn forks after loading)."""

    def __init__(self, url: str, *, create: bool = True):
        self.url = url
        path = sqlite_path(url)
        if not create and path is not None and not path.exists():
            raise LogUnavailable(f"no decision log at {path} (it is written by `rulesvc serve`, "
                                 "or by `rulesvc decide --log`)")
        self._create = create
        self._pid: int | None = None
        self._writer: Engine | None = None
        self._reader: Engine | None = None

    def _engines(self) -> tuple[Engine, Engine]:
        if self._pid != os.getpid() or self._writer is None or self._reader is None:
            if self._writer is not None and self._reader is not None:
                # a forked child: forget the parent's pooled connections without closing them under it
                for engine in {self._writer, self._reader}:
                    engine.dispose(close=False)
            with _unavailable("decision log unavailable"):
                writer = make_engine(self.url)
                reader = make_engine(self.url, write_lock=False) if self.url.startswith("sqlite") else writer
                if self._create:
                    metadata.create_all(writer)
            self._writer, self._reader, self._pid = writer, reader, os.getpid()
        return self._writer, self._reader

    # --- writing -------------------------------------------------------------------------------------

    def write(self, entries: list[dict[str, Any]]) -> int:
        """Append entries in one transaction (an id already logged is skipped, never doubled); returns
        how many were new (two processes moving one outbox must not both count an entry)."""
        return self.write_rows([row_of(entry, dumps_text(entry)) for entry in entries])

    def write_rows(self, rows: list[tuple[Any, ...]]) -> int:
        """:meth:`write` for rows already made (:data:`ROW_COLUMNS`, the decision-log writer's)."""
        if not rows:
            return 0
        writer, _ = self._engines()
        with _unavailable("decision log unavailable"), writer.begin() as connection:
            if writer.dialect.name == "sqlite":
                # One statement per ROWS_PER_STATEMENT rows (multi-row VALUES), so sqlite3 releases the GIL
                # once per statement, not once per row as executemany does: a writer thread that must take
                # it back 2,000 times a batch waits behind the request threads each time (issue 21).
                driver = connection.connection.driver_connection
                before = driver.total_changes
                for start in range(0, len(rows), ROWS_PER_STATEMENT):
                    part = rows[start:start + ROWS_PER_STATEMENT]
                    driver.execute(_sqlite_append(len(part)), [value for row in part for value in row])
                return driver.total_changes - before
            named = [dict(zip(ROW_COLUMNS, row, strict=True)) for row in rows]
            known = set(connection.execute(select(decision_log.c.decision_id).where(
                decision_log.c.decision_id.in_([row["decision_id"] for row in named]))).scalars())
            new_rows = [row for row in named if row["decision_id"] not in known]
            if new_rows:
                connection.execute(_insert_ignoring_duplicates(writer, decision_log), new_rows)
            return len(new_rows)

    def keep_version(self, version: str, domain: str, file: str, files: dict[str, str], at: datetime) -> None:
        """Keep a ruleset version with its files' text, unless it is kept already."""
        writer, reader = self._engines()
        with _unavailable("decision log unavailable"):
            with reader.connect() as connection:
                known = connection.execute(select(ruleset_versions.c.version).where(
                    ruleset_versions.c.version == version)).first()
            if known:
                return
            with writer.begin() as connection:
                connection.execute(_insert_ignoring_duplicates(writer, ruleset_versions), [{
                    "version": version, "domain": domain, "file": file,
                    "files": dumps_text(files), "first_active_us": epoch_us(at)}])

    def prune(self, before: datetime) -> int:
        """Delete the entries logged before ``before``; returns how many."""
        writer, _ = self._engines()
        with _unavailable("decision log unavailable"), writer.begin() as connection:
            return connection.execute(delete(decision_log).where(
                decision_log.c.evaluated_us < epoch_us(before))).rowcount or 0

    # --- reading -------------------------------------------------------------------------------------

    def query(self, query: LogQuery) -> list[dict[str, Any]]:
        """Entries, newest first."""
        statement = select(decision_log.c.entry).where(*_conditions(query)).order_by(decision_log.c.seq.desc())
        if query.limit is not None:
            statement = statement.limit(query.limit)
        return [loads(row.entry) for row in self._read(statement)]

    def page(self, query: LogQuery) -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``query.limit`` entries, newest first, and the sequence number to pass as ``before_seq``
        for the next page (None: this is the last one)."""
        limit = query.limit or 100
        rows = self._read(select(decision_log.c.seq, decision_log.c.entry).where(*_conditions(query))
                          .order_by(decision_log.c.seq.desc()).limit(limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return [loads(row.entry) for row in rows], (int(rows[-1].seq) if more else None)

    def entry(self, decision_id: str) -> dict[str, Any] | None:
        """One logged decision (not a shadow run) by its id."""
        rows = self._read(select(decision_log.c.entry).where(decision_log.c.decision_id == decision_id))
        return loads(rows[0].entry) if rows else None

    def span(self, query: LogQuery) -> tuple[int, int, int]:
        """How many entries ``query`` selects (the most recent ``limit`` ones, if it has a limit) and the
        first and last ``seq`` of their range; replays read them oldest first."""
        conditions = _conditions(query)
        row = self._read(select(func.count(), func.min(decision_log.c.seq), func.max(decision_log.c.seq))
                         .where(*conditions))[0]
        count, first, last = int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)
        if query.limit is not None and count > query.limit:
            cut = self._read(select(decision_log.c.seq).where(*conditions, decision_log.c.seq <= last)
                             .order_by(decision_log.c.seq.desc()).offset(query.limit - 1).limit(1))
            count, first = query.limit, int(cut[0].seq)
        return count, first, last

    def entries_between(self, query: LogQuery, first: int, last: int, page: int = 5000) -> Iterator[dict[str, Any]]:
        """The entries ``query`` selects with ``first <= seq <= last``, oldest first, read a page at a time."""
        conditions = _conditions(query)
        after = first - 1
        while after < last:
            rows = self._read(select(decision_log.c.seq, decision_log.c.entry)
                              .where(*conditions, decision_log.c.seq > after, decision_log.c.seq <= last)
                              .order_by(decision_log.c.seq).limit(page))
            if not rows:
                return
            for row in rows:
                yield loads(row.entry)
            after = rows[-1].seq

    def entries_after(self, query: LogQuery, after_seq: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` entries ``query`` selects logged after ``after_seq``, oldest first, with their
        sequence numbers (a reader that folds the log as it grows goes on from the last one)."""
        rows = self._read(select(decision_log.c.seq, decision_log.c.entry)
                          .where(*_conditions(query), decision_log.c.seq > after_seq)
                          .order_by(decision_log.c.seq).limit(limit))
        return [(int(row.seq), loads(row.entry)) for row in rows]

    def versions(self) -> list[dict[str, Any]]:
        """Every kept ruleset version (without its files), oldest first."""
        rows = self._read(select(ruleset_versions.c.version, ruleset_versions.c.domain, ruleset_versions.c.file,
                                 ruleset_versions.c.first_active_us).order_by(ruleset_versions.c.first_active_us))
        return [{"version": row.version, "domain": row.domain, "file": row.file,
                 "first_active_at": _instant(row.first_active_us)} for row in rows]

    def version(self, version: str) -> dict[str, Any] | None:
        """One kept ruleset version with its files' text."""
        rows = self._read(select(ruleset_versions).where(ruleset_versions.c.version == version))
        if not rows:
            return None
        row = rows[0]
        return {"version": row.version, "domain": row.domain, "file": row.file,
                "first_active_at": _instant(row.first_active_us), "files": loads(row.files)}

    def _read(self, statement: Any) -> list[Any]:
        _, reader = self._engines()
        with _unavailable("decision log unavailable"), reader.connect() as connection:
            return list(connection.execute(statement))

    def close(self) -> None:
        for engine in {self._writer, self._reader} - {None}:
            engine.dispose()
        self._writer = self._reader = None


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Database errors as :class:`LogUnavailable` (its message names the error, never the query)."""
    try:
        yield
    except (SQLAlchemyError, sqlite3.Error) as error:
        raise LogUnavailable(f"{what}: {error.__class__.__name__}") from None
    except OSError as error:  # an SQLite file's folder that cannot be made
        raise LogUnavailable(f"{what}: {error.strerror or error}") from None


def _conditions(query: LogQuery) -> list[Any]:
    columns = decision_log.c
    conditions = [columns.shadow_of.is_not(None) if query.shadow else columns.shadow_of.is_(None)]
    if query.decision:
        conditions.append(columns.decision == query.decision)
    if query.outcome:
        conditions.append(columns.outcome == query.outcome)
    if query.decision_id:
        conditions.append(columns.decision_id == query.decision_id)
    if query.code:  # codes are upper case; SQLite's LIKE ignores case and PostgreSQL's does not: say the same
        escaped = query.code.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(columns.codes.like(f"% {escaped} %", escape="\\"))
    if query.start:
        conditions.append(columns.evaluated_us >= epoch_us(query.start))
    if query.end:
        conditions.append(columns.evaluated_us < epoch_us(query.end))
    if query.before_seq is not None:
        conditions.append(columns.seq < query.before_seq)
    return [and_(*conditions)]


def _insert_ignoring_duplicates(engine: Engine, table: Table) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _instant(epoch_microseconds: int) -> str:
    return to_output(from_epoch_us(epoch_microseconds))
