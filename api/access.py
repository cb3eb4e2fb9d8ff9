"""What every worker of one service must agree on about who may sign in: revoked console sessions and
recent failed token checks per client address (SPEC §7.1: "console sign-in is throttled per client;
logout revokes the session").

gunicorn forks its workers from a master that created the app, so nothing in memory is shared: both
live in a small database (SQLAlchemy Core), by default ``access.db`` beside the service's first SQLite
file (store, records or decision log), else ``var/access.db`` — or at ``RULESVC_ACCESS_DB`` (any
SQLAlchemy URL: several hosts sharing ``RULESVC_SECRET_KEY`` point it at one database so a logout
reaches them all). Connections are made in each process on first use, never across the fork.

It stays off the hot path: only a console request whose session holds a sign-in, a sign-in, a logout
and a request that sends a bearer token read or write it; decisions without a token never do.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

from flask import current_app
from sqlalchemy import Column, Engine, Float, Index, Integer, MetaData, String, Table, delete, func, insert, select

from engine.audit.log import sqlite_path
from engine.state.sql import make_engine

URL_VARIABLE = "RULESVC_ACCESS_DB"
FILE_NAME = "access.db"
EXTENSION = "rulesvc-access"
MAX_FAILURES = 10  # failed token checks one client address may make…
WINDOW_SECONDS = 60  # …within this many seconds; the next check is a 429 until the oldest one ages out

metadata = MetaData()
revoked_sessions = Table(
    "revoked_sessions", metadata,
    Column("session_id", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),  # after it the cookie is refused anyway: the row may go
)
failed_checks = Table(
    "failed_checks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client", String(255), nullable=False),
    Column("at", Float, nullable=False),
    Index("failed_checks_client_at", "client", "at"),
    Index("failed_checks_at", "at"),
)


class Throttled(Exception):
    """This client failed too many token checks lately; ``retry_after`` in whole seconds."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"too many failed sign-ins or wrong tokens from this address; retry in {retry_after} s")


def default_url(store_url: str, *other_urls: str, file_name: str = FILE_NAME, variable: str | None = URL_VARIABLE) -> str:
    """Where a service keeps its access database (or another of its small databases, ``file_name``) unless
    ``variable`` (``RULESVC_ACCESS_DB``) says: beside its first SQLite file; in memory for an in-memory
    store with no file (one process: nothing to share); else ``var/``."""
    if variable and os.environ.get(variable):
        return os.environ[variable]
    for url in (store_url, *other_urls):
        path = sqlite_path(url or "")
        if path is not None:
            return f"sqlite:///{path.parent / file_name}"
    if store_url in ("sqlite://", "sqlite:///:memory:"):
        return "sqlite://"
    return f"sqlite:///var/{file_name}"


class AccessDatabase:
    """Revoked session ids and failed token checks, shared by every process that opens the same URL."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time):
        self.url = url
        self.clock = clock  # wall time: the processes compare each other's timestamps
        self._memory = sqlite_path(url) is None and url.startswith("sqlite")
        self._engines: tuple[Engine, Engine] | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _opened(self) -> tuple[Engine, Engine]:
        """(writer, reader) for this process, tables made on first use (``BEGIN IMMEDIATE`` serialises the
        workers that race to make them)."""
        if self._engines is None or self._pid != os.getpid():
            with self._lock:
                if self._engines is None or self._pid != os.getpid():
                    writer = make_engine(self.url)
                    reader = writer if self._memory else make_engine(self.url, write_lock=False)
                    with writer.begin() as connection:
                        metadata.create_all(connection)
                    self._engines, self._pid = (writer, reader), os.getpid()
        return self._engines

    # --- sessions ------------------------------------------------------------------------------

    def revoke(self, session_id: str, lifetime_seconds: float) -> None:
        """Refuse ``session_id`` from now on (for as long as its cookie could still be accepted)."""
        now = self.clock()
        writer, _ = self._opened()
        with writer.begin() as connection:
            connection.execute(delete(revoked_sessions).where(revoked_sessions.c.expires_at < now))
            connection.execute(delete(revoked_sessions).where(revoked_sessions.c.session_id == session_id))
            connection.execute(insert(revoked_sessions).values(session_id=session_id, expires_at=now + lifetime_seconds))

    def is_revoked(self, session_id: str) -> bool:
        _, reader = self._opened()
        with reader.connect() as connection:
            found = connection.execute(select(revoked_sessions.c.session_id)
                                       .where(revoked_sessions.c.session_id == session_id)).first()
        return found is not None

    # --- failed token checks -------------------------------------------------------------------

    def check(self, client: str) -> None:
        """Raise :class:`Throttled` if ``client`` made :data:`MAX_FAILURES` failed checks in the window."""
        now = self.clock()
        _, reader = self._opened()
        with reader.connect() as connection:
            count, oldest = connection.execute(
                select(func.count(), func.min(failed_checks.c.at))
                .where(failed_checks.c.client == client, failed_checks.c.at > now - WINDOW_SECONDS)).one()
        if count >= MAX_FAILURES:
            raise Throttled(max(1, math.ceil(oldest + WINDOW_SECONDS - now)))

    def failed(self, client: str) -> None:
        """Count one failed check against ``client`` (and forget those older than the window)."""
        now = self.clock()
        writer, _ = self._opened()
        with writer.begin() as connection:
            connection.execute(delete(failed_checks).where(failed_checks.c.at <= now - WINDOW_SECONDS))
            connection.execute(insert(failed_checks).values(client=client, at=now))


def current() -> AccessDatabase:
    """The access database of the app handling this request."""
    return current_app.extensions[EXTENSION]
