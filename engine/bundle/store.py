"""Where drafts and published rule-file versions are kept (SPEC §12.1): SQLite or PostgreSQL, through
SQLAlchemy Core, shared by every process and instance that opens the same URL.

Three tables:

- ``rule_drafts``: one rule file's candidate text, who made it, the live version it was made from
  (``base_version``) and its review (problems, diff, impact, scenarios, proofs), kept as JSON.
- ``rule_approvals``: a second admin's approval of a draft (``RULESVC_PUBLISH_APPROVALS=2``).
- ``rule_publications``: every version of a rule file put live, in order (``seq``), with who, when and
  why. ``parent_seq`` is the row it follows; ``(file, parent_seq)`` is unique, so two publications
  judged against the same row cannot both land — the second is told its draft is stale — and two
  instances seeding an empty store at once seed each file once. ``state`` is ``live``, or — publishing
  into a rules directory, where the row is written before the file — ``pending`` until the file is
  written and ``abandoned`` when it never was (the write failed, or the process died and the file was
  changed by hand before anyone finished it).

Rows are only ever added (a draft's status aside): the history is the audit trail.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError

from engine.errors import RulesvcError
from engine.ids import new_id
from engine.state.sql import make_engine

metadata = MetaData()

rule_drafts = Table(
    "rule_drafts", metadata,
    Column("draft_id", String(26), primary_key=True),
    Column("file", String(255), nullable=False),
    Column("domain", String(128)),  # None when the text does not say (it does not load)
    Column("base_version", String(80)),  # the live version it was made from; None for a new file
    Column("text", Text, nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("status", String(16), nullable=False),  # open | published
    Column("review", Text, nullable=False),  # JSON
    Column("published_seq", Integer),
    Index("rule_drafts_created", "created_at"),
)

rule_approvals = Table(
    "rule_approvals", metadata,
    Column("draft_id", String(26), nullable=False),
    Column("admin", String(128), nullable=False),
    Column("approved_at", String(40), nullable=False),
    PrimaryKeyConstraint("draft_id", "admin"),
)

rule_publications = Table(
    "rule_publications", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("file", String(255), nullable=False),
    Column("domain", String(128), nullable=False),
    Column("version", String(80), nullable=False),
    Column("text", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # seed | publish | rollback | file (seen in the rules directory)
    Column("published_by", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("published_at", String(40), nullable=False),
    Column("draft_id", String(26)),
    Column("parent_seq", Integer, nullable=False),  # the row it follows; 0 for a file's first
    Column("base_seq", Integer, nullable=False),  # the publication that was live when it was judged; 0 for none
    Column("state", String(16), nullable=False),  # live | pending | abandoned
    UniqueConstraint("file", "parent_seq", name="rule_publications_one_child"),
    Index("rule_publications_domain_version", "domain", "version"),
)

PUBLICATION_KINDS = ("seed", "publish", "rollback", "file")
LIVE, PENDING, ABANDONED = "live", "pending", "abandoned"


class RulesStoreUnavailable(RulesvcError):
    """The rules store cannot be reached or written."""


class StalePublication(RulesvcError):
    """Another publication of the same file landed first: the draft no longer starts from the live version."""


@dataclass
class Draft:
    draft_id: str
    file: str
    domain: str | None
    base_version: str | None
    text: str
    author: str
    created_at: str
    status: str
    review: dict[str, Any]
    published_seq: int | None = None
    approvals: list[dict[str, str]] = field(default_factory=list)

    def as_json(self, *, with_text: bool = True) -> dict[str, Any]:
        body = {"draft_id": self.draft_id, "file": self.file, "domain": self.domain,
                "base_version": self.base_version, "author": self.author, "created_at": self.created_at,
                "status": self.status, "approvals": self.approvals, "published_seq": self.published_seq,
                **self.review}
        if with_text:
            body["text"] = self.text
        return body


@dataclass(frozen=True)
class Publication:
    seq: int
    file: str
    domain: str
    version: str
    text: str
    kind: str
    published_by: str
    reason: str
    published_at: str
    draft_id: str | None
    parent_seq: int
    base_seq: int
    state: str

    def as_json(self, *, with_text: bool = False) -> dict[str, Any]:
        body = {"seq": self.seq, "file": self.file, "domain": self.domain, "version": self.version,
                "kind": self.kind, "published_by": self.published_by, "reason": self.reason,
                "published_at": self.published_at, "draft_id": self.draft_id, "state": self.state}
        if with_text:
            body["text"] = self.text
        return body


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RulesStore:
    """Drafts and publications at ``url``. Connections are made per process on first use (gunicorn forks)."""

    def __init__(self, url: str):
        self.url = url
        self._engines: tuple[Engine, Engine] | None = None  # (writer, reader) of the process that made them
        self._pid: int | None = None
        self._lock = threading.Lock()
        held = weakref.ref(self)  # the hook must not keep every store ever made alive
        os.register_at_fork(after_in_child=lambda: (store := held()) is not None and store._forked())

    def _forked(self) -> None:
        """In a forked worker: a lock another thread held at the fork would never be released here, and the
        parent's connections are not this process's to use or close (SQLAlchemy: dispose without closing)."""
        self._lock = threading.Lock()
        if self._engines is not None:
            for engine in set(self._engines):
                engine.dispose(close=False)
            self._engines = None

    def _opened(self) -> tuple[Engine, Engine]:
        if self._engines is None or self._pid != os.getpid():
            with self._lock:
                if self._engines is None or self._pid != os.getpid():
                    try:
                        writer = make_engine(self.url)
                        _create_tables(writer)
                        # plain readers never take SQLite's write lock (BEGIN IMMEDIATE is the writer's)
                        memory = self.url in ("sqlite://", "sqlite:///:memory:")
                        reader = writer if memory else make_engine(self.url, write_lock=False)
                    except SQLAlchemyError as error:
                        raise RulesStoreUnavailable(f"the rules store at {_shown(self.url)} cannot be opened: "
                                                    f"{type(error).__name__}") from None
                    self._engines, self._pid = (writer, reader), os.getpid()
        return self._engines

    # --- drafts ------------------------------------------------------------------------------------

    def add_draft(self, *, file: str, domain: str | None, base_version: str | None, text: str, author: str,
                  review: dict[str, Any]) -> Draft:
        draft = Draft(new_id(), file, domain, base_version, text, author, now_text(), "open", review)
        with self._writing() as connection:
            connection.execute(insert(rule_drafts).values(
                draft_id=draft.draft_id, file=file, domain=domain, base_version=base_version, text=text,
                author=author, created_at=draft.created_at, status="open", review=json.dumps(review, ensure_ascii=False)))
        return draft

    def draft(self, draft_id: str) -> Draft | None:
        with self._reading() as connection:
            row = connection.execute(select(rule_drafts).where(rule_drafts.c.draft_id == draft_id)).first()
            if row is None:
                return None
            approvals = connection.execute(select(rule_approvals.c.admin, rule_approvals.c.approved_at)
                                           .where(rule_approvals.c.draft_id == draft_id)
                                           .order_by(rule_approvals.c.approved_at)).all()
        return _draft(row, [{"admin": admin, "approved_at": at} for admin, at in approvals])

    def drafts(self, limit: int = 100) -> list[Draft]:
        """The newest drafts first (without their approvals' details: see :meth:`draft`)."""
        with self._reading() as connection:
            rows = connection.execute(select(rule_drafts).order_by(rule_drafts.c.created_at.desc(),
                                                                   rule_drafts.c.draft_id.desc()).limit(limit)).all()
        return [_draft(row, []) for row in rows]

    def approve(self, draft_id: str, admin: str) -> None:
        """Record ``admin``'s approval (once: approving twice changes nothing)."""
        with self._writing() as connection:
            known = connection.execute(select(rule_approvals.c.admin).where(
                rule_approvals.c.draft_id == draft_id, rule_approvals.c.admin == admin)).first()
            if known is None:
                connection.execute(insert(rule_approvals).values(draft_id=draft_id, admin=admin, approved_at=now_text()))

    # --- publications ------------------------------------------------------------------------------

    def newest(self, file: str) -> Publication | None:
        """The live (or, in a rules directory, still being written) publication of ``file``: its newest
        that was not abandoned."""
        with self._reading() as connection:
            return _newest(connection, file)

    def newest_texts(self) -> dict[str, str]:
        """``{file: text}`` of every file's newest publication that was not abandoned."""
        kept = rule_publications.c.state != ABANDONED
        newest = (select(rule_publications.c.file, func.max(rule_publications.c.seq).label("seq")).where(kept)
                  .group_by(rule_publications.c.file).subquery())
        with self._reading() as connection:
            rows = connection.execute(select(rule_publications.c.file, rule_publications.c.text)
                                      .join(newest, rule_publications.c.seq == newest.c.seq)).all()
        return dict(rows)

    def change_marker(self) -> tuple[int, int]:
        """``(rows, newest seq)``: what an instance polls. The count too, since on PostgreSQL a smaller
        ``seq`` may commit after a larger one."""
        with self._reading() as connection:
            rows, newest = connection.execute(select(func.count(), func.coalesce(func.max(rule_publications.c.seq), 0))
                                              ).one()
        return int(rows), int(newest)

    def has_pending(self) -> bool:
        """Whether a publication waits for its file to be written (a process died in between)."""
        with self._reading() as connection:
            return connection.execute(select(rule_publications.c.seq).where(rule_publications.c.state == PENDING)
                                      .limit(1)).first() is not None

    def publications(self, domain: str | None = None, limit: int = 500) -> list[Publication]:
        """Newest first, abandoned ones included (the history shows them as such)."""
        query = select(rule_publications).order_by(rule_publications.c.seq.desc()).limit(limit)
        if domain is not None:
            query = query.where(rule_publications.c.domain == domain)
        with self._reading() as connection:
            return [Publication(**row._mapping) for row in connection.execute(query)]

    def publication(self, seq: int) -> Publication | None:
        with self._reading() as connection:
            row = connection.execute(select(rule_publications).where(rule_publications.c.seq == seq)).first()
        return None if row is None else Publication(**row._mapping)

    def version_text(self, domain: str, version: str) -> Publication | None:
        """The newest publication of ``domain`` at ``version`` (with its text) that was not abandoned."""
        with self._reading() as connection:
            row = connection.execute(select(rule_publications).where(
                rule_publications.c.domain == domain, rule_publications.c.version == version,
                rule_publications.c.state != ABANDONED).order_by(rule_publications.c.seq.desc()).limit(1)).first()
        return None if row is None else Publication(**row._mapping)

    def publish(self, *, file: str, domain: str, version: str, text: str, kind: str, published_by: str,
                reason: str, based_on: int, draft_id: str | None = None, state: str = LIVE) -> Publication:
        """Add a publication of ``file`` judged against publication ``based_on`` (its newest that was not
        abandoned then; 0 for none); raises :class:`StalePublication` when another one landed since. A
        draft published here is marked so in the same transaction."""
        published_at = now_text()
        try:
            with self._writing() as connection:
                newest = _newest(connection, file)
                if (newest.seq if newest else 0) != based_on:
                    raise StalePublication(f"{file} was published meanwhile (publication {newest.seq if newest else 0})")
                parent = connection.execute(select(func.coalesce(func.max(rule_publications.c.seq), 0))
                                            .where(rule_publications.c.file == file)).scalar_one()
                seq = connection.execute(insert(rule_publications).values(
                    file=file, domain=domain, version=version, text=text, kind=kind, published_by=published_by,
                    reason=reason, published_at=published_at, draft_id=draft_id, parent_seq=parent,
                    base_seq=based_on, state=state).returning(rule_publications.c.seq)).scalar_one()
                if draft_id is not None:
                    connection.execute(update(rule_drafts).where(rule_drafts.c.draft_id == draft_id)
                                       .values(status="published", published_seq=seq))
        except IntegrityError:  # a concurrent publication took (file, parent_seq) first
            raise StalePublication(f"{file} was published meanwhile") from None
        return Publication(seq, file, domain, version, text, kind, published_by, reason, published_at, draft_id,
                           parent, based_on, state)

    def settle(self, seq: int, state: str) -> None:
        """A pending publication's outcome: ``live`` (its file was written) or ``abandoned`` (it never
        was; a draft it published is open again)."""
        with self._writing() as connection:
            row = connection.execute(select(rule_publications.c.draft_id, rule_publications.c.state)
                                     .where(rule_publications.c.seq == seq)).first()
            if row is None or row.state != PENDING:
                return
            connection.execute(update(rule_publications).where(rule_publications.c.seq == seq).values(state=state))
            if state == ABANDONED and row.draft_id is not None:
                connection.execute(update(rule_drafts).where(rule_drafts.c.draft_id == row.draft_id)
                                   .values(status="open", published_seq=None))

    def record(self, *, file: str, domain: str, version: str, text: str, kind: str, published_by: str,
               reason: str) -> Publication | None:
        """Add ``version`` of ``file`` after its newest publication unless that already is this version
        (seeding, or a change seen in the rules directory); two processes recording at once record it once."""
        newest = self.newest(file)
        if newest is not None and newest.version == version:
            return None
        try:
            return self.publish(file=file, domain=domain, version=version, text=text, kind=kind,
                                published_by=published_by, reason=reason, based_on=newest.seq if newest else 0)
        except StalePublication:
            return None

    # --- connections -------------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A transaction; a database failure is :class:`RulesStoreUnavailable` (a lost race stays an IntegrityError)."""
        with self._connection(write=True) as connection:
            yield connection

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._connection(write=False) as connection:
            yield connection

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Connection]:
        writer, reader = self._opened()
        try:
            with writer.begin() if write else reader.connect() as connection:
                yield connection
        except IntegrityError:
            raise
        except SQLAlchemyError as error:
            raise RulesStoreUnavailable(f"the rules store at {_shown(self.url)} is unavailable: "
                                        f"{type(error).__name__}") from None


def _create_tables(engine: Engine, attempts: int = 5) -> None:
    """Make the tables if missing. Instances starting at once on an empty PostgreSQL race to create them
    (the loser's CREATE fails on the catalog's unique index): look again, since the winner made them."""
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                metadata.create_all(connection)
            return
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _newest(connection: Connection, file: str) -> Publication | None:
    row = connection.execute(select(rule_publications).where(rule_publications.c.file == file,
                                                             rule_publications.c.state != ABANDONED)
                             .order_by(rule_publications.c.seq.desc()).limit(1)).first()
    return None if row is None else Publication(**row._mapping)


def _draft(row: Any, approvals: list[dict[str, str]]) -> Draft:
    values = dict(row._mapping)
    values["review"] = json.loads(values["review"])
    return Draft(**values, approvals=approvals)


def _shown(url: str) -> str:
    """A URL without its password."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.partition(':')[0]}@{tail}"
