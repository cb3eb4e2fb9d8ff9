"""The safe set of functions a rule file may call. Nothing else is callable: there is no ``eval``.

Each function checks its argument types when the rule file loads and computes in Python when the
engine derives values. Only ``exists`` and ``len`` also have a durable_rules form (see compiler).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from engine.runtime.calendar import add_months
from engine.runtime.values import (
    BOOL,
    DATE,
    DURATION,
    INSTANT,
    INT,
    MONEY,
    ORDERED_KINDS,
    SHANGHAI,
    TIME,
    Type,
    list_of,
    round_fen,
    to_shanghai,
)


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
    # Calendar functions get the loaded China calendar as their first argument; never folded at load.
    uses_calendar: bool = False
    # Gets (path, value) pairs: its arguments must be fact names.
    by_reference: bool = False


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


def _signature(name: str, *params: str, result: Type) -> Callable[[list[Type]], Type]:
    """A checker for a fixed list of parameter kinds."""
    def check(types: list[Type]) -> Type:
        _arity(types, len(params), name)
        for position, (expected, actual) in enumerate(zip(params, types, strict=True), start=1):
            if actual.kind not in (expected, "null"):
                raise SignatureError(f"{name}() argument {position} must be {expected}, got {actual}")
        return result
    return check


def _next_time_of_day(instant: datetime, time_of_day: time) -> datetime:
    """The first instant at or after ``instant`` whose Shanghai local time is ``time_of_day``."""
    local = to_shanghai(instant)
    candidate = datetime.combine(local.date(), time_of_day, tzinfo=SHANGHAI)
    return candidate if candidate >= local else candidate + timedelta(days=1)


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


def _check_missing(types: list[Type]) -> Type:
    if not types:
        raise SignatureError("missing() takes at least one fact")
    return list_of(Type("str"))


def _check_differing(types: list[Type]) -> Type:
    if not types or len(types) % 2:
        raise SignatureError("differing() takes pairs of facts: differing(report.order_no, subscription.order_no, …)")
    for position in range(0, len(types), 2):
        first, second = types[position], types[position + 1]
        if not first.comparable_with(second) or "list" in (first.kind, second.kind):
            raise SignatureError(f"differing() pair {position // 2 + 1} compares {first} with {second}")
    return list_of(Type("str"))


def _differing(*pairs: tuple[str, Any]) -> list[str]:
    """The path of the first fact of each pair when both facts are present and not equal."""
    return [first_path for (first_path, first), (_, second) in zip(pairs[::2], pairs[1::2], strict=True)
            if first is not None and second is not None and first != second]


def _check_prorate(types: list[Type]) -> Type:
    _arity(types, 3, "prorate")
    for position, kind in enumerate(types, start=1):
        if kind.kind not in ("money", "int", "null"):
            raise SignatureError(f"prorate() argument {position} must be money, got {kind}")
    return MONEY


def _prorate(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal | None:
    if part == 0:
        return Decimal("0.00")
    if whole == 0:
        return None
    return round_fen(Decimal(amount) * Decimal(part) / Decimal(whole))


def _check_pluck(types: list[Type]) -> Type:
    _arity(types, 2, "pluck")
    if types[0].kind not in ("list", "null") or types[1].kind != "str":
        raise SignatureError("pluck() takes a list of objects and a field name, e.g. pluck(order.items, 'sku')")
    return list_of(Type("str"))


def _check_intersects(types: list[Type]) -> Type:
    _arity(types, 2, "intersects")
    for kind in types:
        if kind.kind not in ("list", "null"):
            raise SignatureError(f"intersects() needs two lists, got {kind}")
    return BOOL


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
        Function("missing", "the paths of the named facts that are absent, null or empty (e.g. for a report)",
                 _check_missing, lambda *pairs: [path for path, value in pairs if value in (None, "", [])],
                 null_in_null_out=False, by_reference=True),
        Function("differing", "the paths of the first fact of each pair (a, b, c, d…) that is present, "
                              "like its partner, and differs from it (e.g. a report against the order)",
                 _check_differing, _differing, null_in_null_out=False, by_reference=True),
        Function("prorate", "amount × part / whole, rounded half-up to the fen",
                 _check_prorate, _prorate),
        Function("pluck", "the values of one field of each object of a list (absent ones skipped)",
                 _check_pluck, lambda items, name: [item[name] for item in items if item.get(name) is not None]),
        Function("intersects", "true when the two lists share a value",
                 _check_intersects, lambda left, right: not set(left).isdisjoint(right)),
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
        Function("shanghai_time", "the Asia/Shanghai time of day of an instant",
                 _one_of_kind(("instant",), "shanghai_time", TIME), lambda t: to_shanghai(t).time()),
        Function("start_of_day", "00:00 Asia/Shanghai on a date", _one_of_kind(("date",), "start_of_day", INSTANT),
                 lambda day: datetime.combine(day, time(0), tzinfo=SHANGHAI)),
        Function("next_time_of_day", "the first instant at or after an instant with the given Shanghai time of day",
                 _signature("next_time_of_day", "instant", "time", result=INSTANT), _next_time_of_day),
        Function("add_days", "a date N calendar days later", _signature("add_days", "date", "int", result=DATE),
                 lambda day, n: day + timedelta(days=n)),
        Function("add_months", "the same day N months later, or that month's last day",
                 _signature("add_months", "date", "int", result=DATE), add_months),
        Function("add_years", "the same day N years later, or that month's last day (02-29 → 02-28)",
                 _signature("add_years", "date", "int", result=DATE), lambda day, n: add_months(day, 12 * n)),
        Function("add_working_days", "the N-th China working day after a date (the date itself does not count)",
                 _signature("add_working_days", "date", "int", result=DATE),
                 lambda calendar, day, n: calendar.add_working_days(day, n), uses_calendar=True),
        Function("calendar_estimated", "true when days after the first date up to the second lie outside "
                                       "the official calendar data (estimated: weekends and statutory holidays)",
                 _signature("calendar_estimated", "date", "date", result=BOOL),
                 lambda calendar, start, end: calendar.estimated_between(start, end), uses_calendar=True),
    )
}

# Functions the compiler can hand to durable_rules; the others run before matching, in Python.
MATCHABLE_FUNCTIONS = frozenset({"exists", "len"})
