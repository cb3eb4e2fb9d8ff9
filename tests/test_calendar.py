"""The China working-day calendar: data files, import, counting, month arithmetic, validation."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from engine import check
from engine.calendar import add_months, load_calendar

from .conftest import RULES

CALENDARS = RULES / "calendars"


@pytest.fixture(scope="module")
def calendar():
    loaded, problems = load_calendar(CALENDARS)
    assert problems == []
    return loaded


@pytest.mark.parametrize(("day", "working"), [
    (date(2026, 2, 14), True),    # Saturday, make-up workday before the Spring Festival
    (date(2026, 2, 16), False),   # Spring Festival
    (date(2026, 2, 24), True),    # the day after the Spring Festival holiday
    (date(2026, 2, 28), True),    # Saturday, make-up workday after it
    (date(2026, 5, 1), False),    # Labour Day
    (date(2026, 5, 9), True),     # Saturday, make-up workday for Labour Day
    (date(2026, 9, 20), True),    # Sunday, make-up workday for National Day
    (date(2026, 10, 7), False),   # National Day
    (date(2026, 10, 10), True),   # Saturday, make-up workday
    (date(2026, 11, 21), False),  # an ordinary Saturday
])
def test_working_days(calendar, day, working):
    assert calendar.is_working_day(day) is working


@pytest.mark.parametrize(("start", "count", "end"), [
    (date(2026, 11, 16), 5, date(2026, 11, 23)),   # taobao example: period ends Monday 23rd
    (date(2026, 9, 24), 20, date(2026, 10, 29)),   # jd example across Mid-Autumn and National Day
    (date(2026, 2, 13), 1, date(2026, 2, 14)),     # Friday → make-up Saturday
    (date(2026, 2, 14), 1, date(2026, 2, 24)),     # across the whole Spring Festival
    (date(2026, 4, 30), 2, date(2026, 5, 7)),      # across Labour Day
    (date(2026, 5, 8), 1, date(2026, 5, 9)),       # Labour Day make-up Saturday
    (date(2026, 9, 30), 1, date(2026, 10, 8)),     # across National Day
])
def test_add_working_days(calendar, start, count, end):
    assert calendar.add_working_days(start, count) == end


def test_past_the_data_counts_monday_to_friday(calendar):
    assert max(calendar.years) == 2026
    assert calendar.add_working_days(date(2026, 12, 30), 3) == date(2027, 1, 4)  # 31 Dec, 1 Jan (estimated), 4 Jan
    assert calendar.estimated_between(date(2026, 12, 30), date(2027, 1, 4))
    assert not calendar.estimated_between(date(2026, 11, 16), date(2026, 11, 23))


@pytest.mark.parametrize(("start", "months", "end"), [
    (date(2026, 1, 31), 2, date(2026, 3, 31)),
    (date(2025, 12, 31), 2, date(2026, 2, 28)),    # clamped to the month's last day
    (date(2024, 2, 29), 12, date(2025, 2, 28)),    # leap day + 1 year
    (date(2023, 12, 31), 2, date(2024, 2, 29)),    # into a leap February
    (date(2026, 11, 30), 3, date(2027, 2, 28)),
])
def test_add_months_clamps_to_month_end(start, months, end):
    assert add_months(start, months) == end


def test_import_regenerates_the_shipped_files_identically(tmp_path):
    years = sorted(int(path.stem.split("-")[1]) for path in CALENDARS.glob("cn-*.yaml"))
    result = subprocess.run([sys.executable, "-m", "cli.main", "calendar", "import",
                             "--years", f"{years[0]}-{years[-1]}", "--rules", str(tmp_path)],
                            capture_output=True, text=True, cwd=RULES.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    for shipped in CALENDARS.glob("cn-*.yaml"):
        assert (tmp_path / "calendars" / shipped.name).read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8")


def test_import_refuses_years_without_data(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cli.main", "calendar", "import", "--years", "2030-2031",
                             "--rules", str(tmp_path)], capture_output=True, text=True, cwd=RULES.parent, timeout=60)
    assert result.returncode == 2
    assert "no data for 2030, 2031" in result.stderr


def _calendar_problems(tmp_path: Path, text: str) -> list[str]:
    directory = tmp_path / "rules"
    (directory / "calendars").mkdir(parents=True)
    (directory / "calendars" / "cn-2026.yaml").write_text(text, encoding="utf-8")
    (directory / "payout.yaml").write_text((RULES / "payout.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    _, problems = check([directory])
    return [str(problem).replace(str(directory) + "/", "") for problem in problems]


def test_duplicate_calendar_date_is_reported_at_its_line(tmp_path):
    text = "year: 2026\nholidays:\n  2026-10-01: National Day\n  2026-10-02: National Day\nworkdays:\n  2026-10-01: oops\n"
    assert _calendar_problems(tmp_path, text) == [
        "calendars/cn-2026.yaml:6:3: 2026-10-01 is listed twice (also under holidays)"]


def test_repeated_key_in_one_section_is_reported(tmp_path):
    text = "year: 2026\nholidays:\n  2026-10-01: National Day\n  2026-10-01: National Day\n"
    assert _calendar_problems(tmp_path, text) == ["calendars/cn-2026.yaml:4:3: duplicate key '2026-10-01'"]


def test_malformed_calendar_date_is_reported_at_its_line(tmp_path):
    text = "year: 2026\nholidays:\n  2026-10-01: National Day\n  2026-13-01: Nonsense\n  2025-10-01: Wrong year\n"
    assert _calendar_problems(tmp_path, text) == [
        "calendars/cn-2026.yaml:4:3: '2026-13-01' must be a date YYYY-MM-DD",
        "calendars/cn-2026.yaml:5:3: 2025-10-01 is not in 2026",
    ]
