"""A year of the working-day calendar laid out as twelve month grids (weeks start on Monday).

Every day is judged by the engine's calendar (``Calendar.is_working_day``), the one the rebate
waits count with, so the page shows exactly what decisions use; names come from its data.
"""

from __future__ import annotations

import calendar as month_grid
from dataclasses import dataclass
from datetime import date

from engine.calendar import Calendar


@dataclass(frozen=True)
class Day:
    day: date
    kind: str  # workday | weekend | holiday | makeup | dayoff
    name: str = ""


@dataclass
class Month:
    month: int
    weeks: list[list[Day | None]]  # None: a cell outside the month


@dataclass
class Year:
    year: int
    estimated: bool
    months: list[Month]
    holidays: list[Day]
    makeups: list[Day]
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
        holidays=[day for day in every_day if day.kind in ("holiday", "dayoff")],
        makeups=[day for day in every_day if day.kind == "makeup"],
        working_days=sum(day.kind in ("workday", "makeup") for day in every_day),
    )
