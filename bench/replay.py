"""Replay: impact analysis of a candidate over a decision log of (by default) one million decisions.

The log is made as the service makes it: the bench mix decided by ours and appended by the decision
log (sensitive facts masked), then copied in SQL — new ids, same decisions — up to the size asked
for, so that making it costs seconds, not a million evaluations. The candidate lowers
``max_payout_amount`` from 500.00 to 300.00; ``rulesvc impact``'s engine call replays the log with
one process per core and the time is taken around that call alone. The same replay then runs on a
dask.distributed LocalCluster of 1 and 2 workers (``--scheduler``), its report checked against the local one.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.audit.log import LogDatabase, LogQuery, open_log
from engine.audit.replay import impact
from engine.rulebook import load_rulebook, read_rule_files

from .factsets import DECISIONS, fact_sets
from .paths import RULES_DIR

MILLION = 1_000_000
DASK_WORKERS = (1, 2)  # LocalCluster sizes: how the rate grows with workers
DASK_WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


def make_log(path: Path, entries: int, seed: int, mix_size: int = 2000) -> int:
    """A decision log of ``entries`` decisions at ``path``; returns how many rows it holds."""
    rulebook = load_rulebook([RULES_DIR])
    url = f"sqlite:///{path}"
    decision_log = open_log(url)
    assert decision_log is not None
    decision_log.keep_versions(rulebook)
    for decision in DECISIONS:
        compiled = rulebook.decision(decision)
        for fact_set in fact_sets(decision, mix_size, seed):
            result, evaluation = compiled.run(fact_set.facts, now=fact_set.now)
            decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"], source="http",
                                duration_us=1)
    decision_log.close()
    connection = sqlite3.connect(path)
    try:
        (rows,) = connection.execute("SELECT count(*) FROM decision_log").fetchone()
        base = rows
        while rows < entries:
            # the same decisions under new ids: the first 16 characters of the ULID and a new serial number
            connection.execute(
                "INSERT INTO decision_log (decision_id, decision, evaluated_us, source, outcome, codes, ruleset_version,"
                " committed, shadow_of, entry) SELECT substr(decision_id, 1, 16) || printf('%010d', seq + :offset),"
                " decision, evaluated_us, source, outcome, codes, ruleset_version, committed, shadow_of,"
                " replace(entry, decision_id, substr(decision_id, 1, 16) || printf('%010d', seq + :offset))"
                " FROM decision_log WHERE seq <= :base LIMIT :count",
                {"offset": rows, "base": base, "count": min(base, entries - rows)})
            connection.commit()
            (rows,) = connection.execute("SELECT count(*) FROM decision_log").fetchone()
    finally:
        connection.close()
    return rows


def lowered_candidate() -> dict[str, str]:
    files = read_rule_files(RULES_DIR)
    files["payout.yaml"] = files["payout.yaml"].replace('value: "500.00"', 'value: "300.00"')
    return files


def replay_on_local_cluster(database: LogDatabase, workers: int, local_report: dict[str, Any]) -> dict[str, Any]:
    """The same replay through ``rulesvc impact --scheduler`` on a LocalCluster of ``workers`` processes
    (one thread each); the time is taken around the impact call alone (the cluster is up already), and
    its report must be the local one."""
    import dask
    from distributed import LocalCluster

    # Dask's statistical profiler samples each task thread every 10 ms and takes the GIL to do it: a quarter
    # of a replay's time (measured). Workers for replays run without it (docs/changing-rules.md).
    with dask.config.set(DASK_WORKER_CONFIG), LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=50) as cluster:
        started = time.perf_counter()
        tally = impact(database, lowered_candidate(), LogQuery(limit=None), scheduler=cluster.scheduler_address)
        seconds = time.perf_counter() - started
    if tally.as_json() != local_report:
        raise AssertionError(f"the replay on a LocalCluster of {workers} workers disagrees with the local replay")
    return {"workers": workers, "seconds": seconds, "replay_per_s": tally.replayed / seconds,
            "seconds_per_million": MILLION * seconds / tally.replayed, "same_report_as_local": True}


def run_replay(entries: int, seed: int) -> dict[str, Any]:
    processes = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="rulesvc-bench-replay-") as directory:
        path = Path(directory) / "decisions.db"
        started = time.perf_counter()
        rows = make_log(path, entries, seed)
        made_in = time.perf_counter() - started
        database = LogDatabase(f"sqlite:///{path}", create=False)
        started = time.perf_counter()
        tally = impact(database, lowered_candidate(), LogQuery(limit=None), processes=processes)
        seconds = time.perf_counter() - started
        size_mib = path.stat().st_size / 2**20
        on_dask = {str(workers): replay_on_local_cluster(database, workers, tally.as_json())
                   for workers in DASK_WORKERS}
    report = tally.as_json()
    rate = tally.replayed / seconds
    return {
        "dask": on_dask,
        "entries": rows, "processes": processes, "seconds": seconds, "replay_per_s": rate,
        "seconds_per_million": MILLION / rate, "log_made_in_s": made_in, "log_size_mib": size_mib,
        "candidate": "rules/ with max_payout_amount 500.00 -> 300.00",
        "transitions": report["transitions"], "unchanged": report["unchanged"],
        "not_replayable": report["not_replayable"]["count"],
    }
