"""Impact replays on a ``dask.distributed`` cluster (SPEC §9): ``rulesvc impact … --scheduler tcp://HOST:PORT``.

The log is cut into the same ``seq`` (id) ranges a local replay uses; each range is one task. A task
opens the log by its URL, so every worker must reach it (a PostgreSQL log, or an SQLite file on a
path the workers share) and run this same rulesvc. The rule files go to every worker once (scattered
with ``broadcast``), and each worker compiles them once: its rulebooks are kept between tasks, keyed
by the files' digest. The tallies come back and are merged in log order, exactly as a local replay
merges its processes' — the same report, whichever worker finished first.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from engine.audit.log import LogDatabase, LogQuery
from engine.audit.replay.replayer import Replayer
from engine.errors import RulesvcError
from engine.rulebook import rulebook_from_files

SCHEDULER_VARIABLE = "RULESVC_DASK_SCHEDULER"
CONNECT_SECONDS = 10


class ClusterUnavailable(RulesvcError):
    """The Dask scheduler cannot be reached, or a worker could not replay its part; the message says which."""


def replay_on_cluster(scheduler: str, url: str, candidate: dict[str, str], active: dict[str, str] | None,
                      query: LogQuery, chunks: list[tuple[int, int]],
                      on_progress: Callable[[int], None] | None = None) -> Any:
    """The merged :class:`~engine.audit.replay.impact.ImpactTally` of replaying ``chunks`` of the log at ``url``
    on the cluster whose scheduler is at ``scheduler``."""
    from distributed import Client

    from engine.audit.replay.impact import ImpactTally

    try:
        client = Client(scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
    try:
        rules = client.scatter({"candidate": candidate, "active": active}, broadcast=True, hash=False)
        futures = [client.submit(replay_part, url, rules, query, low, high, pure=False) for low, high in chunks]
        total = ImpactTally()
        for future in futures:  # merged in log order: the examples are the earliest ones, as in a local replay
            try:
                tally = future.result()
            except Exception as error:  # raised on a worker (the log out of its reach, a lost worker…)
                raise ClusterUnavailable(f"a Dask worker could not replay its part of the log: "
                                         f"{type(error).__name__}: {error}") from None
            total.merge(tally)
            if on_progress:
                on_progress(tally.replayed)
        return total
    finally:
        client.close()


# --- on a worker ------------------------------------------------------------------------------------------

_compiled: dict[str, tuple[Replayer, Any]] = {}
_compiled_lock = threading.Lock()  # a worker runs tasks in threads: compile each rulebook once
_replay_locks: dict[str, threading.Lock] = {}
_databases: dict[str, LogDatabase] = {}


def replay_part(url: str, rules: dict[str, Any], query: LogQuery, low: int, high: int) -> Any:
    """One task: the tally of the entries with ``low <= seq <= high``."""
    from engine.audit.replay.impact import Baseline, tally_entries

    candidate, active = rules["candidate"], rules["active"]
    key = hashlib.sha256(json.dumps([candidate, active], sort_keys=True).encode()).hexdigest()
    with _compiled_lock:
        if key not in _compiled:
            _compiled[key] = (Replayer(rulebook_from_files(candidate, "candidate")),
                              Baseline(rulebook_from_files(active, "active") if active is not None else None))
            _replay_locks[key] = threading.Lock()
        replayer, baseline = _compiled[key]
        database = _databases.get(url)
        if database is None:
            database = _databases[url] = LogDatabase(url, create=False)
    # A worker with several threads: its tasks on one rulebook take turns (replays are CPU-bound and
    # the GIL would interleave them anyway; start workers with one thread each and more of them).
    with _replay_locks[key]:
        return tally_entries(replayer, database.entries_between(query, low, high), baseline=baseline)
