"""A year of the working-day calendar laid out as twelve month grids (weeks start on Monday).

Every day is judged by the engine's calendar (``Calendar.is_working_day``), the one the rebate
waits count with, so the page shows exactly what decisions use; names come from its data.
"""

from __future__ import annotations

import calendar as month_grid
from dataclasses import dataclass
from datetime import date

from engine.runtime.calendar import Calendar


@dataclass(frozen=True)
class Day:
    day: date
    kind: str  # workday | weekend | holiday | makeup | dayoff
    name: str = ""


@dataclass
class Month:
    month: int
    weeks: list[list[Day | None]]  # None: a cell outside the month


@dataclass(frozen=True)
class Span:
    """Consecutive days of one kind and name: 2026-10-01 – 2026-10-07 National Day."""

    first: date
    last: date
    kind: str
    name: str

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass
class Year:
    year: int
    estimated: bool
    months: list[Month]
    holidays: list[Span]
    makeups: list[Span]
    working_days: int


def classify(calendar: Calendar, day: date) -> Day:
    if day in calendar.workdays:
        return Day(day, "makeup", calendar.workdays[day])
    if calendar.is_working_day(day):
        return Day(day, "workday")
    if day in calendar.holidays:
        return Day(day, "holiday", calendar.holidays[day])
    if day.weekday() >= 5:
        return Day(day, "weekend")
    return Day(day, "dayoff")  # a weekday off that the data does not name (an estimated holiday)


def year_view(calendar: Calendar, year: int) -> Year:
    months = []
    every_day: list[Day] = []
    grid = month_grid.Calendar(firstweekday=0)
    for month in range(1, 13):
        weeks = []
        for week in grid.monthdatescalendar(year, month):
            row: list[Day | None] = []
            for day in week:
                if day.month != month:
                    row.append(None)
                    continue
                judged = classify(calendar, day)
                every_day.append(judged)
                row.append(judged)
            weeks.append(row)
        months.append(Month(month, weeks))
    return Year(
        year=year, estimated=not calendar.covers(date(year, 1, 1)), months=months,
        holidays=spans([day for day in every_day if day.kind in ("holiday", "dayoff")]),
        makeups=spans([day for day in every_day if day.kind == "makeup"]),
        working_days=sum(day.kind in ("workday", "makeup") for day in every_day),
    )


def spans(days: list[Day]) -> list[Span]:
    """``days`` (in order) grouped into runs of consecutive dates with the same kind and name."""
    found: list[Span] = []
    for day in days:
        last = found[-1] if found else None
        if last and (day.day - last.last).days == 1 and (last.kind, last.name) == (day.kind, day.name):
            found[-1] = Span(last.first, day.day, last.kind, last.name)
        else:
            found.append(Span(day.day, day.day, day.kind, day.name))
    return found
