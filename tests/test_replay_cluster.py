"""Impact replays on a dask.distributed cluster (SPEC §9): the same report as a local replay."""

from __future__ import annotations

import json

import pytest

from engine.audit.log import LogDatabase, LogQuery
from engine.audit.replay import impact
from engine.audit.replay.cluster import ClusterUnavailable
from engine.rulebook import read_rule_files

from .conftest import RULES
from .test_decision_log import run_cli
from .test_impact import AMOUNTS, make_log

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, as `rulesvc impact --scheduler` would meet them."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as local:
        yield local.scheduler_address


def test_a_cluster_replay_reports_exactly_what_a_local_replay_does(tmp_path, lowered, cluster):
    url = f"sqlite:///{tmp_path}/log.db"
    for _ in range(4):
        make_log(url)
    database = LogDatabase(url)
    candidate, active = read_rule_files(lowered), read_rule_files(RULES)
    local = impact(database, candidate, LogQuery(limit=None), active=active, processes=1).as_json()
    seen = []
    on_dask = impact(database, candidate, LogQuery(limit=None), active=active, scheduler=cluster,
                     on_progress=seen.append).as_json()
    assert on_dask == local
    assert local["transitions"] == {"allow->deny": 20} and len(local["examples"]["allow->deny"]) == 10
    assert sum(seen) == local["replayed"] and len(seen) > 1  # one progress report per part of the log
    # the latest N only, and one decision only: the same query as a local replay
    for query in (LogQuery(limit=len(AMOUNTS) + 3), LogQuery(limit=None, decision="payout.initiate")):
        assert (impact(database, candidate, query, active=active, scheduler=cluster).as_json()
                == impact(database, candidate, query, active=active, processes=1).as_json())


def test_the_cli_replays_on_the_scheduler_it_is_given(tmp_path, lowered, cluster):
    url = f"sqlite:///{tmp_path}/log.db"
    make_log(url)
    local = run_cli("impact", "--candidate", str(lowered), "--log", url, "--format", "json")
    by_option = run_cli("impact", "--candidate", str(lowered), "--log", url, "--format", "json", "--scheduler", cluster)
    by_variable = run_cli("impact", "--candidate", str(lowered), "--log", url, "--format", "json",
                          env={"RULESVC_DASK_SCHEDULER": cluster})
    assert by_option.returncode == by_variable.returncode == 0, by_option.stderr + by_variable.stderr
    assert json.loads(by_option.stdout) == json.loads(by_variable.stdout) == json.loads(local.stdout)
    assert json.loads(local.stdout)["transitions"] == {"allow->deny": 5}


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path, lowered, monkeypatch):
    url = f"sqlite:///{tmp_path}/log.db"
    make_log(url)
    monkeypatch.setattr("engine.audit.replay.cluster.CONNECT_SECONDS", 1)
    with pytest.raises(ClusterUnavailable, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        impact(LogDatabase(url), read_rule_files(lowered), LogQuery(limit=None), scheduler="tcp://127.0.0.1:9")
    answer = run_cli("impact", "--candidate", str(lowered), "--log", url, "--scheduler", "tcp://127.0.0.1:9")
    assert answer.returncode == 1 and "cannot reach the Dask scheduler" in answer.stderr
    assert "Traceback" not in answer.stderr
