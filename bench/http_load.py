"""HTTP: ``rulesvc serve`` against a no-op Flask app under the same gunicorn setup, loopback only.

Both servers run at once and take turns: each gets the same POST body at a fixed concurrency for a
fixed time per round from ``wrk`` in another process (installed by the bench when missing). Then the
batch endpoint is timed with one client, one request at a time (one worker, so one core, busy at once).
Ours runs as it is served: its decisions are appended to the decision log.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.common import DEFAULT_THREADS

from .factsets import PAYOUT, fact_sets
from .paths import ROOT

HOST = "127.0.0.1"
WORKERS = 2
CONCURRENCY = 8
EXAMPLE_NOW = "2026-11-20T10:00:00+08:00"
READY_TIMEOUT_S = 60
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open("{body_path}", "rb")
wrk.body = file:read("*a")
file:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d, "non2xx": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds


class ServerFailed(RuntimeError):
    """A server did not come up, or answered something unexpected."""


# --- servers ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def ours_command(port: int, workdir: Path) -> list[str]:
    """rulesvc as it is served: SQLite store, and every decision appended to the decision log."""
    return [sys.executable, "-m", "cli.main", "serve", "--host", HOST, "--port", str(port), "--workers", str(WORKERS),
            "--store", f"sqlite:///{workdir / 'store.db'}", "--log", f"sqlite:///{workdir / 'decisions.db'}"]


def noop_command(port: int, worker_class: str) -> list[str]:
    """The no-op app with ours' workers, worker class and threads per worker."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}", "--workers", str(WORKERS),
            "--worker-class", worker_class, "--threads", str(DEFAULT_THREADS), "bench.noop_app:app"]


def granian_command(port: int, app: str) -> list[str]:
    """A WSGI app under granian (Rust, hyper): the same worker and thread counts as ours."""
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", HOST, "--port", str(port),
            "--workers", str(WORKERS), "--blocking-threads", str(DEFAULT_THREADS), "--no-ws", app]


def granian_environment(workdir: Path) -> dict[str, str]:
    """api/wsgi.py's settings: ours as `rulesvc serve` runs it (SQLite store, every decision logged)."""
    return {"RULESVC_STORE": f"sqlite:///{workdir / 'store-granian.db'}",
            "RULESVC_LOG": f"sqlite:///{workdir / 'decisions-granian.db'}"}


def _log_tail(log_path: Path, lines: int = 30) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"server exited with {process.returncode}:\n{_log_tail(log_path)}")
        try:
            status, _ = request(port, "GET", "/healthz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise ServerFailed(f"server not ready after {READY_TIMEOUT_S}s:\n{_log_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the gunicorn master we started (it stops its workers), SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running(command: list[str], port: int, log_path: Path,
            environment: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, **(environment or {})})
        try:
            _wait_ready(port, process, log_path)
            yield process
        finally:
            _stop(process)


def worker_class_of(log_path: Path) -> str:
    """The worker class gunicorn reports at start ("Using worker: sync")."""
    found = re.search(r"Using worker: (\S+)", log_path.read_text(errors="replace"))
    if not found:
        raise ServerFailed(f"no worker class in the rulesvc log:\n{_log_tail(log_path)}")
    return found.group(1)


# --- requests -----------------------------------------------------------------------------------------

def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 60) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def example_body() -> bytes:
    facts = json.loads((ROOT / "examples" / "payout-initiate.json").read_text(encoding="utf-8"))
    return json.dumps({"now": EXAMPLE_NOW, "facts": facts}).encode()


def check_decision(port: int, path: str, body: bytes) -> str:
    status, payload = request(port, "POST", path, body)
    if status != 200:
        raise ServerFailed(f"POST {path} answered {status}: {payload[:500]!r}")
    return json.loads(payload)["outcome"]


# --- load generators ------------------------------------------------------------------------------------

def wrk_load(port: int, path: str, body: bytes, seconds: float, workdir: Path) -> LoadResult:
    body_path = workdir / "body.json"
    body_path.write_bytes(body)
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body_path=body_path))
    completed = subprocess.run(
        ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), f"http://{HOST}:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next((line for line in completed.stdout.splitlines() if line.startswith("BENCH ")), None)
    if line is None:
        raise ServerFailed(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")
    summary = json.loads(line.removeprefix("BENCH "))
    return LoadResult(summary["requests"], summary["duration_us"] / 1e6, summary["p50_us"] / 1000,
                      summary["p99_us"] / 1000, summary["errors"], summary["non2xx"])


def ensure_wrk() -> str:
    """wrk, the load generator (one C process, not Python threads that take the servers' CPU): installed
    from Debian's packages when missing and the bench runs as root; the bench refuses to run without it."""
    if shutil.which("wrk") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if shutil.which("wrk") is None:
        raise ServerFailed("wrk is not installed: apt-get install wrk (the bench's HTTP figures need it)")
    return "wrk"


def load(port: int, path: str, body: bytes, seconds: float, workdir: Path) -> LoadResult:
    return wrk_load(port, path, body, seconds, workdir)


def checked_load(port: int, path: str, body: bytes, seconds: float, workdir: Path) -> LoadResult:
    result = load(port, path, body, seconds, workdir)
    if result.errors or result.non2xx:
        raise ServerFailed(f"POST {path}: {result.errors} socket errors, {result.non2xx} non-2xx answers under load")
    return result


def combined(results: list[LoadResult]) -> LoadResult:
    """Several runs as one: requests over total time, the median run's percentiles."""
    return LoadResult(sum(r.requests for r in results), sum(r.seconds for r in results),
                      statistics.median(r.p50_ms for r in results), statistics.median(r.p99_ms for r in results),
                      sum(r.errors for r in results), sum(r.non2xx for r in results))


def interleaved_loads(ports: dict[str, int], path: str, body: bytes, rounds: int, seconds: float,
                      workdir: Path) -> dict[str, LoadResult]:
    """The servers take turns, so that whatever else loads the machine weighs on each alike."""
    runs: dict[str, list[LoadResult]] = {name: [] for name in ports}
    for _ in range(rounds):
        for name, port in ports.items():
            runs[name].append(checked_load(port, path, body, seconds, workdir))
    return {name: combined(results) for name, results in runs.items()}


# --- batch ----------------------------------------------------------------------------------------------

def batch_body(items: int, seed: int) -> bytes:
    mix = fact_sets(PAYOUT, items, seed)
    return json.dumps({"items": [{"facts": fact_set.facts, "now": fact_set.now.isoformat()} for fact_set in mix]}).encode()


def batch_rate(port: int, body: bytes, items: int, requests: int) -> float:
    """Decisions per second of POST /batch, one request at a time; every item must have been decided."""
    path = f"/v1/decisions/{PAYOUT}/batch"
    durations = []
    for _ in range(requests + 1):  # the first one warms up
        started = time.perf_counter()
        status, payload = request(port, "POST", path, body)
        durations.append(time.perf_counter() - started)
        results = json.loads(payload).get("results", []) if status == 200 else []
        failed = [result for result in results if "error" in result]
        if status != 200 or len(results) != items or failed:
            raise ServerFailed(f"POST {path} answered {status} with {len(results)} results, {len(failed)} errors: "
                               f"{(failed or [payload[:300]])[0]!r}")
    return items / statistics.median(durations[1:])


# --- the section ------------------------------------------------------------------------------------------

def run_http(warmup_s: float, rounds: int, seconds: float, batch_items: int, batch_requests: int,
             seed: int) -> dict[str, Any]:
    path = f"/v1/decisions/{PAYOUT}"
    body = example_body()
    with tempfile.TemporaryDirectory(prefix="rulesvc-bench-") as tmp:
        workdir = Path(tmp)
        ports = {name: free_port() for name in ("ours", "noop", "noop_gthread", "ours_granian", "noop_granian")}
        generator = ensure_wrk()
        with running(ours_command(ports["ours"], workdir), ports["ours"], workdir / "ours.log"):
            worker_class = worker_class_of(workdir / "ours.log")
            # The no-op twice: with ours' worker, and with gunicorn's stock gthread one, which hands a
            # request to a thread before it has arrived whole: the price of holding no thread for slow clients.
            # And both apps under granian (Rust, hyper), the server the issue asked to try beside it.
            with (running(noop_command(ports["noop"], worker_class), ports["noop"], workdir / "noop.log"),
                  running(noop_command(ports["noop_gthread"], "gthread"), ports["noop_gthread"],
                          workdir / "noop_gthread.log"),
                  running(granian_command(ports["ours_granian"], "api.wsgi:app"), ports["ours_granian"],
                          workdir / "ours_granian.log", granian_environment(workdir)),
                  running(granian_command(ports["noop_granian"], "bench.noop_app:app"), ports["noop_granian"],
                          workdir / "noop_granian.log")):
                outcome = check_decision(ports["ours"], path, body)
                for name, port in ports.items():
                    if name != "ours":
                        check_decision(port, path, body)
                for port in ports.values():
                    load(port, path, body, warmup_s, workdir)
                results = interleaved_loads(ports, path, body, rounds, seconds, workdir)
            batch_per_s = batch_rate(ports["ours"], batch_body(batch_items, seed), batch_items, batch_requests)
    ours, noop, gthread = results["ours"], results["noop"], results["noop_gthread"]
    granian, noop_granian = results["ours_granian"], results["noop_granian"]
    return {
        "ours_per_s": ours.per_s, "noop_per_s": noop.per_s, "ours_per_noop": ours.per_s / noop.per_s,
        "noop_gthread_per_s": gthread.per_s, "noop_gthread_p50_ms": gthread.p50_ms,
        "noop_per_noop_gthread": noop.per_s / gthread.per_s,
        "ours_granian_per_s": granian.per_s, "ours_granian_p50_ms": granian.p50_ms,
        "noop_granian_per_s": noop_granian.per_s, "noop_granian_p50_ms": noop_granian.p50_ms,
        "ours_granian_per_ours": granian.per_s / ours.per_s,
        "ours_p50_ms": ours.p50_ms, "ours_p99_ms": ours.p99_ms, "noop_p50_ms": noop.p50_ms, "noop_p99_ms": noop.p99_ms,
        "batch_per_s": batch_per_s,
        "setup": {"workers": WORKERS, "worker_class": worker_class, "threads_per_worker": DEFAULT_THREADS,
                  "concurrency": CONCURRENCY, "rounds": rounds,
                  "seconds_per_round": seconds, "warmup_seconds": warmup_s, "load_generator": generator,
                  "percentiles": "median over the rounds", "request": f"POST {path}", "request_outcome": outcome,
                  "request_now": EXAMPLE_NOW, "body_bytes": len(body), "batch_items": batch_items,
                  "batch_requests": batch_requests, "batch_statistic": "median request"},
    }
