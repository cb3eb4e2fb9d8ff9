"""The service as operators run it: real `rulesvc serve` processes (gunicorn) sharing one Redis."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.errors import http_error_code

from .conftest import AUDIT, RULES, merged
from .servers import free_port, wait_for_port
from .test_payout import INITIATE_OK
from .test_timing import CONTACT

NOW = "2026-11-20T10:00:00+08:00"


def post(port: int, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(port: int, path: str) -> tuple[int, bytes]:
    """GET with the audit token (the records and the log need it; other paths ignore it)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=AUDIT)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


@pytest.fixture(params=["redis", "cluster"])
def two_instances(request, tmp_path):
    """Two `rulesvc serve` instances (2 workers each) sharing the counter store — one Redis server,
    or a 3-master Redis Cluster — and an SQLite record file."""
    if request.param == "redis":
        import redis

        store = request.getfixturevalue("redis_server").url
        redis.Redis.from_url(store).flushdb()
    else:
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        store = cluster.url
    records = f"sqlite:///{tmp_path}/records.db"
    ports, processes = [free_port(), free_port()], []
    for port in ports:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2",
             "--store", store, "--records", records, "--log", f"sqlite:///{tmp_path}/log.db"], cwd=RULES.parent,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        for port in ports:
            wait_for_port(port, timeout=30)
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


ROUNDS = 3  # races per start of the two instances (another customer each round)


@pytest.mark.slow
def test_two_instances_sharing_redis_allow_one_sms_of_80(two_instances):
    for round_number in range(ROUNDS):
        customer = {"id": f"buyer-{round_number}"}

        def contact(index: int, customer: dict = customer, round_number: int = round_number) -> tuple[int, dict]:
            facts = merged(CONTACT, {"order": {"id": f"order-{index}"}, "customer": customer})
            body = {"facts": facts, "now": NOW, "commit": True, "idempotency_key": f"sms-{round_number}-{index}"}
            return post(two_instances[index % 2], "/v1/decisions/recovery.contact", body)

        with ThreadPoolExecutor(max_workers=80) as pool:
            responses = list(pool.map(contact, range(80)))
        # no 503: a commit no longer writes SQL (its record goes through the outbox), the suspected cause
        assert [(status, body) for status, body in responses if status != 200] == []
        outcomes = [body["outcome"] for _, body in responses]
        assert outcomes.count("allow") == 1
        assert outcomes.count("defer") == 79
        allowed = outcomes.index("allow")

        # replaying the allowed request's key, on either instance, returns the same decision
        for port in two_instances:
            status, body = post(port, "/v1/decisions/recovery.contact", {
                "facts": merged(CONTACT, {"order": {"id": f"order-{allowed}"}, "customer": customer}), "now": NOW,
                "commit": True, "idempotency_key": f"sms-{round_number}-{allowed}"})
            assert status == 200 and body["decision_id"] == responses[allowed][1]["decision_id"]

        status, body = post(two_instances[0], "/v1/decisions/recovery.contact", {
            "facts": merged(CONTACT, {"order": {"id": "another-order"}, "customer": customer}), "now": NOW,
            "commit": True, "idempotency_key": f"sms-{round_number}-{allowed}"})
        assert status == 409 and body["error"]["code"] == "IDEMPOTENCY_CONFLICT"
        # all 80 recorded once, on either instance
        status, listed = get(two_instances[1], "/v1/decisions/records?decision=recovery.contact&limit=1000")
        ids = [record["decision_id"] for record in json.loads(listed)["records"]]
        assert len(ids) == len(set(ids)) == 80 * (round_number + 1)


@pytest.mark.slow
def test_committed_payouts_export_as_csv(two_instances):
    status, body = post(two_instances[0], "/v1/decisions/payout.initiate",
                        {"facts": INITIATE_OK, "now": NOW, "commit": True, "idempotency_key": "pay-1"})
    assert status == 200 and body["outcome"] == "allow"
    status, csv_bytes = get(two_instances[1], "/v1/decisions/records?decision=payout.initiate&format=csv")
    lines = csv_bytes.decode("utf-8-sig").splitlines()
    assert lines[0] == "打款单号,订单号,客户账号,打款原因,状态,打款金额,店铺,申请时间,决策,原因代码,请求时间(now)"
    assert lines[1].startswith(f"{body['decision_id']},order-1,jd_buyer_1,补差价,已通过,30.00,store-1,")
    status, listed = get(two_instances[1], f"/v1/decisions/records?id={body['decision_id']}")
    assert json.loads(listed)["records"][0]["committed"] is True


def test_commit_without_key_and_store_down(tmp_path, rulebook):
    from api import create_app

    from .servers import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    client = create_app(rulebook=rulebook, store_url=server.url, records_url=f"sqlite:///{tmp_path}/r.db",
                        log_url=f"sqlite:///{tmp_path}/log.db").test_client()
    response = client.post("/v1/decisions/recovery.contact", json={"facts": CONTACT, "now": NOW, "commit": True})
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"idempotency_key": ["a commit needs an idempotency_key"]}
    server.stop()
    response = client.post("/v1/decisions/recovery.contact",
                           json={"facts": CONTACT, "now": NOW, "commit": True, "idempotency_key": "k"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "STORE_UNAVAILABLE"
    # a decision without counters keeps answering
    enable = {"actor": {"role": "main"}, "store": {"channel": "pop", "business_mode": "sop", "subject_type": "enterprise",
              "after_sales_self_service": True, "enterprise_wallet_opened": True, "agreement_signed": True}}
    assert client.post("/v1/decisions/payout.enable", json={"facts": enable, "now": NOW}).status_code == 200


def get_json(port: int, path: str) -> tuple[int, dict]:
    try:
        status, body = get(port, path)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    return status, json.loads(body)


def test_serve_on_an_unformed_cluster_answers_503_until_it_forms(tmp_path):
    from .servers import RedisClusterServers
    from .test_store import ENABLE

    cluster = RedisClusterServers(tmp_path / "cluster")
    port = free_port()
    stderr = tmp_path / "stderr"
    try:
        cluster.start(form=False)  # cluster-enabled nodes, 0 of 16384 slots: RedisCluster(...) raises
        with stderr.open("wb") as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "1", "--store", cluster.url,
                 "--records", f"sqlite:///{tmp_path}/records.db", "--log", "none"], cwd=RULES.parent,
                stdout=subprocess.DEVNULL, stderr=errors)
        try:
            wait_for_port(port, timeout=30)
            assert get_json(port, "/healthz") == (200, {"status": "ok"})
            status, body = post(port, "/v1/decisions/payout.enable", {"facts": ENABLE, "now": NOW})
            assert status == 200 and body["outcome"] == "allow"
            commit = {"facts": CONTACT, "now": NOW, "commit": True, "idempotency_key": "unformed-1"}
            status, body = post(port, "/v1/decisions/recovery.contact", commit)
            assert status == 503 and body["error"]["code"] == "STORE_UNAVAILABLE", body
            assert body["error"]["message"].startswith("counter store unavailable: RedisClusterException (")
            assert "Traceback" not in json.dumps(body)
            status, body = get_json(port, "/readyz")
            assert status == 503 and body["error"]["code"] == "STORE_UNAVAILABLE"

            cluster.form()  # the same service, not restarted, connects and serves
            deadline = time.monotonic() + 15
            while get_json(port, "/readyz")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            status, body = get_json(port, "/readyz")
            assert status == 200 and body["store"] == "ok" and body["records"] == "ok"
            status, body = post(port, "/v1/decisions/recovery.contact", commit)
            assert status == 200 and body["outcome"] == "allow"
        finally:
            process.terminate()
            process.wait(timeout=20)
    finally:
        cluster.stop()
    log = stderr.read_text(encoding="utf-8")
    assert "Traceback" not in log
    assert "store unavailable: counter store unavailable: RedisClusterException" in log  # one line, with the cause
    assert "0 of 16384" in log


def worker_pids(master: int) -> list[int]:
    """gunicorn's workers: the children of its master (read from /proc, no extra tools needed)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.slow
def test_serve_reloads_on_edit_and_sighup_then_stops(tmp_path):
    import os
    import shutil
    import signal
    import time

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--rules", str(rules), "--port", str(port),
                                   "--workers", "2", "--store", f"sqlite:///{tmp_path}/store.db",
                                   "--log", f"sqlite:///{tmp_path}/log.db"],
                                  cwd=RULES.parent, stdout=subprocess.DEVNULL, stderr=log)
    facts = merged(INITIATE_OK, {"actor": {"role": "main"}, "payout": {"amount": "450.00"}})

    def versions_and_outcome() -> tuple[set[str], str]:
        # the decision's own version too: right after a SIGHUP old and new workers answer side by side
        seen = {json.loads(get(port, "/v1/rulesets/payout")[1])["version"] for _ in range(8)}
        decided = post(port, "/v1/decisions/payout.initiate", {"facts": facts, "now": NOW})[1]
        return seen | {decided["ruleset"]["version"]}, decided["outcome"]

    def eventually(expected_outcome: str) -> set[str]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            seen, outcome = versions_and_outcome()
            if len(seen) == 1 and outcome == expected_outcome:
                return seen
            time.sleep(0.3)
        raise AssertionError(f"workers did not converge on {expected_outcome}: {seen}, {outcome}\n{log_path.read_text()}")

    try:
        wait_for_port(port, timeout=30)
        before = eventually("allow")
        payout = rules / "payout.yaml"
        payout.write_text(payout.read_text(encoding="utf-8").replace('value: "500.00"', 'value: "400.00"'), encoding="utf-8")
        after_edit = eventually("deny")  # the workers picked the edit up
        assert after_edit != before
        time.sleep(4)  # and so did the master, whose watcher may run a beat later

        # a broken edit is refused while decisions keep flowing on the last good rules
        payout.write_text(payout.read_text(encoding="utf-8").replace("when: store.has_arrears", "when: store.has_arears"),
                          encoding="utf-8")
        time.sleep(2.5)
        assert eventually("deny") == after_edit
        problems = json.loads(get(port, "/v1/rulesets")[1])["last_reload"]["problems"]
        assert "undeclared fact store.has_arears" in problems[0]

        # a worker that dies now is replaced by a fork of the master: it starts from the last good
        # rules too, not from those the service booted with
        for pid in worker_pids(server.pid):
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        wait_for_port(port, timeout=30)
        assert eventually("deny") == after_edit

        # SIGHUP: gunicorn replaces its workers; the new ones load the files as they are now
        payout.write_text(payout.read_text(encoding="utf-8").replace("store.has_arears", "store.has_arrears")
                          .replace('value: "400.00"', 'value: "500.00"'), encoding="utf-8")
        os.kill(server.pid, signal.SIGHUP)
        assert eventually("allow") == before
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    errors = log_path.read_text()
    assert "Traceback" not in errors, errors


# --- SPEC §7.1 under gunicorn: its own errors in JSON, heavy requests beside /healthz -------------------

@pytest.fixture
def served(tmp_path):
    """`rulesvc serve` as shipped: 2 workers, SQLite store."""
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        # Its own log: the repository's var/decisions.db, shared by every test's server, grew past 100 MB
        # in a CI run and made a SIGTERM's last flush outlast the 30 s the fixture waits.
        server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port),
                                   "--store", f"sqlite:///{tmp_path}/store.db", "--log", f"sqlite:///{tmp_path}/log.db"],
                                  cwd=RULES.parent,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_port(port, timeout=30)
        yield port
    finally:
        stop_server(server, log_path)
    assert "Traceback" not in log_path.read_text()


def stop_server(server: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    """SIGTERM and wait (gunicorn's graceful stop lasts up to 30 s, the log flush up to 15 s more);
    one that does not stop is killed and the failure shows the end of what it printed."""
    server.terminate()
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(f"the server did not stop within {timeout} s of SIGTERM; its log ends:\n{tail}")


def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library tidying them up); the status, headers and body."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_gunicorn_answers_even_broken_requests_in_json(served):
    chunked_body = json.dumps({"facts": {}, "pad": "x" * (2 * 1024 * 1024)}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                      for part in (chunked_body[i:i + 65536] for i in range(0, len(chunked_body), 65536)))
    # The first three are gunicorn's to refuse, with a 4xx of its own choosing (a release may pick another);
    # the last two are ours. The code always follows the status, from our table.
    cases = {
        "garbage request line": (b"GARBAGE\r\n\r\n", None),
        "request line over 8190 bytes": (b"GET /v1/decisions/records?id=" + b"x" * 10_000 + b" HTTP/1.1\r\n\r\n", None),
        "101 headers": (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", None),
        "chunked body over 1 MiB": (b"POST /v1/decisions/payout.initiate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                    b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n", 413),
        "text/plain decision": (b"POST /v1/decisions/payout.initiate HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 2\r\nConnection: close\r\n\r\n{}", 415),
    }
    for name, (request, status) in cases.items():
        answered, headers, body = raw_request(served, request)
        assert answered == status if status else 400 <= answered < 500, (name, answered)
        assert headers["content-type"].startswith("application/json"), name
        assert json.loads(body)["error"]["code"] == http_error_code(answered), name


@pytest.mark.slow
def test_heavy_requests_leave_healthz_under_100_ms(served):
    """Four aliased 500-case scenario runs at once on the 2-worker service (two run, two get 429), while
    /healthz is asked every 20 ms: each heavy request answers within 3 s, /healthz within 100 ms."""
    import threading
    import time

    from .test_http_limits import aliased_scenario

    body = aliased_scenario(500)
    answers: list[tuple[int, str, float]] = []

    def heavy() -> None:
        started = time.perf_counter()
        request = urllib.request.Request(f"http://127.0.0.1:{served}/v1/scenarios/run", data=body,
                                         headers={"content-type": "application/yaml"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, code = response.status, "OK"
        except urllib.error.HTTPError as error:
            status, code = error.code, json.loads(error.read())["error"]["code"]
        answers.append((status, code, time.perf_counter() - started))

    get(served, "/healthz")
    runs = [threading.Thread(target=heavy) for _ in range(4)]
    for run in runs:
        run.start()
    latencies = []
    while any(run.is_alive() for run in runs):
        started = time.perf_counter()
        assert get(served, "/healthz")[0] == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.02)
    for run in runs:
        run.join()
    assert all(seconds < 3 for _, _, seconds in answers), answers
    assert {(status, code) for status, code, _ in answers} <= {(200, "OK"), (422, "LIMIT_EXCEEDED"), (429, "BUSY")}
    assert sum(status == 429 for status, _, _ in answers) >= 2  # at most one heavy run per worker
    latencies.sort()
    # On a machine shared with other jobs a single slow sample happens; nine in ten must be quick.
    assert latencies[int(len(latencies) * 0.9)] < 0.1, latencies
    warnings.warn(f"/healthz during heavy runs: {len(latencies)} requests, median "
                  f"{latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms", stacklevel=1)


def _healthz_latencies(port: int, seconds: float) -> list[float]:
    import time

    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            status = get(port, "/healthz")[0]
        except OSError:  # a timeout is as bad as it gets
            status = 0
        latencies.append(time.perf_counter() - started if status == 200 else 30.0)
        time.sleep(0.05)
    return sorted(latencies)


@pytest.mark.slow
def test_slow_and_idle_clients_hold_no_worker(served):
    """SPEC §7.1: 10 clients sending a decision body one byte every 2 s, 10 sending their headers that
    slowly, 400 idle connections and a dozen stalled malformed or huge requests, on the 2-worker ×
    4-thread service: /healthz answers in under 100 ms meanwhile (gunicorn's gthread worker gave each
    slow client a thread: /healthz timed out), and a client that never finishes its request gets a
    JSON 408 once its read timeout passes."""
    import socket
    import threading
    import time

    from cli.worker import HEAD_READ_TIMEOUT_SECONDS

    body = json.dumps({"facts": merged(INITIATE_OK, {})}).encode()
    slow_body = (b"POST /v1/decisions/payout.initiate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body))
    slow_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"x" * 100
    idle = [socket.create_connection(("127.0.0.1", served)) for _ in range(400)]
    slow = [socket.create_connection(("127.0.0.1", served)) for _ in range(20)]
    # And what a reviewer found (the worker must not hand these on unfinished, nor let them fill its
    # memory budget against small requests): a chunk-size line that never ends, one chunk far larger
    # than the body maximum, bodies announced just under 16 MiB that stop after 1 MiB.
    chunked = (b"POST /v1/decisions/payout.initiate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
    stalled = [chunked + b"1;" + b"a" * 5000, chunked + b"2000000\r\nabc"] * 5 + [
        b"POST /v1/decisions/payout.initiate/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (16 * 1024 * 1024 - 1) + b" " * (1024 * 1024)] * 8
    attackers = [socket.create_connection(("127.0.0.1", served)) for _ in stalled]
    for sock, first in zip(attackers, stalled, strict=True):
        sock.sendall(first)
    stop = threading.Event()

    def trickle(sock: socket.socket, first: bytes) -> None:
        try:
            sock.sendall(first)
            while not stop.wait(2.0):
                sock.sendall(b"x")
        except OSError:
            pass  # closed by the server's read timeout

    senders = [threading.Thread(target=trickle, args=(sock, slow_body if index < 10 else slow_head), daemon=True)
               for index, sock in enumerate(slow)]
    for sender in senders:
        sender.start()
    try:
        time.sleep(1.0)
        latencies = _healthz_latencies(served, 6.0)
        assert latencies[int(len(latencies) * 0.9)] < 0.1, latencies
        assert post(served, "/v1/decisions/payout.initiate", {"facts": merged(INITIATE_OK, {})})[0] == 200
        warnings.warn(f"/healthz beside 20 slow and 400 idle clients: {len(latencies)} requests, median "
                      f"{latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms", stacklevel=1)
    finally:
        stop.set()
        for sock in idle + slow + attackers:
            sock.close()
    # A request head that never ends: answered 408 in JSON after the head timeout, the connection closed.
    with socket.create_connection(("127.0.0.1", served), timeout=HEAD_READ_TIMEOUT_SECONDS + 10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "REQUEST_TIMEOUT"
    assert time.monotonic() - started < HEAD_READ_TIMEOUT_SECONDS + 3


def test_pipelined_and_expect_continue_requests_are_answered_once_each(served):
    """Requests read whole by the worker's event loop: two pipelined on one connection get two answers;
    a body sent only after ``100 Continue`` gets exactly one interim response; a chunked body is framed."""
    import socket

    body = json.dumps({"facts": merged(INITIATE_OK, {})}).encode()
    one = (b"POST /v1/decisions/payout.initiate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with socket.create_connection(("127.0.0.1", served), timeout=30) as sock:
        sock.sendall(one + one[:40])  # the second one arrives in two parts
        sock.sendall(one[40:])
        answers = b""
        while answers.count(b"HTTP/1.1 200") < 2:
            answers += sock.recv(65536)
    with socket.create_connection(("127.0.0.1", served), timeout=30) as sock:
        head, _, payload = one.partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(payload)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b"100 Continue" not in answer, answer
    chunked = (b"POST /v1/decisions/payout.initiate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               + b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x;ext=1\r\n%s\r\n" % (len(body) - 10, body[10:]) + b"0\r\n\r\n")
    status, _, answer = raw_request(served, chunked)
    assert status == 200 and json.loads(answer)["outcome"] == "allow", answer


# --- SIGKILL at any moment of a commit (SPEC §7.1; issue 12, finding 6) ----------------------------------

def _records_file_rows(url: str) -> list[str]:
    """The decision ids in an SQLite record file itself (no outbox)."""
    return _sqlite_column(url, "select decision_id from decision_records")


def _log_file_rows(url: str) -> list[str]:
    """The decision ids in an SQLite decision log itself (no outbox); [] before the log file is made."""
    import sqlite3

    try:
        return _sqlite_column(url, "select decision_id from decision_log")
    except sqlite3.OperationalError:  # no table yet
        return []


def _sqlite_column(url: str, query: str) -> list[str]:
    import sqlite3

    with sqlite3.connect(url[len("sqlite:///"):]) as connection:
        return [row[0] for row in connection.execute(query)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_no_answered_commit_is_lost_or_doubled_while_workers_are_killed(backend, request, tmp_path):
    """300 committed contacts (150 customers, two orders each) from 8 clients that retry with the same
    key until answered, while a worker of the 2-worker service is SIGKILLed every 0.25 s: every answered
    decision ends up in the records and in the decision log, exactly once (SPEC §7.1, §10)."""
    import os
    import signal
    import threading
    import time

    if backend == "redis":
        import redis

        server = request.getfixturevalue("redis_server")
        redis.Redis.from_url(server.url).flushdb()
        store, records = server.url, f"sqlite:///{tmp_path}/records.db"
    else:
        store = records = f"sqlite:///{tmp_path}/store.db"
    port = free_port()
    log_path = tmp_path / "server.log"
    decision_log = f"sqlite:///{tmp_path}/decisions.db"
    with log_path.open("w") as log:
        service = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2",
                                    "--store", store, "--records", records, "--log", decision_log], cwd=RULES.parent,
                                   stdout=subprocess.DEVNULL, stderr=log)
    contacts = [(f"contact-{index}", merged(CONTACT, {"order": {"id": f"order-{index}"},
                                                       "customer": {"id": f"customer-{index // 2}"}}))
                for index in range(300)]
    answers: dict[str, dict] = {}
    failures: list[str] = []
    interrupted: list[str] = []
    queue = list(reversed(contacts))
    lock = threading.Lock()
    done = threading.Event()

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                key, facts = queue.pop()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the same key until answered: killed mid-way is no answer
                try:
                    status, body = post(port, "/v1/decisions/recovery.contact",
                                        {"facts": facts, "now": NOW, "commit": True, "idempotency_key": key})
                except (OSError, urllib.error.URLError, http.client.HTTPException, json.JSONDecodeError):
                    with lock:  # the worker died with the request (or was booting), or mid-answer: no answer
                        interrupted.append(key)
                    time.sleep(0.05)
                    continue
                if status == 200:
                    with lock:
                        answers[key] = body
                    break
                if status != 503:
                    failures.append(f"{key}: {status} {body}")
                    break
                time.sleep(0.05)
            else:
                failures.append(f"{key}: not answered in 120 s")

    kills = 0

    def killer() -> None:
        nonlocal kills
        while not done.wait(0.25):
            workers = worker_pids(service.pid)
            if workers:
                try:
                    os.kill(workers[kills % len(workers)], signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass

    try:
        wait_for_port(port, timeout=30)
        clients = [threading.Thread(target=client) for _ in range(8)]
        killing = threading.Thread(target=killer)
        killing.start()
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        done.set()
        killing.join()
        assert failures == []
        assert len(answers) == 300
        assert kills >= 2 and interrupted, (kills, interrupted)  # workers died with requests in flight

        # every customer: one SMS allowed, the other contact of the day deferred by the daily limit
        by_customer: dict[str, list[str]] = {}
        for key, facts in contacts:
            by_customer.setdefault(facts["customer"]["id"], []).append(answers[key]["outcome"])
        assert all(sorted(outcomes) == ["allow", "defer"] for outcomes in by_customer.values()), by_customer

        # every answered decision is in the records exactly once (record search: store and outbox)
        status, listed = get(port, "/v1/decisions/records?decision=recovery.contact&limit=1000")
        listed_ids = [record["decision_id"] for record in json.loads(listed)["records"]]
        answered_ids = sorted(body["decision_id"] for body in answers.values())
        assert sorted(listed_ids) == answered_ids

        # and, once the outbox is moved, in the record file itself, exactly once
        deadline = time.monotonic() + 30
        while sorted(_records_file_rows(records)) != answered_ids and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sorted(_records_file_rows(records)) == answered_ids

        # and in the decision log, exactly once each: their entries went through the same outbox
        # (issue 20, item 8: 79 of 3,000 were missing when the log was an in-memory queue)
        while sorted(_log_file_rows(decision_log)) != answered_ids and time.monotonic() < deadline + 30:
            time.sleep(0.2)
        logged = _log_file_rows(decision_log)
        assert len(logged) == len(set(logged)), "a committed decision logged twice"
        assert sorted(answered_ids) == sorted(logged), f"{len(set(answered_ids) - set(logged))} answered, not logged"
    finally:
        done.set()
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    warnings.warn(f"kill test ({backend}): 300 contacts answered, {kills} workers SIGKILLed, "
                  f"{len(interrupted)} requests cut off and retried", stacklevel=1)


# --- reloads under traffic -----------------------------------------------------------------------------------

def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


@pytest.mark.slow
def test_1000_reloads_under_concurrent_traffic(tmp_path):
    """1,000 reloads (POST /v1/rulesets/reload) while 4 clients ask decisions: no 5xx, no worker crash,
    no leak (each reload compiles 20 durable_rules rulesets and drops the previous ones)."""
    import os
    import shutil
    import signal
    import threading
    import time

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    port, token = free_port(), "reload-token"
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        service = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--rules", str(rules), "--port", str(port),
                                    "--store", f"sqlite:///{tmp_path}/store.db", "--log", f"sqlite:///{tmp_path}/log.db"],
                                   cwd=RULES.parent, env={**os.environ, "RULESVC_ADMIN_TOKEN": token},
                                   stdout=subprocess.DEVNULL, stderr=log)
    payout = rules / "payout.yaml"
    texts = [payout.read_text(encoding="utf-8")]
    texts.append(texts[0].replace('value: "500.00"', 'value: "400.00"'))
    facts = merged(INITIATE_OK, {"actor": {"role": "main"}, "payout": {"amount": "450.00"}})
    statuses: dict[str, list[int]] = {"reload": [], "decision": []}
    outcomes: set[str] = set()
    stop = threading.Event()
    lock = threading.Lock()

    def reloads(count: int) -> None:
        for _ in range(count):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/rulesets/reload", method="POST",
                                             headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            with lock:
                statuses["reload"].append(status)

    def decisions(explain: bool) -> None:
        while not stop.is_set():
            for decision, body in (("payout.initiate", {"facts": facts, "now": NOW, "explain": explain}),
                                   ("recovery.contact", {"facts": CONTACT, "now": NOW, "explain": explain})):
                status, answer = post(port, f"/v1/decisions/{decision}", body)
                with lock:
                    statuses["decision"].append(status)
                    if decision == "payout.initiate" and status == 200:
                        outcomes.add(answer["outcome"])

    try:
        wait_for_port(port, timeout=30)
        deadline = time.monotonic() + 30
        while len(workers := sorted(worker_pids(service.pid))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # both workers booted
        get(port, "/healthz")
        assert len(workers) == 2
        rss_before = {pid: _rss_mib(pid) for pid in workers}
        traffic = [threading.Thread(target=decisions, args=(index % 2 == 0,)) for index in range(4)]
        for thread in traffic:
            thread.start()
        started = time.monotonic()
        for round_number in range(10):  # the rules change every 100 reloads
            payout.write_text(texts[(round_number + 1) % 2], encoding="utf-8")
            reloaders = [threading.Thread(target=reloads, args=(50,)) for _ in range(2)]
            for thread in reloaders:
                thread.start()
            for thread in reloaders:
                thread.join()
        stop.set()
        for thread in traffic:
            thread.join()
        seconds = time.monotonic() - started
        assert len(statuses["reload"]) == 1000 and set(statuses["reload"]) == {200}
        assert statuses["decision"] and set(statuses["decision"]) == {200}
        assert outcomes == {"allow", "deny"}  # both versions served, nothing else
        assert sorted(worker_pids(service.pid)) == workers  # no worker crashed or was replaced
        grown = {pid: _rss_mib(pid) - rss_before[pid] for pid in workers}
        # the leak this guards against: ~250 KB per used ruleset and reload, 500 MB a worker here
        assert all(growth < 150 for growth in grown.values()), grown
    finally:
        stop.set()
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    assert "Traceback" not in log_path.read_text()
    warnings.warn(f"1,000 reloads in {seconds:.0f} s beside {len(statuses['decision'])} decisions; worker RSS growth "
                  + ", ".join(f"{growth:.1f} MiB" for growth in grown.values()), stacklevel=1)
