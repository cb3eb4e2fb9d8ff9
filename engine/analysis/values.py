"""Symbolic values and the fixed units of the encoding.

A rule-language value becomes one of three shapes: :class:`Scalar` (a presence flag and one solver
term), :class:`Obj` (a presence flag and its fields) or :class:`Seq` (a list: a presence flag, a length
and the first :data:`LIST_BOUND` items, each with a flag saying whether it is in the list).

Units: money is whole fen, an instant whole microseconds since 1970-01-01T00:00Z, a date the
proleptic Gregorian ordinal (``date.toordinal()``), a time of day microseconds after midnight and a
duration microseconds — the units durable_rules compares too (:func:`engine.runtime.values.to_matcher`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

import z3

from engine.runtime.values import (
    MAX_INT,
    MAX_MONEY,
    MAX_YEAR,
    MIN_YEAR,
    SHANGHAI,
    Type,
    epoch_us,
    from_epoch_us,
    to_matcher,
)

# Items of a list the encoding represents one by one; a longer list is still a valid request, but
# what is computed from its items is then a free value (sound for proofs; witnesses stay within).
LIST_BOUND = 3

SECOND_US = 1_000_000
DAY_US = 86_400 * SECOND_US
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MAX_FEN = int(MAX_MONEY * 100)
MIN_DATE_ORDINAL = date(MIN_YEAR, 1, 1).toordinal()
MAX_DATE_ORDINAL = date(MAX_YEAR, 12, 31).toordinal()
# timedelta's own range, in microseconds: past it Python raises OverflowError and the value is null.
MAX_DURATION_US = (timedelta.max.days * 86_400 + timedelta.max.seconds) * SECOND_US + timedelta.max.microseconds
MIN_DURATION_US = timedelta.min.days * DAY_US


def from_instant_us(microseconds: int) -> datetime:
    """An instant in epoch µs as Shanghai writes it (a witness's facts and ``now``)."""
    return from_epoch_us(microseconds).astimezone(SHANGHAI)


def duration_us(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * SECOND_US + span.microseconds


# Valid instants: from 1970-01-01T00:00 to 2999-12-31T23:59:59.999999 in Shanghai (SPEC §4).
MIN_INSTANT_US = epoch_us(datetime(MIN_YEAR, 1, 1, tzinfo=SHANGHAI))
MAX_INSTANT_US = epoch_us(datetime(MAX_YEAR, 12, 31, 23, 59, 59, 999_999, tzinfo=SHANGHAI))
# Instants that datetime arithmetic reaches without overflowing, whatever offset the facts were
# written with (a day of margin inside years 1 and 9999).
SAFE_MIN_INSTANT_US = epoch_us(datetime(1, 1, 2, tzinfo=UTC))
SAFE_MAX_INSTANT_US = epoch_us(datetime(9999, 12, 30, tzinfo=UTC))
INT_BOUND = MAX_INT


@cache
def shanghai_offsets() -> tuple[tuple[int, int], ...]:
    """Shanghai's UTC offsets over time, from the zone data: ``(from instant µs, offset µs)`` in order.

    The first entry holds from the beginning of time (local mean time, +08:05:43, until 1901); the
    last, +08:00, from the end of the 1991 summer on. Summer times (+09:00): 1919, 1940–1949, 1986–1991."""
    offsets: list[tuple[int, int]] = []
    moment = datetime(1800, 1, 1, 12, tzinfo=UTC)
    current = moment.astimezone(SHANGHAI).utcoffset()
    offsets.append((-(2**62), duration_us(current)))
    while moment < datetime(1995, 1, 1, tzinfo=UTC):
        following = moment + timedelta(days=1)
        offset = following.astimezone(SHANGHAI).utcoffset()
        if offset != current:
            low, high = moment, following  # the change lies in (low, high]: find its second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle.astimezone(SHANGHAI).utcoffset() == current:
                    low = middle
                else:
                    high = middle
            offsets.append((epoch_us(high), duration_us(offset)))
            current = offset
        moment = following
    return tuple(offsets)


# From here on Shanghai keeps +08:00: wall-clock arithmetic on zoned instants is plain arithmetic.
STEADY_FROM_US = shanghai_offsets()[-1][0] if len(shanghai_offsets()) > 1 else 0
FIRST_CHANGE_US = shanghai_offsets()[1][0] if len(shanghai_offsets()) > 1 else 0


@cache
def midnight_offsets() -> tuple[tuple[int, int], ...]:
    """``(from date ordinal, offset µs)`` of 00:00 Shanghai on each date, in order (as Python resolves
    a wall-clock midnight: the first of two, the earlier offset in a gap)."""
    ranges: list[tuple[int, int]] = []
    day = date(1899, 12, 1)
    previous = None
    while day <= date(1993, 1, 31):
        offset = duration_us(datetime.combine(day, time(0), tzinfo=SHANGHAI).utcoffset())
        if offset != previous:
            ranges.append((day.toordinal() if ranges else -(2**62), offset))
            previous = offset
        day += timedelta(days=1)
    return tuple(ranges)


def _piecewise(point: z3.ArithRef, table: tuple[tuple[int, int], ...]) -> z3.ArithRef:
    """The value of a step function given as ``(from, value)`` pairs at ``point``."""
    term: z3.ArithRef = z3.IntVal(table[-1][1])
    for (_, value), (following, _) in zip(reversed(table[:-1]), reversed(table[1:]), strict=True):
        term = z3.If(point < following, value, term)
    return term


def shanghai_offset_us(instant: z3.ArithRef) -> z3.ArithRef:
    """Shanghai's UTC offset at an instant, as the zone data says (see :func:`shanghai_offsets`)."""
    return _piecewise(instant, shanghai_offsets())


def local_us(instant: z3.ArithRef) -> z3.ArithRef:
    """Microseconds since 1970-01-01T00:00 of Shanghai wall-clock time at an instant."""
    return instant + shanghai_offset_us(instant)


def midnight_us(ordinal: z3.ArithRef) -> z3.ArithRef:
    """The instant of 00:00 Shanghai on a date."""
    return (ordinal - EPOCH_ORDINAL) * DAY_US - _piecewise(ordinal, midnight_offsets())


TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


@dataclass
class Scalar:
    present: z3.BoolRef
    value: z3.ExprRef | None  # None only when never present
    type: Type
    # an instant Python holds in the Shanghai zone (start_of_day, next_time_of_day): durations are added
    # to it on the wall clock, and two of them compare by wall clock — plain arithmetic only while the
    # offset does not change (:data:`STEADY_FROM_US`)
    zoned: bool = False


@dataclass
class Obj:
    present: z3.BoolRef
    fields: dict[str, Value]
    type: Type = field(default_factory=lambda: Type("object"))


@dataclass
class Seq:
    """A list: ``items[i]`` is ``(in the list?, value)``; ``overflow``: it has items past the bound."""

    present: z3.BoolRef
    items: list[tuple[z3.BoolRef, Value]]
    length: z3.ArithRef
    overflow: z3.BoolRef
    type: Type


Value = Scalar | Obj | Seq


def null(kind: Type) -> Scalar:
    return Scalar(FALSE, None, kind)


def sort_of(kind: Type) -> z3.SortRef:
    if kind.kind == "bool":
        return z3.BoolSort()
    if kind.is_stringy:
        return z3.StringSort()
    return z3.IntSort()


def constant(kind: Type, value: object) -> Value:
    """A value known at load (a literal, a constant, a table cell) as a symbolic value."""
    if value is None:
        return null(kind)
    if isinstance(value, list):
        item_kind = kind.item or Type("str")
        items = [(TRUE, constant(item_kind, item)) for item in value]
        return Seq(TRUE, items, z3.IntVal(len(items)), FALSE, kind)
    return Scalar(TRUE, literal_term(value), kind)


def literal_term(value: object) -> z3.ExprRef:
    from decimal import Decimal
    if isinstance(value, bool):
        return z3.BoolVal(value)
    if isinstance(value, int):
        return z3.IntVal(value)
    if isinstance(value, Decimal):
        return z3.IntVal(int(value * 100))
    if isinstance(value, str):
        return z3.StringVal(value)
    if isinstance(value, datetime):
        return z3.IntVal(epoch_us(value))
    if isinstance(value, date):
        return z3.IntVal(value.toordinal())
    if isinstance(value, time):
        return z3.IntVal(to_matcher(value))  # µs after midnight
    if isinstance(value, timedelta):
        return z3.IntVal(duration_us(value))
    raise TypeError(f"no symbolic form for {type(value).__name__}")
