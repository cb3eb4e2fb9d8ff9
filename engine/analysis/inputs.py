"""The symbolizer and the enforcer: a request as solver variables, and what makes it valid.

Every declared fact becomes variables named by its path (``order.amount`` and ``order.amount?`` for
its presence), so two versions of a decision declared alike read the same request (``diff --prove``).
The constraints are those the fact reader enforces (SPEC §4): required and defaulted facts are
present, enums hold one of their values, money is 0 to 999,999,999,999.99 in whole fen, instants and
dates lie in 1970–2999 Shanghai, declared minimum and maximum hold, a list's items are present.
``now`` is an instant in the same range; a stored count is a variable ≥ 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import z3

from engine.analysis.values import (
    DAY_US,
    INT_BOUND,
    LIST_BOUND,
    MAX_DATE_ORDINAL,
    MAX_FEN,
    MAX_INSTANT_US,
    MIN_DATE_ORDINAL,
    MIN_INSTANT_US,
    TRUE,
    Obj,
    Scalar,
    Seq,
    Value,
    literal_term,
    sort_of,
)
from engine.language.model import Counter, FieldSpec
from engine.runtime.values import INSTANT, SHANGHAI, Type, epoch_us

READABLE_WORDS = ("a1", "a2", "b1", "b2", "c1", "c2")


@dataclass
class Declared:
    """One declared fact as the concretizer writes it back."""

    spec: FieldSpec
    value: Value
    path: str


@dataclass
class Declaration:
    """One decision's facts over the shared variables: values, validity, and the paths it declares."""

    facts: dict[str, Value]
    validity: list[z3.BoolRef]
    paths: set[str]


@dataclass
class Inputs:
    """The variables of one request and the constraints of its validity."""

    constraints: list[z3.BoolRef] = field(default_factory=list)
    facts: dict[str, Value] = field(default_factory=dict)  # by root name
    declared: dict[str, Declared] = field(default_factory=dict)  # by path (list items: ``items[0].sku``)
    stored: dict[str, tuple[Counter, z3.ArithRef]] = field(default_factory=dict)  # counter name -> store count
    lists: list[Seq] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # paths declared with two types (diff)

    def __post_init__(self) -> None:
        now = z3.Int("now")
        self.now = Scalar(TRUE, now, INSTANT)
        self.constraints += [now >= MIN_INSTANT_US, now <= MAX_INSTANT_US]

    def declare(self, specs: dict[str, FieldSpec]) -> Declaration:
        """The facts of a decision as symbolic values (the same variables for the same paths, so two
        versions of a decision read one request) and what makes a request valid for it."""
        declaration = Declaration({}, [], set())
        for name, spec in specs.items():
            declaration.facts[name] = self._field(spec, spec.path, TRUE, declaration)
        return declaration

    def undeclared(self, declaration: Declaration) -> list[z3.BoolRef]:
        """For a request to be valid for ``declaration``, what it does not declare must be absent (the
        reader refuses unknown fields): the facts only another version declares."""
        return [z3.Not(known.value.present) for path, known in self.declared.items() if path not in declaration.paths]

    def stored_count(self, counter: Counter) -> z3.ArithRef:
        """The count the store holds for ``counter`` at the request's key: any whole number ≥ 0."""
        kept = self.stored.get(counter.name)
        if kept is None:
            variable = z3.Int(f"counter:{counter.name}")
            self.constraints.append(variable >= 0)  # commits add to it: no upper bound
            kept = self.stored[counter.name] = (counter, variable)
        return kept[1]

    def readable(self) -> z3.BoolRef:
        """Requests a person reads easily: instants and dates in 2026–2027, strings from a few short words
        (shared, so lists can have values in common), amounts up to 100,000.00, counts up to 10,000.
        Witnesses are looked for here first; nothing is proved here."""
        lowest, highest = epoch_us(datetime(2026, 1, 1, tzinfo=SHANGHAI)), epoch_us(datetime(2028, 1, 1, tzinfo=SHANGHAI))
        rules: list[z3.BoolRef] = [self.now.value >= lowest, self.now.value < highest]
        words = [z3.StringVal(word) for word in READABLE_WORDS]
        for declared in self.declared.values():
            value, kind = declared.value, declared.spec.type.kind
            if not isinstance(value, Scalar) or value.value is None:
                continue
            term = value.value
            if kind == "instant":
                rules += [term >= lowest, term < highest]
            elif kind == "date":
                rules += [term >= date(2026, 1, 1).toordinal(), term < date(2028, 1, 1).toordinal()]
            elif kind == "money":
                rules.append(term <= 10_000_000)
            elif kind == "int":
                rules += [term >= -10_000, term <= 10_000]
            elif kind == "str":
                rules.append(z3.Or([term == word for word in words]))
        for _, stored in self.stored.values():
            rules.append(stored <= 10_000)
        return z3.And(rules)

    def exact_lists(self) -> z3.BoolRef:
        """Every list within :data:`LIST_BOUND` items: the region where every value is encoded exactly."""
        return z3.And([z3.Not(seq.overflow) for seq in self.lists]) if self.lists else TRUE

    # --- one declaration ---------------------------------------------------------------------

    def _field(self, spec: FieldSpec, path: str, parent_present: z3.BoolRef, declaration: Declaration) -> Value:
        declaration.paths.add(path)
        known = self.declared.get(path)
        if known is not None:
            compatible = known.spec.type.kind == spec.type.kind or (known.spec.type.is_stringy and spec.type.is_stringy)
            if not compatible:
                self.conflicts.append(path)
            else:  # the same variables; this declaration's own validity
                self._presence(spec, known.value.present, parent_present, declaration)
                self._bounds(spec, known.value, declaration)
                if isinstance(known.value, Obj):
                    for name, inner in spec.fields.items():
                        child = self._field(inner, f"{path}.{name}", known.value.present, declaration)
                        known.value.fields.setdefault(name, child)
                elif isinstance(known.value, Seq):
                    self._list_items(spec, path, known.value, declaration)
                return known.value
        present = z3.Bool(f"{path}?")
        self._presence(spec, present, parent_present, declaration)
        kind = spec.type
        if kind.kind == "object":
            value: Value = Obj(present, {}, kind)
            self.declared[path] = Declared(spec, value, path)
            for name, inner in spec.fields.items():
                value.fields[name] = self._field(inner, f"{path}.{name}", present, declaration)
            return value
        if kind.kind == "list":
            value = self._list(spec, path, present, declaration)
        else:
            value = Scalar(present, z3.Const(path, sort_of(kind)), kind)
            self._bounds(spec, value, declaration)
        self.declared[path] = Declared(spec, value, path)
        return value

    def _presence(self, spec: FieldSpec, present: z3.BoolRef, parent_present: z3.BoolRef,
                  declaration: Declaration) -> None:
        self.constraints.append(z3.Implies(present, parent_present))  # a field lives in its object
        if spec.always_present:
            declaration.validity.append(present == parent_present)

    def _list(self, spec: FieldSpec, path: str, present: z3.BoolRef, declaration: Declaration) -> Seq:
        length = z3.Int(f"{path}#len")
        self.constraints += [length >= 0, z3.Implies(z3.Not(present), length == 0)]
        seq = Seq(present, [], length, z3.And(present, length > LIST_BOUND), spec.type)
        for index in range(LIST_BOUND):
            included = z3.And(present, length > index)
            seq.items.append((included, None))  # filled below
        self._list_items(spec, path, seq, declaration)
        self.lists.append(seq)
        return seq

    def _list_items(self, spec: FieldSpec, path: str, seq: Seq, declaration: Declaration) -> None:
        item_spec = spec.item or FieldSpec(name="item", path=f"{path}[]", type=spec.type.item or Type("str"),
                                           required=True)
        for index in range(LIST_BOUND):
            included, item = seq.items[index]
            item_path = f"{path}[{index}]"
            declaration.paths.add(item_path)
            if item_spec.type.kind == "object":
                if item is None:
                    item_present = z3.Bool(f"{item_path}?")
                    self.constraints.append(item_present == included)
                    item = Obj(item_present, {}, item_spec.type)
                    self.declared[item_path] = Declared(item_spec, item, item_path)
                for name, inner in item_spec.fields.items():
                    field_value = self._field(inner, f"{item_path}.{name}", item.present, declaration)
                    item.fields.setdefault(name, field_value)
            else:
                if item is None:
                    item = Scalar(included, z3.Const(item_path, sort_of(item_spec.type)), item_spec.type)
                    self.declared[item_path] = Declared(item_spec, item, item_path)
                self._bounds(item_spec, item, declaration)
            seq.items[index] = (included, item)

    def _bounds(self, spec: FieldSpec, value: Value, declaration: Declaration) -> None:
        if not isinstance(value, Scalar) or value.value is None:
            return
        term, kind = value.value, spec.type.kind
        rules: list[z3.BoolRef] = []
        if kind == "int":
            rules += [term >= -INT_BOUND, term <= INT_BOUND]
        elif kind == "money":
            rules += [term >= 0, term <= MAX_FEN]
        elif kind == "instant":
            rules += [term >= MIN_INSTANT_US, term <= MAX_INSTANT_US]
        elif kind == "date":
            rules += [term >= MIN_DATE_ORDINAL, term <= MAX_DATE_ORDINAL]
        elif kind == "time":
            rules += [term >= 0, term < DAY_US]
        elif kind == "enum":
            rules.append(z3.Or([term == z3.StringVal(option) for option in spec.type.values]))
        if kind in ("int", "money", "instant", "date", "time"):
            if spec.minimum is not None:
                rules.append(term >= literal_term(spec.minimum))
            if spec.maximum is not None:
                rules.append(term <= literal_term(spec.maximum))
        if rules:
            declaration.validity.append(z3.Implies(value.present, z3.And(rules)))
