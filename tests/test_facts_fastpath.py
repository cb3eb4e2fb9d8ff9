"""The compiled reader for valid facts must agree with marshmallow on every input: same values when
valid, and invalid exactly when marshmallow says so (its messages are what callers see)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from engine import InvalidFacts
from engine.facts import _fill_defaults

from .conftest import ROOT

EXAMPLES = {
    "payout.initiate": "payout-initiate.json", "recovery.contact": "recovery-contact.json",
    "rebate.apply": "rebate-apply.json", "allowance.withdraw": "allowance-withdraw.json",
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**13) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["12.50", "0", "-1", "2026-11-20T10:00:00+08:00", "2026-11-20", "09:00", "pop", "sub", "bank"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6)


def reference(loader, raw):
    try:
        return _fill_defaults(loader.schema.load(raw), loader.specs)
    except ValidationError:
        return InvalidFacts


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, prefix + (index,))


@pytest.mark.parametrize("decision", sorted(EXAMPLES))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fast_path_agrees_with_marshmallow(rulebook, decision, data):
    loader = rulebook.decision(decision).facts
    facts = json.loads((ROOT / "examples" / EXAMPLES[decision]).read_text(encoding="utf-8"))
    for _ in range(data.draw(st.integers(0, 3))):
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
            parent[data.draw(st.text(min_size=1, max_size=6))] = data.draw(json_values)
        else:
            parent[target[-1]] = data.draw(json_values)
    expected = reference(loader, copy.deepcopy(facts))
    try:
        actual = loader.load(copy.deepcopy(facts))
    except InvalidFacts:
        actual = InvalidFacts
    assert actual == expected
