"""Compilation of rule conditions into durable_rules ruleset definitions.

One decision becomes one ruleset: each rule is a durable_rules rule whose single fact pattern is the
rule's ``when`` condition. A second, *trace* ruleset holds one rule per atomic comparison so that an
explained evaluation can show each condition's value, again as matched by durable_rules.

Two durable_rules behaviours shape the output (both verified against durable-rules 2.0.28):
- the engine keeps a state object per session that also meets patterns; a pattern made only of
  negative tests (``$nex``) would fire on it, so every pattern first requires the evaluation marker;
- a comparison whose right side names a missing field (``$m``) is *true*; we want a comparison with a
  missing fact to be false (as it is for a missing left side), so such names get an ``$ex`` guard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.language.expressions import (
    LITERAL_NAMES,
    Arith,
    Call,
    Compare,
    Expr,
    ExpressionError,
    ListLit,
    Lit,
    Logic,
    Not,
    Ref,
    walk,
)
from engine.runtime.values import to_matcher

MARKER = "$decision"  # field carried by every evaluated fact; its value is the decision name
LENGTH_SUFFIX = "$len"  # sibling field giving a list's length, written by the fact encoder

_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<", "in": "not in", "not in": "in"}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_DURABLE_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_DURABLE_ARITH = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}


@dataclass(frozen=True)
class Leaf:
    """An atomic condition of a rule, for the trace."""

    name: str  # "<rule id>#<n>"
    text: str
    references: tuple[str, ...]  # names whose values the trace shows next to the condition


def compile_condition(expr: Expr, decision: str, names: FieldNames | None = None) -> dict[str, Any]:
    """The durable_rules pattern of a ``when`` condition, guarded by the decision marker.

    ``names`` gives each field of the asserted fact its (short, flat) property name; without it,
    fields are the dotted paths of the nested fact.
    """
    body = _Compiler(names).compile(expr, negate=False)
    if body is True:
        return {MARKER: decision}
    if body is False:
        # Never true: a marker no fact carries keeps the ruleset valid.
        return {MARKER: f"{decision}#never"}
    return {"$and": [{MARKER: decision}, body]}


def leaves(expr: Expr) -> list[Expr]:
    """The atomic conditions of an expression, in reading order."""
    if isinstance(expr, Logic):
        return [leaf for operand in expr.operands for leaf in leaves(operand)]
    if isinstance(expr, Not):
        return leaves(expr.operand)
    if isinstance(expr, Lit):
        return []
    return [expr]


def references(expr: Expr) -> list[Expr]:
    """The names an expression reads — facts, values, counters, ``now`` and constants — once each."""
    found: dict[str, Expr] = {}
    for node in walk(expr):
        if isinstance(node, Ref) or (isinstance(node, Lit) and node.text.isidentifier() and node.text not in LITERAL_NAMES):
            found.setdefault(node.text, node)
    return list(found.values())


def check_matchable(expr: Expr) -> None:
    """Raise :class:`ExpressionError` where a condition cannot be handed to durable_rules."""
    _Compiler().compile(expr, negate=False)


class FieldNames:
    """Short property names for the fields a decision's conditions read: ``payout.amount`` → ``b``.

    durable_rules hashes and compares every property name of every asserted fact; a flat fact with
    names of one or two letters is about twice as fast to match as the nested one. The mapping is
    kept for ``rulesvc check --show-compiled``.
    """

    def __init__(self, paths: list[str]):
        self.short: dict[str, str] = {}
        for index, path in enumerate(dict.fromkeys(paths)):
            self.short[path] = _short_name(index)

    def __call__(self, path: str) -> str:
        return self.short[path]


def _short_name(index: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = letters[index % 26]
    index //= 26
    while index:
        index -= 1
        name = letters[index % 26] + name
        index //= 26
    return name


class _Compiler:
    def __init__(self, names: FieldNames | None = None):
        self.names = names

    def field(self, expr: Expr) -> str:
        """The property of the asserted fact that holds ``expr`` (a name, or ``len(name)``)."""
        path = _field(expr)
        return self.names(path) if self.names is not None else path

    def compile(self, expr: Expr, negate: bool) -> Any:
        if isinstance(expr, Logic):
            parts = [self.compile(operand, negate) for operand in expr.operands]
            # De Morgan: not (a and b) == (not a) or (not b)
            op = {"and": "$and", "or": "$or"}[expr.op]
            if negate:
                op = "$or" if op == "$and" else "$and"
            return _combine(op, parts)
        if isinstance(expr, Not):
            return self.compile(expr.operand, not negate)
        if isinstance(expr, Lit):
            if not isinstance(expr.value, bool):
                raise ExpressionError(expr.offset, f"{expr.text!r} is not a condition")
            return expr.value != negate
        if isinstance(expr, Ref):
            if expr.type.kind != "bool":
                raise ExpressionError(expr.offset, f"{expr.text!r} is {expr.type}, not a condition")
            return self._guarded([expr] if negate else [], {self.field(expr): not negate}, negate)
        if isinstance(expr, Call):
            return self._call(expr, negate)
        if isinstance(expr, Compare):
            return self._compare(expr, negate)
        raise ExpressionError(expr.offset, f"{expr.text!r} is not a condition")

    def _call(self, call: Call, negate: bool) -> Any:
        if call.function == "exists" and isinstance(call.args[0], Ref):
            path = self.field(call.args[0])
            return {"$nex" if negate else "$ex": {path: 1}}
        raise ExpressionError(
            call.offset,
            f"{call.function}() cannot be matched directly; declare a derived value for it and compare that")

    def _compare(self, compare: Compare, negate: bool) -> Any:
        op = _NEGATED[compare.op] if negate else compare.op
        left, right = compare.left, compare.right
        if op in ("in", "not in"):
            return self._membership(compare, op, left, right, negate)
        left, right, op = self._normalise(compare, left, right, op)
        # A test on an absent field is already false; only names on the right ($m) need a guard,
        # and under negation every absent name must make the condition true.
        guarded = _refs(left) + _refs(right) if negate else _refs(right)
        optional = [ref for ref in guarded if ref.optional]
        if isinstance(right, Lit) and right.value is None:
            # "x == null" means absent; with no value there is nothing to guard.
            present = op == "!="
            return {"$ex" if present else "$nex": {self.field(left): 1}}
        test = self._test(self.field(left), op, self._operand(right))
        return self._guarded(optional, test, negate)

    def _membership(self, compare: Compare, op: str, left: Expr, right: Expr, negate: bool) -> Any:
        if isinstance(right, (ListLit, Lit)):
            values = [item.value for item in right.items] if isinstance(right, ListLit) else list(right.value)
            if not isinstance(left, Ref):
                raise ExpressionError(left.offset, "the left side of 'in' with a literal list must be a fact or value")
            path = self.field(left)
            guards = [left] if left.optional else []
            if op == "in":
                tests = [{path: to_matcher(value)} for value in values]
                return self._guarded(guards, _combine("$or", tests) if tests else False, negate)
            tests = [{"$neq": {path: to_matcher(value)}} for value in values]
            return self._guarded(guards, _combine("$and", tests) if tests else True, negate)
        if isinstance(right, Ref) and isinstance(left, Lit):
            path_of = _field(right)
            path = self.field(right)
            item = {"$i": to_matcher(left.value)}
            if op == "in":
                return {"$iany": {path: item}}
            # An empty list has no items, and durable_rules' $iall is false on it: test the length too.
            length = self.names(path_of + LENGTH_SUFFIX) if self.names is not None else path + LENGTH_SUFFIX
            return _combine("$or", [{"$nex": {path: 1}}, {length: 0}, {"$iall": {path: {"$neq": item}}}])
        raise ExpressionError(compare.offset, f"'{compare.op}' needs a literal on the left of a list fact, "
                                              "or a fact on the left of a literal list")

    def _normalise(self, compare: Compare, left: Expr, right: Expr, op: str) -> tuple[Expr, Expr, str]:
        """Put a plain name on the left, as durable_rules patterns need (``field op expression``)."""
        if _is_field(left):
            return left, right, op
        if _is_field(right):
            return right, left, _FLIPPED[op]
        # a + b op r  ==>  a op r - b   (exact: every matcher number is an integer)
        if isinstance(left, Arith) and left.op in ("+", "-") and _is_field(left.left):
            inverse = "-" if left.op == "+" else "+"
            moved = Arith(right.offset, right.type, right.text, op=inverse, left=right, right=left.right)
            return left.left, moved, op
        raise ExpressionError(compare.offset, "one side of a comparison must be a fact or value name; "
                                              "declare a derived value for the other computation")

    def _operand(self, expr: Expr) -> Any:
        if isinstance(expr, Lit):
            return to_matcher(expr.value)
        if _is_field(expr):
            return {"$m": self.field(expr)}
        if isinstance(expr, Arith):
            return {_DURABLE_ARITH[expr.op]: {"$l": self._operand(expr.left), "$r": self._operand(expr.right)}}
        raise ExpressionError(expr.offset, f"{expr.text!r} cannot be matched directly; declare a derived value")

    @staticmethod
    def _test(path: str, op: str, operand: Any) -> dict[str, Any]:
        if op == "==":
            return {path: operand}
        return {_DURABLE_OPS[op]: {path: operand}}

    def _guarded(self, optional: list[Ref], test: Any, negate: bool) -> Any:
        """Missing names make a comparison false; negated, they make it true."""
        paths = list(dict.fromkeys(self.field(ref) for ref in optional))
        if not paths:
            return test
        if negate:
            return _combine("$or", [{"$nex": {path: 1}} for path in paths] + [test])
        return _combine("$and", [{"$ex": {path: 1}} for path in paths] + [test])


def _is_field(expr: Expr) -> bool:
    return isinstance(expr, Ref) or (isinstance(expr, Call) and expr.function == "len"
                                     and isinstance(expr.args[0], Ref))


def _field(expr: Expr) -> str:
    if isinstance(expr, Call):  # len(list) reads the sibling length field
        return _field(expr.args[0]) + LENGTH_SUFFIX
    assert isinstance(expr, Ref)
    return expr.path


def _refs(expr: Expr) -> list[Ref]:
    if isinstance(expr, Ref):
        return [expr]
    if isinstance(expr, Call):
        return [ref for arg in expr.args for ref in _refs(arg)]
    if isinstance(expr, Arith):
        return _refs(expr.left) + _refs(expr.right)
    return []


def _combine(op: str, parts: list[Any]) -> Any:
    """``$and``/``$or`` with constant folding of true/false parts."""
    absorbing, neutral = (False, True) if op == "$and" else (True, False)
    kept = []
    for part in parts:
        if part is absorbing:
            return absorbing
        if part is neutral:
            continue
        kept.append(part)
    if not kept:
        return neutral
    if len(kept) == 1:
        return kept[0]
    return {op: kept}


def fact_encoder(conditions: list[Expr], decision: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The encoder of the fact asserted into durable_rules (built once per load): matcher-form values
    and list lengths of just the names ``conditions`` read, plus the decision marker.

    durable_rules parses every asserted fact; a decision's rules read a few of its values, so the
    smaller fact is cheaper to serialise and to match, and matches the same.
    """
    tree: dict[str, Any] = {}
    for condition in conditions:
        for node in walk(condition):
            if isinstance(node, Ref):
                branch = tree
                *parents, leaf = node.path.split(".")
                for part in parents:
                    branch = branch.setdefault(part, {})
                    if branch is _WHOLE:
                        break
                else:
                    branch[leaf] = _WHOLE  # the whole value: an object tested with exists(), a list with in/len
    project = _projector(tree)

    def encode(values: dict[str, Any]) -> dict[str, Any]:
        fact = project(values)
        fact[MARKER] = decision
        return fact
    return encode


_WHOLE: dict[str, Any] = {}


def _projector(tree: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    parts = [(name, None if branch is _WHOLE else _projector(branch)) for name, branch in tree.items()]

    def project(values: dict[str, Any]) -> dict[str, Any]:
        encoded: dict[str, Any] = {}
        for name, inner in parts:
            value = values.get(name)
            if value is None:
                continue
            if inner is not None and isinstance(value, dict):
                encoded[name] = inner(value)
            else:
                _encode_into(encoded, name, value)
        return encoded
    return project


def _encode_mapping(values: dict[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for name, value in values.items():
        if value is not None:
            _encode_into(encoded, name, value)
    return encoded


def _encode_into(encoded: dict[str, Any], name: str, value: Any) -> None:
    """Set ``encoded[name]`` to the matcher form of ``value`` (a list also gets its length)."""
    if isinstance(value, dict):
        encoded[name] = _encode_mapping(value)
    elif isinstance(value, list):
        encoded[name] = [_encode_mapping(item) if isinstance(item, dict) else to_matcher(item) for item in value]
        encoded[name + LENGTH_SUFFIX] = len(value)
    else:
        encoded[name] = to_matcher(value)


def ruleset_definition(rules: list[tuple[str, Expr]], decision: str, names: FieldNames | None = None) -> dict[str, Any]:
    """A durable_rules ruleset: one rule per (name, condition), each a single fact pattern."""
    return {name: {"all": [{"m": compile_condition(expr, decision, names)}]} for name, expr in rules}
