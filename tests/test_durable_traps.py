"""durable_rules 2.0.28's traps on the fast path's road, each reproduced against the native engine, and
each shown handled by the fast path's matcher (engine/runtime/matcher.py)."""

from __future__ import annotations

import itertools
import json

import durable_rules_engine
import orjson
import psutil
import pytest

from engine import load_rulebook
from engine.runtime import matcher as fast_matcher
from engine.runtime.matcher import FlatMatcher

from .conftest import NOW, RULES

_names = itertools.count()
RULE = {"r": {"all": [{"m": {"$and": [{"$decision": "x"}, {"a": 1}]}}]}}


def ruleset(definition: dict) -> int:
    return durable_rules_engine.create_ruleset(f"trap{next(_names)}", json.dumps(definition))


def fired_names(handle: int, state: int) -> list[str]:
    started = durable_rules_engine.start_action_for_state(handle, state)
    message, names = (started[1] if started else None), []
    while message:
        names.append(message[2:message.index('"', 2)])
        message = durable_rules_engine.complete_and_start_action(handle, state)
    return names


def test_a_repeated_id_is_refused_with_status_2_and_never_matched():
    handle = ruleset(RULE)
    status, state = durable_rules_engine.assert_fact(handle, '{"id": 1, "$decision": "x", "a": 1}')
    assert status == 0 and fired_names(handle, state) == ["r"]
    status, state = durable_rules_engine.assert_fact(handle, '{"id": 1, "$decision": "x", "a": 1}')
    assert status == 2 and fired_names(handle, state) == []  # silently dropped
    # the fast matcher never repeats an id, across its periodic state deletions too
    matcher = FlatMatcher("trap", RULE)
    answers = [matcher.fired({"$decision": "x", "a": 1}) for _ in range(3 * fast_matcher.FACTS_PER_STATE + 5)]
    assert answers == [{"r"}] * len(answers)


def test_assert_facts_says_not_handled_when_any_one_fact_matched_nothing():
    handle = ruleset(RULE)
    status, state = durable_rules_engine.assert_facts(handle, json.dumps(
        [{"id": 1, "$decision": "x", "a": 1}, {"id": 2, "$decision": "x", "a": 2}]))
    assert status == 1  # "not handled" — though the first fact matched
    assert fired_names(handle, state) == ["r"]


def test_after_delete_state_a_fresh_state_object_is_asserted_and_would_match_a_negative_pattern():
    handle = ruleset({"s": {"all": [{"m": {"$nex": {"zz": 1}}}]}})
    status, state = durable_rules_engine.assert_fact(handle, '{"id": 1, "b": 1}')
    assert fired_names(handle, state) == ["s", "s"]  # the fact, and the state object {"$s": 1}
    durable_rules_engine.delete_state(handle, "0")
    status, state = durable_rules_engine.assert_fact(handle, '{"id": 2, "b": 1}')
    assert fired_names(handle, state) == ["s", "s"]  # a fresh state object again
    # every compiled pattern carries the decision marker: across deletions only real facts fire
    rulebook = load_rulebook([RULES])
    compiled = rulebook.decision("payout.initiate")
    definition = compiled.fast_definition
    assert all(rule["all"][0]["m"]["$and"][0] == {"$decision": "payout.initiate"} or rule["all"][0]["m"] ==
               {"$decision": "payout.initiate"} for rule in definition.values())


def test_an_action_started_and_not_completed_locks_the_state():
    handle = ruleset(RULE)
    status, state = durable_rules_engine.assert_fact(handle, '{"id": 1, "$decision": "x", "a": 1}')
    assert durable_rules_engine.start_action_for_state(handle, state) is not None  # started, never completed
    status, state = durable_rules_engine.assert_fact(handle, '{"id": 2, "$decision": "x", "a": 1}')
    assert durable_rules_engine.start_action_for_state(handle, state) is None  # locked for 30 s


def test_a_fact_holds_at_most_255_properties():
    handle = ruleset(RULE)
    fact = {f"p{index}": index for index in range(300)} | {"id": 1, "$decision": "x", "a": 1}
    with pytest.raises(durable_rules_engine.error, match="302"):
        durable_rules_engine.assert_fact(handle, json.dumps(fact))


def test_a_rule_file_whose_conditions_read_too_many_names_is_refused(tmp_path):
    from engine import RuleFileError

    facts = "\n".join(f"          f{index}: {{type: int}}" for index in range(260))
    # 26 rules of 10 fields each: every expression stays within the 500-character limit
    rules = "\n".join(f"""      - id: big-{group}
        when: {" or ".join(f"item.f{index} > 1" for index in range(group * 10, group * 10 + 10))}
        effect: deny
        code: TOO_BIG
        source: test""" for group in range(26))
    (tmp_path / "wide.yaml").write_text(f"""domain: wide
source: test
codes:
  TOO_BIG: {{zh: 太大, en: too big}}
decisions:
  judge:
    facts:
      item:
        type: object
        required: true
        fields:
{facts}
    rules:
{rules}
""", encoding="utf-8")
    with pytest.raises(RuleFileError) as error:
        load_rulebook([tmp_path])
    assert "at most 253" in str(error.value) and "wide.yaml:" in str(error.value)


def test_a_kept_fact_costs_kilobytes_until_its_state_is_deleted():
    process = psutil.Process()

    def growth(delete_every: int) -> float:
        handle = ruleset(RULE)
        before = process.memory_info().rss
        for index in range(20_000):
            status, state = durable_rules_engine.assert_fact(
                handle, orjson.dumps({"id": index, "$decision": "x", "a": 1, "b": "xxxxxxxxxx"}).decode())
            fired_names(handle, state)
            if delete_every and index % delete_every == delete_every - 1:
                durable_rules_engine.delete_state(handle, "0")
        return (process.memory_info().rss - before) / 2**20

    kept = growth(0)
    deleted = growth(fast_matcher.FACTS_PER_STATE)
    assert kept > 60  # ~7-8 KB per fact
    assert deleted < 15


def test_the_fast_path_decides_many_in_bounded_memory(rulebook):
    process = psutil.Process()
    compiled = rulebook.decision("payout.initiate")
    from .test_payout import INITIATE_OK

    compiled.evaluate(INITIATE_OK, now=NOW)
    before = process.memory_info().rss
    for _ in range(20_000):
        compiled.evaluate(INITIATE_OK, now=NOW)
    assert (process.memory_info().rss - before) / 2**20 < 15
