"""A compiled durable_rules ruleset and the one way we use it: assert a fact, collect, retract.

We talk to durable_rules' native engine (``durable_rules_engine``, the module ``durable.engine``
wraps) instead of going through ``durable.engine.Host`` because the host starts timer threads that
dispatch pending actions from the background: such a thread can take an action of a fact we just
asserted, so the rules that fired would not all be seen by the evaluating thread. Here nothing runs
in the background; the traps of durable-rules 2.0.28 are handled where they occur:

- a fact that matches no rule at all: status 1 (``MessageNotHandledException``) means "none fired";
- an identical fact asserted twice: status 2 (``MessageObservedException``) cannot happen, every
  evaluation carries a unique ``id``;
- ``post()`` consumes an event at its first match: we assert *facts*, which every rule sees;
- the native engine is not thread-safe: each ruleset serialises its evaluations with a lock;
- errors inside actions can be swallowed: there are no actions, we read the fired rule names
  ourselves, and any unexpected status raises :class:`MatcherError`;
- rulesets live in a fixed native handle table (131,072 entries) and are never freed by the
  engine: a matcher deletes its ruleset when it is garbage, so reloads do not leak.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import durable_rules_engine

from .errors import MatcherError

_NOT_HANDLED, _OBSERVED = 1, 2
_names = itertools.count()


class Matcher:
    """One durable_rules ruleset, created once per load."""

    def __init__(self, name: str, definition: dict[str, dict[str, Any]]):
        self.name = name
        self.definition = definition
        # durable_rules wants unique ruleset names per process; reloads create new ones.
        self._handle = durable_rules_engine.create_ruleset(
            f"{name}#{next(_names)}", json.dumps(definition, ensure_ascii=False))
        self._lock = threading.Lock()
        self._ids = itertools.count()

    def fired(self, fact: dict[str, Any]) -> set[str]:
        """Names of the rules whose pattern ``fact`` matches. ``fact`` must be JSON-ready."""
        with self._lock:
            fact["id"] = next(self._ids)
            payload = json.dumps(fact, ensure_ascii=False)
            status, state = durable_rules_engine.assert_fact(self._handle, payload)
            if status == _NOT_HANDLED:
                return set()
            if status != 0:
                raise MatcherError(f"durable_rules refused a fact for {self.name}: status {status}")
            fired: set[str] = set()
            try:
                started = durable_rules_engine.start_action_for_state(self._handle, state)
                message = started[1] if started else None
                while message:
                    fired.add(_rule_name(message))
                    message = durable_rules_engine.complete_and_start_action(self._handle, state)
            finally:
                durable_rules_engine.retract_fact(self._handle, payload)
            return fired

    def __del__(self) -> None:
        # Only reached when no evaluation can hold this matcher any more.
        handle = getattr(self, "_handle", None)
        if handle is not None:
            try:
                durable_rules_engine.delete_ruleset(handle)
            except Exception:  # interpreter shutdown: the module may be gone already
                pass


def _rule_name(message: str) -> str:
    """The fired rule's name from an action message ``{"<rule>": {"m": <the whole fact>}}``.

    Decoding the whole message (it repeats the fact) would cost more than the match itself; our
    rule names never contain a quote (rule ids are ``[a-z0-9-]``, trace names add ``#n``).
    """
    start = message.index('"') + 1
    return message[start:message.index('"', start)]
