"""Replaying a logged decision: the logged facts, at the logged ``now``, with the logged stored counts,
on some rules — the version it was made with (explain), a candidate (impact) or a shadow.

A replay cannot be trusted when a masked fact is read for its value (the log keeps only its HMAC),
when the facts do not fit the rules, or when the rules read a stored count the log did not keep:
:class:`NotReplayable` says which.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.errors import InvalidFacts, RulesvcError
from engine.language.expressions import Call, Compare, Expr, Lit, Ref, children
from engine.language.model import Counter, Decision
from engine.rulebook import Rulebook
from engine.runtime.evaluation import CompiledDecision, Evaluation
from engine.runtime.values import parse_instant, parse_money
from engine.state.counters import counter_label
from engine.verdict import Verdict

# Functions that only ask whether a fact is there: a masked value answers them as the clear one did.
PRESENCE_FUNCTIONS = frozenset({"exists", "missing"})


class NotReplayable(RulesvcError):
    """A logged decision cannot be replayed faithfully; the message says why (and is counted by it)."""


class LoggedCounters:
    """The stored counts a logged decision read, handed back to a replay (a counter source)."""

    def __init__(self, logged: dict[str, Any], asked_at: datetime):
        self.logged = logged
        self.asked_at = asked_at

    def read(self, decision: str, counter: Counter, key: tuple[object, ...], now: datetime,
             partition: str | None = None) -> int | Decimal:
        label = counter_label(counter, self.asked_at, now)
        if label not in self.logged:
            raise NotReplayable(f"the rules read the stored count {label}, which the log did not keep")
        value = self.logged[label]
        return parse_money(value) if counter.type.kind == "money" else int(value)


def value_reads(decision: Decision) -> frozenset[str]:
    """The fact paths whose *values* the decision's outcome can depend on (conditions, ``until``,
    derived values, counters, obligations). A fact only tested for presence (``exists``, ``missing``,
    ``== null``) is not among them: its masked value answers the same."""
    reads: set[str] = set()

    def visit(expr: Expr, presence_only: bool = False) -> None:
        if isinstance(expr, Ref):
            if expr.kind == "fact" and not presence_only:
                reads.add(expr.path)
            return
        if isinstance(expr, Call) and expr.function in PRESENCE_FUNCTIONS:
            for argument in expr.args:
                visit(argument, True)
            return
        if isinstance(expr, Compare) and expr.op in ("==", "!=") and any(
                isinstance(side, Lit) and side.value is None for side in (expr.left, expr.right)):
            for side in (expr.left, expr.right):
                visit(side, True)
            return
        for child in children(expr):
            visit(child)

    for rule in decision.rules:
        visit(rule.when)
        if rule.until is not None:
            visit(rule.until)
        for value in rule.obligations.values():
            if isinstance(value, Expr):
                visit(value)
    for derived in decision.derived:
        for expr in ([derived.expr] if derived.expr is not None else list(derived.fields.values())):
            visit(expr)
    for counter in decision.counters:
        for expr in [*counter.key, counter.add, *([counter.fact] if counter.fact is not None else [])]:
            visit(expr)
    return frozenset(reads)


def _reads_path(reads: frozenset[str], path: str) -> bool:
    return any(path == read or path.startswith(read + ".") or path.startswith(read + "[]") for read in reads)


class Replayer:
    """Replays logged decisions on one rulebook."""

    def __init__(self, rulebook: Rulebook):
        self.rulebook = rulebook
        self._reads: dict[str, frozenset[str]] = {}
        self._masked_reads: dict[tuple[str, tuple[str, ...]], str | None] = {}

    def evaluation(self, decision: str, facts: dict[str, Any], masked: list[str], now: datetime,
                   counters: dict[str, Any], defaulted: list[str] | None = None) -> tuple[CompiledDecision, Evaluation]:
        """Evaluate output-form ``facts`` as of ``now`` with the logged ``counters``; raises :class:`NotReplayable`.

        The facts a default filled in (``defaulted``) are left out, so these rules' defaults fill them.
        """
        compiled = self.rulebook.decisions.get(decision)
        if compiled is None:
            raise NotReplayable(f"the rules have no decision {decision}")
        if masked:
            key = (decision, tuple(masked))
            if key not in self._masked_reads:
                reads = self._reads.get(decision)
                if reads is None:
                    reads = self._reads[decision] = value_reads(compiled.decision)
                self._masked_reads[key] = next((path for path in masked if _reads_path(reads, path)), None)
            path = self._masked_reads[key]
            if path is not None:
                raise NotReplayable(f"the rules read {path}, which the log keeps only as an HMAC (sensitive)")
        if defaulted:
            facts = _without(facts, defaulted)
        try:
            loaded = compiled.load(facts)
        except InvalidFacts as error:
            raise NotReplayable(f"the logged facts do not fit these rules: {', '.join(sorted(error.fields))}") from None
        return compiled, compiled.judge(loaded, now=now, counters=LoggedCounters(counters, now))

    def replay(self, entry: dict[str, Any]) -> Verdict:
        """The verdict these rules give a logged decision; raises :class:`NotReplayable`."""
        compiled, evaluation = self.evaluation(entry["decision"], entry["facts"], entry.get("masked") or [],
                                               parse_instant(entry["now"]), entry.get("counters") or {},
                                               entry.get("defaulted"))
        return compiled.verdict(evaluation)

    def replay_many(self, entries: list[dict[str, Any]]) -> list[Verdict | NotReplayable]:
        """:meth:`replay` for a batch of entries, each answered in order; an entry the rules fail on
        (a counter whose type changed, a bug) is not replayable, and says why — the others go on."""
        answers: list[Verdict | NotReplayable] = []
        for entry in entries:
            try:
                answers.append(self.replay(entry))
            except NotReplayable as why:
                answers.append(why)
            except Exception as error:
                answers.append(NotReplayable(f"the replay failed: {type(error).__name__}"))
        return answers


def _without(facts: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """``facts`` without the values at ``paths`` (copied along the way, never changed in place)."""
    copy = dict(facts)
    for path in paths:
        head, _, rest = path.partition(".")
        if rest and isinstance(copy.get(head), dict):
            copy[head] = _without(copy[head], [rest])
        elif not rest:
            copy.pop(head, None)
    return copy
