"""Value types of the rule language and their three representations.

Every value has a Python form (``Decimal`` money, aware ``datetime`` instants, ``date``), a matcher
form that durable_rules compares exactly (integers: fen, epoch microseconds, day ordinals — durable_rules
compares integers as 64-bit), and an output form for results (money ``"95.00"``, instants ISO 8601 in
Asia/Shanghai).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
FEN = Decimal("0.01")
# Fen stay exact integers for durable_rules (doubles) far below this bound.
MAX_MONEY = Decimal("999999999999.99")
MAX_INT = 2**53 - 1  # whole numbers JSON peers and durable_rules' doubles hold exactly
_MONEY_TEXT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
# Instants and dates outside these Shanghai years are refused (SPEC §4): since 1970 the zone's offsets are
# whole hours (no +08:05:43 local mean time), and arithmetic far past 2999 would overflow.
MIN_YEAR, MAX_YEAR = 1970, 2999
# The strict formats of SPEC §4: a date is exactly YYYY-MM-DD; an instant is RFC 3339 (seconds and a
# fraction of up to six digits optional, Z or ±HH:MM). No week dates, ordinal dates or basic forms.
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})")

SCALAR_KINDS = ("bool", "int", "money", "str", "instant", "date", "time", "duration")
ORDERED_KINDS = ("int", "money", "instant", "date", "time", "duration")


@dataclass(frozen=True)
class Type:
    """A static type: a scalar kind, ``enum`` (a string from ``values``), ``list`` of ``item``, ``object``."""

    kind: str
    enum: str | None = None
    values: tuple[str, ...] = ()
    item: Type | None = None

    def __str__(self) -> str:
        if self.kind == "enum":
            return f"enum {self.enum}"
        if self.kind == "list":
            return f"[{self.item}]"
        return self.kind

    @property
    def is_stringy(self) -> bool:
        return self.kind in ("str", "enum")

    def comparable_with(self, other: Type) -> bool:
        if "null" in (self.kind, other.kind):
            return True
        if self.is_stringy and other.is_stringy:
            return True
        if {self.kind, other.kind} == {"int", "money"}:
            return True
        return self.kind == other.kind and self.kind != "list"


BOOL, INT, MONEY, STR = Type("bool"), Type("int"), Type("money"), Type("str")
INSTANT, DATE, DURATION, NULL = Type("instant"), Type("date"), Type("duration"), Type("null")
TIME = Type("time")
OBJECT = Type("object")


def list_of(item: Type) -> Type:
    return Type("list", item=item)


# --- money -------------------------------------------------------------------------------------

def parse_money(raw: Any) -> Decimal:
    """A non-negative amount of CNY with at most two decimal places, from a string or a number."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float, Decimal)):
        raise ValueError("must be an amount of money as a string or a number")
    text = raw if isinstance(raw, str) else str(raw)
    if text.startswith("-"):
        raise ValueError("must not be negative")
    if not _MONEY_TEXT.fullmatch(text):
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", text):
            raise ValueError("must have at most two decimal places (fen)")
        raise ValueError('must be an amount of money such as "12.50"')
    amount = Decimal(text)
    if amount > MAX_MONEY:
        raise ValueError(f"must be at most {MAX_MONEY}")
    return amount.quantize(FEN)


def round_fen(amount: Decimal) -> Decimal:
    """Round half-up to the fen, the only rounding money ever gets."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


# --- time --------------------------------------------------------------------------------------

def parse_instant(raw: Any) -> datetime:
    """An RFC 3339 instant with its offset (``2026-11-20T10:00:00+08:00``, ``…Z``), 1970–2999 in Shanghai."""
    if not isinstance(raw, str):
        raise ValueError("must be an RFC 3339 timestamp string with an offset, e.g. 2026-11-20T10:00:00+08:00")
    if not _INSTANT_TEXT.fullmatch(raw):
        if _INSTANT_TEXT.fullmatch(raw.strip()):
            raise ValueError("must not have spaces around it")
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+", raw):
            raise ValueError("must carry a UTC offset (e.g. +08:00 or Z)")
        raise ValueError("must be an RFC 3339 timestamp such as 2026-11-20T10:00:00+08:00 "
                         "(YYYY-MM-DDTHH:MM[:SS[.ffffff]] with Z or ±HH:MM)")
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("is not a real moment (check the month, day, hour and offset)") from None
    if not within_supported_years(instant):
        raise ValueError(f"must be between {MIN_YEAR}-01-01 and {MAX_YEAR}-12-31 (Asia/Shanghai)")
    return instant


def within_supported_years(instant: datetime) -> bool:
    """Whether ``instant`` lies from 1970-01-01 to 2999-12-31 in Shanghai: the only instants the service
    reads or writes."""
    # The year as written first: converting year 1 or 9999 to Shanghai time could overflow, and an
    # instant a year inside the range is inside it in Shanghai too, no conversion needed.
    year = instant.year
    if MIN_YEAR < year < MAX_YEAR:
        return True
    return MIN_YEAR - 1 <= year <= MAX_YEAR + 1 and MIN_YEAR <= to_shanghai(instant).year <= MAX_YEAR


def parse_date(raw: Any) -> date:
    """A Shanghai date written exactly ``YYYY-MM-DD``, 1970–2999."""
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    if not isinstance(raw, str):
        raise ValueError("must be a date string YYYY-MM-DD")
    if not _DATE_TEXT.fullmatch(raw):
        raise ValueError("must be a date written YYYY-MM-DD, e.g. 2026-11-16")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError("is not a date that exists (check the month and the day)") from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValueError(f"must be between {MIN_YEAR}-01-01 and {MAX_YEAR}-12-31")
    return day


def parse_time(raw: Any) -> time:
    """A Shanghai time of day written "HH:MM" or "HH:MM:SS" ("20:00" is 20:00:00 exactly)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 24 * 60:
        # YAML 1.1 reads an unquoted 21:00 as the number 1260 (base 60)
        written = f"{raw // 60}:{raw % 60:02d}"
        raise ValueError(f'must be quoted: unquoted, {written} is read as the number {raw}; write "{written}"')
    if not isinstance(raw, str):
        raise ValueError('must be a time of day string such as "09:00"')
    if "：" in raw:
        raise ValueError(f"{raw!r} has a full-width colon '：' (U+FF1A); write it with ':' "
                         f'(switch the input method to half-width): "{raw.replace("：", ":")}"')
    try:
        parsed = time.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError('must be a time of day such as "09:00" or "20:00:00"') from None
    if parsed.tzinfo is not None:
        raise ValueError("a time of day is Asia/Shanghai local time and carries no offset")
    return parsed


def to_shanghai(instant: datetime) -> datetime:
    return instant.astimezone(SHANGHAI)


_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))


def epoch_ms(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def epoch_us(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(microseconds: int) -> datetime:
    return _EPOCH + timedelta(microseconds=microseconds)


# --- conversions ---------------------------------------------------------------------------------

def parse_literal(kind: str, raw: Any) -> Any:
    """The Python value of a constant written in a rule file, for a declared scalar kind."""
    if kind == "money":
        return parse_money(raw)
    if kind == "instant":
        return parse_instant(raw)
    if kind == "date":
        return parse_date(raw)
    if kind == "time":
        return parse_time(raw)
    if kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError("must be a whole number")
        return raw
    if kind == "bool":
        if not isinstance(raw, bool):
            raise ValueError("must be true or false")
        return raw
    if kind in ("str", "enum"):
        if not isinstance(raw, str):
            raise ValueError("must be a string")
        return raw
    raise ValueError(f"constants of type {kind} are not supported")


# Durations past this many microseconds (36,533 years) match as this many: durable_rules adds and
# compares 64-bit integers, and a sum of instants and such durations stays far inside them.
MATCHER_DURATION_LIMIT = 2**60


def _duration_matcher(value: timedelta) -> int:
    microseconds = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    return max(-MATCHER_DURATION_LIMIT, min(MATCHER_DURATION_LIMIT, microseconds))


def to_matcher(value: Any) -> Any:
    """The exact form durable_rules compares: integer fen, epoch µs, day ordinal, µs of the day, duration µs.

    Microseconds, not milliseconds: instants written with a fraction compare as they are (a request
    0.5 ms before a delay ends is still inside it)."""
    convert = _MATCHER_FORMS.get(type(value))
    if convert is not None:
        return convert(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    for kind, convert in _MATCHER_FORMS.items():  # a subclass of a known type
        if isinstance(value, kind):
            return convert(value)
    raise TypeError(f"no matcher form for {type(value).__name__}")


_MATCHER_FORMS: dict[type, Any] = {
    bool: lambda value: value, int: lambda value: value, str: lambda value: value,
    Decimal: lambda value: int(value * 100),
    datetime: epoch_us,
    date: date.toordinal,
    time: lambda value: ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond,
    timedelta: _duration_matcher,
    list: lambda value: [to_matcher(item) for item in value],
    dict: lambda value: {key: to_matcher(item) for key, item in value.items() if item is not None},
}


def to_output(value: Any) -> Any:
    """The JSON form of a value in a result: money as "0.00", instants in Shanghai time."""
    if type(value) in _AS_IS:  # most values are; only subclasses need the search below
        return value
    convert = _OUTPUT_FORMS.get(type(value))
    if convert is not None:
        return convert(value)
    for kind, convert in _OUTPUT_FORMS.items():  # a subclass of a known type (not bool: JSON has it)
        if isinstance(value, kind) and not isinstance(value, bool):
            return convert(value)
    return value


def output_form(value: Any) -> Any:
    """:func:`to_output` of a value JSON has no type for (money, instants…): orjson's ``default``."""
    convert = _OUTPUT_FORMS.get(type(value))
    converted = convert(value) if convert is not None else to_output(value)
    if converted is value:
        raise TypeError(f"no JSON form for {type(value).__name__}")
    return converted


_AS_IS = frozenset({str, int, bool, float, type(None)})
_OUTPUT_FORMS: dict[type, Any] = {
    Decimal: lambda value: str(round_fen(value)),
    datetime: lambda value: value.astimezone(SHANGHAI).isoformat(),
    date: date.isoformat,
    time: time.isoformat,
    timedelta: timedelta.total_seconds,
    list: lambda value: [to_output(item) for item in value],
    dict: lambda value: {key: to_output(item) for key, item in value.items()},
}


def partition_text(value: Any) -> str:
    """A decision's partition value as the stores key it (its output form as JSON text, non-ASCII as is)."""
    return json.dumps(to_output(value), ensure_ascii=False)


def to_text(value: Any) -> str:
    """How a value reads inside a human message."""
    if value is None:
        return "—"
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is list:
        return ", ".join(to_text(item) for item in value)
    if kind is time and not value.second and not value.microsecond:
        return value.strftime("%H:%M")  # "09:00", as policy texts write it
    output = to_output(value)
    return output if isinstance(output, str) else str(output)
