"""A committed decision is never missing from the decision log (SPEC §10; issue 20, item 8): its entry is
written into the store's outbox in the same atomic step as its record, and moved from there to the log
exactly once — by whichever process moves the outbox next, also after the committing one was killed.
(The SIGKILL test against the real service is in tests/test_service.py.)"""

from __future__ import annotations

import sqlite3

import pytest

from api import create_app
from engine.audit.log import LogQuery, open_log
from engine.state import open_store
from engine.state.commit import commit

from .conftest import RULES
from .test_store import NOW, contact_facts, payout_facts


@pytest.fixture
def urls(request, tmp_path):
    """(store, records) URLs: SQLite in one file, SQLite with records elsewhere, Redis."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/rulesvc.db", None
    if request.param == "sqlite+records":
        return f"sqlite:///{tmp_path}/rulesvc.db", f"sqlite:///{tmp_path}/records.db"
    import redis

    server = request.getfixturevalue("redis_server")
    redis.Redis.from_url(server.url).flushdb()
    return server.url, f"sqlite:///{tmp_path}/records.db"


def logged_ids(log) -> list[str]:
    return [entry["decision_id"] for entry in log.database.query(LogQuery(limit=None))]


@pytest.mark.parametrize("urls", ["sqlite", "sqlite+records", "redis"], indirect=True)
def test_a_committed_entry_waits_in_the_outbox_and_is_logged_exactly_once(urls, rulebook, tmp_path):
    log = open_log(f"sqlite:///{tmp_path}/log.db")
    dying = open_store(*urls, log=log)
    dying.mover.notify = lambda: None  # the process "dies" before its mover runs: nothing moved from it
    contact = rulebook.decision("recovery.contact")
    made = [commit(contact, contact_facts(f"o-{index}", f"buyer-{index % 2}"), idempotency_key=f"k-{index}",
                   store=dying, now=NOW, log=log) for index in range(4)]
    assert [m.result["outcome"] for m in made] == ["allow", "allow", "defer", "defer"]
    log.flush()
    assert logged_ids(log) == []  # not in the in-memory queue: in the outbox, with the records
    survivor = open_store(*urls, log=log)  # another process, or the restarted one
    try:
        survivor.drain()
        survivor.drain()  # moved again (two processes at once, a crash between copy and delete): no double
        ids = logged_ids(log)
        assert sorted(ids) == sorted(m.result["decision_id"] for m in made) and len(ids) == len(set(ids))
        assert log.written == 4  # entries moved twice are counted once (review finding 11)
        log.write_committed([log.database.entry(made[0].result["decision_id"])])
        assert log.written == 4
        entry = log.database.entry(made[0].result["decision_id"])
        assert (entry["source"], entry["committed"], entry["now"]) == ("commit", True, NOW.isoformat())
        assert log.database.entry(made[2].result["decision_id"])["committed"] is False  # deferred: nothing reserved
        # a repeated key is no new decision: nothing more is logged
        again = commit(contact, contact_facts("o-0", "buyer-0"), idempotency_key="k-0", store=survivor, now=NOW, log=log)
        assert again.evaluation is None and again.result["replayed"] is True
        survivor.drain()
        assert len(logged_ids(log)) == 4
    finally:
        survivor.close()
        dying.close()
        log.close()


def test_an_entry_waits_while_the_log_is_unreachable(rulebook, tmp_path):
    log = open_log(f"sqlite:///{tmp_path}/log.db")
    store = open_store(f"sqlite:///{tmp_path}/rulesvc.db", log=log)
    store.mover.notify = lambda: None
    try:
        made = commit(rulebook.decision("payout.initiate"), payout_facts("o-1"), idempotency_key="p-1", store=store,
                      now=NOW, log=log)
        real_write = log.database.write

        def unreachable(entries):
            from engine.audit.log import LogUnavailable

            raise LogUnavailable("decision log unavailable: OperationalError")

        log.database.write = unreachable
        with pytest.raises(Exception, match="decision log unavailable"):
            store.drain()
        with sqlite3.connect(tmp_path / "rulesvc.db") as connection:  # still in the outbox, not dropped
            assert connection.execute("select decision_id from log_outbox").fetchall() == [(made.result["decision_id"],)]
        log.database.write = real_write
        store.drain()
        assert logged_ids(log) == [made.result["decision_id"]]
    finally:
        store.close()
        log.close()


def test_committed_decisions_are_never_sampled_away(tmp_path):
    app = create_app(RULES, store_url=f"sqlite:///{tmp_path}/store.db", log_url=f"sqlite:///{tmp_path}/log.db",
                     log_sample=1e-12)
    client, state = app.test_client(), app.extensions["rulesvc"]
    committed = [client.post("/v1/decisions/payout.initiate", json={
        "facts": payout_facts(f"o-{index}"), "now": NOW.isoformat(), "commit": True, "idempotency_key": f"p-{index}",
    }).get_json()["decision_id"] for index in range(5)]
    for index in range(5):  # plain evaluations: sampled (practically never logged at this rate)
        client.post("/v1/decisions/payout.initiate", json={"facts": payout_facts(f"x-{index}"), "now": NOW.isoformat()})
    state.store.drain()
    state.decision_log.flush()
    assert sorted(logged_ids(state.decision_log)) == sorted(committed)
    state.decision_log.close()
