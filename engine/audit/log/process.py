"""The decision log's writer in a process of its own (SPEC §9: logging costs at most 10 % of a decision).

Building an entry (facts in output form, masked; its JSON) and inserting it cost more than the decision
itself, and in the serving process that work takes the same GIL as the decisions. So the serving
process only *captures* a decision — one orjson call over what the decision already has: the facts as
the caller sent them, the result's codes and values, the fired rules and the counts read — and its writer thread
hands the captures, a batch at a time, to a child process through a pipe. The child reads the facts
again with the decision's own declarations (the same reader, so the same validated facts and
defaults), masks them, builds the entries exactly as :func:`~engine.audit.log.entry.build_entry`
does and appends them, answering each batch with how many it wrote and how many it could not.

The protocol, parent to child on the child's stdin — one message is a kind byte, a 4-byte length, a payload:
``K`` the masking key (first, so it is in no command line or environment); ``D`` a decision's
declarations for one ruleset version (pickled: facts specs, sensitive paths, rules in order); ``B`` a
batch (a JSON array of captures). The child answers each ``B`` on its stdout with 8 bytes: written,
then not written. It ignores SIGINT and SIGTERM (a terminal's Ctrl-C reaches the whole process group)
and ends when its stdin closes — after the batch it is writing — so the parent's SIGTERM flush decides.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
from typing import TYPE_CHECKING, Any

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

import orjson

from engine.runtime.values import from_epoch_us, output_form, to_output

if TYPE_CHECKING:
    from engine.language.model import Decision

log = logging.getLogger("rulesvc.decisionlog")

PIPE_BYTES = 1 << 20
_HEADER = struct.Struct(">cI")
_ANSWER = struct.Struct(">II")
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME
# Capture fields, in order (a JSON array per decision). Of the result only what an entry keeps: its
# codes, not the reasons' rendered messages (half of a document's bytes in zh and en).
CAPTURE = ("decision_id", "decision", "version", "source", "duration_us", "committed", "logged_at_us",
           "raw_facts", "outcome", "reason_codes", "warning_codes", "obligations", "values", "next_eligible_at",
           "evaluated_at", "fired", "counters")


class WriterGone(Exception):
    """The writer process died or could not start; the batch it was given is not known to be written."""


def capture(decision_id: str, decision: str, version: str, source: str, duration_us: int, committed: bool,
            logged_at_us: int, raw_facts: Any, result: dict[str, Any], fired: list[str],
            counters: dict[str, Any]) -> bytes:
    """One decision as the writer process needs it (:data:`CAPTURE`); raises TypeError when orjson cannot
    write the facts as sent (an integer past 64 bits…): such a decision is logged the in-process way."""
    return orjson.dumps([decision_id, decision, version, source, duration_us, committed, logged_at_us, raw_facts,
                         result["outcome"], [reason["code"] for reason in result["reasons"]],
                         [warning["code"] for warning in result["warnings"]], result["obligations"],
                         result["values"], result["next_eligible_at"], result["evaluated_at"], fired, counters],
                        option=_PASSTHROUGH)


def declarations(decision: Decision, version: str) -> bytes:
    """What the writer process needs of a decision to rebuild its entries."""
    return pickle.dumps((version, decision.name, decision.facts, _sensitive(decision),
                         [(rule.id, rule.qualified_id) for rule in decision.rules]))


def _sensitive(decision: Decision) -> tuple[str, ...]:
    from engine.language.model import sensitive_paths

    return sensitive_paths(decision.facts)


class WriterProcess:
    """The parent's handle on one writer process (per serving process: gunicorn workers fork)."""

    def __init__(self, url: str, key: bytes):
        self.url = url
        self.key = key
        self._child: subprocess.Popen[bytes] | None = None
        self._declared: set[tuple[str, str]] = set()

    def write(self, batch: list[tuple[bytes, Decision, str]]) -> tuple[int, int]:
        """Have the child write ``batch`` (capture, decision model, version each); (written, not written).
        Raises :class:`WriterGone` when the child is gone (it is started again for the next batch)."""
        try:
            child = self._running()
            for _, decision, version in batch:
                if (version, decision.name) not in self._declared:
                    self._send(child, b"D", declarations(decision, version))
                    self._declared.add((version, decision.name))
            self._send(child, b"B", b"[" + b",".join(captured for captured, _, _ in batch) + b"]")
            answer = _read_exactly(child.stdout, _ANSWER.size)
        except (OSError, ValueError, WriterGone) as error:
            self._forget()
            raise WriterGone(str(error) or type(error).__name__) from None
        return _ANSWER.unpack(answer)

    def start(self) -> None:
        """Start the child now if it is not running (it is started at the first batch otherwise).
        Raises :class:`WriterGone` when it cannot start."""
        try:
            self._running()
        except (OSError, ValueError) as error:
            self._forget()
            raise WriterGone(str(error) or type(error).__name__) from None

    def close(self, timeout: float = 10.0) -> None:
        """End the child after what it was given (its stdin closes); waits for it up to ``timeout``."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.stdin.close()
            child.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()

    def _running(self) -> subprocess.Popen[bytes]:
        child = self._child
        if child is not None and child.poll() is None:
            return child
        self._forget()
        child = subprocess.Popen([sys.executable, "-m", "engine.audit.log", self.url],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=_repository_root(),
                                 start_new_session=False)
        self._child = child
        _widen(child.stdin)
        self._send(child, b"K", self.key)
        return child

    def _forget(self) -> None:
        child, self._child = self._child, None
        self._declared = set()
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()

    @staticmethod
    def _send(child: subprocess.Popen[bytes], kind: bytes, payload: bytes) -> None:
        child.stdin.write(_HEADER.pack(kind, len(payload)) + payload)
        child.stdin.flush()


def _widen(pipe: Any) -> None:
    """A pipe that holds a whole batch (Linux: up to fs.pipe-max-size, 1 MiB by default): the writer thread
    hands it over in one system call, instead of one per 64 KiB, each of which makes it wait for the GIL
    behind the request threads again (while the child waits for the rest)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    try:
        fcntl.fcntl(pipe.fileno(), set_size, PIPE_BYTES)
    except OSError:
        pass  # a smaller limit: the default size works, only slower


def _repository_root() -> str:
    # the directory holding the engine package: the child imports this same engine
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read_exactly(stream: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise WriterGone("the writer process ended")
        data += chunk
    return data


# --- the child ----------------------------------------------------------------------------------------

class _Known:
    """One decision of one version, as the child rebuilds its entries."""

    def __init__(self, name: str, specs: dict[str, Any], sensitive: tuple[str, ...], rules: list[tuple[str, str]]):
        from engine.reference.facts import FactsLoader
        from engine.runtime.reader import build_reader

        self.specs = specs
        self.sensitive = sensitive
        self.rules = rules
        # the facts straight to their output form: orjson writes them without calling back per value
        self.read_fast, _ = build_reader(name, specs, output=True)
        self.loader = FactsLoader(name, specs)

    def facts(self, raw: Any) -> dict[str, Any]:
        """The validated facts: in output form from the fast reader, as Python values from the reference one
        (the entry's JSON writes either the same way)."""
        from engine.runtime.reader import Unusual

        try:
            return self.read_fast(raw)
        except Unusual:
            return self.loader.load(raw)


def known_decision(decision: Decision) -> _Known:
    """:class:`_Known` of a decision model at hand (the parent writing captures itself)."""
    return _Known(decision.name, decision.facts, _sensitive(decision), [(rule.id, rule.qualified_id)
                                                                        for rule in decision.rules])


def entry_text(known: _Known, captured: list[Any], masker: Any) -> tuple[Any, ...]:
    """The row of one captured decision: the entry :func:`~engine.audit.log.entry.build_entry` makes."""
    from engine.audit.log.entry import row_of
    from engine.language.model import defaulted_paths

    (decision_id, decision, version, source, duration_us, committed, logged_at_us, raw_facts, outcome, reason_codes,
     warning_codes, obligations, values, next_eligible_at, evaluated_at, fired, counters) = captured
    facts, masked = masker.mask(known.facts(raw_facts), known.sensitive)
    fired_ids = set(fired)
    entry = {
        "decision_id": decision_id,
        "decision": decision,
        "evaluated_at": to_output(from_epoch_us(logged_at_us)),
        "now": evaluated_at,
        "source": source,
        "facts": facts,  # in output form from the fast reader; output_form writes the reference reader's values
        "masked": masked,
        "defaulted": defaulted_paths(known.specs, raw_facts),
        "counters": counters,
        "outcome": outcome,
        "reasons": sorted(set(reason_codes)),
        "warnings": sorted(set(warning_codes)),
        "rules_fired": [qualified for rule, qualified in known.rules if rule in fired_ids],
        "obligations": obligations,
        "values": values,
        "next_eligible_at": next_eligible_at,
        "ruleset_version": version,
        "duration_us": duration_us,
        "committed": committed,
        "shadow": None,
    }
    return row_of(entry, orjson.dumps(entry, default=output_form, option=_PASSTHROUGH).decode(), logged_at_us)


def main(url: str) -> None:
    """The writer process: read messages on stdin until it closes, answer each batch on stdout."""
    from engine.audit.log.masking import Masker
    from engine.audit.log.sql import LogDatabase, LogUnavailable

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    source, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the answers own stdout: a stray print must not corrupt them
    database = LogDatabase(url)
    masker: Masker | None = None
    known: dict[tuple[str, str], _Known] = {}
    while True:
        header = source.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the parent closed the pipe (or is gone): everything it sent is written
        kind, size = _HEADER.unpack(header)
        payload = _read_exactly(source, size)
        if kind == b"K":
            masker = Masker(payload)
        elif kind == b"D":
            version, name, specs, sensitive, rules = pickle.loads(payload)  # noqa: S301 - from our own parent
            known[(version, name)] = _Known(name, specs, sensitive, rules)
        elif kind == b"B":
            rows, failed = [], 0
            for captured in orjson.loads(payload):
                if masker is None:  # never sent its key: nothing can be masked, so nothing is written
                    failed += 1
                    continue
                try:
                    rows.append(entry_text(known[(captured[2], captured[1])], captured, masker))
                except Exception:  # one entry the writer cannot build is lost alone, and said
                    log.exception("decision-log entry for %s not written", captured[0])
                    failed += 1
            try:
                database.write_rows(rows)
            except LogUnavailable as error:
                log.warning("%d decision-log entries lost: %s", len(rows), error)
                failed, rows = failed + len(rows), []
            answers.write(_ANSWER.pack(len(rows), failed))
            answers.flush()

