"""The concretizer: a solver model as a request — facts in their JSON input form, ``now``, stored counts.

A witness is then run through the service's own decision path (:func:`run_witness`): it must pass
fact validation and give what the proof claims, or it is not reported as a witness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from typing import Any

import z3

from engine.analysis.decision import EncodedDecision
from engine.analysis.values import LIST_BOUND, SECOND_US, Obj, Scalar, Seq, Value, from_instant_us
from engine.language.model import FieldSpec
from engine.runtime.evaluation import CompiledDecision
from engine.runtime.program import Evaluation
from engine.runtime.values import parse_instant, parse_money
from engine.state.counters import SeededCounters


@dataclass
class Witness:
    """One concrete request: what ``rulesvc decide`` or a scenario case would send."""

    facts: dict[str, Any]
    now: str
    counters: dict[str, Any] = field(default_factory=dict)  # stored counts the request reads, by counter

    def to_json(self) -> dict[str, Any]:
        return {"facts": self.facts, "now": self.now, "counters": self.counters}


def concretize(model: z3.ModelRef, encodings: list[EncodedDecision]) -> Witness:
    """The request of a model over one decision, or over the versions of one a diff compares (their
    facts merged: what either version declares is written)."""
    facts: dict[str, Any] = {}
    counters: dict[str, Any] = {}
    for encoded in encodings:
        for name, spec in encoded.decision.facts.items():
            written = _write(model, spec, encoded.facts[name])
            if written is not _ABSENT:
                facts[name] = _merged(facts.get(name, _ABSENT), written)
        for counter in encoded.decision.counters:
            reads_store = z3.is_true(model.eval(encoded.counters_from_store.get(counter.name, z3.BoolVal(True)),
                                                model_completion=True))
            stored = _int(model, encoded.inputs.stored_count(counter))
            if reads_store and stored:
                counters[counter.name] = _money(stored) if counter.type.kind == "money" else stored
    now = from_instant_us(_int(model, encodings[0].inputs.now.value)).isoformat()
    return Witness(facts, now, counters)


def _merged(first: Any, second: Any) -> Any:
    if isinstance(first, dict) and isinstance(second, dict):
        return {**first, **{key: _merged(first.get(key, _ABSENT), value) for key, value in second.items()}}
    return second


def run_witness(compiled: CompiledDecision, witness: Witness) -> tuple[dict[str, Any], Evaluation]:
    """The service's decision on a witness (raises InvalidFacts when it is not a valid request)."""
    counts = {name: parse_money(value) if isinstance(value, str) else value for name, value in witness.counters.items()}
    return compiled.run(witness.facts, now=parse_instant(witness.now), counters=SeededCounters(counts))


_ABSENT = object()
# A witness is a request a person reads and a service takes (bodies up to 1 MiB): no longer lists.
MAX_WITNESS_ITEMS = 1_000


class WitnessTooLarge(Exception):
    """The model needs a list longer than a witness may hold."""


def _write(model: z3.ModelRef, spec: FieldSpec, value: Value) -> Any:
    if not z3.is_true(model.eval(value.present, model_completion=True)):
        return _ABSENT
    if isinstance(value, Obj):
        written = {}
        for name, inner in spec.fields.items():
            item = _write(model, inner, value.fields[name])
            if item is not _ABSENT:
                written[name] = item
        return written
    if isinstance(value, Seq):
        length = _int(model, value.length)
        if length > MAX_WITNESS_ITEMS:
            raise WitnessTooLarge(f"the request needs {spec.path} with {length} items")
        item_spec = spec.item or FieldSpec(name="item", path=f"{spec.path}[]", type=spec.type.item, required=True)
        items = [_write(model, item_spec, item) for _, item in value.items[:min(length, LIST_BOUND)]]
        items = [item for item in items if item is not _ABSENT]
        while items and len(items) < length:  # past the bound: more of the same (a valid item)
            items.append(items[len(items) % LIST_BOUND])
        return items
    assert isinstance(value, Scalar) and value.value is not None
    return _scalar(model, spec.type.kind, value.value)


def _scalar(model: z3.ModelRef, kind: str, term: z3.ExprRef) -> Any:
    evaluated = model.eval(term, model_completion=True)
    if kind == "bool":
        return z3.is_true(evaluated)
    if kind in ("str", "enum"):
        return evaluated.as_string()
    number = evaluated.as_long()
    if kind == "int":
        return number
    if kind == "money":
        return _money(number)
    if kind == "instant":
        return from_instant_us(number).isoformat()
    if kind == "date":
        return date.fromordinal(number).isoformat()
    if kind == "time":
        seconds, micro = divmod(number, SECOND_US)
        return time(seconds // 3600, seconds // 60 % 60, seconds % 60, micro).isoformat()
    raise ValueError(f"no input form for {kind}")


def _money(fen: int) -> str:
    return str(Decimal(fen).scaleb(-2))


def _int(model: z3.ModelRef, term: z3.ExprRef) -> int:
    return model.eval(term, model_completion=True).as_long()
