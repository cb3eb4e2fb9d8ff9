"""The compiler: rule-language expressions as solver terms.

Two semantics, as the engine has two:
- :meth:`Terms.value` — a value as the interpreter computes it (derived values, counters, obligations):
  null in, null out (except ``coalesce``, ``exists`` and the by-reference functions), money to the fen
  half-up, and null where Python fails (division by zero, past the calendar or timedelta's range) —
  each such place is a :class:`Site` for the ``errors`` property;
- :meth:`Terms.condition` — a condition as durable_rules matches it (``when``): an atomic comparison is
  true when every name it reads is present and the comparison holds on durable_rules' whole numbers
  (:func:`~engine.runtime.values.to_matcher`); ``not`` is its complement. Invariants use the same semantics
  over exact values (``matcher=False``).

What has no exact term here becomes a *free* value (over-approximation: a proof still holds for
every request, a witness that depended on it fails its check) and is noted as an
:class:`Abstraction` at its ``FILE:LINE:COL``. Calendar functions (working days, months, years) are
uninterpreted functions with sound axioms; each model's applications are computed in Python and
added back as lemmas (:class:`Application`) until the model and Python agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import z3

from engine.analysis.values import (
    DAY_US,
    FALSE,
    MAX_DATE_ORDINAL,
    MAX_DURATION_US,
    MIN_DATE_ORDINAL,
    MIN_DURATION_US,
    SAFE_MAX_INSTANT_US,
    SAFE_MIN_INSTANT_US,
    SECOND_US,
    STEADY_FROM_US,
    TRUE,
    Obj,
    Scalar,
    Seq,
    Value,
    constant,
    literal_term,
    local_us,
    midnight_us,
    null,
    sort_of,
)
from engine.language.expressions import Arith, Call, Compare, Expr, ListLit, Lit, Logic, Lookup, Not, Ref
from engine.language.model import Locator
from engine.runtime.calendar import MAX_WORKING_DAYS, Calendar, add_months
from engine.runtime.values import BOOL, INT, MATCHER_DURATION_LIMIT, Type, to_matcher

# Decimal keeps 28 significant digits: a product past this many fen is no longer exact in Python.
_EXACT_PRODUCT_FEN = 10**26
_MICROSECONDS = {"days": DAY_US, "hours": 3600 * SECOND_US, "minutes": 60 * SECOND_US}


class Unsupported(Exception):
    """A construct this encoding has no exact term for; ``offset`` inside the expression's text."""

    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset
        self.message = message


@dataclass(frozen=True)
class Where:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class Abstraction:
    where: Where
    message: str


@dataclass
class Site:
    """A place where evaluation can fail: ``failed`` holds when its operands are present and it is null."""

    where: Where
    text: str
    expr: Expr
    failed: z3.BoolRef
    what: str


@dataclass
class Application:
    """An uninterpreted function applied to terms; ``compute`` gives Python's answer for whole numbers
    (``(defined, value)``, or None when it should not be computed)."""

    name: str
    args: list[z3.ArithRef]
    result: z3.ExprRef
    defined: z3.BoolRef
    compute: Callable[[list[int]], tuple[bool, Any] | None]


@dataclass
class Findings:
    abstractions: list[Abstraction] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    applications: list[Application] = field(default_factory=list)
    fresh: int = 0

    def abstract(self, where: Where, message: str) -> None:
        if not any(known.where == where and known.message == message for known in self.abstractions):
            self.abstractions.append(Abstraction(where, message))


def where_of(root: Expr, node: Expr | None = None) -> Where:
    locator: Locator | None = root.__dict__.get("where")
    offset = (node or root).offset
    if locator is None:
        return Where("?", 0, 0)
    return Where(*locator.at(offset))


class Terms:
    """Compiles the expressions of one decision against an environment of symbolic values."""

    def __init__(self, env: dict[str, Value], calendar: Calendar, findings: Findings, prefix: str = ""):
        self.env = env
        self.calendar = calendar
        self.findings = findings
        self.prefix = prefix  # keeps the free values of two versions of a decision apart
        self._root: Expr | None = None
        self.axioms: list[z3.BoolRef] = []  # sound facts about free values and uninterpreted functions
        self._functions: dict[str, tuple[z3.FuncDeclRef, z3.FuncDeclRef]] = {}
        # Calendar functions are named by the calendar's data: two versions of a decision on one
        # calendar share them (a proof of equivalence needs that), on two calendars they do not.
        self._calendar_key = hashlib.sha256(repr(sorted(calendar.texts.items())).encode()).hexdigest()[:12]

    # --- entry points ----------------------------------------------------------------------

    def value_of(self, root: Expr) -> Value:
        """The value of a whole expression; an unsupported construct makes it a free value."""
        self._root = root
        try:
            return self.value(root)
        except Unsupported as error:
            self.findings.abstract(where_of(root, _at(root, error.offset)), error.message)
            return self.free(root.type, "value")

    def condition_of(self, root: Expr, *, matcher: bool) -> z3.BoolRef:
        self._root = root
        try:
            return self.condition(root, matcher)
        except Unsupported as error:
            self.findings.abstract(where_of(root, _at(root, error.offset)), error.message)
            return self.fresh_bool("condition")

    # --- free values ------------------------------------------------------------------------

    def fresh_name(self, what: str, of: z3.ExprRef | None = None) -> str:
        """A name for a free value; ``of``: the term it is a function of. Two versions of a decision
        computing the same construct from the same request then share it (their values are equal)."""
        if of is not None:
            return f"free!{what}!{hashlib.sha256(of.sexpr().encode()).hexdigest()[:20]}"
        self.findings.fresh += 1
        return f"{self.prefix}free!{what}!{self.findings.fresh}"

    def fresh_bool(self, what: str, of: z3.ExprRef | None = None) -> z3.BoolRef:
        return z3.Bool(self.fresh_name(what, of))

    def free(self, kind: Type, what: str) -> Value:
        if kind.kind == "list":
            length = z3.Int(self.fresh_name(f"{what}#len"))
            return Seq(self.fresh_bool(what), [], length, TRUE, kind)
        if kind.kind == "object":
            return Obj(self.fresh_bool(what), {}, kind)
        if kind.kind == "null":
            return null(kind)
        return Scalar(self.fresh_bool(what), z3.Const(self.fresh_name(what), sort_of(kind)), kind)

    # --- values (the interpreter's semantics) ----------------------------------------------

    def value(self, expr: Expr) -> Value:
        if isinstance(expr, Lit):
            return constant(expr.type, expr.value)
        if isinstance(expr, ListLit):
            return constant(expr.type, [item.value for item in expr.items])
        if isinstance(expr, Ref):
            return self._ref(expr)
        if isinstance(expr, Lookup):
            return self._lookup(expr)
        if isinstance(expr, Arith):
            return self._arith(expr)
        if isinstance(expr, Call):
            return self._call(expr)
        if isinstance(expr, Not):
            operand = self.scalar(expr.operand)
            return Scalar(operand.present, z3.Not(operand.value) if operand.value is not None else TRUE, BOOL)
        if isinstance(expr, Logic):
            parts = [self._truthy(operand) for operand in expr.operands]
            return Scalar(TRUE, z3.And(parts) if expr.op == "and" else z3.Or(parts), BOOL)
        if isinstance(expr, Compare):
            return Scalar(TRUE, self._compare_value(expr), BOOL)
        raise Unsupported(expr.offset, f"{type(expr).__name__} has no encoding")

    def scalar(self, expr: Expr) -> Scalar:
        value = self.value(expr)
        if not isinstance(value, Scalar):
            raise Unsupported(expr.offset, f"{expr.text!r} is a {value.type}, a single value was expected")
        return value

    def _truthy(self, expr: Expr) -> z3.BoolRef:
        value = self.scalar(expr)
        if value.value is None:
            return FALSE
        return z3.And(value.present, value.value)

    def _ref(self, expr: Ref) -> Value:
        root, *rest = expr.path.split(".")
        value = self.env.get(root)
        if value is None:
            raise Unsupported(expr.offset, f"{root!r} is not known to the encoding")
        present = value.present
        for part in rest:
            if not isinstance(value, Obj) or part not in value.fields:
                raise Unsupported(expr.offset, f"{expr.path} is not known to the encoding")
            value = value.fields[part]
            present = z3.And(present, value.present)
        if rest and isinstance(value, Scalar):
            return Scalar(present, value.value, value.type, zoned=value.zoned)
        return value

    def _lookup(self, expr: Lookup) -> Value:
        key = self.scalar(expr.key)
        cells = [(row, cells.get(expr.column)) for row, cells in expr.table.rows.items()
                 if cells.get(expr.column) is not None]
        if not cells or key.value is None:
            return null(expr.type)
        matches = [key.value == z3.StringVal(row) for row, _ in cells]
        result: z3.ExprRef = literal_term(cells[-1][1])
        for (_, cell), match in zip(reversed(cells[:-1]), reversed(matches[:-1]), strict=True):
            result = z3.If(match, literal_term(cell), result)
        return Scalar(z3.And(key.present, z3.Or(matches)), result, expr.type)

    # arithmetic -----------------------------------------------------------------------------

    def _arith(self, expr: Arith) -> Value:
        left, right = self.scalar(expr.left), self.scalar(expr.right)
        if left.value is None or right.value is None:
            return null(expr.type)
        present = z3.And(left.present, right.present)
        kinds = (left.type.kind, right.type.kind)
        result = expr.type.kind
        op = expr.op
        a, b = left.value, right.value
        if result == "money":
            if op in ("+", "-"):
                a = a * 100 if kinds[0] == "int" else a
                b = b * 100 if kinds[1] == "int" else b
                return Scalar(present, a + b if op == "+" else a - b, expr.type)
            if op == "*":
                product = a * b
                value, ok = self._decimal(product, 1, exact=_within(product, _EXACT_PRODUCT_FEN))
                self._site(expr, z3.And(present, z3.Not(ok)), "money past Decimal's precision")
                return Scalar(z3.And(present, ok), value, expr.type)
            # ÷: money by a count, or money by money (a ratio, kept as money): half-up to the fen
            numerator = a * 100 if kinds[1] == "money" else a
            failed = z3.And(present, b == 0)
            self._site(expr, failed, "division by zero")
            return Scalar(z3.And(present, b != 0), round_half_up(numerator, b), expr.type)
        if result == "int":
            return Scalar(present, {"+": a + b, "-": a - b, "*": a * b}[op], expr.type)
        if result == "instant":
            total = a + b if op == "+" else a - b
            safe = z3.And(total >= SAFE_MIN_INSTANT_US, total <= SAFE_MAX_INSTANT_US)
            # Past the safe range Python may or may not overflow (it depends on the offset written)
            ok = z3.Or(safe, self.fresh_bool("instant-range", total))
            self._site(expr, z3.And(present, z3.Not(ok)), "instant out of range")
            zoned = left.zoned or right.zoned
            instant = a if left.type.kind == "instant" else b
            if zoned:  # wall-clock arithmetic: plain only where Shanghai's offset no longer changes
                steady = z3.And(instant >= STEADY_FROM_US, total >= STEADY_FROM_US)
                total = z3.If(steady, total, z3.Int(self.fresh_name("wall-clock", total)))
            return Scalar(z3.And(present, ok), total, expr.type, zoned=zoned)
        if result == "duration":
            if op == "*":
                total = a * b
            else:
                total = a + b if op == "+" else a - b
            fits = z3.And(total >= MIN_DURATION_US, total <= MAX_DURATION_US)
            if kinds == ("instant", "instant"):
                if left.zoned and right.zoned:  # one zone: Python subtracts the wall clocks
                    steady = z3.And(a >= STEADY_FROM_US, b >= STEADY_FROM_US)
                    total = z3.If(steady, total, z3.Int(self.fresh_name("wall-clock", total)))
                return Scalar(present, total, expr.type)
            self._site(expr, z3.And(present, z3.Not(fits)), "duration out of range")
            return Scalar(z3.And(present, fits), total, expr.type)
        raise Unsupported(expr.offset, f"{left.type} {op} {right.type} has no encoding")

    def _decimal(self, numerator: z3.ArithRef, denominator: z3.ArithRef | int, *, exact: z3.BoolRef
                 ) -> tuple[z3.ArithRef, z3.BoolRef]:
        """(value, defined) of money Decimal computes as numerator / denominator fen, half-up: exact
        rational arithmetic where ``exact``; elsewhere Decimal rounds to 28 digits on the way (a relative
        error under 2·10^-27), so the value lies between the half-up roundings of the quotient moved by
        that much either way — and past 10^28 fen quantizing can fail (null)."""
        rounded = round_half_up(numerator, denominator)
        scale = 10**27
        size = z3.If(numerator >= 0, numerator, -numerator)
        low = round_half_up(numerator * scale - 2 * size, denominator * scale)
        high = round_half_up(numerator * scale + 2 * size, denominator * scale)
        inexact = z3.Int(self.fresh_name("decimal-rounding", rounded))
        self.axioms.append(z3.And(inexact >= low, inexact <= high))
        near = _within(rounded, 100 * _EXACT_PRODUCT_FEN)
        value = z3.If(exact, rounded, z3.If(near, inexact, z3.Int(self.fresh_name("decimal", rounded))))
        defined = z3.Or(exact, near, self.fresh_bool("decimal-ok", rounded))
        return value, defined

    def _site(self, expr: Expr, failed: z3.BoolRef, what: str) -> None:
        root = self._root or expr
        self.findings.sites.append(Site(where_of(root, expr), expr.text, expr, failed, what))

    # functions ------------------------------------------------------------------------------

    def _call(self, expr: Call) -> Value:
        name = expr.function
        handler = getattr(self, f"_fn_{name}", None)
        if handler is None:
            raise Unsupported(expr.offset, f"{name}() has no encoding")
        return handler(expr)

    def _args(self, expr: Call) -> list[Scalar]:
        return [self.scalar(arg) for arg in expr.args]

    def _fn_exists(self, expr: Call) -> Value:
        return Scalar(TRUE, self.value(expr.args[0]).present, BOOL)

    def _fn_len(self, expr: Call) -> Value:
        seq = self.value(expr.args[0])
        if not isinstance(seq, Seq):
            raise Unsupported(expr.offset, "len() of a value that is not a list")
        return Scalar(seq.present, seq.length, INT)

    def _fn_coalesce(self, expr: Call) -> Value:
        values = [self.value(arg) for arg in expr.args]
        if not all(isinstance(value, Scalar) for value in values):
            raise Unsupported(expr.offset, "coalesce() of lists or objects has no encoding")
        known = [value for value in values if value.value is not None]
        if not known:
            return null(expr.type)
        result = known[-1].value
        for value in reversed(known[:-1]):
            result = z3.If(value.present, value.value, result)
        return Scalar(z3.Or([value.present for value in known]), result, expr.type,
                      zoned=any(value.zoned for value in known))

    def _fn_min(self, expr: Call) -> Value:
        return self._extreme(expr, smallest=True)

    def _fn_max(self, expr: Call) -> Value:
        return self._extreme(expr, smallest=False)

    def _extreme(self, expr: Call, *, smallest: bool) -> Value:
        args = self._args(expr)
        if any(arg.value is None for arg in args):
            return null(expr.type)
        money = expr.type.kind == "money"
        terms = [arg.value * 100 if money and arg.type.kind == "int" else arg.value for arg in args]
        best = terms[0]
        for term in terms[1:]:
            # Python's min/max keep the first of equal values: equal numbers, the same term either way
            best = z3.If(term < best, term, best) if smallest else z3.If(term > best, term, best)
        return Scalar(z3.And([arg.present for arg in args]), best, expr.type, zoned=any(arg.zoned for arg in args))

    def _fn_prorate(self, expr: Call) -> Value:
        amount, part, whole = self._args(expr)
        if amount.value is None or part.value is None or whole.value is None:
            return null(expr.type)
        present = z3.And(amount.present, part.present, whole.present)

        def yuan(value: Scalar) -> tuple[z3.ArithRef, int]:
            return (value.value, 100) if value.type.kind == "money" else (value.value, 1)
        (an, ad), (pn, pd), (wn, wd) = yuan(amount), yuan(part), yuan(whole)
        # result in fen = 100 · (an/ad) · (pn/pd) / (wn/wd)
        numerator = an * pn * (100 * wd)
        denominator = wn * (ad * pd)
        failed = z3.And(present, pn != 0, wn == 0)
        self._site(expr, failed, "prorate() of a whole of zero")
        # amount × part is exact in Decimal's 28 digits below 10^26 (in fen and its scale)
        computed, ok = self._decimal(numerator, denominator, exact=_within(an * pn, _EXACT_PRODUCT_FEN))
        self._site(expr, z3.And(present, z3.Or(pn == 0, wn != 0), z3.Not(ok)), "money past Decimal's precision")
        value = z3.If(pn == 0, z3.IntVal(0), computed)
        return Scalar(z3.And(present, z3.Or(pn == 0, z3.And(wn != 0, ok))), value, expr.type)

    def _duration(self, expr: Call, unit: int) -> Value:
        (count,) = self._args(expr)
        if count.value is None:
            return null(expr.type)
        total = count.value * unit
        fits = z3.And(total >= MIN_DURATION_US, total <= MAX_DURATION_US)
        self._site(expr, z3.And(count.present, z3.Not(fits)), "duration out of range")
        return Scalar(z3.And(count.present, fits), total, expr.type)

    def _fn_days(self, expr: Call) -> Value:
        return self._duration(expr, _MICROSECONDS["days"])

    def _fn_hours(self, expr: Call) -> Value:
        return self._duration(expr, _MICROSECONDS["hours"])

    def _fn_minutes(self, expr: Call) -> Value:
        return self._duration(expr, _MICROSECONDS["minutes"])

    def _fn_shanghai_date(self, expr: Call) -> Value:
        (instant,) = self._args(expr)
        if instant.value is None:
            return null(expr.type)
        return Scalar(self._convertible(instant), local_us(instant.value) / DAY_US + date(1970, 1, 1).toordinal(),
                      expr.type)

    def _fn_shanghai_time(self, expr: Call) -> Value:
        (instant,) = self._args(expr)
        if instant.value is None:
            return null(expr.type)
        return Scalar(self._convertible(instant), local_us(instant.value) % DAY_US, expr.type)

    def _convertible(self, instant: Scalar) -> z3.BoolRef:
        """Present, and Shanghai time can be had of it: past years 1–9999 Python overflows (null)."""
        t = instant.value
        safe = z3.And(t >= SAFE_MIN_INSTANT_US, t <= SAFE_MAX_INSTANT_US)
        return z3.And(instant.present, z3.Or(safe, self.fresh_bool("convertible", t)))

    def _fn_start_of_day(self, expr: Call) -> Value:
        (day,) = self._args(expr)
        if day.value is None:
            return null(expr.type)
        return Scalar(day.present, midnight_us(day.value), expr.type, zoned=True)

    def _fn_add_days(self, expr: Call) -> Value:
        day, count = self._args(expr)
        if day.value is None or count.value is None:
            return null(expr.type)
        present = z3.And(day.present, count.present)
        total = day.value + count.value
        fits = z3.And(total >= 1, total <= date.max.toordinal())
        self._site(expr, z3.And(present, z3.Not(fits)), "date out of range")
        return Scalar(z3.And(present, fits), total, expr.type)

    def _fn_next_time_of_day(self, expr: Call) -> Value:
        instant, time_of_day = self._args(expr)
        if instant.value is None or time_of_day.value is None:
            return null(expr.type)
        present = z3.And(instant.present, time_of_day.present)
        t, tod = instant.value, time_of_day.value
        offset = 8 * 3600 * SECOND_US
        local = t + offset
        candidate = local - local % DAY_US + tod - offset
        exact = z3.If(candidate >= t, candidate, candidate + DAY_US)
        # Before 1992 the candidate's own offset may differ (summer time): Python decides, as a lemma
        summer = self._apply("next_time_of_day", [t, tod], z3.IntSort(), _next_time_of_day_us)
        return Scalar(present, z3.If(t >= STEADY_FROM_US, exact, summer[0]), expr.type, zoned=True)

    def _fn_add_months(self, expr: Call) -> Value:
        return self._months_later(expr, "add_months", 1)

    def _fn_add_years(self, expr: Call) -> Value:
        return self._months_later(expr, "add_years", 12)

    def _months_later(self, expr: Call, name: str, months: int) -> Value:
        value = self._calendar_date(expr, name, lambda day, n: add_months(day, months * n))
        day, count = self._args(expr)
        if isinstance(value, Scalar) and value.value is not None:
            # sound bounds: a month is 28 to 31 days
            span, n = value.value - day.value, count.value * months
            # defined while the year reached stays within 1–9999 (from a valid date: 1970–2999)
            self.axioms.append(z3.Implies(z3.And(day.present, count.present, day.value >= MIN_DATE_ORDINAL,
                                                 day.value <= MAX_DATE_ORDINAL, n >= -12 * 1960, n <= 12 * 6990),
                                          value.present))
            self.axioms.append(z3.Implies(value.present, z3.If(n >= 0, z3.And(span >= 28 * n, span <= 31 * n),
                                                               z3.And(span >= 31 * n, span <= 28 * n))))
        return value

    def _fn_add_working_days(self, expr: Call) -> Value:
        calendar = self.calendar

        def working(day: date, count: int) -> date:
            return calendar.add_working_days(day, count)  # past MAX_WORKING_DAYS: OverflowError, undefined
        value = self._calendar_date(expr, "add_working_days", working)
        day, count = self._args(expr)
        if isinstance(value, Scalar) and value.value is not None:
            self.axioms.append(self._working_days_exactly(day.value, count.value, value))
            # defined from every valid date for a count Python computes (the calendar estimates years
            # past its data from the statutory holidays: 10,000 working days after 2999-12-31 are reached)
            self.axioms.append(z3.Implies(z3.And(day.present, count.present, day.value >= MIN_DATE_ORDINAL,
                                                 day.value <= MAX_DATE_ORDINAL, count.value <= MAX_WORKING_DAYS),
                                          value.present))
            self.axioms.append(z3.Implies(count.value > MAX_WORKING_DAYS, z3.Not(value.present)))
            # sound axioms: the date itself when nothing is counted, else at least one day per working day
            # and China never stops work for long: n working days take under 3n + 30 calendar days
            # (at most 2n + 10 over 1970–2034 and 2990–2999 of the shipped calendar, checked)
            self.axioms.append(z3.Implies(value.present, z3.If(
                count.value <= 0, value.value == day.value,
                z3.And(value.value >= day.value + count.value, value.value <= day.value + 3 * count.value + 30))))
        return value

    def _working_days_exactly(self, day: z3.ArithRef, count: z3.ArithRef, value: Scalar) -> z3.BoolRef:
        """Inside the calendar's window of years, the N-th working day after ``day`` exactly: the date
        ``r`` after ``day`` that is a working day and has N more working days up to it than ``day``."""
        window = working_day_window(self.calendar)
        if window is None:
            return z3.BoolVal(True)
        first, last, count_up_to, is_working = window
        r = value.value
        inside = z3.And(day >= first, day + 3 * count + 30 <= last, count >= 1, count <= MAX_WORKING_DAYS)
        return z3.Implies(z3.And(value.present, inside),
                          z3.And(r > day, r <= last, is_working(r), count_up_to(r) == count_up_to(day) + count))

    def _fn_calendar_estimated(self, expr: Call) -> Value:
        """Exact: some day after ``start`` up to ``end`` lies in a year the calendar's data does not hold."""
        start, end = self._args(expr)
        if start.value is None or end.value is None:
            return null(expr.type)
        first_counted, last = start.value + 1, end.value
        years = sorted(self.calendar.years)
        if not years:
            estimated: z3.BoolRef = last > start.value
        else:
            outside = [first_counted < date(years[0], 1, 1).toordinal(), last > date(years[-1], 12, 31).toordinal()]
            gaps = [year for year in range(years[0], years[-1]) if year not in self.calendar.years]
            outside += [z3.And(first_counted <= date(year, 12, 31).toordinal(), last >= date(year, 1, 1).toordinal())
                        for year in gaps]
            estimated = z3.And(last > start.value, z3.Or(outside))
        return Scalar(z3.And(start.present, end.present), estimated, expr.type)

    def _calendar_date(self, expr: Call, name: str, compute: Callable[[date, int], date]) -> Value:
        day, count = self._args(expr)
        if day.value is None or count.value is None:
            return null(expr.type)
        present = z3.And(day.present, count.present)

        def computed(args: list[int]) -> tuple[bool, Any] | None:
            if not 1 <= args[0] <= date.max.toordinal():
                return None
            try:
                return True, compute(date.fromordinal(args[0]), args[1]).toordinal()
            except (ArithmeticError, ValueError):
                return False, 0
        result, defined = self._apply(name, [day.value, count.value], z3.IntSort(), computed)
        self._site(expr, z3.And(present, z3.Not(defined)), f"{name}() past the calendar")
        return Scalar(z3.And(present, defined), result, expr.type)

    def _apply(self, name: str, args: list[z3.ArithRef], sort: z3.SortRef,
               compute: Callable[[list[int]], tuple[bool, Any] | None]) -> tuple[z3.ExprRef, z3.BoolRef]:
        functions = self._functions.get(name)
        if functions is None:
            domain = [z3.IntSort()] * len(args)
            named = f"{name}@{self._calendar_key}"
            functions = self._functions[name] = (z3.Function(named, *domain, sort),
                                                 z3.Function(f"{named}?", *domain, z3.BoolSort()))
        result, defined = functions[0](*args), functions[1](*args)
        self.findings.applications.append(Application(name, args, result, defined, compute))
        return result, defined

    # lists ----------------------------------------------------------------------------------

    def _fn_missing(self, expr: Call) -> Value:
        items = []
        for arg in expr.args:
            value = self.value(arg)
            empty = z3.Not(value.present)
            if isinstance(value, Scalar) and value.type.is_stringy and value.value is not None:
                empty = z3.Or(empty, value.value == z3.StringVal(""))
            elif isinstance(value, Seq):
                empty = z3.Or(empty, value.length == 0)
            items.append((empty, Scalar(TRUE, z3.StringVal(arg.path), expr.type.item or Type("str"))))
        return _seq(items, FALSE, expr.type)

    def _fn_differing(self, expr: Call) -> Value:
        items = []
        for first_expr, second_expr in zip(expr.args[::2], expr.args[1::2], strict=True):
            first, second = self.scalar(first_expr), self.scalar(second_expr)
            if first.value is None or second.value is None:
                continue
            differs = z3.And(first.present, second.present, first.value != second.value)
            items.append((differs, Scalar(TRUE, z3.StringVal(first_expr.path), expr.type.item or Type("str"))))
        return _seq(items, FALSE, expr.type)

    def _fn_pluck(self, expr: Call) -> Value:
        source = self.value(expr.args[0])
        name = expr.args[1]
        if not isinstance(source, Seq) or not isinstance(name, Lit):
            raise Unsupported(expr.offset, "pluck() of a value that is not a list of objects")
        items = []
        for included, item in source.items:
            if not isinstance(item, Obj) or name.value not in item.fields:
                raise Unsupported(expr.offset, f"pluck() of a field the items do not declare: {name.value!r}")
            picked = item.fields[name.value]
            if not isinstance(picked, Scalar) or picked.value is None:
                raise Unsupported(expr.offset, "pluck() of a field that is not a single value")
            items.append((z3.And(included, picked.present), Scalar(TRUE, picked.value, picked.type)))
        seq = _seq(items, source.overflow, expr.type, self)
        seq.present = source.present
        return seq

    def _two_lists(self, expr: Call) -> tuple[Seq, Seq]:
        left, right = self.value(expr.args[0]), self.value(expr.args[1])
        if not isinstance(left, Seq) or not isinstance(right, Seq):
            raise Unsupported(expr.offset, f"{expr.function}() of values that are not lists")
        return left, right

    def _fn_difference(self, expr: Call) -> Value:
        left, right = self._two_lists(expr)
        items = []
        for included, item in left.items:
            if not isinstance(item, Scalar):
                raise Unsupported(expr.offset, "difference() of lists of objects")
            kept = z3.And(included, z3.Not(z3.And(right.present, _contains(right, item.value))))
            items.append((kept, item))
        seq = _seq(items, z3.Or(left.overflow, z3.And(right.present, right.overflow)), expr.type, self)
        seq.present = left.present
        return seq

    def _fn_intersects(self, expr: Call) -> Value:
        left, right = self._two_lists(expr)
        shared = z3.Or([z3.And(included, _contains(right, item.value)) for included, item in left.items
                        if isinstance(item, Scalar)] or [FALSE])
        overflow = z3.Or(left.overflow, right.overflow)
        key = z3.And(shared, overflow, left.length == right.length)
        return Scalar(z3.And(left.present, right.present),
                      z3.If(overflow, self.fresh_bool("intersects", key), shared), BOOL)

    # comparisons -----------------------------------------------------------------------------

    def _compare_value(self, expr: Compare) -> z3.BoolRef:
        """A comparison as a value (the interpreter's ``compare``): null only equals null."""
        if expr.op in ("in", "not in"):
            item, seq = self.scalar(expr.left), self.value(expr.right)
            if not isinstance(seq, Seq):
                raise Unsupported(expr.right.offset, "'in' needs a list on the right")
            found = z3.And(seq.present, item.present, self._member(seq, item))
            return found if expr.op == "in" else z3.Not(found)
        left, right = self.scalar(expr.left), self.scalar(expr.right)
        if left.value is None or right.value is None:
            if expr.op in ("==", "!="):
                same = z3.And(z3.Not(left.present), z3.Not(right.present))
                return same if expr.op == "==" else z3.Not(same)
            return FALSE
        a, b = _same_units(left, right)
        both = z3.And(left.present, right.present)
        holds = self._zoned_order(expr.op, left, right, a, b)
        if expr.op == "==":
            return z3.If(both, holds, z3.And(z3.Not(left.present), z3.Not(right.present)))
        if expr.op == "!=":
            return z3.If(both, holds, z3.Not(z3.And(z3.Not(left.present), z3.Not(right.present))))
        return z3.And(both, holds)

    def _zoned_order(self, op: str, left: Scalar, right: Scalar, a: z3.ExprRef, b: z3.ExprRef) -> z3.BoolRef:
        """``a op b`` as Python compares them: two instants of the Shanghai zone by wall clock (the
        same order as instants, except around a change of offset, left free there)."""
        holds = _ordered(op, a, b)
        if left.zoned and right.zoned:
            steady = z3.And(a >= STEADY_FROM_US, b >= STEADY_FROM_US)
            return z3.If(steady, holds, self.fresh_bool("wall-clock-order", holds))
        return holds

    def _member(self, seq: Seq, item: Scalar) -> z3.BoolRef:
        if item.value is None:
            return FALSE
        contained = _contains(seq, item.value)
        return z3.If(seq.overflow, self.fresh_bool("member", z3.And(contained, seq.length >= 0)), contained)

    # --- conditions (durable_rules' semantics) ---------------------------------------------

    def condition(self, expr: Expr, matcher: bool) -> z3.BoolRef:
        if isinstance(expr, Logic):
            parts = [self.condition(operand, matcher) for operand in expr.operands]
            return z3.And(parts) if expr.op == "and" else z3.Or(parts)
        if isinstance(expr, Not):
            return z3.Not(self.condition(expr.operand, matcher))
        if isinstance(expr, Lit):
            if not isinstance(expr.value, bool):
                raise Unsupported(expr.offset, f"{expr.text!r} is not a condition")
            return z3.BoolVal(expr.value)
        if isinstance(expr, Compare):
            return self._compare_condition(expr, matcher)
        if isinstance(expr, Call) and expr.function == "exists":
            return self.value(expr.args[0]).present
        # a boolean name (or, in an invariant, any boolean value): present and true
        return self._truthy(expr)

    def _compare_condition(self, expr: Compare, matcher: bool) -> z3.BoolRef:
        left, right, op = expr.left, expr.right, expr.op
        if op in ("in", "not in"):
            return self._membership_condition(expr, matcher)
        if isinstance(right, Lit) and right.value is None:
            present = self.value(left).present
            return present if op == "!=" else z3.Not(present)
        if isinstance(left, Lit) and left.value is None:
            present = self.value(right).present
            return present if op == "!=" else z3.Not(present)
        if not matcher:  # an invariant: exact values, int literals next to money read as yuan
            first, second = self.scalar(left), self.scalar(right)
            if first.value is None or second.value is None:
                return FALSE
            a, b = _same_units(first, second)
            return z3.And(first.present, second.present, self._zoned_order(op, first, second, a, b))
        (left_present, a), (right_present, b) = self.operand(left), self.operand(right)
        return z3.And(left_present, right_present, _ordered(op, a, b))

    def _membership_condition(self, expr: Compare, matcher: bool) -> z3.BoolRef:
        left, right = expr.left, expr.right
        if isinstance(right, (ListLit, Lit)):
            values = [item.value for item in right.items] if isinstance(right, ListLit) else list(right.value or [])
            present, term = self.operand(left) if matcher else self._exact(left)
            items = [_literal(value, matcher) for value in values]
            if expr.op == "in":
                return z3.And(present, z3.Or([term == item for item in items] or [FALSE]))
            return z3.And(present, z3.And([term != item for item in items] or [TRUE]))
        seq = self.value(right)
        if not isinstance(seq, Seq):
            raise Unsupported(right.offset, "'in' needs a list on the right")
        present, term = self.operand(left) if matcher else self._exact(left)
        item = Scalar(present, term, left.type)
        found = z3.And(present, seq.present, self._member(seq, item))
        return found if expr.op == "in" else z3.Not(found)

    def _exact(self, expr: Expr) -> tuple[z3.BoolRef, z3.ExprRef]:
        value = self.scalar(expr)
        if value.value is None:
            return FALSE, z3.IntVal(0)
        return value.present, value.value

    def operand(self, expr: Expr) -> tuple[z3.BoolRef, z3.ExprRef]:
        """(every name read is present, the term in durable_rules' units) of one side of a comparison."""
        if isinstance(expr, Lit):
            return TRUE, _literal(expr.value, True)
        if isinstance(expr, Arith):
            if expr.op == "/":
                raise Unsupported(expr.offset, "durable_rules divides in floating point: declare a derived value")
            (left_present, a), (right_present, b) = self.operand(expr.left), self.operand(expr.right)
            term = {"+": a + b, "-": a - b, "*": a * b}[expr.op]
            return z3.And(left_present, right_present), int64(term)
        value = self.value(expr)
        if isinstance(value, Seq):
            raise Unsupported(expr.offset, "a list compared as a value")
        if isinstance(expr, Call) and expr.function == "len":
            return value.present, value.value
        if not isinstance(value, Scalar) or value.value is None:
            return FALSE, z3.IntVal(0)
        return value.present, matcher_units(value)


def _within(term: z3.ArithRef, bound: int) -> z3.BoolRef:
    return z3.And(term < bound, term > -bound)


def int64(term: z3.ArithRef) -> z3.ArithRef:
    """``term`` as durable_rules computes it: 64-bit integers that wrap around."""
    bound = 2**63
    return z3.If(z3.And(term >= -bound, term < bound), term, (term + bound) % (2 * bound) - bound)


def matcher_units(value: Scalar) -> z3.ExprRef:
    """A value as durable_rules compares it: the same whole numbers, durations held within ±2^60 µs."""
    if value.type.kind == "duration":
        limit = MATCHER_DURATION_LIMIT
        return z3.If(value.value > limit, limit, z3.If(value.value < -limit, -limit, value.value))
    return value.value


def _literal(value: Any, matcher: bool) -> z3.ExprRef:
    if matcher:
        converted = to_matcher(value)
        if isinstance(converted, bool):
            return z3.BoolVal(converted)
        if isinstance(converted, int):
            return z3.IntVal(converted)
        return z3.StringVal(converted)
    return literal_term(value)


def _same_units(left: Scalar, right: Scalar) -> tuple[z3.ExprRef, z3.ExprRef]:
    a, b = left.value, right.value
    if left.type.kind == "int" and right.type.kind == "money":
        a = a * 100
    if right.type.kind == "int" and left.type.kind == "money":
        b = b * 100
    return a, b


def _ordered(op: str, a: z3.ExprRef, b: z3.ExprRef) -> z3.BoolRef:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _contains(seq: Seq, term: z3.ExprRef) -> z3.BoolRef:
    return z3.Or([z3.And(included, item.value == term) for included, item in seq.items
                  if isinstance(item, Scalar) and item.value is not None] or [FALSE])


def _seq(items: list[tuple[z3.BoolRef, Value]], overflow: z3.BoolRef, kind: Type, terms: Terms | None = None) -> Seq:
    counted = z3.Sum([z3.If(included, 1, 0) for included, _ in items]) if items else z3.IntVal(0)
    if terms is not None and not z3.is_false(overflow):
        # past the bound, the length is any number beyond what is represented
        beyond = z3.Int(terms.fresh_name("length", z3.And(overflow, counted >= 0)))
        length = z3.If(overflow, beyond, counted)
        terms.axioms.append(beyond >= 0)
    else:
        length = counted
    return Seq(TRUE, items, length, overflow, kind)


def round_half_up(numerator: z3.ArithRef, denominator: z3.ArithRef) -> z3.ArithRef:
    """numerator / denominator rounded half away from zero (Decimal's ROUND_HALF_UP); denominator ≠ 0."""
    size_n = z3.If(numerator >= 0, numerator, -numerator)
    size_d = z3.If(denominator >= 0, denominator, -denominator)
    rounded = (2 * size_n + size_d) / (2 * size_d)
    same_sign = (numerator >= 0) == (denominator > 0)
    return z3.If(z3.Or(numerator == 0, same_sign), rounded, -rounded)


def _next_time_of_day_us(args: list[int]) -> tuple[bool, Any] | None:
    from datetime import time as time_of_day

    from engine.analysis.values import from_instant_us
    from engine.language.functions import FUNCTIONS
    from engine.runtime.values import epoch_us
    instant, tod = args
    seconds, micro = divmod(tod, SECOND_US)
    hours, rest = divmod(seconds, 3600)
    if not 0 <= hours < 24:
        return None
    result: datetime = FUNCTIONS["next_time_of_day"].call(from_instant_us(instant),
                                                          time_of_day(hours, rest // 60, rest % 60, micro))
    return True, epoch_us(result)


def _at(root: Expr, offset: int) -> Expr:
    """A node of ``root`` at ``offset`` (for the position of an unsupported construct)."""
    from engine.language.expressions import walk
    best = root
    for node in walk(root):
        if node.offset == offset:
            return node
        if node.offset <= offset:
            best = node
    return best


_WINDOWS: dict[str, Any] = {}


def working_day_window(calendar: Calendar) -> Any:
    """(first, last, count_up_to, is_working) over the calendar's years and the next twelve (estimated):
    working days there are the weekdays except the listed days off, plus the weekend make-up days."""
    if not calendar.years:
        return None
    key = hashlib.sha256(repr(sorted(calendar.texts.items())).encode()).hexdigest()
    kept = _WINDOWS.get(key)
    if kept is not None:
        return kept
    first_day, last_day = date(min(calendar.years), 1, 1), date(max(calendar.years) + 12, 12, 31)
    # the Monday on or before the window: weekdays are counted in whole weeks from it
    monday = first_day.toordinal() - first_day.weekday()
    days_off: list[int] = []
    makeup: list[int] = []
    day = first_day
    while day <= last_day:
        working = calendar.is_working_day(day)
        if day.weekday() < 5 and not working:
            days_off.append(day.toordinal())
        elif day.weekday() >= 5 and working:
            makeup.append(day.toordinal())
        day += timedelta(days=1)

    def count_up_to(ordinal: z3.ArithRef) -> z3.ArithRef:
        offset = ordinal - monday
        weekdays = 5 * (offset / 7) + z3.If(offset % 7 >= 5, 5, offset % 7 + 1)
        return (weekdays - z3.Sum([z3.If(off <= ordinal, 1, 0) for off in days_off] or [z3.IntVal(0)])
                + z3.Sum([z3.If(extra <= ordinal, 1, 0) for extra in makeup] or [z3.IntVal(0)]))

    def is_working(ordinal: z3.ArithRef) -> z3.BoolRef:
        weekday = (ordinal - monday) % 7 < 5
        return z3.Or(z3.And(weekday, z3.And([ordinal != off for off in days_off])),
                     z3.Or([ordinal == extra for extra in makeup] or [FALSE]))

    kept = _WINDOWS[key] = (first_day.toordinal(), last_day.toordinal(), count_up_to, is_working)
    return kept
