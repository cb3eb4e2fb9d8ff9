"""The decision log (SPEC §10): every decision with its facts (sensitive ones masked), the counters it
read, its outcome and its ruleset version; and every ruleset version that was ever active.

Typical use::

    log = open_log("sqlite:///var/decisions.db")
    log.keep_versions(rulebook)
    log.record(compiled, evaluation, result=result, decision_id=..., source="http", duration_us=...)
    LogDatabase("sqlite:///var/decisions.db").query(LogQuery(decision="payout.initiate"))
"""

from __future__ import annotations

from pathlib import Path

from engine.audit.log.entry import SOURCES, build_entry, verdict_of_result
from engine.audit.log.masking import KEY_VARIABLE, MASK_PREFIX, Masker, is_masked, log_key
from engine.audit.log.sql import LogDatabase, LogQuery, LogUnavailable, sqlite_path
from engine.audit.log.writer import DecisionLog
from engine.language.model import sensitive_paths

DEFAULT_LOG_URL = "sqlite:///var/decisions.db"
NO_LOG = "none"


def key_file(url: str) -> Path:
    """Where the generated masking key is kept when ``RULESVC_LOG_KEY`` is not set: beside an SQLite
    log (``decisions.db.key``), else under ``var/``."""
    path = sqlite_path(url)
    return path.with_name(path.name + ".key") if path is not None else Path("var") / "decision-log.key"


def open_log(url: str = DEFAULT_LOG_URL, *, sample: float = 1.0, **options: object) -> DecisionLog | None:
    """The decision log at ``url`` (``sqlite:///PATH``, ``postgresql://…``), or None for ``none``."""
    if url == NO_LOG:
        return None
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise ValueError(f"unsupported decision log URL {url!r}: use sqlite:///PATH, postgresql://… or none")
    try:
        key = log_key(key_file(url))
    except OSError as error:
        raise LogUnavailable(f"cannot keep the decision log's key at {key_file(url)}: {error.strerror or error} "
                             f"(set {KEY_VARIABLE}, or choose another --log)") from None
    return DecisionLog(LogDatabase(url), Masker(key), sample=sample, **options)  # type: ignore[arg-type]


__all__ = [
    "DEFAULT_LOG_URL", "KEY_VARIABLE", "MASK_PREFIX", "NO_LOG", "SOURCES", "DecisionLog", "LogDatabase", "LogQuery",
    "LogUnavailable", "Masker", "build_entry", "is_masked", "key_file", "log_key", "open_log", "sensitive_paths",
    "verdict_of_result",
]
