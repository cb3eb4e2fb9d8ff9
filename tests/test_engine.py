"""Engine semantics on a small synthetic domain: outcomes, reasons, facts, durable_rules traps, trace."""

from __future__ import annotations

import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from engine import InvalidFacts, UnknownDecision, load_rulebook

from .conftest import NOW, codes

LAB = textwrap.dedent("""\
    domain: lab
    source: engine tests
    enums:
      color: [red, green, blue]
    constants:
      limit: {type: money, value: "100.00"}
    codes:
      D1: {zh: 拒绝一, en: deny one}
      D2: {zh: "拒绝二 {item.amount}", en: "deny two {item.amount}"}
      R1: {zh: 复核, en: review}
      F1: {zh: 稍后, en: later}
      W1: {zh: "提醒 {total}", en: "note {total}"}
    decisions:
      judge:
        facts:
          item:
            type: object
            required: true
            fields:
              amount: {type: money, required: true}
              color: {type: color, required: true}
              tags: {type: list, items: str, default: []}
              seen_at: {type: instant}
              ready_at: {type: instant}
              parts:
                type: list
                items:
                  type: object
                  fields:
                    sku: {type: str, required: true}
                    qty: {type: int}
          flags:
            type: object
            fields:
              deny1: {type: bool, default: false}
              deny2: {type: bool, default: false}
              review: {type: bool, default: false}
              defer: {type: bool, default: false}
        derived:
          total: {expr: "item.amount * 2", output: true}
        obligations:
          stamped: false
        rules:
          - {id: deny-one, when: flags.deny1, effect: deny, code: D1, source: t}
          - {id: deny-two, when: flags.deny2 and item.amount > limit, effect: deny, code: D2, source: t}
          - {id: review, when: flags.review, effect: review, code: R1, source: t}
          - {id: defer, when: flags.defer and now < item.ready_at, effect: defer, code: F1, until: item.ready_at, source: t}
          - {id: warn, when: "item.color == 'red' or 'vip' in item.tags", effect: warn, code: W1, source: t}
          - id: stamp
            when: exists(item.seen_at) and item.seen_at <= now
            effect: oblige
            obligations: {stamped: true}
            source: t
    """)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lab")
    (directory / "lab.yaml").write_text(LAB, encoding="utf-8")
    return load_rulebook([directory])


def judge(lab, flags=None, explain=False, **item):
    facts = {"item": {"amount": "150.00", "color": "green", "ready_at": "2026-11-20T03:00:00Z", **item},
             "flags": flags or {}}
    return lab.decide("lab.judge", facts, now=NOW, explain=explain)


def test_a_fact_matching_no_rule_is_allowed(lab):
    result = judge(lab)
    assert result["outcome"] == "allow"
    assert result["reasons"] == [] and result["warnings"] == []
    assert result["obligations"] == {"stamped": False}
    assert result["values"] == {"total": "300.00"}


@pytest.mark.parametrize(("flags", "outcome", "reasons"), [
    ({"deny1": True, "review": True, "defer": True}, "deny", ["D1"]),
    ({"review": True, "defer": True}, "review", ["R1"]),
    ({"defer": True}, "defer", ["F1"]),
])
def test_outcome_precedence(lab, flags, outcome, reasons):
    result = judge(lab, flags)
    assert result["outcome"] == outcome
    assert codes(result) == reasons


def test_every_fired_rule_of_the_outcome_is_a_reason(lab):
    result = judge(lab, {"deny1": True, "deny2": True, "review": True})
    assert codes(result) == ["D1", "D2"]
    assert result["reasons"][1] == {"code": "D2", "rule": "lab.judge/deny-two",
                                    "message": {"zh": "拒绝二 150.00", "en": "deny two 150.00"}}


def test_defer_carries_next_eligible_at(lab):
    result = judge(lab, {"defer": True})
    assert result["next_eligible_at"] == "2026-11-20T11:00:00+08:00"


def test_warnings_do_not_change_the_outcome(lab):
    result = judge(lab, color="red")
    assert result["outcome"] == "allow"
    assert codes(result, "warnings") == ["W1"]
    assert result["warnings"][0]["message"]["en"] == "note 300.00"


def test_membership_in_a_list_fact(lab):
    assert codes(judge(lab, tags=["x", "vip"]), "warnings") == ["W1"]
    assert codes(judge(lab, tags=["x"]), "warnings") == []
    assert codes(judge(lab, tags=[]), "warnings") == []


def test_obligation_set_by_an_oblige_rule(lab):
    assert judge(lab, seen_at="2026-11-20T02:00:00Z")["obligations"] == {"stamped": True}
    assert judge(lab, seen_at="2026-11-20T10:00:01+08:00")["obligations"] == {"stamped": False}


def test_identical_facts_evaluated_twice_give_the_same_decision(lab):
    # durable_rules refuses an identical fact asserted twice (MessageObservedException): not here.
    first, second = judge(lab, {"deny1": True}), judge(lab, {"deny1": True})
    assert first["decision_id"] != second["decision_id"]
    for result in (first, second):
        result.pop("decision_id")
    assert first == second


def test_concurrent_evaluations_from_threads(lab):
    cases = [({"deny1": i % 3 == 0, "review": i % 3 == 1, "defer": i % 3 == 2}, ["deny", "review", "defer"][i % 3])
             for i in range(300)]
    barrier = threading.Barrier(8)

    def run(case):
        flags, expected = case
        if case is cases[0]:
            barrier.wait(timeout=5)
        return judge(lab, flags)["outcome"], expected

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(barrier.wait, 5) for _ in range(7)] + [pool.submit(run, case) for case in cases]
        results = [future.result() for future in futures[7:]]
    assert all(outcome == expected for outcome, expected in results)


def test_a_replaced_rulebook_frees_its_durable_rules_rulesets(tmp_path):
    # The native engine has a fixed handle table; a reload must give the old rulesets back.
    import gc

    import durable_rules_engine

    (tmp_path / "lab.yaml").write_text(LAB, encoding="utf-8")
    rulebook = load_rulebook([tmp_path])
    handles = [matcher._handle for decision in rulebook.decisions.values()
               for matcher in (decision.fast_matcher, decision.reference.matcher, decision.reference.trace_matcher)
               if matcher]

    def error_code(handle: int) -> str:
        with pytest.raises(durable_rules_engine.error) as error:
            durable_rules_engine.get_state(handle, "no such session")
        return str(error.value).rsplit(" ", 1)[-1]

    assert {error_code(handle) for handle in handles} == {"309"}  # alive: only the session is unknown
    del rulebook
    gc.collect()
    load_rulebook([tmp_path])  # rulesets are deleted when the next ones are made (engine/runtime/durable.py)
    assert {error_code(handle) for handle in handles} == {"111"}  # ERR_INVALID_HANDLE: freed


def test_trace_shows_every_rule_and_each_condition(lab):
    result = judge(lab, {"deny2": True}, explain=True, amount="99.99")
    trace = {entry["rule"]: entry for entry in result["trace"]}
    assert list(trace) == [f"lab.judge/{name}" for name in ("deny-one", "deny-two", "review", "defer", "warn", "stamp")]
    deny_two = trace["lab.judge/deny-two"]
    assert deny_two["fired"] is False
    assert deny_two["when"] == "flags.deny2 and item.amount > limit"
    assert deny_two["conditions"] == [
        {"condition": "flags.deny2", "value": True, "operands": {"flags.deny2": True}},
        {"condition": "item.amount > limit", "value": False, "operands": {"item.amount": "99.99", "limit": "100.00"}},
    ]
    assert trace["lab.judge/stamp"]["conditions"][0] == {
        "condition": "exists(item.seen_at)", "value": False, "operands": {"item.seen_at": None}}
    assert "trace" not in judge(lab)


def test_invalid_facts_list_every_field_path(lab):
    facts = {"item": {"amount": "-1", "color": "purple", "seen_at": "2026-11-20T10:00:00",
                      "parts": [{"sku": "a"}, {"qty": "2"}], "extra": 1},
             "flags": {"deny1": "yes"}}
    with pytest.raises(InvalidFacts) as raised:
        lab.decide("lab.judge", facts, now=NOW)
    assert raised.value.fields == {
        "item.amount": ["must not be negative"],
        "item.color": ["must be one of: red, green, blue"],
        "item.seen_at": ["must carry a UTC offset (e.g. +08:00 or Z)"],
        "item.parts.1.sku": ["Missing data for required field."],
        "item.parts.1.qty": ["must be a whole number"],
        "item.extra": ["Unknown field."],
        "flags.deny1": ["must be true or false"],
    }


def test_missing_required_object_and_non_object_facts(lab):
    with pytest.raises(InvalidFacts) as raised:
        lab.decide("lab.judge", {}, now=NOW)
    assert raised.value.fields == {"item": ["Missing data for required field."]}
    with pytest.raises(InvalidFacts) as raised:
        lab.decide("lab.judge", ["not", "an", "object"], now=NOW)
    assert raised.value.fields == {"facts": ["must be an object"]}


def test_money_accepts_strings_and_numbers(lab):
    assert judge(lab, amount=150)["values"] == {"total": "300.00"}
    assert judge(lab, amount=0.1)["values"] == {"total": "0.20"}


def test_unknown_decision(lab):
    with pytest.raises(UnknownDecision, match="lab.judge"):
        lab.decide("lab.jugde", {}, now=NOW)


def test_evaluated_at_is_shanghai_time(lab):
    result = lab.decide("lab.judge", {"item": {"amount": "1", "color": "red"}},
                        now=datetime.fromisoformat("2026-11-20T16:30:00+00:00"))
    assert result["evaluated_at"] == "2026-11-21T00:30:00+08:00"


def test_compiled_rulesets_are_durable_rules_definitions(lab):
    compiled = lab.decision("lab.judge")
    assert compiled.reference.definition["deny-two"] == {"all": [{"m": {"$and": [
        {"$decision": "lab.judge"}, {"$and": [{"flags.deny2": True}, {"$gt": {"item.amount": 10000}}]}]}}]}


@pytest.mark.parametrize(("amount", "message"), [
    ("1e30", 'must be an amount of money such as "12.50"'),
    ("30_0", 'must be an amount of money such as "12.50"'),
    ("１２", 'must be an amount of money such as "12.50"'),
    ("1000000000000", "must be at most 999999999999.99"),
    (1e30, 'must be an amount of money such as "12.50"'),
])
def test_money_is_strict_and_bounded(lab, amount, message):
    with pytest.raises(InvalidFacts) as raised:
        judge(lab, amount=amount)
    assert raised.value.fields == {"item.amount": [message]}


@pytest.mark.parametrize("instant", ["9999-12-01T00:00:00+08:00", "0001-01-01T00:00:00+09:00"])
def test_instants_outside_the_supported_years_are_refused(lab, instant):
    with pytest.raises(InvalidFacts) as raised:
        judge(lab, seen_at=instant)
    assert raised.value.fields == {"item.seen_at": ["must be between 1970-01-01 and 2999-12-31 (Asia/Shanghai)"]}


def test_a_non_object_where_an_object_is_declared_is_reported_at_its_path(lab):
    with pytest.raises(InvalidFacts) as raised:
        lab.decide("lab.judge", {"item": []}, now=NOW)
    assert raised.value.fields == {"item": ["Invalid input type."]}


def test_field_messages_are_ours_whatever_marshmallow_says(tmp_path, monkeypatch):
    # marshmallow's defaults are its to reword; a rulebook loaded meanwhile still answers in our words
    from marshmallow import Schema, fields

    for field_class in (fields.Field, fields.List, fields.Nested):
        monkeypatch.setattr(field_class, "default_error_messages",
                            dict.fromkeys(field_class.default_error_messages, "marshmallow's words"))
    monkeypatch.setattr(Schema, "_default_error_messages", dict.fromkeys(Schema._default_error_messages, "marshmallow's words"))
    (tmp_path / "lab.yaml").write_text(LAB, encoding="utf-8")
    fresh = load_rulebook([tmp_path])
    facts = {"item": {"amount": "1", "color": "red", "parts": [{"qty": 1}], "extra": 1}, "flags": []}
    with pytest.raises(InvalidFacts) as raised:
        fresh.decide("lab.judge", facts, now=NOW)
    assert raised.value.fields == {"item.parts.0.sku": ["Missing data for required field."],
                                   "item.extra": ["Unknown field."], "flags": ["Invalid input type."]}
    with pytest.raises(InvalidFacts) as raised:
        fresh.decide("lab.judge", {"item": {"amount": "1", "color": "red", "parts": {}}}, now=NOW)
    assert raised.value.fields == {"item.parts": ["Not a valid list."]}


def _rule_problems(tmp_path, when: str, facts: str = "a: {type: money, required: true}") -> list[str]:
    from engine import check
    (tmp_path / "x.yaml").write_text(textwrap.dedent(f"""\
        domain: x
        source: t
        codes: {{C: {{zh: c, en: c}}}}
        decisions:
          d:
            facts:
              {facts}
              n: {{type: int, required: true}}
              b: {{type: money, required: true}}
            rules:
              - {{id: r, when: "{when}", effect: deny, code: C, source: t}}
        """), encoding="utf-8")
    return [problem.message for problem in check([tmp_path / "x.yaml"])[1]]


def test_an_int_fact_is_not_money(tmp_path):
    assert _rule_problems(tmp_path, "a > n") == ["'n' is int, not money; declare it as money"]
    assert _rule_problems(tmp_path, "a + n > b") == ["'n' is int, not money; declare it as money"]


@pytest.mark.parametrize(("when", "a", "b", "fires"), [
    ("b < a * 2", "10.00", "25.00", False),
    ("b < a * 2", "10.00", "19.99", True),
    ("b > a / 2", "10.00", "4.00", False),
    ("b > a / 2", "10.00", "5.01", True),
    ("b > a + 1", "10.00", "11.00", False),   # + 1 is one yuan
    ("b > a + 1", "10.00", "11.01", True),
])
def test_money_times_a_number_matches_exactly(tmp_path, when, a, b, fires):
    assert _rule_problems(tmp_path, when) == []
    rulebook = load_rulebook([tmp_path / "x.yaml"])
    result = rulebook.decide("x.d", {"a": a, "b": b, "n": 1}, now=NOW)
    assert result["outcome"] == ("deny" if fires else "allow")


def test_a_constant_out_of_range_is_a_problem_not_a_crash(tmp_path):
    # ours up to the colon; after it, CPython's own OverflowError text
    [problem] = _rule_problems(tmp_path, "now > seen + days(1000000000)", "seen: {type: instant, required: true}")
    assert problem.startswith("days() of these values is out of range: ") and "1000000000" in problem
