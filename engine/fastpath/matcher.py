"""The fast path's durable_rules matcher: flat facts with short names, serialised with orjson, and no
retract per fact — the session's state is deleted every :data:`FACTS_PER_STATE` facts instead.

The traps of that road, each handled (and tested against the native engine, tests/test_durable_traps.py):
- a repeated ``id`` (or an identical fact) is refused with status 2 and never matched: ids come from
  one counter per matcher, never reset, so no two facts of a matcher share one;
- a fact that matches no rule gives status 1: "nothing fired";
- after ``delete_state`` the engine asserts a fresh state object with the next fact: every pattern
  carries the decision marker, so the state object never matches;
- an action started and not completed locks the state for 30 s: every started action is completed
  before the next fact;
- a fact holds at most 255 properties: the loader refuses a decision whose conditions read more;
- a stored fact costs ~7 KB of native memory until its state is deleted: hence the periodic delete.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import durable_rules_engine
import orjson

from ..errors import MatcherError

FACTS_PER_STATE = 256
_NOT_HANDLED = 1
_STATE = "0"  # every fact goes to the default session
_names = itertools.count()


class FlatMatcher:
    """One durable_rules ruleset over flat facts, created once per load."""

    def __init__(self, name: str, definition: dict[str, dict[str, Any]]):
        self.name = name
        self.definition = definition
        self._handle = durable_rules_engine.create_ruleset(f"{name}#fast{next(_names)}",
                                                           json.dumps(definition, ensure_ascii=False))
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._stored = 0

    def fired(self, fact: dict[str, Any]) -> set[str]:
        """Names of the rules whose pattern ``fact`` (JSON-ready, flat) matches. ``fact`` gets an ``id``."""
        assert_fact = durable_rules_engine.assert_fact
        with self._lock:
            fact["id"] = next(self._ids)
            try:
                payload = orjson.dumps(fact).decode()
            except TypeError:  # an integer past 64 bits: the standard library writes any integer
                payload = json.dumps(fact, ensure_ascii=False)
            status, state = assert_fact(self._handle, payload)
            self._stored += 1
            fired: set[str] = set()
            try:
                if status == _NOT_HANDLED:
                    return fired
                if status != 0:
                    raise MatcherError(f"durable_rules refused a fact for {self.name}: status {status}")
                started = durable_rules_engine.start_action_for_state(self._handle, state)
                message = started[1] if started else None
                while message:
                    fired.add(message[2:message.index('"', 2)])  # {"<rule>": {"m": …}}
                    message = durable_rules_engine.complete_and_start_action(self._handle, state)
            finally:
                if self._stored >= FACTS_PER_STATE:
                    durable_rules_engine.delete_state(self._handle, _STATE)
                    self._stored = 0
            return fired

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            try:
                durable_rules_engine.delete_ruleset(handle)
            except Exception:  # interpreter shutdown: the module may be gone already
                pass
