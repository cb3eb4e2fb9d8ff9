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
  engine: a matcher deletes its ruleset when it is garbage, so reloads do not leak;
- ``delete_ruleset`` frees the ruleset's pools but not its session state (created by the first
  fact asserted, ~250 KB here, and never freed — 2.5 MB a reload of used decisions): the state is
  deleted first (``delete_state``, sid ``"0"``, the one every fact without a ``sid`` uses). But
  ``delete_state`` frees the state's action context, which the engine leaves uninitialised until a
  first action runs: freeing that garbage crashes the process. So every ruleset gets one more rule,
  matched by a sweep fact only, and a new matcher runs it once: the session state then exists with
  a clean context from the start (actions always complete, which empties it again);
- deleting runs native code on the engine's global handle table (the crash reported as
  jruizgit/rules#136 was a ruleset deleted while still in use): a garbage matcher only queues its
  ruleset, and rulesets are deleted when the next matcher is created (a load or reload, never in
  the middle of a match, never from the garbage collector's arbitrary moment).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from typing import Any

import durable_rules_engine

from engine.errors import MatcherError

_NOT_HANDLED, _OBSERVED = 1, 2
_SID = "0"  # the session of every fact asserted without a sid (ours never carry one: "sid" is reserved)
_SWEEP = "$rulesvc_sweep"  # field of the one fact the sweep rule matches (no decision's fact has it)
_names = itertools.count()
_retired: list[int] = []  # handles of garbage matchers, deleted at the next creation (list.append is atomic)
_table_lock = threading.Lock()  # creation and deletion change the native handle table


def _delete_retired() -> None:
    while _retired:
        handle = _retired.pop()
        try:
            durable_rules_engine.delete_state(handle, _SID)
        except durable_rules_engine.error:  # no fact was ever asserted: no state to delete
            pass
        durable_rules_engine.delete_ruleset(handle)


def _create(name: str, definition: dict[str, dict[str, Any]]) -> int:
    """A new native ruleset of ``definition`` and the sweep rule; raises ``durable_rules_engine.error``."""
    # durable_rules wants unique ruleset names per process; reloads create new ones.
    swept = {**definition, _SWEEP: {"all": [{"m": {_SWEEP: 1}}]}}
    with _table_lock:
        _delete_retired()
        return durable_rules_engine.create_ruleset(f"{name}#{next(_names)}", json.dumps(swept, ensure_ascii=False))


def refusal(name: str, definition: dict[str, dict[str, Any]]) -> int | None:
    """The error code durable_rules refuses ``definition`` with when activated, or None: the ruleset is
    created exactly as a matcher creates it, then deleted at once (no fact was asserted: no state)."""
    try:
        handle = _create(name, definition)
    except durable_rules_engine.error as error:
        code = re.search(r"error code: (\d+)", str(error))
        return int(code.group(1)) if code else -1
    with _table_lock:
        durable_rules_engine.delete_ruleset(handle)
    return None


class NativeRuleset:
    """A durable_rules ruleset handle with the sweep rule: created under the table lock, swept once,
    queued for deletion when garbage. Subclasses add how facts are matched (``fired``)."""

    def __init__(self, name: str, definition: dict[str, dict[str, Any]]):
        self.name = name
        self.definition = definition
        self._handle = _create(name, definition)
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._sweep()

    def _sweep(self) -> None:
        """Run the sweep rule once: the session state is created with its action context set."""
        fact = json.dumps({"id": next(self._ids), _SWEEP: 1})
        status, state = durable_rules_engine.assert_fact(self._handle, fact)
        if status != 0:
            raise MatcherError(f"durable_rules refused the sweep fact for {self.name}: status {status}")
        try:
            started = durable_rules_engine.start_action_for_state(self._handle, state)
            while started and (started := durable_rules_engine.complete_and_start_action(self._handle, state)):
                pass
        finally:
            durable_rules_engine.retract_fact(self._handle, fact)

    def _renew_state(self) -> None:
        """Delete the session state (and every fact it holds), then sweep so the next one starts clean.

        The engine clears a deleted state's context and the next state usually reuses its slot, so the
        sweep is not strictly needed; it costs microseconds and does not rely on the pool's layout."""
        durable_rules_engine.delete_state(self._handle, _SID)
        self._sweep()

    def __del__(self) -> None:
        # Only reached when no evaluation can hold this ruleset any more; deleted at the next creation.
        handle = getattr(self, "_handle", None)
        if handle is not None:
            try:
                _retired.append(handle)
            except (AttributeError, TypeError):  # interpreter shutdown: the module is being torn down
                pass


class Matcher(NativeRuleset):
    """One durable_rules ruleset, created once per load: assert a fact, collect, retract."""

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


def _rule_name(message: str) -> str:
    """The fired rule's name from an action message ``{"<rule>": {"m": <the whole fact>}}``.

    Decoding the whole message (it repeats the fact) would cost more than the match itself; our
    rule names never contain a quote (rule ids are ``[a-z0-9-]``, trace names add ``#n``).
    """
    start = message.index('"') + 1
    return message[start:message.index('"', start)]
