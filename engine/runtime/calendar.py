"""The China working-day calendar and calendar arithmetic on Shanghai dates.

Holidays and make-up workdays (调休) are data: one YAML file per year under ``rules/calendars/``,
imported from the ``chinese-calendar`` package by ``rulesvc calendar import`` and editable by hand.
A year without a file is *estimated*: weekends and the statutory holidays the law fixes
(``rules/calendars/statutory.yaml``: fixed dates, lunar dates and solar terms, converted with the
``lunar-python`` library) are days off, every other day is a working day (make-up days are not known
before the State Council publishes them). Callers learn it through :meth:`Calendar.covers`.
"""

from __future__ import annotations

import calendar as _month_lengths
import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from engine.errors import Problem
from engine.language.source import load_document, read_source
from engine.runtime.values import parse_date

CALENDAR_DIR = "calendars"
MAX_WORKING_DAYS = 10_000  # add_working_days counts at most this many (about 40 years)
STATUTORY_FILE = "statutory.yaml"  # the law's fixed holidays, the basis of estimated years
SOLAR_TERMS = ("小寒", "大寒", "立春", "雨水", "惊蛰", "春分", "清明", "谷雨", "立夏", "小满", "芒种", "夏至",
               "小暑", "大暑", "立秋", "处暑", "白露", "秋分", "寒露", "霜降", "立冬", "小雪", "大雪", "冬至")


@dataclass(frozen=True)
class StatutoryHoliday:
    """A day off the law fixes: on a Gregorian date, a lunar date or a solar term, plus a span of days.

    ``first``/``last`` are offsets from the anchor day (春节: lunar 01-01 from -1, 除夕, to +2, 初三).
    """

    name: str
    anchor: str  # "date" | "lunar" | "solar_term"
    month: int = 0
    day: int = 0
    term: str = ""
    first: int = 0
    last: int = 0

    def days(self, year: int) -> list[date]:
        anchor = self._anchor(year)
        return [anchor + timedelta(days=offset) for offset in range(self.first, self.last + 1)]

    def _anchor(self, year: int) -> date:
        if self.anchor == "date":
            return date(year, self.month, self.day)
        from lunar_python import Lunar  # only estimated years need the lunar calendar

        if self.anchor == "lunar":
            solar = Lunar.fromYmd(year, self.month, self.day).getSolar()
        else:  # the solar term of this Gregorian year (the lunar year that starts in it holds it)
            solar = Lunar.fromYmd(year, 1, 1).getJieQiTable()[self.term]
        return date(solar.getYear(), solar.getMonth(), solar.getDay())


@dataclass
class Calendar:
    holidays: dict[date, str] = field(default_factory=dict)
    workdays: dict[date, str] = field(default_factory=dict)  # make-up working days on weekends
    years: frozenset[int] = frozenset()
    version: str = ""  # sha256 over the calendar files, part of the version of domains that use it
    statutory: tuple[StatutoryHoliday, ...] = ()  # the basis of estimated years
    sources: dict[int, str] = field(default_factory=dict)  # year -> the file that holds it
    texts: dict[str, str] = field(default_factory=dict)  # file name -> text, kept with ruleset versions
    _estimates: dict[int, dict[date, str]] = field(default_factory=dict, repr=False, compare=False)

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if day.year not in self.years and day in self.estimated_holidays(day.year):
            return False
        return day.weekday() < 5

    def estimated_holidays(self, year: int) -> dict[date, str]:
        """The statutory days off of a year the data does not cover (computed once per year)."""
        estimate = self._estimates.get(year)
        if estimate is None:
            estimate = {}
            for holiday in self.statutory:
                for day in holiday.days(year):
                    estimate.setdefault(day, holiday.name)
            self._estimates[year] = estimate
        return estimate

    def days_off(self, year: int) -> list[tuple[date, str]]:
        """A year's holidays (official, or estimated when the data does not cover it), weekends aside."""
        if year in self.years:
            return sorted((day, name) for day, name in self.holidays.items() if day.year == year)
        return sorted(self.estimated_holidays(year).items())

    def makeup_workdays(self, year: int) -> list[tuple[date, str]]:
        return sorted((day, name) for day, name in self.workdays.items() if day.year == year)

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself does not count); a count past
        :data:`MAX_WORKING_DAYS` (about 40 years) raises OverflowError — null in a rule — so no request
        can make a decision walk the calendar for seconds."""
        if count > MAX_WORKING_DAYS:
            raise OverflowError(f"more than {MAX_WORKING_DAYS} working days")
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
        text, problem = read_source(path)
        if text is None:
            problems.append(problem)
            continue
        digest.update(path.name.encode() + b"\0" + text.encode("utf-8"))
        calendar.texts[path.name] = text
        if path.name == STATUTORY_FILE:
            calendar.statutory = _load_statutory(str(path), text, problems)
            continue
        year = _load_year(str(path), text, calendar, problems)
        if year is not None:
            if year in years:
                problems.append(Problem(str(path), 1, 1, f"year {year} is already defined by another calendar file"))
            years.add(year)
            calendar.sources[year] = str(path)
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


def _load_statutory(file: str, text: str, problems: list[Problem]) -> tuple[StatutoryHoliday, ...]:
    """``statutory.yaml``: ``holidays:`` a list of {name, one of date/lunar/solar_term, first?, last?}."""
    document, file_problems = load_document(file, text)
    problems.extend(file_problems)
    if document is None:
        return ()
    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("holidays"), list):
        problems.append(document.problem((), "statutory.yaml needs holidays: a list of {name, date|lunar|solar_term}"))
        return ()
    for key in data:
        if key not in ("law", "holidays"):
            problems.append(document.problem((key,), f"unknown key {key!r} in statutory.yaml (law, holidays)", key=True))
    holidays = []
    for index, entry in enumerate(data["holidays"]):
        path = ("holidays", index)
        try:
            holidays.append(_statutory_holiday(entry))
        except ValueError as error:
            problems.append(document.problem(path, f"holiday {index + 1}: {error}"))
    return tuple(holidays)


def _statutory_holiday(entry: object) -> StatutoryHoliday:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError("write {name: …, date: 'MM-DD'} (or lunar: 'MM-DD', or solar_term: 清明)")
    unknown = set(entry) - {"name", "date", "lunar", "solar_term", "first", "last"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (name, date, lunar, solar_term, first, last)")
    anchors = [key for key in ("date", "lunar", "solar_term") if key in entry]
    if len(anchors) != 1:
        raise ValueError("give exactly one of date, lunar and solar_term")
    first, last = entry.get("first", 0), entry.get("last", 0)
    if not all(isinstance(n, int) and not isinstance(n, bool) and -7 <= n <= 7 for n in (first, last)) or first > last:
        raise ValueError("first and last are day offsets from -7 to 7, first <= last")
    anchor = anchors[0]
    if anchor == "solar_term":
        if entry["solar_term"] not in SOLAR_TERMS:
            raise ValueError(f"solar_term must be one of {', '.join(SOLAR_TERMS)}")
        return StatutoryHoliday(entry["name"], anchor, term=entry["solar_term"], first=first, last=last)
    text = entry[anchor]
    try:
        month, day = (int(part) for part in str(text).split("-"))
        date(2024 if anchor == "date" else 2000, month, day if anchor == "date" else min(day, 28))
        if anchor == "lunar" and not 1 <= day <= 30:
            raise ValueError
    except ValueError:
        raise ValueError(f"{anchor} must be 'MM-DD' (quoted), got {text!r}") from None
    return StatutoryHoliday(entry["name"], anchor, month=month, day=day, first=first, last=last)


def calendar_lines(calendar: Calendar, year: int, directory: Path) -> list[str]:
    """``rulesvc calendar show``: a year's days off and make-up workdays, official or estimated."""
    official = year in calendar.years
    if official:
        lines = [f"{year}: official — {calendar.sources.get(year, directory)}"]
    else:
        lines = [f"{year}: estimated — no {directory / f'cn-{year}.yaml'}: weekends and the statutory holidays of "
                 f"{directory / STATUTORY_FILE} are days off; make-up workdays are not known yet "
                 "(decisions that count these days warn CALENDAR_ESTIMATED)"]
    status = "official" if official else "estimated"
    days_off = calendar.days_off(year)
    lines.append(f"days off besides weekends ({len(days_off)}):")
    lines += [f"  {day.isoformat()} {day.strftime('%a')}  {name}  ({status})" for day, name in days_off]
    workdays = calendar.makeup_workdays(year)
    lines.append(f"make-up workdays on weekends ({len(workdays)}):" if workdays or official
                 else "make-up workdays on weekends: not known yet")
    lines += [f"  {day.isoformat()} {day.strftime('%a')}  {name}  ({status})" for day, name in workdays]
    first, last = date(year, 1, 1), date(year, 12, 31)
    working = sum(calendar.is_working_day(first + timedelta(days=n)) for n in range((last - first).days + 1))
    lines.append(f"working days: {working}")
    return lines


def package_version() -> str:
    import chinese_calendar  # only the import command needs it

    return chinese_calendar.__version__


def package_years() -> tuple[int, int]:
    """The first and last year the installed ``chinese-calendar`` has official data for."""
    import chinese_calendar

    known = {day.year for day in chinese_calendar.holidays}
    return min(known), max(known)


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
