"""What the service holds: the active rulebook, the store, the decision log and shadow rules, per worker process.

The rulebook is replaced as a whole (one attribute assignment) after a complete, successful load,
so a request sees either the old rules or the new ones, never a mixture; a failed load leaves the
running rules active. Each worker watches the rule files and reloads on its own; since every
worker loads the same files, they converge on the same version.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from engine import Problem, Rulebook, RuleFileError, load_rulebook
from engine.analysis.verify import verify_rulebook
from engine.audit.log import NO_LOG, DecisionLog, LogQuery, LogUnavailable, Masker, key_file, log_key
from engine.audit.replay import ShadowRunner, VersionLibrary
from engine.bundle.publisher import Publisher
from engine.bundle.review import candidate_rulebook, impact_report, review_draft
from engine.bundle.store import Publication, RulesStoreUnavailable
from engine.language.model import Counter
from engine.rulebook import rulebook_from_files, rules_signature
from engine.runtime.evaluation import CompiledDecision, Evaluation
from engine.state import CountingReader, DecisionRecord, Store, StoreUnavailable
from engine.state.records import RECORD_COLUMNS

from . import metrics
from .openapi import build_spec

log = logging.getLogger(__name__)
WATCH_INTERVAL_SECONDS = 1.0
READINESS_TTL_SECONDS = 1.0  # how long a look at the store answers /readyz (load balancers ask often)


class ServiceState:
    def __init__(self, rules_dir: str | Path, rulebook: Rulebook | None, open_store: Callable[[], Store],
                 decision_log: DecisionLog | None = None, shadow: ShadowRunner | None = None,
                 require_partitions: bool = False, publisher: Publisher | None = None,
                 scenarios_dir: str | Path | None = None):
        self.rules_dir = Path(rules_dir)
        self.require_partitions = require_partitions  # a Redis Cluster store: every decision declares one
        self.publisher = publisher
        self.scenarios_dir = Path(scenarios_dir) if scenarios_dir else self.rules_dir.resolve().parent / "tests" / "scenarios"
        self._signature = self._rules_signature()
        self.rulebook = rulebook or load_rulebook([self.rules_dir], require_partitions=require_partitions)
        if publisher is not None:
            publisher.seed(self.rulebook)  # an empty store starts from the directory's files
            if publisher.authoritative:
                self.rulebook = self._load()
        self.decision_log = decision_log
        self.shadow = shadow
        self.versions = VersionLibrary(decision_log.database if decision_log else None)
        if decision_log is not None:
            decision_log.keep_versions(self.rulebook)
        self.last_reload: dict[str, object] = {"ok": True, "at": datetime.now(UTC).isoformat(), "problems": []}
        self._open_store = open_store
        self._store: Store | None = None
        self._store_pid: int | None = None
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._watching_in_master = False
        self._openapi: dict[str, object] = {}
        self._openapi_for: Rulebook | None = None
        self._readiness: tuple[float, dict[str, str]] | None = None  # (when, what) of the last look
        # The server clock: the time of every commit (SPEC §6). A function, so a test can hold it still.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # --- rules ---------------------------------------------------------------------------------

    def reload(self, report: bool = True) -> list[Problem]:
        """Load every rule file again; swap it in if all of it is valid. Returns the problems.

        ``report=False`` keeps a reload out of the metrics and the warning log (the gunicorn master's
        copy: its workers report their own reloads).
        """
        with self._reload_lock:
            # Taken before reading, kept only once the files were judged: an edit made meanwhile is
            # seen at the next look, and a load that crashed (a bug) is tried again rather than forgotten.
            try:
                signature = self._rules_signature()
                rulebook = self._load()
            except RulesStoreUnavailable as error:  # the store will answer again: tried at the next look
                return self._refused([Problem(str(self.rules_dir), 1, 1, str(error))], report)
            except RuleFileError as error:
                self._signature = signature
                return self._refused(error.problems, report)
            except Exception as error:  # a bug or the disk, not the files: refused too, and tried again next look
                log.debug("rules not reloaded", exc_info=True)
                problem = Problem(str(self.rules_dir), 1, 1, f"the rules could not be loaded: {type(error).__name__}: {error}")
                return self._refused([problem], report)
            self._signature, self.rulebook = signature, rulebook
            if self.publisher is not None:
                self._record_directory_changes(rulebook)
            if self.decision_log is not None:
                self.decision_log.keep_versions(rulebook)
            self.last_reload = {"ok": True, "at": datetime.now(UTC).isoformat(), "problems": []}
            if report:
                metrics.RELOADS.labels("success").inc()
                log.info("rules reloaded: %s", rulebook.version)
            return []

    def _refused(self, problems: list[Problem], report: bool) -> list[Problem]:
        """Record a refused reload: ``/v1/rulesets`` says so, the running rules stay active."""
        described = [str(problem) for problem in problems]
        repeated = not self.last_reload["ok"] and self.last_reload["problems"] == described
        self.last_reload = {"ok": False, "at": datetime.now(UTC).isoformat(), "problems": described}
        if report:
            metrics.RELOADS.labels("failure").inc()
            if not repeated:  # one warning per distinct failure, not one a second while it lasts
                log.warning("rules not reloaded, the running rules stay active:\n%s", "\n".join(described))
        return problems

    def _load(self) -> Rulebook:
        """The rules as they are now: the directory, or the directory overlaid with the rules store's
        publications (``rulesvc serve --rules-store``)."""
        if self.publisher is not None and self.publisher.authoritative:
            return rulebook_from_files(self.publisher.live_files(), display_dir=str(self.rules_dir),
                                       require_partitions=self.require_partitions)
        return load_rulebook([self.rules_dir], require_partitions=self.require_partitions)

    def _rules_signature(self) -> tuple[object, ...]:
        """What changes when the rules do: the directory's files, and the rules store's newest publication."""
        signature: tuple[object, ...] = rules_signature(self.rules_dir)
        if self.publisher is not None and self.publisher.authoritative:
            signature += (("rules-store", *self.publisher.store.change_marker()),)
        return signature

    def _record_directory_changes(self, rulebook: Rulebook) -> None:
        try:
            self.publisher.seed(rulebook)
        except RulesStoreUnavailable as error:  # the history waits for the store; the rules are live
            log.warning("rule versions not recorded: %s", error)

    def reload_if_changed(self, report: bool = True) -> None:
        try:
            publisher = self.publisher
            if publisher is not None and not publisher.authoritative and publisher.store.has_pending():
                publisher.seed(self.rulebook)  # a process died between recording and writing: finish or abandon it
            changed = self._rules_signature() != self._signature
        except RulesStoreUnavailable as error:
            self._refused([Problem(str(self.rules_dir), 1, 1, str(error))], report)
            return
        if changed:
            self.reload(report)

    # --- publishing (SPEC §12.1) -----------------------------------------------------------------

    def review(self, file_name: str, text: str, deadline: float | None) -> dict[str, object]:
        """A draft's review: problems, diff, impact on the logged decisions, changed scenario cases, proofs."""
        return review_draft(self.rulebook, file_name, text,
                            database=self.decision_log.database if self.decision_log else None,
                            scenario_paths=[self.scenarios_dir] if self.scenarios_dir.is_dir() else [],
                            scenarios_root=self.scenarios_dir, verify_deadline=deadline,
                            require_partitions=self.require_partitions)

    def put_live(self, change: Callable[[Rulebook], Publication]) -> Publication:
        """Run a publication or rollback on the rules as they are now, then load what it made, here
        (other workers and instances follow on their next look)."""
        with self._publish_lock:
            self.reload_if_changed()
            if self.publisher is not None:
                self.publisher.seed(self.rulebook)  # a publication left pending is settled first
            publication = change(self.rulebook)
            problems = self.reload()
            if problems:  # judged on the same files a moment ago: only a change made meanwhile gets here
                log.warning("published %s %s, but the reload was refused", publication.domain, publication.version)
            return publication

    def kept_version_text(self, domain: str, version: str) -> tuple[str, str] | None:
        """``(file, text)`` of a version kept in the decision log's version library (for a rollback)."""
        if self.decision_log is None:
            return None
        kept = self.decision_log.database.version(version)
        if not kept or kept.get("domain") != domain:
            return None
        live = self.rulebook.domains.get(domain)
        files = {name: text for name, text in kept.get("files", {}).items() if not name.startswith("calendars/")}
        if len(files) != 1:
            return None
        (name, text), = files.items()
        return (os.path.basename(live.file) if live else name), text

    def watch(self, interval: float = WATCH_INTERVAL_SECONDS, report: bool = True) -> None:
        """Reload when a rule file changes (a daemon thread; call it in each worker process)."""
        def loop() -> None:
            while True:
                try:
                    self.reload_if_changed(report)
                except Exception:  # the watcher must outlive any surprise
                    log.exception("rule watcher")
                threading.Event().wait(interval)
        threading.Thread(target=loop, name="rulesvc-rule-watcher", daemon=True).start()

    def watch_in_master(self, interval: float = WATCH_INTERVAL_SECONDS) -> None:
        """Keep the gunicorn master's copy of the rules current as well.

        Workers are forked from the master: one started later (SIGHUP, a worker that crashed or timed
        out) while the files are broken must start from the last good rules, not from those the
        service booted with. A fork waits for a reload in progress, so no child inherits a held lock
        or a half-built rulebook.
        """
        if self._watching_in_master:  # a second registration would make every fork wait on itself
            return
        self._watching_in_master = True
        os.register_at_fork(before=self._reload_lock.acquire, after_in_parent=self._reload_lock.release,
                            after_in_child=self._reload_lock.release)
        self.watch(interval, report=False)

    def openapi(self) -> dict[str, object]:
        """The OpenAPI document of the active rules (rebuilt after a reload)."""
        rulebook = self.rulebook
        if self._openapi_for is not rulebook:
            self._openapi, self._openapi_for = build_spec(rulebook), rulebook
        return self._openapi

    # --- decision log ------------------------------------------------------------------------

    def log_decision(self, compiled: CompiledDecision, evaluation: Evaluation, result: dict[str, object], *,
                     source: str, duration_us: int, committed: bool = False) -> None:
        """Hand a decision just made to the decision log (and, for logged ones, to the shadow rules)."""
        decision_log = self.decision_log
        if decision_log is None or not decision_log.sampled():
            return
        decision_log.record(compiled, evaluation, result=result, decision_id=str(result["decision_id"]),
                            source=source, duration_us=duration_us, committed=committed)
        self.shadow_decision(compiled, evaluation, result, source)

    def shadow_decision(self, compiled: CompiledDecision, evaluation: Evaluation, result: dict[str, object],
                        source: str) -> None:
        """Evaluate a logged decision on the shadow rules too (a commit's entry is logged through the
        store's outbox, :func:`engine.state.commit.commit`; only the shadow run is left to do)."""
        if self.shadow is not None:
            self.shadow.submit(compiled, evaluation, result, source)

    def candidate_impact(self, file_name: str, text: str, query: LogQuery) -> dict[str, object]:
        """The impact JSON (SPEC §11) of the active rules with ``file_name`` replaced by ``text``, replayed on
        the logged decisions ``query`` selects, in this process, charged to the active budget
        (``engine.limits``). Raises :class:`RuleFileError` for a broken candidate (nothing replayed)."""
        if self.decision_log is None:
            raise LogUnavailable("the decision log is off (the service runs with --log none): nothing to replay")
        candidate = candidate_rulebook(self.rulebook, file_name, text, require_partitions=self.require_partitions)
        report = impact_report(self.decision_log.database, self.rulebook, candidate, query)
        report["candidate"] = {"file": file_name, "versions": sorted(d.version for d in candidate.domains.values())}
        return report

    def candidate_verify(self, file_name: str, text: str, decision: str | None, deadline: float | None,
                         domain: str | None = None) -> dict[str, object]:
        """verify's JSON (SPEC §13) for the active rules with ``file_name`` replaced by ``text``; each
        decision within the solver timeout, the whole run before ``deadline``. Raises
        :class:`RuleFileError` for a broken candidate, :class:`UnknownDecision` for ``decision``."""
        candidate = candidate_rulebook(self.rulebook, file_name, text, require_partitions=self.require_partitions)
        if decision is not None:
            candidate.decision(decision)
        report = verify_rulebook(candidate, decision=decision, domain=domain, deadline=deadline)
        report["candidate"] = {"file": file_name, "versions": sorted(d.version for d in candidate.domains.values())}
        return report

    @functools.cached_property
    def masker(self) -> Masker:
        """How sensitive values are shown to readers without the audit or admin token: the decision
        log's HMAC, so a masked record and its log entry still match (and nothing maps one to clear text)."""
        if self.decision_log is not None:
            return self.decision_log.masker
        return Masker(log_key(key_file(NO_LOG)))

    def masked_records(self, records: list[DecisionRecord]) -> list[DecisionRecord]:
        """``records`` as a reader without the audit or admin token sees them (SPEC §7.1): each column its
        decision reads from a sensitive fact (``customer_account: customer.account``) masked as the
        decision log masks it, so equal values stay equal and match the log's. A record made by a
        version no longer active has every text column masked: better masked than shown. A record's stored result holds no
        facts, so the columns are all there is to mask."""
        masked = []
        for record in records:
            compiled = self.rulebook.decisions.get(record.decision)
            # The active rules say which columns read sensitive facts only for records they made: a record
            # of another version (its record columns may have read other facts) has every text column masked.
            known = compiled is not None and compiled.domain.version == record.ruleset_version
            columns = (compiled.sensitive_record_columns if known
                       else [column for column in RECORD_COLUMNS if column != "amount"])
            changes = {column: self.masker.mask_value(value) for column in columns
                       if isinstance(value := getattr(record, column, None), str) and value}
            masked.append(dataclasses.replace(record, **changes) if changes else record)
        return masked

    # --- store ---------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """Opened on first use in each process: connections must not cross gunicorn's fork."""
        if self._store is None or self._store_pid != os.getpid():
            with self._lock:
                if self._store is None or self._store_pid != os.getpid():
                    store = self._open_store()
                    store.start_moving()  # records a killed process left in the outbox: any process moves them
                    self._store, self._store_pid = store, os.getpid()
        return self._store

    def readiness(self) -> dict[str, str]:
        """``{"store": …, "records": …}``, each "ok" or why not: whether the store can serve a commit now
        (a formed cluster, a primary, a writable file) and whether the record store takes records (while it
        does not, commits go on and their records wait in the outbox). Looked at most once a second."""
        looked = self._readiness
        if looked is not None and time.monotonic() - looked[0] < READINESS_TTL_SECONDS:
            return looked[1]
        found = {"store": _ok_or_why(lambda: self.store.check()), "records": _ok_or_why(lambda: self.store.check_records())}
        before = looked[1] if looked is not None else {"store": "ok", "records": "ok"}
        for part, state in found.items():  # one line when a part stops or starts serving, not one a second
            if state != before[part]:
                log.log(logging.INFO if state == "ok" else logging.WARNING, "readiness: %s %s", part,
                        "serves again" if state == "ok" else state)
        self._readiness = time.monotonic(), found
        return found

    def counters(self) -> StoreCounters:
        """Counters for a plain evaluation; the store is only touched if a counter is read."""
        return StoreCounters(self)


def _ok_or_why(check: Callable[[], None]) -> str:
    try:
        check()
    except StoreUnavailable as error:
        return str(error)
    return "ok"


class StoreCounters:
    """A counter source that reaches the store lazily, so decisions without counters never need it."""

    def __init__(self, state: ServiceState):
        self._state = state
        self._reader: CountingReader | None = None

    def _store_reader(self) -> CountingReader:
        if self._reader is None:
            self._reader = self._state.store.reader()
        return self._reader

    def prefetch(self, decision: str, reads: list[tuple[Counter, tuple[object, ...], datetime]]) -> None:
        self._store_reader().prefetch(decision, reads)

    def read(self, decision: str, counter: Counter, key: tuple[object, ...], now: datetime,
             partition: str | None = None) -> int | Decimal:
        return self._store_reader().read(decision, counter, key, now, partition)
