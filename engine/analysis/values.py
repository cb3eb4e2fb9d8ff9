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

from engine.runtime.values import MAX_INT, MAX_MONEY, MAX_YEAR, MIN_YEAR, SHANGHAI, Type

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


def instant_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * SECOND_US + delta.microseconds


def from_instant_us(microseconds: int) -> datetime:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=microseconds)).astimezone(SHANGHAI)


def time_us(moment: time) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * SECOND_US + moment.microsecond


def duration_us(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * SECOND_US + span.microseconds


# Valid instants: from 1970-01-01T00:00 to 2999-12-31T23:59:59.999999 in Shanghai (SPEC §4).
MIN_INSTANT_US = instant_us(datetime(MIN_YEAR, 1, 1, tzinfo=SHANGHAI))
MAX_INSTANT_US = instant_us(datetime(MAX_YEAR, 12, 31, 23, 59, 59, 999_999, tzinfo=SHANGHAI))
# Instants that datetime arithmetic reaches without overflowing, whatever offset the facts were
# written with (a day of margin inside years 1 and 9999).
SAFE_MIN_INSTANT_US = instant_us(datetime(1, 1, 2, tzinfo=UTC))
SAFE_MAX_INSTANT_US = instant_us(datetime(9999, 12, 30, tzinfo=UTC))
INT_BOUND = MAX_INT


@cache
def shanghai_summer_times() -> tuple[tuple[int, int], ...]:
    """The intervals [start, end) of instants (µs) at which Shanghai kept summer time (+09:00): 1986–1991.

    Found from the zone data itself, hour by hour (the clocks moved on the hour)."""
    intervals: list[tuple[int, int]] = []
    moment = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
    end = datetime(1993, 1, 1, tzinfo=UTC)
    start: datetime | None = None
    while moment < end:
        summer = moment.astimezone(SHANGHAI).utcoffset() != timedelta(hours=8)
        if summer and start is None:
            start = moment
        elif not summer and start is not None:
            intervals.append((instant_us(start), instant_us(moment)))
            start = None
        moment += timedelta(hours=1) if 1985 <= moment.year <= 1992 else timedelta(days=1)
    return tuple(intervals)


@cache
def summer_midnights() -> tuple[tuple[int, int], ...]:
    """The date ordinals [first, last] whose 00:00 in Shanghai was summer time."""
    ranges: list[tuple[int, int]] = []
    for first_us, end_us in shanghai_summer_times():
        first = from_instant_us(first_us).date()
        last = from_instant_us(end_us - 1).date()
        days = [d for d in range(first.toordinal(), last.toordinal() + 1)
                if datetime.combine(date.fromordinal(d), time(0), tzinfo=SHANGHAI).utcoffset() != timedelta(hours=8)]
        if days:
            ranges.append((days[0], days[-1]))
    return tuple(ranges)


def shanghai_offset_us(instant: z3.ArithRef) -> z3.ArithRef:
    """Shanghai's UTC offset at an instant: +08:00, +09:00 in the summers of 1986–1991."""
    summer = z3.Or([z3.And(instant >= start, instant < end) for start, end in shanghai_summer_times()])
    return z3.If(summer, 9 * 3600 * SECOND_US, 8 * 3600 * SECOND_US)


def local_us(instant: z3.ArithRef) -> z3.ArithRef:
    """Microseconds since 1970-01-01T00:00 of Shanghai wall-clock time at an instant."""
    return instant + shanghai_offset_us(instant)


def midnight_us(ordinal: z3.ArithRef) -> z3.ArithRef:
    """The instant of 00:00 Shanghai on a date."""
    summer = z3.Or([z3.And(ordinal >= first, ordinal <= last) for first, last in summer_midnights()])
    offset = z3.If(summer, 9 * 3600 * SECOND_US, 8 * 3600 * SECOND_US)
    return (ordinal - EPOCH_ORDINAL) * DAY_US - offset


TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


@dataclass
class Scalar:
    present: z3.BoolRef
    value: z3.ExprRef | None  # None only when never present
    type: Type


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
        return z3.IntVal(instant_us(value))
    if isinstance(value, date):
        return z3.IntVal(value.toordinal())
    if isinstance(value, time):
        return z3.IntVal(time_us(value))
    if isinstance(value, timedelta):
        return z3.IntVal(duration_us(value))
    raise TypeError(f"no symbolic form for {type(value).__name__}")
