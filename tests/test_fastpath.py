"""The fast path against the reference path (SPEC §9: a fast path is the same semantics).

For every decision, on the QA scenario suites' fact sets (boundaries by design), the benchmark's mix and
hypothesis mutations of them: the generated reader gives marshmallow's values or leaves the facts to it
(so invalid facts list the same fields), and the fast path's decisions equal the reference path's, ids
aside. The engine's batch path answers as one-at-a-time does.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import InvalidFacts
from engine.reference.interpret import evaluate
from engine.runtime.reader import Unusual, build_reader
from engine.runtime.values import to_output
from engine.tester import load_scenario_file

from .conftest import ROOT

SCENARIOS = sorted((ROOT / "tests" / "scenarios").glob("*.yaml"))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**13) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["12.50", "0", "0.001", "-1", "1e3", "99999999999999999999999999999999.99",
                       "2026-11-20T10:00:00+08:00", "2026-11-20T10:00:00", "1991-12-31T23:59:59Z", "2026-11-20",
                       "2026-02-30", "09:00", "2026-02-30T10:00:00+08:00", "1991-07-01T10:00:00+08:00", "0012.50",
                       "999999999999.99", "pop", "sub", "bank", "main", "wait_pay", "\x00", "\ud800"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6)


_FOUND: dict[str, list[tuple[dict, datetime | None]]] = {}


def fact_sets(rulebook) -> dict[str, list[tuple[dict, datetime | None]]]:
    """Every step of every scenario case, by decision: ``(facts, now)`` (read once)."""
    found = _FOUND
    if found:
        return found
    for path in SCENARIOS:
        scenario, problems = load_scenario_file(str(path), path.read_text(encoding="utf-8"), rulebook)
        assert not problems, problems
        for case in scenario.cases:
            for step in case.steps:
                found.setdefault(scenario.decision, []).append((step.facts, step.now))
    return found


def reference_read(compiled, raw):
    try:
        return compiled.facts.load(copy.deepcopy(raw))
    except InvalidFacts as error:
        return error


def without_id(result: dict) -> dict:
    return {key: value for key, value in result.items() if key != "decision_id"}


_OUTPUT_READERS: dict[str, object] = {}


def check_output_reader(compiled, raw) -> None:
    """The decision log writer's reader (facts straight to output form) reads what the fast reader reads,
    as ``to_output`` writes it, and leaves the same facts to the reference reader."""
    reader = _OUTPUT_READERS.get(compiled.name)
    if reader is None:
        reader = _OUTPUT_READERS[compiled.name] = build_reader(compiled.name, compiled.decision.facts, output=True)[0]
    try:
        fast = compiled.read_facts(copy.deepcopy(raw))
    except Unusual:
        with pytest.raises(Unusual):
            reader(copy.deepcopy(raw))
        return
    assert reader(copy.deepcopy(raw)) == to_output(fast)


def check_bookkeeping(compiled, evaluation) -> None:
    """The generated partition key, counter changes, record columns and untils equal the interpreter's,
    on the loaded calendar (engine/runtime/bookkeeping.py)."""
    values, calendar, decision = evaluation.values, compiled.calendar, compiled.decision
    keeping = compiled.bookkeeping
    assert compiled.partition_key(evaluation.facts) == compiled.reference.partition_key(evaluation.facts)
    assert keeping.counter_changes(values, calendar) == [
        (counter, tuple(evaluate(part, values, calendar) for part in counter.key), evaluate(counter.add, values, calendar))
        for counter in decision.counters]
    assert keeping.record_columns(values, calendar) == {
        column: evaluate(expr, values, calendar) for column, expr in decision.record.items()}
    for rule in decision.rules:
        if rule.id in keeping.untils:
            assert keeping.untils[rule.id](values, calendar) == evaluate(rule.until, values, calendar), rule.id


def decide_both(compiled, raw, now: datetime) -> tuple[object, object]:
    """(reference, fast) answers: decision documents without ids, or the invalid fields.

    The fast answer is the decision program's (``run``), with the trace of the fast path's steps
    beside it (the program makes no trace); the program's evaluation must equal the steps' one.
    """
    check_output_reader(compiled, raw)
    reference_facts = reference_read(compiled, raw)
    try:
        fast_facts = compiled.load(copy.deepcopy(raw))
    except InvalidFacts as error:
        fast_facts = error
    try:
        program, evaluation = compiled.run(copy.deepcopy(raw), now=now)
    except InvalidFacts as error:
        program = error
    if isinstance(reference_facts, InvalidFacts) or isinstance(fast_facts, InvalidFacts):
        assert isinstance(program, InvalidFacts) == isinstance(fast_facts, InvalidFacts)
        return (sorted(reference_facts.fields) if isinstance(reference_facts, InvalidFacts) else reference_facts,
                sorted(fast_facts.fields) if isinstance(fast_facts, InvalidFacts) else fast_facts)
    assert fast_facts == reference_facts
    reference = compiled.result(compiled.judge(reference_facts, now=now, reference=True), explain=True)
    steps = compiled.judge(fast_facts, now=now)
    check_bookkeeping(compiled, steps)
    fast = compiled.result(steps, explain=True)
    assert without_id(program) == {key: value for key, value in without_id(fast).items() if key != "trace"}
    assert (evaluation.facts, evaluation.values, evaluation.fired, evaluation.outcome, evaluation.next_eligible_at,
            evaluation.counters) == (steps.facts, steps.values, steps.fired, steps.outcome, steps.next_eligible_at,
                                     steps.counters)
    return without_id(reference), {**without_id(program), "trace": fast["trace"]}


def all_decisions(rulebook):
    return sorted(fact_sets(rulebook))


def test_every_decision_has_scenario_fact_sets(rulebook):
    assert set(all_decisions(rulebook)) == set(rulebook.decisions)


def test_fast_and_reference_paths_agree_on_every_scenario_step(rulebook):
    compared = 0
    for decision, steps in fact_sets(rulebook).items():
        compiled = rulebook.decision(decision)
        for facts, now in steps:
            reference, fast = decide_both(compiled, facts, now or datetime.fromisoformat("2026-11-20T10:00:00+08:00"))
            assert fast == reference, (decision, facts, now)
            compared += 1
    assert compared > 250


def test_fast_and_reference_paths_agree_on_the_bench_mix(rulebook):
    from bench.factsets import DECISIONS
    from bench.factsets import fact_sets as bench_fact_sets

    for decision in DECISIONS:
        compiled = rulebook.decision(decision)
        outcomes = set()
        for fact_set in bench_fact_sets(decision, 300, 11):
            reference, fast = decide_both(compiled, fact_set.facts, fact_set.now)
            assert fast == reference, (decision, fact_set)
            outcomes.add(fast["outcome"])
        assert len(outcomes) >= 2


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, prefix + (index,))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fast_and_reference_paths_agree_on_mutated_fact_sets(rulebook, data):
    decision = data.draw(st.sampled_from(all_decisions(rulebook)))
    facts, now = data.draw(st.sampled_from(fact_sets(rulebook)[decision]))
    facts = copy.deepcopy(facts)
    for _ in range(data.draw(st.integers(1, 3))):
        candidates = [p for p in paths(facts) if p]
        if not candidates:
            break
        target = data.draw(st.sampled_from(candidates))
        parent = facts
        for part in target[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[target[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=6))] = data.draw(JSON_VALUES)
        else:
            parent[target[-1]] = data.draw(JSON_VALUES)
    reference, fast = decide_both(rulebook.decision(decision), facts,
                                  now or datetime.fromisoformat("2026-11-20T10:00:00+08:00"))
    assert fast == reference


def test_the_fast_reader_leaves_unusual_shapes_to_the_reference_reader(rulebook):
    compiled = rulebook.decision("payout.initiate")
    facts = fact_sets(rulebook)["payout.initiate"][0][0]
    numeric = copy.deepcopy(facts)
    numeric["payout"]["amount"] = 30  # money as a JSON number: valid, but not the fast reader's shape
    before = compiled.unusual_facts
    assert compiled.load(numeric)["payout"]["amount"] == compiled.load(facts)["payout"]["amount"].__class__("30.00")
    assert compiled.unusual_facts == before + 1
    broken = copy.deepcopy(facts)
    broken["payout"]["amount"] = "-1"
    broken["order"]["state"] = "lost"
    with pytest.raises(InvalidFacts) as error:
        compiled.load(broken)
    assert sorted(error.value.fields) == ["order.state", "payout.amount"]


def test_the_batch_path_answers_as_one_at_a_time(rulebook):
    for decision, steps in fact_sets(rulebook).items():
        compiled = rulebook.decision(decision)
        items = [(facts, now) for facts, now in steps] + [({"nonsense": 1}, None)]
        batch = compiled.run_many(items)
        assert len(batch) == len(items)
        for (facts, now), answer in zip(items, batch, strict=True):
            try:
                single = compiled.evaluate(copy.deepcopy(facts), now=now)
            except InvalidFacts as error:
                assert isinstance(answer, InvalidFacts) and answer.fields == error.fields
                continue
            assert without_id(answer.result) == without_id(single), (decision, facts)


def test_two_identical_fact_sets_in_one_batch_are_both_answered(rulebook):
    compiled = rulebook.decision("recovery.contact")
    facts, now = fact_sets(rulebook)["recovery.contact"][0]
    first, second = compiled.run_many([(facts, now), (copy.deepcopy(facts), now)])
    assert without_id(first.result) == without_id(second.result)
    assert first.result["decision_id"] != second.result["decision_id"]


def test_generated_sources_are_kept_for_people(rulebook):
    compiled = rulebook.decision("payout.initiate")
    assert "def read_object" in compiled.reader_source and "def encode(values):" in compiled.fast_encoder_source
    assert set(compiled.field_names.short) >= {"payout.amount", "store.payout_enabled", "actor.role"}
    assert Path(__file__).exists()


WIDE = """domain: lab
source: test
codes:
  BIG: {zh: 太大, en: too big}
decisions:
  judge:
    facts:
      item:
        type: object
        required: true
        fields:
          quantity: {type: int, required: true}
          price: {type: money, required: true}
    derived:
      area: item.quantity * item.quantity
      total: item.price * item.quantity
    rules:
      - id: big
        when: area > 100 or total > 1000
        effect: deny
        code: BIG
        source: test
"""


@pytest.mark.parametrize("quantity, price", [(3, "1.00"), (2**53 - 1, "1.00"), (2**53 - 1, "999999999999.99"),
                                             (11, "100.00")])
def test_huge_numbers_decide_alike_on_both_paths_without_an_error(tmp_path, quantity, price):
    from engine import load_rulebook

    (tmp_path / "lab.yaml").write_text(WIDE, encoding="utf-8")
    compiled = load_rulebook([tmp_path]).decision("lab.judge")
    facts = {"item": {"quantity": quantity, "price": price}}
    reference, fast = decide_both(compiled, facts, datetime.fromisoformat("2026-11-20T10:00:00+08:00"))
    assert fast == reference


def test_what_a_fired_set_decides_is_kept_for_a_bounded_number_of_sets(rulebook, monkeypatch):
    # A caller can craft facts that fire any combination of rules: the table must not grow without bound,
    # and a set past the bound is decided alike, only not kept.
    import itertools

    from engine.runtime import program
    from engine.runtime.program import Outcomes

    monkeypatch.setattr(program, "MAX_OUTCOMES_KEPT", 5)
    compiled = rulebook.decision("payout.initiate")
    bounded = Outcomes(compiled.decision, {rule.id: (lambda values, calendar: {}) for rule in compiled.decision.rules}, {})
    ids = [rule.id for rule in compiled.decision.rules][:5]
    subsets = [set(chosen) for size in range(len(ids) + 1) for chosen in itertools.combinations(ids, size)]
    effects = {rule.id: rule.effect for rule in compiled.decision.rules}
    for fired in subsets:
        decided = bounded.of(fired)
        fired_effects = {effects[rule] for rule in fired}
        assert decided.outcome == next((effect for effect in ("deny", "review", "defer") if effect in fired_effects),
                                       "allow")
        assert decided.fired_ids == tuple(rule.qualified_id for rule in compiled.decision.rules if rule.id in fired)
    assert len(bounded.known) == 5 and len(subsets) == 32
    deny = next(rule for rule in ids if effects[rule] == "deny")
    assert bounded.of({deny}).outcome == "deny" and bounded.of(set()).outcome == "allow"


def test_a_batch_fetches_the_counts_the_interpreter_says_it_will_read(rulebook):
    for decision, steps in fact_sets(rulebook).items():
        compiled = rulebook.decision(decision)
        for raw, now in steps:
            try:
                facts = compiled.load(copy.deepcopy(raw))
            except InvalidFacts:
                continue
            at = now or datetime.now(UTC)
            values = {**facts, "now": at}
            calendar = compiled.calendar
            expected = [(counter, tuple(part(values, calendar) for part in key_parts), at, compiled.partition_key(facts))
                        for counter, key_parts, fact in compiled.reference.counter_plan
                        if fact is None or fact(values, calendar) is None]
            assert compiled._counter_reads(facts, at) == expected, (decision, raw)


COUNTED_BY_WORKING_DAY = """domain: lab
source: test
codes:
  MANY: {zh: 太多, en: too many}
decisions:
  count:
    facts:
      item:
        type: object
        required: true
        fields:
          id: {type: str, required: true}
          day: {type: date, required: true}
          seen: {type: int}
    counters:
      uses:
        type: int
        key: [item.id, "add_working_days(item.day, 1)"]
        reset: never
        add: 1
        fact: item.seen
    rules:
      - id: many
        when: uses > 2
        effect: deny
        code: MANY
        source: test
"""


def with_shipped_calendars(directory: Path) -> None:
    """The lab rule file beside a copy of the shipped calendars (a directory without them counts
    weekends only)."""
    import shutil

    (directory / "lab.yaml").write_text(COUNTED_BY_WORKING_DAY, encoding="utf-8")
    shutil.copytree(ROOT / "rules" / "calendars", directory / "calendars")


class PrefetchingCounts:
    """A counter source that, like a store, fetches a batch's counts first; it counts 3 of each."""

    def __init__(self):
        self.prefetched: list[tuple] = []

    def prefetch(self, decision, reads):
        self.prefetched += [(counter.name, key) for counter, key, _at, _partition in reads]

    def read(self, decision, counter, key, now, partition=None):
        return 3


def test_a_batch_prefetches_counter_keys_made_with_calendar_functions(tmp_path):
    from engine import load_rulebook

    with_shipped_calendars(tmp_path)
    compiled = load_rulebook([tmp_path]).decision("lab.count")
    now = datetime.fromisoformat("2026-09-30T10:00:00+08:00")
    items = [({"item": {"id": "a", "day": "2026-09-30"}}, now), ({"item": {"id": "b", "day": "2026-10-08", "seen": 1}}, now)]
    source = PrefetchingCounts()
    made = compiled.run_many(items, counters=source)
    # the shipped calendar's working day after 30 September 2026 is 8 October (National Day between);
    # a calendar without the year's data would say 1 October
    assert source.prefetched == [("uses", ("a", datetime.fromisoformat("2026-10-08").date()))]
    assert [item.result["outcome"] for item in made] == ["deny", "allow"]


def test_commits_count_under_the_key_reads_look_up_with_calendar_functions(tmp_path):
    """A commit's reservation is keyed by the generated counter changes on the loaded calendar: the
    same key the next decision reads, so the fourth commit sees three and is refused."""
    from engine import load_rulebook
    from engine.state import open_store
    from engine.state.commit import commit

    with_shipped_calendars(tmp_path)
    compiled = load_rulebook([tmp_path]).decision("lab.count")
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    now = datetime.fromisoformat("2026-09-30T10:00:00+08:00")
    outcomes = [commit(compiled, {"item": {"id": "a", "day": "2026-09-30"}}, idempotency_key=f"k{number}", store=store,
                       now=now, server_now=now).result["outcome"] for number in range(4)]
    assert outcomes == ["allow", "allow", "allow", "deny"]
    values = compiled.judge(compiled.load({"item": {"id": "a", "day": "2026-09-30"}}), now=now).values
    [reservation] = compiled.reservations(values)
    # 8 October by the loaded calendar; a default calendar (what reservations used before) says 1 October
    assert reservation.units == 1 and reservation.slot.key == 'lab.count/uses/["a","2026-10-08"]'


@pytest.mark.parametrize("completed_at", ["2026-08-15T08:33:59+08:00", "1991-07-01T10:00:00+08:00", "2026-01-01T24:00:00+08:00",
                                          "2026-02-30T10:00:00+08:00", "2026-08-15T00:33:59Z", "2999-12-31T23:59:59+08:00"])
@pytest.mark.parametrize("amount", ["18.78", "0.00", "0012.50", "18.7", "999999999999.99", "1000000000000.00"])
def test_the_log_writers_reader_keeps_only_text_already_in_output_form(rulebook, completed_at, amount):
    compiled = rulebook.decision("payout.initiate")
    from bench.factsets import fact_sets as bench_fact_sets

    facts = copy.deepcopy(bench_fact_sets("payout.initiate", 1, 20261121)[0].facts)
    # order.amount has no minimum (so the reader keeps text already in output form), payout.amount has one
    assert compiled.decision.facts["order"].fields["amount"].minimum is None
    facts["order"]["completed_at"], facts["order"]["amount"], facts["payout"]["amount"] = completed_at, amount, amount
    check_output_reader(compiled, facts)  # 1991: Shanghai kept summer time, so +09:00 in output form
