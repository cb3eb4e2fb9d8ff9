"""Real Redis and PostgreSQL servers for the tests, started on loopback in temporary directories.

.ci/run installs them (Debian packages) and sets RULESVC_REQUIRE_SERVERS=1, so a missing server fails
the run there; on a developer machine without them the tests that need them are skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing(what: str) -> None:
    if os.environ.get("RULESVC_REQUIRE_SERVERS"):
        pytest.fail(f"{what} is not installed (RULESVC_REQUIRE_SERVERS is set)")
    pytest.skip(f"{what} is not installed; .ci/run installs it")


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class RedisServer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _missing("redis-server")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def replicate(self, primary: RedisServer | None) -> None:
        """Make this server a read-only replica of ``primary`` (``REPLICAOF``), or a primary again with None."""
        target = ["no", "one"] if primary is None else ["127.0.0.1", str(primary.port)]
        subprocess.run([shutil.which("redis-cli"), "-p", str(self.port), "replicaof", *target], check=True,
                       stdout=subprocess.DEVNULL, timeout=10)


class PostgresServer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.bin = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def start(self) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates:
            _missing("PostgreSQL")
        self.bin = Path(candidates[-1]).parent
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.directory / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        if self.bin is not None:
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")

    def start_again(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-l", str(self.directory / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1", "start")


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + 10_000 > 65_535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port


class RedisClusterServers:
    """A 3-master Redis Cluster on loopback (redis-server --cluster-enabled, redis-cli --cluster create)."""

    def __init__(self, directory: Path, masters: int = 3):
        self.directory = directory
        self.ports = [free_cluster_port() for _ in range(masters)]
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self, form: bool = True) -> None:
        """Start the nodes and, with ``form``, make them one cluster; without it they stay an unformed
        cluster (cluster-enabled, no slot assigned: every command is CLUSTERDOWN) until :meth:`form`."""
        server = shutil.which("redis-server")
        if server is None or shutil.which("redis-cli") is None:
            _missing("redis-server")
        for port in self.ports:
            directory = self.directory / str(port)
            directory.mkdir(parents=True, exist_ok=True)
            self.processes.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", f"nodes-{port}.conf", "--save", "", "--appendonly", "no",
                 "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            wait_for_port(port)
        if form:
            self.form()

    def form(self) -> None:
        """Assign the 16384 slots to the nodes (redis-cli --cluster create) and wait for cluster_state:ok."""
        cli = shutil.which("redis-cli")
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [subprocess.run([cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True,
                                     timeout=10).stdout for port in self.ports]
            if all("cluster_state:ok" in state for state in states):
                return
            time.sleep(0.2)
        raise RuntimeError("the Redis Cluster did not come up")

    def flush(self) -> None:
        for port in self.ports:
            subprocess.run([shutil.which("redis-cli"), "-p", str(port), "flushall"], check=True,
                           stdout=subprocess.DEVNULL, timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)
        self.processes = []
