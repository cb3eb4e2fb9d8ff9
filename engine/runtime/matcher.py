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
- a stored fact costs ~7 KB of native memory until its state is deleted: hence the periodic delete,
  followed by the sweep (a state whose action context was never set crashes ``delete_state``).
"""

from __future__ import annotations

from typing import Any

import durable_rules_engine

from engine.errors import MatcherError
from engine.jsontext import dumps_text
from engine.runtime.durable import NativeRuleset

FACTS_PER_STATE = 256
_NOT_HANDLED = 1


class FlatMatcher(NativeRuleset):
    """One durable_rules ruleset over flat facts, created once per load (with the reference matcher's
    sweep rule and deferred deletion: engine/runtime/durable.py)."""

    def __init__(self, name: str, definition: dict[str, dict[str, Any]]):
        super().__init__(f"{name}.fast", definition)
        self._stored = 0  # facts asserted into the current session state

    def fired(self, fact: dict[str, Any]) -> set[str]:
        """Names of the rules whose pattern ``fact`` (JSON-ready, flat) matches. ``fact`` gets an ``id``."""
        assert_fact = durable_rules_engine.assert_fact
        with self._lock:
            fact["id"] = next(self._ids)
            status, state = assert_fact(self._handle, dumps_text(fact))
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
                    self._renew_state()
                    self._stored = 0
            return fired
