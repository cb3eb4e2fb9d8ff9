"""durable_rules rulesets come and go with every reload: deleting them must neither leak nor crash
(durable-rules 2.0.28; jruizgit/rules#136 reports a crash on deletion)."""

from __future__ import annotations

import gc
import threading

import durable_rules_engine
import pytest

from engine.runtime import durable as matcher
from engine.runtime.durable import Matcher


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def test_used_rulesets_are_freed_session_state_included(rulebook):
    compiled = rulebook.decision("payout.initiate")
    fact = {"$decision": "payout.initiate"}

    def cycle() -> None:
        used = Matcher("payout.initiate", compiled.reference.definition)
        used.fired(dict(fact))  # the first fact creates the session state delete_ruleset alone would leak
        del used

    for _ in range(50):  # warm-up: allocator pools
        cycle()
    gc.collect()
    before = _rss_mib()
    for _ in range(2000):
        cycle()
    Matcher("payout.initiate", compiled.reference.definition)  # deletes the last one retired
    grown = _rss_mib() - before
    assert grown < 20, f"{grown:.1f} MiB for 2,000 rulesets (~250 KB each without deleting their state)"
    assert matcher._retired == [] or len(matcher._retired) == 1


def test_rulesets_are_deleted_only_when_a_matcher_is_made_never_by_the_garbage_collector(rulebook):
    definition = rulebook.decision("recovery.contact").reference.definition
    first = Matcher("recovery.contact", definition)
    handle = first._handle
    del first
    probe = '{"id": 1, "$decision": "nothing"}'
    assert handle in matcher._retired
    assert durable_rules_engine.assert_fact(handle, probe)[0] == 1  # still a ruleset (matching nothing)
    second = Matcher("recovery.contact", definition)  # deletes the retired ruleset first
    assert handle not in matcher._retired and second._handle != handle  # freed handles go to the end of the queue
    with pytest.raises(durable_rules_engine.error, match="error code: 111"):  # invalid handle: deleted
        durable_rules_engine.assert_fact(handle, probe)


def test_matching_goes_on_in_threads_while_others_reload(rulebook):
    compiled = rulebook.decision("payout.initiate")
    facts = {"$decision": "payout.initiate"}
    stop = threading.Event()
    errors: list[BaseException] = []

    def reload_loop() -> None:
        while not stop.is_set():
            Matcher("payout.initiate", compiled.reference.definition).fired(dict(facts))

    def match_loop() -> None:
        try:
            for _ in range(3000):
                compiled.reference.matcher.fired(dict(facts))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    reloaders = [threading.Thread(target=reload_loop) for _ in range(2)]
    matchers = [threading.Thread(target=match_loop) for _ in range(3)]
    for thread in reloaders + matchers:
        thread.start()
    for thread in matchers:
        thread.join()
    stop.set()
    for thread in reloaders:
        thread.join()
    assert errors == []


def test_deleting_rulesets_whose_rules_never_fired_does_not_crash(tmp_path):
    """durable-rules 2.0.28 leaves a session's action context uninitialised until an action runs, and
    deleting the session frees it: with rulesets that only ever saw facts matching nothing, this
    crashed the process (SIGSEGV/SIGABRT, depending on what the heap held)."""
    import subprocess
    import sys
    import textwrap

    from .conftest import ROOT

    script = textwrap.dedent(f"""
        import gc, pathlib, sys
        sys.path.insert(0, {str(ROOT)!r})
        from datetime import datetime
        from engine import load_rulebook
        rules = pathlib.Path({str(tmp_path)!r}) / "x.yaml"
        rules.write_text('''
        domain: x
        source: t
        codes: {{C: {{zh: c, en: c}}}}
        decisions:
          d:
            facts:
              a: {{type: money, required: true}}
              b: {{type: money, required: true}}
            rules:
              - {{id: r, when: "b < a * 2", effect: deny, code: C, source: t}}
        ''')
        now = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
        for _ in range(200):
            rulebook = load_rulebook([rules])  # deletes the previous iteration's rulesets
            assert rulebook.decide("x.d", {{"a": "10.00", "b": "25.00"}}, now=now)["outcome"] == "allow"
            del rulebook
            gc.collect()
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-X", "faulthandler", "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr[-2000:]


def test_the_fast_path_renews_its_session_state_without_crashing_when_nothing_fired(tmp_path):
    """The fast path deletes its session state every few hundred facts (no retract per fact): with
    facts that fire no rule the state's action context was never set, and deleting it crashed."""
    import subprocess
    import sys
    import textwrap

    from .conftest import ROOT

    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from engine.runtime.matcher import FACTS_PER_STATE, FlatMatcher
        definition = {{"r": {{"all": [{{"m": {{"$and": [{{"$d": 1}}, {{"a": 5}}]}}}}]}}}}
        flat = FlatMatcher("x.d", definition)
        for _ in range(3):
            fresh = FlatMatcher("x.d", definition)
            fired = [fresh.fired({{"$d": 1, "a": 1}}) for _ in range(FACTS_PER_STATE * 3)]
            assert fired == [set()] * (FACTS_PER_STATE * 3)
            del fresh
        assert flat.fired({{"$d": 1, "a": 5}}) == {{"r"}}
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-X", "faulthandler", "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr[-2000:]


def test_a_replaced_rulebook_is_freed_at_once_not_by_the_cyclic_collector(tmp_path):
    """Its native rulesets hold ~10 MB: held in a reference cycle (or by decisions queued for the
    decision log) they outlived a reload until a full collection, and a reload storm grew workers
    by hundreds of MB."""
    import weakref
    from datetime import UTC, datetime

    from engine import load_rulebook
    from engine.audit.log import open_log
    from engine.ids import new_id

    from .conftest import RULES
    from .test_service import CONTACT, INITIATE_OK, NOW, merged

    log = open_log(f"sqlite:///{tmp_path}/log.db")
    facts = merged(INITIATE_OK, {"actor": {"role": "main"}, "payout": {"amount": "450.00"}})
    now = datetime.fromisoformat(NOW)
    gc.collect()
    gc.disable()
    try:
        book = load_rulebook([RULES])
        for name, decision_facts in (("payout.initiate", facts), ("recovery.contact", CONTACT)):
            compiled = book.decision(name)
            for explain in (False, True):
                result, evaluation = compiled.run(decision_facts, now=now, explain=explain)
                log.record(compiled, evaluation, decision_id=new_id(), source="http", duration_us=1,
                           result=result)
            compiled.run(decision_facts, now=datetime(2026, 11, 20, tzinfo=UTC))
        freed = [weakref.ref(matcher) for compiled in map(book.decision, ("payout.initiate", "recovery.contact"))
                 for matcher in (compiled.fast_matcher, compiled.reference.matcher)]
        del book, compiled, evaluation, result
        assert [ref() for ref in freed] == [None] * 4
    finally:
        gc.enable()
        log.close()
