"""The China working-day calendar and calendar arithmetic on Shanghai dates.

Holidays and make-up workdays (调休) are data: one YAML file per year under ``rules/calendars/``,
imported from the ``chinese-calendar`` package by ``rulesvc calendar import`` and editable by hand.
A year without a file is estimated as Monday–Friday; callers learn it through :meth:`Calendar.covers`.
"""

from __future__ import annotations

import calendar as _month_lengths
import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from .errors import Problem
from .source import load_document
from .values import parse_date

CALENDAR_DIR = "calendars"


@dataclass
class Calendar:
    holidays: dict[date, str] = field(default_factory=dict)
    workdays: dict[date, str] = field(default_factory=dict)  # make-up working days on weekends
    years: frozenset[int] = frozenset()
    version: str = ""  # sha256 over the calendar files, part of the version of domains that use it
    sources: dict[str, str] = field(default_factory=dict)  # file name -> text, kept with ruleset versions

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself does not count)."""
        day = start
        remaining = count
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def estimated_between(self, start: date, end: date) -> bool:
        """Whether any day after ``start`` up to ``end`` lies in a year the data does not cover."""
        first_counted = start + timedelta(days=1)
        return end > start and any(year not in self.years for year in range(first_counted.year, end.year + 1))


def add_months(start: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day when it has no such day (01-31 + 1 → 02-28)."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last_day = _month_lengths.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last_day))


def load_calendar(directory: Path) -> tuple[Calendar, list[Problem]]:
    """Read every ``*.yaml`` of a calendars directory; problems carry file, line and column."""
    calendar = Calendar()
    problems: list[Problem] = []
    digest = hashlib.sha256()
    years: set[int] = set()
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    for path in files:
        text = path.read_text(encoding="utf-8")
        digest.update(path.name.encode() + b"\0" + text.encode("utf-8"))
        calendar.sources[path.name] = text
        year = _load_year(str(path), text, calendar, problems)
        if year is not None:
            if year in years:
                problems.append(Problem(str(path), 1, 1, f"year {year} is already defined by another calendar file"))
            years.add(year)
    calendar.years = frozenset(years)
    calendar.version = "sha256:" + digest.hexdigest() if files else ""
    return calendar, problems


def _load_year(file: str, text: str, calendar: Calendar, problems: list[Problem]) -> int | None:
    document, file_problems = load_document(file, text)
    problems.extend(file_problems)
    if document is None:
        return None
    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("year"), int):
        problems.append(document.problem((), "a calendar file needs year: YYYY, holidays: and workdays:"))
        return None
    year = data["year"]
    for key in data:
        if key not in ("year", "source", "holidays", "workdays"):
            problems.append(document.problem((key,), f"unknown key {key!r} in a calendar file "
                                                     "(year, source, holidays, workdays)", key=True))
    seen: dict[date, str] = {}
    for section, target in (("holidays", calendar.holidays), ("workdays", calendar.workdays)):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            problems.append(document.problem((section,), f"{section} must map dates to names"))
            continue
        for raw, name in entries.items():
            try:
                day = parse_date(raw)
            except ValueError as error:
                problems.append(document.problem((section, raw), f"{raw!r} {error}", key=True))
                continue
            if day.year != year:
                problems.append(document.problem((section, raw), f"{day} is not in {year}", key=True))
                continue
            if day in seen:
                problems.append(document.problem((section, raw), f"{day} is listed twice (also under {seen[day]})",
                                                 key=True))
                continue
            seen[day] = section
            target[day] = str(name or "")
    return year


def import_years(first: int, last: int) -> dict[int, str]:
    """Calendar files for ``first``..``last`` from the ``chinese-calendar`` package: ``{year: yaml text}``."""
    import chinese_calendar  # only the import command needs it

    known = {day.year for day in chinese_calendar.holidays}
    missing = [year for year in range(first, last + 1) if year not in known]
    if missing:
        raise ValueError(f"chinese-calendar {chinese_calendar.__version__} has no data for "
                         f"{', '.join(map(str, missing))} (it covers {min(known)}-{max(known)})")
    files = {}
    for year in range(first, last + 1):
        lines = [
            f"# China's official calendar for {year}: public holidays and make-up working days (调休).",
            f"# Generated by `rulesvc calendar import` from chinese-calendar {chinese_calendar.__version__};",
            "# edit by hand when the State Council publishes changes.",
            f"year: {year}",
            "source: chinese-calendar (State Council notices)",
            "holidays:",
        ]
        holidays = sorted((day, name) for day, name in chinese_calendar.holidays.items() if day.year == year)
        lines += [f"  {day.isoformat()}: {name}" for day, name in holidays]
        lines.append("workdays:")
        workdays = sorted((day, name) for day, name in chinese_calendar.workdays.items()
                          if day.year == year and day.weekday() >= 5)
        lines += [f"  {day.isoformat()}: {name}" for day, name in workdays]
        files[year] = "\n".join(lines) + "\n"
    return files
