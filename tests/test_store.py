"""Stateful limits against real stores: SQLite files, Redis and PostgreSQL servers — no mocks."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import pytest

from engine import load_rulebook
from engine.state import IdempotencyConflict, RecordQuery, StoreUnavailable, export_csv, open_store
from engine.state.commit import commit_decision
from engine.state.redis_store import RECONNECT_INTERVAL_SECONDS

from .conftest import RULES, codes, merged
from .test_payout import INITIATE_OK
from .test_timing import CONTACT

NOW = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
open_store_as_shipped = open_store


@pytest.fixture(autouse=True)
def close_stores(monkeypatch):
    """Every store a test opens is closed after it: its outbox mover must not move the next test's
    records (tests share one Redis, each with its own record store)."""
    opened = []

    def tracked(*args, **kwargs):
        opened.append(open_store_as_shipped(*args, **kwargs))
        return opened[-1]

    monkeypatch.setitem(globals(), "open_store", tracked)
    yield
    for store in opened:
        store.close()


@pytest.fixture(scope="module")
def contact(rulebook):
    return rulebook.decision("recovery.contact")


@pytest.fixture(scope="module")
def initiate(rulebook):
    return rulebook.decision("payout.initiate")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/rulesvc.db"


@pytest.fixture
def redis_url(redis_server):
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url


def contact_facts(order_id: str, customer: str = "buyer-1") -> dict:
    return merged(CONTACT, {"order": {"id": order_id}, "customer": {"id": customer}})


def payout_facts(order_id: str, amount: str = "30.00", **actor) -> dict:
    quota = {"enabled": True, "per_payout_max": "50.00", "daily_amount_max": "100.00", "daily_count_max": 10}
    return merged(INITIATE_OK, {"order": {"id": order_id, "payout_count": None, "payout_total": None},
                                "actor": {"used_today": None, "quota": quota, **actor},
                                "payout": {"amount": amount}})


def race(commit, count: int, threads: int = 16) -> list[dict]:
    barrier = threading.Barrier(threads)

    def one(index: int) -> dict:
        if index < threads:
            barrier.wait(timeout=10)
        return commit(index)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(count)))


# --- one customer, one SMS a day -------------------------------------------------------------------

def test_sqlite_racing_threads_allow_exactly_one_sms(contact, sqlite_url):
    store = open_store(sqlite_url)
    results = race(lambda i: commit_decision(contact, contact_facts(f"o-{i}"), idempotency_key=f"k-{i}",
                                             store=store, now=NOW), 40)
    assert [r["outcome"] for r in results].count("allow") == 1
    assert all(codes(r) == ["DAILY_SMS_LIMIT_REACHED"] for r in results if r["outcome"] != "allow")
    assert len(store.records(RecordQuery(decision="recovery.contact"))) == 40


def _commit_in_process(arguments: tuple[str, int]) -> list[str]:
    url, worker = arguments
    rulebook = load_rulebook([RULES])
    store = open_store(url)
    return [commit_decision(rulebook.decision("recovery.contact"), contact_facts(f"p{worker}-{i}"),
                            idempotency_key=f"p{worker}-{i}", store=store, now=NOW)["outcome"] for i in range(10)]


def test_sqlite_racing_processes_on_one_file_allow_exactly_one_sms(sqlite_url):
    open_store(sqlite_url).close()  # create the schema once, as the service does at start
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        outcomes = [outcome for chunk in pool.map(_commit_in_process, [(sqlite_url, w) for w in range(4)])
                    for outcome in chunk]
    assert outcomes.count("allow") == 1
    assert outcomes.count("defer") == 39


def test_redis_two_instances_allow_exactly_one_sms(contact, redis_url, tmp_path):
    instances = [open_store(redis_url, f"sqlite:///{tmp_path}/records.db") for _ in range(2)]
    results = race(lambda i: commit_decision(contact, contact_facts(f"o-{i}"), idempotency_key=f"k-{i}",
                                             store=instances[i % 2], now=NOW), 40)
    assert [r["outcome"] for r in results].count("allow") == 1
    assert all(codes(r) == ["DAILY_SMS_LIMIT_REACHED"] for r in results if r["outcome"] != "allow")


# --- a sub-account's daily quota ---------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_racing_payouts_never_exceed_the_daily_amount(initiate, backend, request, tmp_path):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "redis_url")
    store = open_store(url, None if backend == "sqlite" else f"sqlite:///{tmp_path}/records.db")
    results = race(lambda i: commit_decision(initiate, payout_facts(f"order-{i}"), idempotency_key=f"pay-{i}",
                                             store=store, now=NOW), 30)
    allowed = [r for r in results if r["outcome"] == "allow"]
    assert len(allowed) == 3  # 3 × 30.00 ≤ 100.00 < 4 × 30.00
    assert all(codes(r) == ["QUOTA_DAILY_AMOUNT_EXCEEDED"] for r in results if r["outcome"] != "allow")
    used = initiate.evaluate(payout_facts("next", "10.00"), now=NOW, counters=store.reader())
    assert codes(used) == []  # 90.00 + 10.00 is exactly the quota
    assert initiate.evaluate(payout_facts("next", "10.01"), now=NOW, counters=store.reader())["reasons"][0]["code"] \
        == "QUOTA_DAILY_AMOUNT_EXCEEDED"


def test_racing_payouts_never_exceed_the_daily_count(initiate, sqlite_url):
    store = open_store(sqlite_url)
    quota = {"enabled": True, "per_payout_max": "50.00", "daily_amount_max": "1000.00", "daily_count_max": 2}
    results = race(lambda i: commit_decision(initiate, payout_facts(f"order-{i}", "1.00", quota=quota),
                                             idempotency_key=f"c-{i}", store=store, now=NOW), 20)
    assert [r["outcome"] for r in results].count("allow") == 2
    assert all(codes(r) == ["QUOTA_DAILY_COUNT_EXCEEDED"] for r in results if r["outcome"] != "allow")


def test_order_payout_count_and_total_come_from_committed_payouts(initiate, sqlite_url):
    store = open_store(sqlite_url)
    facts = payout_facts("order-7", "30.00", role="main")
    for index in range(3):
        assert commit_decision(initiate, facts, idempotency_key=f"o7-{index}", store=store, now=NOW)["outcome"] == "allow"
    fourth = commit_decision(initiate, facts, idempotency_key="o7-3", store=store, now=NOW)
    assert codes(fourth) == ["ORDER_PAYOUT_COUNT_EXCEEDED"]
    # 90.00 paid before + 30.00 + refunded 0.00 > 100.00? no: order amount is 199.00
    warned = initiate.evaluate(merged(facts, {"order": {"refunded_amount": "80.00"}}), now=NOW, counters=store.reader())
    assert codes(warned, "warnings") == ["DOUBLE_COMPENSATION_RISK"]


# --- idempotency ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_idempotent_replay_and_conflict(contact, backend, request, tmp_path):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "redis_url")
    store = open_store(url, None if backend == "sqlite" else f"sqlite:///{tmp_path}/records.db")
    first = commit_decision(contact, contact_facts("o-1"), idempotency_key="same", store=store, now=NOW)
    replayed = race(lambda i: commit_decision(contact, contact_facts("o-1"), idempotency_key="same", store=store,
                                              now=NOW), 10, threads=10)
    assert first["outcome"] == "allow"
    assert {r["decision_id"] for r in replayed} == {first["decision_id"]}
    # counted once: a second customer contact today is still deferred only by the first
    other = commit_decision(contact, contact_facts("o-2", "buyer-2"), idempotency_key="other", store=store, now=NOW)
    assert other["outcome"] == "allow"
    assert len(store.records(RecordQuery())) == 2
    # money written differently is the same fact
    respelled = merged(contact_facts("o-1"), {"order": {"amount": 100}})
    assert commit_decision(contact, respelled, idempotency_key="same", store=store, now=NOW)["decision_id"] == \
        first["decision_id"]
    with pytest.raises(IdempotencyConflict):
        commit_decision(contact, contact_facts("o-3"), idempotency_key="same", store=store, now=NOW)


# --- the Shanghai day ------------------------------------------------------------------------------------

def test_daily_quota_rolls_over_at_shanghai_midnight(initiate, sqlite_url):
    store = open_store(sqlite_url)
    late = datetime.fromisoformat("2026-11-20T23:59:59+08:00")
    for index in range(3):
        commit_decision(initiate, payout_facts(f"a-{index}"), idempotency_key=f"a-{index}", store=store, now=late)
    assert codes(commit_decision(initiate, payout_facts("a-3"), idempotency_key="a-3", store=store, now=late)) == [
        "QUOTA_DAILY_AMOUNT_EXCEEDED"]
    midnight = datetime.fromisoformat("2026-11-20T16:00:00+00:00")  # 00:00 in Shanghai
    assert commit_decision(initiate, payout_facts("b-0"), idempotency_key="b-0", store=store,
                           now=midnight)["outcome"] == "allow"


def test_sms_limit_rolls_over_with_the_next_morning(contact, redis_url, tmp_path):
    store = open_store(redis_url, f"sqlite:///{tmp_path}/records.db")
    assert commit_decision(contact, contact_facts("o-1"), idempotency_key="d1", store=store, now=NOW)["outcome"] == "allow"
    deferred = commit_decision(contact, contact_facts("o-2"), idempotency_key="d2", store=store,
                               now=datetime.fromisoformat("2026-11-20T19:00:00+08:00"))
    assert deferred["next_eligible_at"] == "2026-11-21T09:00:00+08:00"
    next_day = commit_decision(contact, contact_facts("o-2"), idempotency_key="d3", store=store,
                               now=datetime.fromisoformat("2026-11-21T09:00:00+08:00"))
    assert next_day["outcome"] == "allow"


# --- faults ---------------------------------------------------------------------------------------------

def test_redis_stopped_mid_run(rulebook, tmp_path):
    from .servers import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    store = open_store(server.url, f"sqlite:///{tmp_path}/records.db")
    contact = rulebook.decision("recovery.contact")
    assert commit_decision(contact, contact_facts("o-1"), idempotency_key="f1", store=store, now=NOW)["outcome"] == "allow"
    store.drain()  # (the mover does this within a moment)
    server.stop()
    with pytest.raises(StoreUnavailable):
        commit_decision(contact, contact_facts("o-2", "buyer-2"), idempotency_key="f2", store=store, now=NOW)
    assert [record.idempotency_key for record in store.records(RecordQuery())] == ["f1"]
    # evaluations that need no stored counter still answer
    assert contact.evaluate(merged(contact_facts("o-2"), {"customer": {"sms_sent_today": 0}}), now=NOW,
                            counters=store.reader())["outcome"] == "allow"
    enable = {"actor": {"role": "main"}, "store": {"channel": "pop", "business_mode": "sop", "subject_type": "enterprise",
              "after_sales_self_service": True, "enterprise_wallet_opened": True, "agreement_signed": True,
              "in_gray_release": True}}
    assert rulebook.decide("payout.enable", enable, now=NOW, counters=store.reader())["outcome"] == "allow"
    with pytest.raises(StoreUnavailable):
        contact.evaluate(contact_facts("o-3"), now=NOW, counters=store.reader())


def test_record_store_down_keeps_commits_in_the_outbox(contact, redis_url, postgres_server):
    store = open_store(redis_url, postgres_server.url)
    assert commit_decision(contact, contact_facts("o-1", "pg-1"), idempotency_key="pg-ok", store=store,
                           now=NOW)["outcome"] == "allow"
    store.drain()
    postgres_server.stop()
    try:
        # the commit is whole without the record store: reservation, key and record are in Redis
        kept = commit_decision(contact, contact_facts("o-2", "pg-2"), idempotency_key="pg-down", store=store, now=NOW)
        assert kept["outcome"] == "allow"
        assert codes(contact.evaluate(contact_facts("o-3", "pg-2"), now=NOW, counters=store.reader())) == [
            "DAILY_SMS_LIMIT_REACHED"]
        with pytest.raises(StoreUnavailable):
            store.drain()
        assert commit_decision(contact, contact_facts("o-2", "pg-2"), idempotency_key="pg-down", store=store,
                               now=NOW)["decision_id"] == kept["decision_id"]
    finally:
        postgres_server.start_again()
    store.drain()  # (or the mover, which tries every second)
    in_postgres = store.records_store.query(RecordQuery(decision_id=kept["decision_id"]))
    assert [record.idempotency_key for record in in_postgres] == ["pg-down"]
    assert store.drain() == 0
    assert [r.idempotency_key for r in store.records(RecordQuery(decision="recovery.contact"))] == ["pg-ok", "pg-down"]


# --- a store that answers but cannot serve: 503, nothing half-written, ready again by itself ---------------

# payout.enable reads no counter: it answers whatever the store does
ENABLE = {"actor": {"role": "main"}, "store": {"channel": "pop", "business_mode": "sop", "subject_type": "enterprise",
          "after_sales_self_service": True, "enterprise_wallet_opened": True, "agreement_signed": True,
          "in_gray_release": True}}


def test_an_unformed_cluster_is_unavailable_until_it_forms(contact, rulebook, tmp_path):
    from .servers import RedisClusterServers

    cluster = RedisClusterServers(tmp_path / "cluster")
    try:
        cluster.start(form=False)  # cluster-enabled nodes, 0 of 16384 slots assigned
        store = open_store(cluster.url, f"sqlite:///{tmp_path}/records.db")  # RedisCluster(...) would raise here
        assert rulebook.decide("payout.enable", ENABLE, now=NOW, counters=store.reader())["outcome"] == "allow"
        with pytest.raises(StoreUnavailable, match=r"^counter store unavailable: RedisClusterException \(the cluster "
                                                   r"cannot be discovered"):
            commit_decision(contact, contact_facts("o-1"), idempotency_key="u-1", store=store, now=NOW)
        with pytest.raises(StoreUnavailable) as unready:
            store.check()
        assert "0 of 16384" in unready.value.detail  # redis-py's account, for the log
        assert store.records(RecordQuery()) == []

        cluster.form()
        time.sleep(RECONNECT_INTERVAL_SECONDS)  # the last failed discovery is not repeated sooner
        store.check()
        kept = commit_decision(contact, contact_facts("o-1"), idempotency_key="u-1", store=store, now=NOW)
        assert kept["outcome"] == "allow"
        assert [record.decision_id for record in store.records(RecordQuery())] == [kept["decision_id"]]
        store.close()
    finally:
        cluster.stop()


def test_a_cluster_that_loses_its_slots_is_clusterdown_then_serves_again(contact, tmp_path):
    import subprocess

    from .servers import RedisClusterServers

    cluster = RedisClusterServers(tmp_path / "cluster")
    try:
        cluster.start()
        store = open_store(cluster.url, f"sqlite:///{tmp_path}/records.db")
        assert commit_decision(contact, contact_facts("o-1"), idempotency_key="d-1", store=store,
                               now=NOW)["outcome"] == "allow"
        store.drain()
        partition = contact.partition_key(contact.load(contact_facts("o-2", "buyer-2")))
        slot = store.client.keyslot(store.keys(partition).outbox)
        owner = store.client.nodes_manager.get_node_from_slot(slot)
        # the slot of buyer-2's partition goes unserved: Redis answers CLUSTERDOWN for it
        for port in cluster.ports:
            subprocess.run(["redis-cli", "-p", str(port), "cluster", "delslots", str(slot)], capture_output=True,
                           timeout=10)
        # CLUSTERDOWN, or — when redis-py, told so, asks for the slot map again — slots not all covered
        with pytest.raises(StoreUnavailable, match="^counter store unavailable: (ClusterDownError|RedisClusterException)"):
            commit_decision(contact, contact_facts("o-2", "buyer-2"), idempotency_key="d-2", store=store, now=NOW)
        with pytest.raises(StoreUnavailable):  # cluster_state:fail (or, again, the slot map's hole)
            store.check()
        subprocess.run(["redis-cli", "-p", str(owner.port), "cluster", "addslots", str(slot)], check=True,
                       capture_output=True, timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                store.check()
                break
            except StoreUnavailable:
                time.sleep(0.2)
        # nothing half-written: no record, and no key (the retry is evaluated anew, not replayed)
        assert [record.idempotency_key for record in store.records(RecordQuery())] == ["d-1"]
        assert store.client.get(store.keys(partition).idempotency(contact.name, "d-2")) is None
        assert commit_decision(contact, contact_facts("o-2", "buyer-2"), idempotency_key="d-2", store=store,
                               now=NOW)["outcome"] == "allow"
        assert sorted(record.idempotency_key for record in store.records(RecordQuery())) == ["d-1", "d-2"]
        store.close()
    finally:
        cluster.stop()


def test_a_read_only_replica_refuses_commits_whole(contact, tmp_path):
    import redis

    from .servers import RedisServer

    primary, replica = RedisServer(tmp_path), RedisServer(tmp_path)
    primary.start()
    replica.start()
    try:
        replica.replicate(primary)
        store = open_store(replica.url, f"sqlite:///{tmp_path}/records.db")  # --store redis:// at a replica
        with pytest.raises(StoreUnavailable, match=r"^counter store unavailable: ReadOnlyError \(a read-only replica\)"):
            commit_decision(contact, contact_facts("o-1"), idempotency_key="r-1", store=store, now=NOW)
        with pytest.raises(StoreUnavailable, match="a read-only replica"):
            store.check()
        # no reservation, key or record anywhere
        assert redis.Redis.from_url(primary.url).keys("*") == [] and redis.Redis.from_url(replica.url).keys("*") == []
        assert store.records(RecordQuery()) == []

        replica.replicate(None)  # promoted: the same store serves, with no restart
        store.check()
        kept = commit_decision(contact, contact_facts("o-1"), idempotency_key="r-1", store=store, now=NOW)
        assert [record.decision_id for record in store.records(RecordQuery())] == [kept["decision_id"]]
    finally:
        replica.stop()
        primary.stop()


def _read_only(database_url: str, on: bool) -> None:
    """Turn default_transaction_read_only on or off for a database: its sessions then refuse writes with
    SQLSTATE 25006, as a hot standby in recovery does."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = {'on' if on else 'off'}")


def test_records_on_a_read_only_postgres_wait_in_the_outbox(contact, redis_url, postgres_server):
    import psycopg

    with psycopg.connect(postgres_server.url, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS standby_records")
        connection.execute("CREATE DATABASE standby_records")
    records_url = postgres_server.url.rsplit("/", 1)[0] + "/standby_records"
    _read_only(records_url, True)
    try:
        # no tables yet, and none can be made: the store cannot open (a commit answers 503)
        with pytest.raises(StoreUnavailable, match=r"^record store unavailable: InternalError \(read-only"):
            open_store(redis_url, records_url)
        _read_only(records_url, False)
        store = open_store(redis_url, records_url)
        store.check_records()
        _read_only(records_url, True)
        store.records_store.engine.dispose()  # sessions take the database's default when they start
        with pytest.raises(StoreUnavailable, match="read-only: a standby in recovery"):
            store.check_records()
        store.check()  # the counters serve: commits go on, their records wait in the outbox
        kept = commit_decision(contact, contact_facts("o-1", "ro-1"), idempotency_key="ro-1", store=store, now=NOW)
        with pytest.raises(StoreUnavailable, match="read-only"):
            store.drain()
        assert [record.decision_id for record in store.records(RecordQuery())] == [kept["decision_id"]]
    finally:
        _read_only(records_url, False)
    store.records_store.engine.dispose()
    store.drain()
    assert [record.idempotency_key for record in store.records_store.query(RecordQuery())] == ["ro-1"]


def test_a_read_only_sqlite_file_refuses_commits_whole(contact, sqlite_url, tmp_path):
    import subprocess

    store = open_store(sqlite_url)
    assert commit_decision(contact, contact_facts("o-1"), idempotency_key="s-1", store=store, now=NOW)["outcome"] == "allow"
    store.close()
    database = sqlite_url[len("sqlite:///"):]
    if subprocess.run(["chattr", "+i", database], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not possible here (a read-only file for root too)")
    try:
        store = open_store(sqlite_url)
        with pytest.raises(StoreUnavailable, match=r"^counter store unavailable: OperationalError \(a read-only database"):
            commit_decision(contact, contact_facts("o-2", "buyer-2"), idempotency_key="s-2", store=store, now=NOW)
        with pytest.raises(StoreUnavailable, match="a read-only database file"):
            store.check()
        assert [record.idempotency_key for record in store.records(RecordQuery())] == ["s-1"]
        store.close()
    finally:
        subprocess.run(["chattr", "-i", database], check=True)
    store = open_store(sqlite_url)
    store.check()
    assert commit_decision(contact, contact_facts("o-2", "buyer-2"), idempotency_key="s-2", store=store,
                           now=NOW)["outcome"] == "allow"


# --- the outbox: a commit killed after its atomic write, a mover killed half-way ------------------------

@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_a_process_killed_after_the_commit_leaves_reservation_and_record(contact, backend, request, tmp_path):
    counters = request.getfixturevalue("redis_url") if backend == "redis" else f"sqlite:///{tmp_path}/counters.db"
    records = f"sqlite:///{tmp_path}/records.db"
    dying = open_store(counters, records)
    dying.mover.notify = lambda: None  # the process dies right after answering: nothing moves its record
    first = commit_decision(contact, contact_facts("o-1"), idempotency_key="k-1", store=dying, now=NOW)
    assert first["outcome"] == "allow"

    survivor = open_store(counters, records)  # another worker (its moves made by hand below)
    survivor.mover.notify = lambda: None
    assert [r.decision_id for r in survivor.records(RecordQuery())] == [first["decision_id"]]  # from the outbox
    assert survivor.records_store.query(RecordQuery()) == []
    # the client's retry gets the first decision; the count was taken once
    assert commit_decision(contact, contact_facts("o-1"), idempotency_key="k-1", store=survivor,
                           now=NOW)["decision_id"] == first["decision_id"]
    assert codes(commit_decision(contact, contact_facts("o-2"), idempotency_key="k-2", store=survivor, now=NOW)) == [
        "DAILY_SMS_LIMIT_REACHED"]
    survivor.drain()
    in_sql = sorted(r.idempotency_key for r in survivor.records_store.query(RecordQuery()))
    assert in_sql == ["k-1", "k-2"]

    # a mover killed between writing the records and emptying the outbox: moving again writes nothing twice
    third = commit_decision(contact, contact_facts("o-3", "buyer-3"), idempotency_key="k-3", store=dying, now=NOW)
    survivor.records_store.move(survivor.mover.outbox.pending())
    assert survivor.drain() == 1
    assert survivor.drain() == 0
    assert sorted(r.decision_id for r in survivor.records_store.query(RecordQuery())).count(third["decision_id"]) == 1
    assert len(survivor.records(RecordQuery())) == 3


# --- records ------------------------------------------------------------------------------------------------

def test_payout_records_in_postgres_query_and_csv(initiate, rulebook, postgres_server, redis_url):
    store = open_store(redis_url, postgres_server.url)
    made_at = datetime.fromisoformat("2026-11-20T10:00:03+08:00")  # the server's clock, 3 s after the request's now
    first = commit_decision(initiate, payout_facts("pg-order-1", "12.34"), idempotency_key="rec-1", store=store, now=NOW,
                            server_now=made_at)
    later = datetime.fromisoformat("2026-11-20T11:00:00+08:00")
    denied = commit_decision(initiate, payout_facts("pg-order-2", "60.00"), idempotency_key="rec-2", store=store,
                             now=later, server_now=later)
    assert denied["outcome"] == "deny"
    by_id = store.records(RecordQuery(decision_id=first["decision_id"]))
    assert [(r.order_id, r.customer_account, r.amount, r.reason, r.committed) for r in by_id] == [
        ("pg-order-1", "jd_buyer_1", Decimal("12.34"), "price_difference", True)]
    assert [r.decision_id for r in store.records(RecordQuery(decision="payout.initiate", outcome="deny"))] == [
        denied["decision_id"]]
    window = store.records(RecordQuery(start=NOW, end=later))
    assert first["decision_id"] in [r.decision_id for r in window] and denied["decision_id"] not in [
        r.decision_id for r in window]
    csv_text = export_csv(by_id, lambda decision, value: rulebook.decision(decision).label("reason", value))
    assert csv_text.splitlines()[0] == ("\ufeff打款单号,订单号,客户账号,打款原因,状态,打款金额,店铺,申请时间,决策,原因代码,"
                                        "请求时间(now)")
    assert csv_text.splitlines()[1] == (f"{first['decision_id']},pg-order-1,jd_buyer_1,补差价,已通过,12.34,store-1,"
                                        "2026-11-20T10:00:03+08:00,payout.initiate,,2026-11-20T10:00:00+08:00")
    # the record keeps both instants, in PostgreSQL too
    assert [(r.evaluated_at, r.now) for r in by_id] == [(made_at, NOW)]


def test_a_key_redis_forgot_is_replayed_from_the_records(contact, redis_url, tmp_path):
    import redis

    store = open_store(redis_url, f"sqlite:///{tmp_path}/records.db")
    first = commit_decision(contact, contact_facts("o-1"), idempotency_key="old", store=store, now=NOW)
    redis.Redis.from_url(redis_url).delete("rulesvc:idempotency:old")  # as if its 7 days had passed
    again = commit_decision(contact, contact_facts("o-1"), idempotency_key="old", store=store, now=NOW)
    assert again["decision_id"] == first["decision_id"]
    with pytest.raises(IdempotencyConflict):
        redis.Redis.from_url(redis_url).delete("rulesvc:idempotency:old")
        commit_decision(contact, contact_facts("o-2"), idempotency_key="old", store=store, now=NOW)
    # nothing was counted twice: the stored count for buyer-1 is still one
    later = contact.evaluate(contact_facts("o-3"), now=NOW, counters=store.reader())
    assert later["reasons"][0]["message"]["en"].startswith("The customer already got 1 reminder today")
    assert len(store.records(RecordQuery())) == 1


def test_a_commit_as_of_a_later_day_does_not_forget_todays_counters(contact, sqlite_url):
    store = open_store(sqlite_url)
    assert commit_decision(contact, contact_facts("o-1"), idempotency_key="t1", store=store, now=NOW)["outcome"] == "allow"
    later = datetime.fromisoformat("2026-11-25T10:00:00+08:00")
    assert commit_decision(contact, contact_facts("o-2", "buyer-2"), idempotency_key="t2", store=store,
                           now=later)["outcome"] == "allow"
    again = commit_decision(contact, contact_facts("o-3"), idempotency_key="t3", store=store,
                            now=datetime.fromisoformat("2026-11-20T12:00:00+08:00"))
    assert codes(again) == ["DAILY_SMS_LIMIT_REACHED"]


def test_sqlite_counters_with_shared_records_replay_a_key_another_host_committed(contact, tmp_path):
    records = f"sqlite:///{tmp_path}/records.db"
    host_a = open_store(f"sqlite:///{tmp_path}/a.db", records)
    host_b = open_store(f"sqlite:///{tmp_path}/b.db", records)
    first = commit_decision(contact, contact_facts("o-1"), idempotency_key="shared", store=host_a, now=NOW)
    host_a.drain()  # host a's mover moves its record within a moment; host b looks there for keys it does not know
    assert commit_decision(contact, contact_facts("o-1"), idempotency_key="shared", store=host_b,
                           now=NOW)["decision_id"] == first["decision_id"]
    with pytest.raises(IdempotencyConflict):
        commit_decision(contact, contact_facts("o-9"), idempotency_key="shared", store=host_b, now=NOW)
    assert len(host_b.records(RecordQuery())) == 1


# --- Redis Cluster -----------------------------------------------------------------------------------------

def test_on_a_cluster_the_keys_of_a_commit_share_one_hash_slot(initiate, rulebook, redis_cluster, tmp_path):
    from redis.cluster import RedisCluster

    redis_cluster.flush()
    store = open_store(redis_cluster.url, f"sqlite:///{tmp_path}/records.db")
    store.mover.notify = lambda: None  # keep the outbox to look at
    # payout.initiate (partition: store.id) reserves four counters; two stores, two partitions
    for index, store_id in enumerate(["store-1", "store-2"]):
        facts = merged(payout_facts(f"order-{index}"), {"store": {"id": store_id}})
        assert commit_decision(initiate, facts, idempotency_key=f"p-{index}", store=store, now=NOW)["outcome"] == "allow"
    client: RedisCluster = store.client
    keys = [key.decode() for key in client.scan_iter(match="rulesvc:{*", target_nodes=RedisCluster.ALL_NODES)]
    by_tag: dict[str, set[int]] = {}
    for key in keys:
        by_tag.setdefault(key.split("}")[0], set()).add(client.keyslot(key))
    assert len(by_tag) == 2 and all(len(slots) == 1 for slots in by_tag.values()), by_tag
    assert sorted(key.split("}:")[1].split(":")[0] for key in keys) == ["counter"] * 8 + ["decision-key"] * 2 + ["outbox"] * 2
    # the records are found in the outbox, moved, and counted as on one server
    assert len(store.records(RecordQuery())) == 2 and store.drain() == 2 and store.drain() == 0
    # store-1's sub-account has 30.00 of its 100.00 today: a plain evaluation reads it in its partition
    assert codes(initiate.evaluate(payout_facts("next", "50.00"), now=NOW, counters=store.reader())) == []
    for index in range(2):  # two more at 30.00: 90.00; a fourth passes the 100.00
        commit_decision(initiate, payout_facts(f"more-{index}"), idempotency_key=f"m-{index}", store=store, now=NOW)
    assert codes(initiate.evaluate(payout_facts("next", "10.01"), now=NOW, counters=store.reader())) == [
        "QUOTA_DAILY_AMOUNT_EXCEEDED"]
    with pytest.raises(IdempotencyConflict):
        commit_decision(initiate, merged(payout_facts("order-0"), {"payout": {"amount": "31.00"}}), idempotency_key="p-0",
                        store=store, now=NOW)


def test_serve_refuses_a_cluster_store_for_rules_without_partitions(tmp_path):
    import shutil
    import subprocess
    import sys

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    payout = rules / "payout.yaml"
    text = payout.read_text(encoding="utf-8")
    line = next(number for number, content in enumerate(text.splitlines(), 1) if content == "  initiate:")
    payout.write_text(text.replace("    partition: store.id", "    # no partition", 1), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "cli.main", "serve", "--rules", str(rules), "--store",
                             "redis+cluster://127.0.0.1:7000"], capture_output=True, text=True, timeout=60,
                            cwd=RULES.parent)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{payout}:{line}:3: decision payout.initiate declares no partition, which a Redis Cluster store "
        "(--store redis+cluster://…) needs to keep the keys of a commit in one hash slot; add e.g. partition: customer.id",
        f"1 problem(s) in {rules}"]


@pytest.mark.parametrize("units", [0, 1, 5, 99, 100, 1234, 10**14 - 1])
def test_stored_fen_come_back_as_exact_yuan_with_two_decimals(rulebook, units):
    from engine.state.base import from_units, to_units

    [money] = [counter for counter in rulebook.decision("payout.initiate").decision.counters
               if counter.type.kind == "money"][:1]
    value = from_units(money, units)
    assert value == Decimal(units) / 100 and value.as_tuple().exponent == -2 and to_units(money, value) == units
