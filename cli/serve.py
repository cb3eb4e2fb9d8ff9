"""``rulesvc serve``: the Flask app under gunicorn, with rule reloads, metrics and JSON access logs."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import tempfile
from datetime import datetime
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from engine.jsontext import dumps_text

from .common import DEFAULT_THREADS
from .worker import WholeRequestWorker

# gunicorn's own request limits, at their maxima: a request line (method, path, query) or a header of
# up to 8190 bytes, 100 headers. Longer ones only come from broken or hostile clients, and even they
# get a JSON answer (cli/worker.py).
REQUEST_LIMITS = {"limit_request_line": 8190, "limit_request_field_size": 8190, "limit_request_fields": 100}
# A worker is restarted only when it stops answering gunicorn's heartbeat for this long. With threads
# a long request does not stop the heartbeat, and every heavy request has a time budget far shorter.
WORKER_TIMEOUT_SECONDS = 60


class JsonAccessLogger(glogging.Logger):
    """One JSON object per request on the access log, built straight from the request (gunicorn's
    ``atoms()`` copies every header and environ entry first: measured, a fifth of a decision request's CPU)."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.syslog):
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        line = dumps_text({
            "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "remote": environ.get("REMOTE_ADDR", "-"), "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"), "query": environ.get("QUERY_STRING"),
            "status": int(status) if str(status).isdigit() else status, "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3), "pid": os.getpid(),
            "agent": environ.get("HTTP_USER_AGENT", "-"),
        })
        # Straight to the handlers: Logger.info would first walk the stack to find its caller.
        self.access_log.handle(logging.LogRecord(self.access_log.name, logging.INFO, __file__, 0, line, None, None))


class RulesvcServer(BaseApplication):
    """gunicorn, configured from our command-line options instead of its own."""

    def __init__(self, options: dict[str, Any], app_options: dict[str, Any]):
        self.options = options
        self.app_options = app_options
        self.flask_app: Any = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("post_fork", self._post_fork)
        self.cfg.set("child_exit", _child_exit)
        self.cfg.set("worker_exit", self._worker_exit)

    def load(self):
        from api import create_app  # after PROMETHEUS_MULTIPROC_DIR is set

        self.flask_app = create_app(**self.app_options)
        return self.flask_app

    def _when_ready(self, server: Any) -> None:
        self.flask_app.extensions["rulesvc"].watch_in_master()

    def _post_fork(self, server: Any, worker: Any) -> None:
        # The rules were compiled once in the master (and kept current there); a worker started by
        # SIGHUP (or after an edit) loads the files as they are now, then watches them.
        state = self.flask_app.extensions["rulesvc"]
        state.reload_if_changed()
        state.watch()


    def _worker_exit(self, server: Any, worker: Any) -> None:
        # SIGTERM (and any graceful stop): what the decision log still holds is written before the worker goes.
        state = self.flask_app.extensions["rulesvc"]
        if state.shadow is not None:  # its runs go to the log: let them finish first
            state.shadow.wait_idle(5.0)
        if state.decision_log is not None:
            state.decision_log.close()


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def bind_problem(host: str, port: int) -> str | None:
    """Why gunicorn could not listen on ``host:port``, in one line naming ``--port``; None when it can.

    (gunicorn itself retries for five seconds and exits with no hint.) The probe binds as gunicorn
    does, with SO_REUSEADDR, so a port left in TIME_WAIT by a previous run is not refused.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as error:
        return f"cannot serve on {host}: {error}; choose the address with --host (make run HOST=…)"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return (f"{host}:{port} is already in use (another rulesvc?); choose another port with --port, "
                        f"e.g. rulesvc serve --port {port + 1} (make run PORT={port + 1})")
            return f"cannot listen on {host}:{port}: {error.strerror}; choose another with --host/--port"
    return None


def serve(rules_dir: str, host: str, port: int, workers: int, store_url: str, records_url: str | None,
          threads: int = DEFAULT_THREADS, *, log_url: str, log_sample: float = 1.0, shadow_dir: str | None = None,
          rules_store_url: str | None = None) -> None:
    metrics_dir = tempfile.mkdtemp(prefix="rulesvc-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    master = os.getpid()
    try:
        RulesvcServer({
            "bind": f"{host}:{port}",
            "workers": workers,
            # Threads: a heavy request (one per worker at a time) leaves the others answering; each
            # request reaches a thread only once it has arrived whole (slow clients hold no thread).
            "worker_class": f"{WholeRequestWorker.__module__}.{WholeRequestWorker.__name__}",
            "threads": threads,
            "timeout": WORKER_TIMEOUT_SECONDS,
            **REQUEST_LIMITS,
            # Compile the rules once in the master: a broken rule file stops the start with its problems.
            "preload_app": True,
            "accesslog": "-",
            "logger_class": JsonAccessLogger,
            "control_socket_disable": True,
        }, {"rules_dir": rules_dir, "store_url": store_url, "records_url": records_url, "log_url": log_url,
            "log_sample": log_sample, "shadow_dir": shadow_dir, "rules_store_url": rules_store_url}).run()
    finally:
        # Workers are forks of this frame and unwind through here when they exit: only the master cleans up.
        if os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
