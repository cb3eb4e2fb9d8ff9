"""The safe set of functions a rule file may call. Nothing else is callable: there is no ``eval``.

Each function checks its argument types when the rule file loads and computes in Python when the
engine derives values. Only ``exists`` and ``len`` also have a durable_rules form (see compiler).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .values import BOOL, DATE, DURATION, INT, ORDERED_KINDS, Type, list_of, to_shanghai


class SignatureError(Exception):
    """The arguments do not fit the function; the message says how."""


@dataclass(frozen=True)
class Function:
    name: str
    summary: str
    check: Callable[[list[Type]], Type]
    call: Callable[..., Any]
    # Most functions give null when an argument is null, as comparisons with a missing fact are false.
    null_in_null_out: bool = True


def _arity(types: list[Type], count: int, name: str) -> None:
    if len(types) != count:
        raise SignatureError(f"{name}() takes {count} argument{'s' if count != 1 else ''}, got {len(types)}")


def _one_of_kind(kinds: tuple[str, ...], name: str, result: Type | None = None) -> Callable[[list[Type]], Type]:
    def check(types: list[Type]) -> Type:
        _arity(types, 1, name)
        if types[0].kind not in kinds and types[0].kind != "null":
            raise SignatureError(f"{name}() needs {' or '.join(kinds)}, got {types[0]}")
        return result or types[0]
    return check


def _check_coalesce(types: list[Type]) -> Type:
    if len(types) < 2:
        raise SignatureError("coalesce() takes at least 2 arguments")
    known = [t for t in types if t.kind != "null"]
    for other in known[1:]:
        if not known[0].comparable_with(other):
            raise SignatureError(f"coalesce() arguments must have one type, got {known[0]} and {other}")
    return known[0] if known else types[0]


def _check_extreme(name: str) -> Callable[[list[Type]], Type]:
    def check(types: list[Type]) -> Type:
        if len(types) < 2:
            raise SignatureError(f"{name}() takes at least 2 arguments")
        first = types[0]
        for other in types:
            if other.kind not in ORDERED_KINDS or not first.comparable_with(other):
                raise SignatureError(f"{name}() needs values of one ordered type, got {first} and {other}")
        return Type("money") if any(t.kind == "money" for t in types) else first
    return check


def _check_difference(types: list[Type]) -> Type:
    _arity(types, 2, "difference")
    for t in types:
        if t.kind not in ("list", "null"):
            raise SignatureError(f"difference() needs two lists, got {t}")
    return types[0] if types[0].kind == "list" else list_of(Type("str"))


def _check_len(types: list[Type]) -> Type:
    _arity(types, 1, "len")
    if types[0].kind not in ("list", "null"):
        raise SignatureError(f"len() needs a list, got {types[0]}")
    return INT


def _check_exists(types: list[Type]) -> Type:
    _arity(types, 1, "exists")
    return BOOL


def _difference(left: list | None, right: list | None) -> list | None:
    if left is None:
        return None
    excluded = set(right or [])
    return [item for item in left if item not in excluded]


FUNCTIONS: dict[str, Function] = {
    function.name: function
    for function in (
        Function("exists", "true when the fact or value is present (not absent, not null)",
                 _check_exists, lambda value: value is not None, null_in_null_out=False),
        Function("len", "number of items of a list", _check_len, len),
        Function("coalesce", "the first argument that is present",
                 _check_coalesce, lambda *values: next((v for v in values if v is not None), None),
                 null_in_null_out=False),
        Function("difference", "items of the first list missing from the second (order kept)",
                 _check_difference, _difference, null_in_null_out=False),
        Function("min", "the smallest argument", _check_extreme("min"), min),
        Function("max", "the largest argument", _check_extreme("max"), max),
        Function("days", "a duration of N days", _one_of_kind(("int",), "days", DURATION),
                 lambda n: timedelta(days=n)),
        Function("hours", "a duration of N hours", _one_of_kind(("int",), "hours", DURATION),
                 lambda n: timedelta(hours=n)),
        Function("minutes", "a duration of N minutes", _one_of_kind(("int",), "minutes", DURATION),
                 lambda n: timedelta(minutes=n)),
        Function("shanghai_date", "the Asia/Shanghai calendar date of an instant",
                 _one_of_kind(("instant",), "shanghai_date", DATE), lambda t: to_shanghai(t).date()),
    )
}

# Functions the compiler can hand to durable_rules; the others run before matching, in Python.
MATCHABLE_FUNCTIONS = frozenset({"exists", "len"})
