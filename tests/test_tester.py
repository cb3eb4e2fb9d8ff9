"""The QA scenario runner: file checks with positions, expectations, coverage, CLI, JUnit, pytest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from xml.etree import ElementTree

import pytest

from engine import tester

from .conftest import RULES

BASE = textwrap.dedent("""\
    decision: allowance.withdraw
    defaults:
      now: "2026-11-20T10:00:00+08:00"
      facts:
        store: {channel: pop}
        allowance: {principal: "80.00", bonus: "20.00", consumed: "10.00", valid_until: "2026-12-31T23:59:59+08:00"}
    cases:
      - name: 充80得100 used 10
        expect:
          outcome: allow
          values: {withdrawable_principal: "72.00", forfeited_bonus: 18}
          obligations: {refund_mode: scheduled, refund_at: "2026-11-22T02:00:00Z"}
      - name: null sets null, lists replace
        facts: {request: null, store: {channel: self_operated}}
        expect: {outcome: deny, reasons: [STORE_NOT_COVERED]}
      - name: invalid facts can be expected
        facts: {allowance: {principal: "-1"}}
        expect: {error: {fields: [allowance.principal]}}
    """)


def run(rulebook, text: str) -> tester.Report:
    return tester.run_text("s.yaml", text, rulebook)


def test_a_passing_file(rulebook):
    report = run(rulebook, BASE)
    assert report.problems == []
    assert report.summary() == "3 passed, 0 failed"
    assert report.coverage["allowance.withdraw/scheduled-refund"] == [2, 0]  # the error case is not evaluated
    assert report.coverage["allowance.withdraw/store-covered"] == [1, 1]


def test_a_failing_case_is_named_with_expected_and_actual_and_the_trace(rulebook):
    report = run(rulebook, BASE.replace('withdrawable_principal: "72.00"', 'withdrawable_principal: "72.01"')
                 .replace("reasons: [STORE_NOT_COVERED]", "reasons: [NOTHING_TO_WITHDRAW]"))
    assert report.summary() == "1 passed, 2 failed"
    first, second = (r for r in report.results if not r.passed)
    assert first.failures == ["values.withdrawable_principal: expected '72.01', got '72.00'"]
    assert second.failures == ["reasons: expected ['NOTHING_TO_WITHDRAW'], got ['STORE_NOT_COVERED']"]
    text = first.describe()
    assert text.startswith("s.yaml:8: case '充80得100 used 10' failed")
    assert "fired allowance.withdraw/scheduled-refund [oblige] allowance.consumed > 0 = true (allowance.consumed=10.00)" in text


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("  - name: null sets null", "  - nmae: null sets null",
     "s.yaml:13:5: unknown key 'nmae' in cases[1] (did you mean 'name'?)"),
    ("decision: allowance.withdraw", "decision: allowance.withdrew",
     "s.yaml:1:11: unknown decision 'allowance.withdrew' (did you mean 'allowance.withdraw'?)"),
    ("reasons: [STORE_NOT_COVERED]", "reasons: [STORE_NOT_COVERD]",
     "s.yaml:15:39: allowance.withdraw has no rule with code 'STORE_NOT_COVERD' (did you mean 'STORE_NOT_COVERED'?)"),
    ('  now: "2026-11-20T10:00:00+08:00"', '  now: "2026-11-20T10:00:00"',
     "s.yaml:3:8: now must carry a UTC offset (e.g. +08:00 or Z)"),
    ("    expect: {outcome: deny", "    expect: {outcome: denied",
     "s.yaml:15:23: cases[1].expect.outcome: 'denied' is not one of allow, deny, defer, review (did you mean 'deny'?)"),
])
def test_malformed_scenario_files_are_reported_at_their_line(rulebook, old, new, expected):
    assert old in BASE
    report = run(rulebook, BASE.replace(old, new))
    assert expected in [str(problem) for problem in report.problems]
    assert report.results == []


def test_every_problem_of_a_scenario_file_is_reported_in_one_pass(rulebook):
    text = (BASE.replace('  now: "2026-11-20T10:00:00+08:00"', '  now: "2026-W47-5T10:00:00+08:00"')
            .replace("  - name: null sets null", "  - nmae: null sets null")
            .replace("expect: {error: {fields: [allowance.principal]}}",
                     'now: "20261120T100000+0800"\n    expect: {outcome: allow, reasons: [NOTHING_TO_WITHDRAWW]}'))
    report = run(rulebook, text)
    assert [str(problem) for problem in report.problems] == [
        # the bad default once, at its own line, though three cases inherit it
        "s.yaml:3:8: now must be an RFC 3339 timestamp such as 2026-11-20T10:00:00+08:00 "
        "(YYYY-MM-DDTHH:MM[:SS[.ffffff]] with Z or ±HH:MM)",
        "s.yaml:13:5: cases[1]: missing required key 'name'",
        "s.yaml:13:5: unknown key 'nmae' in cases[1] (did you mean 'name'?)",
        "s.yaml:18:10: now must be an RFC 3339 timestamp such as 2026-11-20T10:00:00+08:00 "
        "(YYYY-MM-DDTHH:MM[:SS[.ffffff]] with Z or ±HH:MM)",
        "s.yaml:19:40: allowance.withdraw has no rule with code 'NOTHING_TO_WITHDRAWW' "
        "(did you mean 'NOTHING_TO_WITHDRAW'?)",
    ]
    assert report.results == []


def test_steps_commit_against_a_fresh_store_and_replay(rulebook):
    text = textwrap.dedent("""\
        decision: allowance.merchant_refund
        defaults:
          now: "2026-11-20T10:00:00+08:00"
          facts: {withdrawal: {status: pending, requested_at: "2026-11-20T09:00:00+08:00"}}
        cases:
          - name: replay returns the first decision
            steps:
              - {commit: true, idempotency_key: k, expect: {outcome: allow}}
              - {commit: true, idempotency_key: k, expect: {outcome: allow, same_decision_as: 1}}
              - {commit: true, expect: {outcome: allow, same_decision_as: 1}}
        """)
    report = run(rulebook, text)
    assert [r.case for r in report.results if not r.passed] == ["replay returns the first decision"]
    assert report.results[0].failures[0].startswith("step 3: decision_id: expected the decision of step 1")
    assert len(report.results[0].failures) == 1


def test_cli_summary_exit_codes_junit_and_coverage(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(BASE, encoding="utf-8")
    bad.write_text(BASE.replace("outcome: allow", "outcome: defer"), encoding="utf-8")

    def rulesvc(*args):
        return subprocess.run([sys.executable, "-m", "cli.main", "test", *args], capture_output=True, text=True,
                              cwd=RULES.parent, timeout=120)

    passing = rulesvc(str(good), "--coverage")
    assert passing.returncode == 0
    assert passing.stdout.splitlines()[-1] == "3 passed, 0 failed"
    assert "allowance.withdraw/scheduled-refund" in passing.stdout and "rules never fired:" in passing.stdout

    junit = tmp_path / "junit.xml"
    failing = rulesvc(str(good), str(bad), "--junit", str(junit))
    assert failing.returncode == 1
    assert failing.stdout.splitlines()[-1] == "5 passed, 1 failed"
    assert f"{bad}:8: case '充80得100 used 10' failed" in failing.stdout
    assert "outcome: expected defer, got allow" in failing.stdout
    suites = ElementTree.parse(junit).getroot()
    assert suites.get("tests") == "6" and suites.get("failures") == "1"

    under = rulesvc(str(good), "--fail-under", "50")
    assert under.returncode == 1
    assert "below --fail-under 50%" in under.stderr


def test_pytest_collects_one_item_per_case():
    result = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "--collect-only", "-q",
                             "tests/scenarios/recovery-contact.yaml"],
                            capture_output=True, text=True, cwd=RULES.parent, timeout=120)
    assert "tests/scenarios/recovery-contact.yaml::满100减5 settles 95" in result.stdout
    assert "tests/scenarios/recovery-contact.yaml::one SMS per customer per day" in result.stdout
