"""A module-level WSGI app for servers other than ``rulesvc serve`` (the bench runs it under granian).

Configured from the environment: ``RULESVC_RULES`` (default ``rules``), ``RULESVC_STORE`` (default the
embedded SQLite store) and ``RULESVC_LOG`` (default ``sqlite:///var/decisions.db``; ``none``: no log).
``rulesvc serve`` remains the supported server: it compiles the rules once before forking, reloads on
SIGHUP, flushes the decision log on SIGTERM and reads each request whole before a thread takes it.
"""

from __future__ import annotations

import os

from engine.audit.log import DEFAULT_LOG_URL
from engine.state import DEFAULT_STORE_URL

from .app import create_app

app = create_app(os.environ.get("RULESVC_RULES") or "rules",
                 store_url=os.environ.get("RULESVC_STORE") or DEFAULT_STORE_URL,
                 log_url=os.environ.get("RULESVC_LOG") or DEFAULT_LOG_URL)
