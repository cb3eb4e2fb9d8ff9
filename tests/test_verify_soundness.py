"""Where the encoding once claimed a proof the service does not keep (a review of rulesvc verify found
each): the rule files in tests/verify_cases/ replay them, and what the service really decides is asserted
beside what verify says now."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest

from engine import load_rule_file, load_rulebook
from engine.analysis.prove import prove_rulebooks
from engine.analysis.verify import verify_decision

CASES = Path(__file__).parent / "verify_cases"


def decision(tmp_path: Path, file: str, name: str):
    directory = tmp_path / "rules"
    directory.mkdir(exist_ok=True)
    shutil.copy(CASES / file, directory / file)
    return load_rulebook([directory]).decision(name)


def statuses(report) -> dict[str, str]:
    return {invariant: entry["status"] for invariant, entry in report.invariants.items()}


def test_an_int_literal_next_to_money_is_yuan_in_min_coalesce_and_in(tmp_path):
    mincap = decision(tmp_path, "t2.yaml", "t2.mincap")
    result = mincap.evaluate({"amount": "20.00"})
    assert result["outcome"] == "review" and result["values"]["topped"] == "25.00"  # coalesce(extra, 5) + 20.00
    report = verify_decision(mincap)
    assert [entry["rule"] for entry in report.dead] == ["t2.mincap/cap-small"]  # min(amount ≥ 10.00, 5) is 5.00
    assert statuses(report) == {"topped-at-least": "violated"}
    inlist = decision(tmp_path, "t3.yaml", "t3.inlist")
    assert inlist.evaluate({"amount": "1.00"})["outcome"] == "deny"  # amount in [1, 2]: 1.00 or 2.00
    assert inlist.evaluate({"amount": "0.01"})["outcome"] == "allow"
    assert statuses(verify_decision(inlist)) == {"hit-is-small": "violated", "one-or-two-denied": "proved"}


def test_shanghai_offsets_before_1970_are_the_zone_datas(tmp_path):
    lmt = decision(tmp_path, "t3.yaml", "t3.lmt")
    result, evaluation = lmt.run({}, now=datetime.fromisoformat("2026-11-20T10:00:00+08:00"))  # as a caller writes it
    assert str(evaluation.values["then_time"]) == "10:05:43"  # 1862: local mean time, +08:05:43
    assert statuses(verify_decision(lmt)) == {"same-time-of-day": "violated"}


def test_wall_clock_arithmetic_on_a_zoned_instant_is_not_claimed_impossible(tmp_path):
    wall = decision(tmp_path, "t13.yaml", "t13.wall")
    assert wall.evaluate({"d": "1986-09-14"})["outcome"] == "deny"  # the day summer time ended is 25 hours
    report = verify_decision(wall)
    assert not report.dead and report.outcomes["deny"]["status"] in ("reachable", "unknown")


def test_durable_rules_arithmetic_wraps_at_64_bits(tmp_path):
    overflow = decision(tmp_path, "t5.yaml", "t5.overflow")
    assert overflow.evaluate({"i": 9007199254740991, "j": 0})["outcome"] == "allow"
    report = verify_decision(overflow)
    assert not report.always and report.outcomes["allow"]["status"] == "reachable"


def test_a_defer_may_have_no_next_eligible_at_and_reasons_keep_duplicates(tmp_path):
    assert statuses(verify_decision(decision(tmp_path, "t8.yaml", "t8.nea"))) == {"defer-has-next": "violated"}
    duplicated = decision(tmp_path, "t10.yaml", "t10.dup")
    assert [reason["code"] for reason in duplicated.evaluate({"a": 5})["reasons"]] == ["C1", "C1"]
    assert statuses(verify_decision(duplicated)) == {"one-reason": "violated"}


def test_a_witness_that_needs_a_huge_list_is_unknown_not_built(tmp_path):
    report = verify_decision(decision(tmp_path, "t14.yaml", "t14.longlist"))
    assert report.outcomes["deny"]["status"] == "unknown"
    assert "20000001 items" in report.outcomes["deny"]["why"]


def test_a_request_valid_for_only_one_version_is_a_change(tmp_path):
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    shutil.copy(CASES / "diff-old.yaml", old_dir / "d.yaml")
    shutil.copy(CASES / "diff-new.yaml", new_dir / "d.yaml")
    report = prove_rulebooks(load_rulebook([old_dir]), load_rulebook([new_dir]))
    transitions = report["decisions"]["d.x"]["transitions"]
    assert report["summary"]["equivalent"] is False
    assert {"invalid->allow", "invalid->deny"} <= set(transitions)
    assert transitions["invalid->deny"]["old"] == {"outcome": None, "invalid_facts": ["amount"]}


def test_a_defaulted_object_cannot_have_required_fields():
    text = (CASES / "t2.yaml").read_text(encoding="utf-8").replace(
        "      extra: {type: money}\n",
        "      extra: {type: money}\n      opt:\n        type: object\n        default: {}\n"
        "        fields:\n          flag: {type: bool, required: true}\n")
    _, problems = load_rule_file("t2.yaml", text)
    assert [problem.message for problem in problems] == [
        "opt.flag cannot be required: opt has a default ({}), and when it is left out its fields are absent; "
        "give opt.flag a default instead"]


def test_a_working_day_count_past_the_maximum_is_refused_before_any_walk(rulebook):
    """A fact could ask for 10^15 working days: the walk would hold a worker for minutes (now: null)."""
    calendar = rulebook.calendar
    with pytest.raises(OverflowError):
        calendar.add_working_days(date(2026, 1, 1), 10**15)
    assert calendar.add_working_days(date(2026, 1, 1), 10_000) > date(2060, 1, 1)
    assert calendar.add_working_days(date(2026, 1, 1), 0) == date(2026, 1, 1)


def test_money_past_decimals_precision_may_be_null_and_verify_says_so(tmp_path):
    precision = decision(tmp_path, "t6.yaml", "t6.precision")
    assert precision.evaluate({"x": "100000000000.00", "i": 10**15})["outcome"] == "deny"  # x × i is null
    report = verify_decision(precision)
    assert statuses(report) == {"product-exists": "violated"}
    assert not report.dead and report.outcomes["deny"]["status"] == "reachable"
    assert [entry["what"] for entry in report.errors] == ["money past Decimal's precision"]


def test_differing_money_and_an_int_and_lists_of_lists_are_refused_at_check():
    _, problems = load_rule_file("t15.yaml", (CASES / "t15.yaml").read_text(encoding="utf-8"))
    assert [problem.message for problem in problems] == ["'n' is int, not money; declare it as money"]
    nested = (CASES / "t14.yaml").read_text(encoding="utf-8").replace('type: "[str]"', 'type: "[[str]]"')
    _, problems = load_rule_file("t14.yaml", nested)
    assert [problem.message for problem in problems] == ["l: lists of lists are not supported; use a list of objects"]
