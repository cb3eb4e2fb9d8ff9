"""The China working-day calendar: data files, import, counting, month arithmetic, validation."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from engine import check
from engine.runtime.calendar import add_months, load_calendar, package_years

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


def test_past_the_data_weekends_and_statutory_holidays_are_days_off(calendar):
    assert max(calendar.years) == 2026
    # 31 Dec, (1 Jan 元旦 estimated off, weekend), 4 Jan, 5 Jan
    assert calendar.add_working_days(date(2026, 12, 30), 3) == date(2027, 1, 5)
    assert calendar.add_working_days(date(2026, 12, 4), 20) == date(2027, 1, 4)  # JD: not 2027-01-01
    assert calendar.estimated_between(date(2026, 12, 30), date(2027, 1, 5))
    assert not calendar.estimated_between(date(2026, 11, 16), date(2026, 11, 23))


# The law's days off in 2027 (全国年节及纪念日放假办法 as amended 2024), lunar dates and 清明 computed:
# 春节 2027-02-06 is 正月初一 (除夕 02-05 … 初三 02-08), 清明 04-05, 端午 06-09, 中秋 09-15.
ESTIMATED_2027 = {
    date(2027, 1, 1): "New Year's Day",
    date(2027, 2, 5): "Spring Festival", date(2027, 2, 6): "Spring Festival",
    date(2027, 2, 7): "Spring Festival", date(2027, 2, 8): "Spring Festival",
    date(2027, 4, 5): "Tomb-sweeping Day",
    date(2027, 5, 1): "Labour Day", date(2027, 5, 2): "Labour Day",
    date(2027, 6, 9): "Dragon Boat Festival",
    date(2027, 9, 15): "Mid-autumn Festival",
    date(2027, 10, 1): "National Day", date(2027, 10, 2): "National Day", date(2027, 10, 3): "National Day",
}


def test_an_estimated_year_has_the_statutory_holidays(calendar):
    assert 2027 not in calendar.years
    assert calendar.estimated_holidays(2027) == ESTIMATED_2027
    assert not calendar.is_working_day(date(2027, 2, 8))  # 初三, a Monday
    assert calendar.is_working_day(date(2027, 2, 9))
    assert not calendar.is_working_day(date(2027, 4, 5))  # 清明, a Monday


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_estimate_agrees_with_the_official_years_under_the_same_law(calendar, year):
    """Every day the estimate takes off in a year the law (as amended 2024) governed is an official holiday."""
    estimated = {day for holiday in calendar.statutory for day in holiday.days(year)}
    assert len(estimated) == 13
    assert estimated <= set(calendar.holidays)


def test_the_estimate_reaches_the_last_accepted_year(calendar):
    holidays = calendar.estimated_holidays(2999)
    assert len(holidays) == 13 and all(day.year == 2999 for day in holidays)


def _rulesvc_cli(*args: str):
    from click.testing import CliRunner

    from cli.main import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_calendar_show_marks_estimated_and_official_years():
    estimated = _rulesvc_cli("calendar", "show", "2027", "--rules", str(RULES))
    assert estimated.exit_code == 0
    lines = estimated.output.splitlines()
    assert lines[0].startswith("2027: estimated — no ") and "CALENDAR_ESTIMATED" in lines[0]
    assert "  2027-01-01 Fri  New Year's Day  (estimated)" in lines
    assert "  2027-02-05 Fri  Spring Festival  (estimated)" in lines
    assert "make-up workdays on weekends: not known yet" in lines
    official = _rulesvc_cli("calendar", "show", "2026", "--rules", str(RULES))
    lines = official.output.splitlines()
    assert lines[0] == f"2026: official — {CALENDARS / 'cn-2026.yaml'}"
    assert "  2026-10-10 Sat  National Day  (official)" in lines  # a make-up workday
    assert lines[-1] == "working days: 248"  # as chinese_calendar.get_workdays counts 2026


def test_import_brings_a_new_release_year_and_the_estimate_steps_aside(tmp_path, monkeypatch):
    """A chinese-calendar release with 2027 (here a fixture year) → `calendar import` writes cn-2027.yaml,
    and 2027 is official from then on: the JD rebate of 2026-12-04 counts the official days, no warning."""
    import shutil

    import chinese_calendar

    from engine import load_rulebook

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    # the package as it was up to the last shipped year, whatever later years the installed release has
    shipped = max(_shipped_years())
    holidays = {day: name for day, name in chinese_calendar.holidays.items() if day.year <= shipped}
    workdays = {day: name for day, name in chinese_calendar.workdays.items() if day.year <= shipped}
    for day in (date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3), date(2027, 1, 4)):  # a fixture 元旦 of 4 days
        holidays[day] = chinese_calendar.Holiday.new_years_day.value
    workdays[date(2027, 1, 9)] = chinese_calendar.Holiday.new_years_day.value  # and a make-up Saturday
    monkeypatch.setattr(chinese_calendar, "holidays", holidays)
    monkeypatch.setattr(chinese_calendar, "workdays", workdays)

    imported = _rulesvc_cli("calendar", "import", "--rules", str(rules))
    assert imported.exit_code == 0, imported.output
    assert imported.output == f"wrote {rules / 'calendars' / 'cn-2027.yaml'}\n"
    shown = _rulesvc_cli("calendar", "show", "2027", "--rules", str(rules)).output.splitlines()
    assert shown[0] == f"2027: official — {rules / 'calendars' / 'cn-2027.yaml'}"
    assert "  2027-01-09 Sat  New Year's Day  (official)" in shown

    facts = {"platform": "jd", "subscription": {"confirmed": True, "ordered_at": "2026-12-04", "order_no": "J-1"},
             "report": {"shop_name": "s", "order_no": "J-1", "ordered_at": "2026-12-04", "amount": "1.00",
                        "contact_phone": "1"},
             "payee": {"account_type": "bank", "bank_name": "b", "account_no": "1", "account_name": "n"}}
    now = datetime.fromisoformat("2026-12-20T10:00:00+08:00")
    before = load_rulebook([RULES]).decide("rebate.apply", facts, now=now)
    assert before["values"]["eligible_from"] == "2027-01-05"
    assert [w["code"] for w in before["warnings"]] == ["CALENDAR_ESTIMATED"]
    after = load_rulebook([rules]).decide("rebate.apply", facts, now=now)
    # Dec 7…31 are 19 working days; 1–4 Jan off (fixture); 5 Jan is the 20th → from 6 Jan, official
    assert after["values"]["eligible_from"] == "2027-01-06"
    assert after["warnings"] == []
    again = _rulesvc_cli("calendar", "import", "--rules", str(rules))
    assert again.output.startswith("nothing to import: chinese-calendar")


@pytest.mark.parametrize(("start", "months", "end"), [
    (date(2026, 1, 31), 2, date(2026, 3, 31)),
    (date(2025, 12, 31), 2, date(2026, 2, 28)),    # clamped to the month's last day
    (date(2024, 2, 29), 12, date(2025, 2, 28)),    # leap day + 1 year
    (date(2023, 12, 31), 2, date(2024, 2, 29)),    # into a leap February
    (date(2026, 11, 30), 3, date(2027, 2, 28)),
])
def test_add_months_clamps_to_month_end(start, months, end):
    assert add_months(start, months) == end


def _shipped_years() -> list[int]:
    return sorted(int(path.stem.split("-")[1]) for path in CALENDARS.glob("cn-*.yaml"))


def _without_package_version(text: str) -> str:
    # the header names the chinese-calendar release that wrote the file: a newer one writes the same days
    return re.sub(r"from chinese-calendar \S+;", "from chinese-calendar …;", text)


def test_import_regenerates_the_shipped_files_identically(tmp_path):
    years = _shipped_years()
    result = subprocess.run([sys.executable, "-m", "cli.main", "calendar", "import",
                             "--years", f"{years[0]}-{years[-1]}", "--rules", str(tmp_path)],
                            capture_output=True, text=True, cwd=RULES.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    for shipped in CALENDARS.glob("cn-*.yaml"):
        assert _without_package_version((tmp_path / "calendars" / shipped.name).read_text(encoding="utf-8")) == \
            _without_package_version(shipped.read_text(encoding="utf-8"))


def test_import_refuses_years_without_data(tmp_path):
    after = package_years()[1] + 1  # the first year the installed release has no data for
    result = subprocess.run([sys.executable, "-m", "cli.main", "calendar", "import", "--years", f"{after}-{after + 1}",
                             "--rules", str(tmp_path)], capture_output=True, text=True, cwd=RULES.parent, timeout=60)
    assert result.returncode == 2
    assert f"no data for {after}, {after + 1}" in result.stderr


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
        "calendars/cn-2026.yaml:4:3: '2026-13-01' is not a date that exists (check the month and the day)",
        "calendars/cn-2026.yaml:5:3: 2025-10-01 is not in 2026",
    ]
