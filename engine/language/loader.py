"""Loading and validation of rule files: YAML → checked :mod:`engine.language.model` objects.

Every problem found is collected (never only the first) as a :class:`Problem` with file, line and
column. Structure is checked against the published JSON Schema (``engine/schemas``); meaning —
types, names, enums, codes, expressions — is checked here.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from engine.errors import Problem
from engine.language.expressions import Call, Expr, ExpressionError, Ref, Scope, did_you_mean, parse, walk
from engine.language.functions import FUNCTIONS
from engine.language.model import (
    EFFECTS,
    MISSING,
    OUTCOMES,
    RESULT_NAMES,
    Constant,
    Counter,
    Decision,
    Derived,
    Domain,
    FieldSpec,
    Invariant,
    Rule,
    Table,
    localized,
)
from engine.language.source import Path, Reported, SourceDocument, UnquotedDecimal, load_document
from engine.language.structure import load_schema, structure_problems
from engine.limits import checkpoint
from engine.reference.trace import assumptions_read
from engine.runtime.compiler import check_matchable
from engine.runtime.encoder import MAX_FIELDS, condition_fields, field_names
from engine.runtime.rulesets import ruleset_problem
from engine.runtime.values import (
    BOOL,
    INSTANT,
    INT,
    MONEY,
    NULL,
    OBJECT,
    SCALAR_KINDS,
    STR,
    Type,
    list_of,
    parse_literal,
)

# Names the engine itself puts on every evaluated fact; a declaration may not take them.
RESERVED_NAMES = frozenset({"now", "id", "sid"})
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# Aliases let a short file repeat a long expression many times; every use is parsed, so all of them
# together are bounded (a file without aliases stays far below: the shipped ones have ~3,000).
MAX_FILE_EXPRESSION_CHARS = 500_000
_SCHEMA, _VALIDATOR = load_schema("rule-file.schema.json")


def rule_file_schema() -> dict[str, Any]:
    """The JSON Schema of rule files, as published for editors."""
    return _SCHEMA


def load_rule_file(file: str, text: str, *, loaded_at: datetime | None = None,
                   require_partition: bool = False) -> tuple[Domain | None, list[Problem]]:
    """Validate one rule file. Returns the domain only when there are no problems.

    ``require_partition``: every decision must declare its ``partition`` (a Redis Cluster store).
    """
    document, problems = load_document(file, text, quoted_decimals=True)
    if document is None:
        return None, problems
    if not isinstance(document.data, dict):
        return None, problems + [document.problem((), "a rule file must be a mapping with domain, source and decisions")]
    problems += structure_problems(document, _VALIDATOR)
    domain = _DomainBuilder(document, problems, require_partition).build(text, loaded_at or datetime.now(UTC))
    return (domain if not problems else None), problems


# --- meaning -----------------------------------------------------------------------------------

class _DomainBuilder:
    def __init__(self, document: SourceDocument, problems: list[Problem], require_partition: bool = False):
        self.document = document
        self.problems = problems
        self.require_partition = require_partition
        self.data: dict[str, Any] = document.data
        self.uses_calendar = False
        self.expression_chars = 0
        self.over_budget = False
        self.broken: set[str] = set()  # constants and derived values whose declaration has a problem

    def problem(self, path: Path, message: str, *, key: bool = False) -> None:
        self.problems.append(self.document.problem(path, message, key=key))

    def within_budget(self, path: Path, text: str) -> bool:
        """Count ``text`` against the file's expression budget; report once when it runs out."""
        self.expression_chars += len(text)
        if self.expression_chars <= MAX_FILE_EXPRESSION_CHARS:
            return True
        if not self.over_budget:
            self.over_budget = True
            self.problem(path, f"the expressions of this file add up to more than {MAX_FILE_EXPRESSION_CHARS:,} "
                               "characters (an alias counts at every use); split it into several files")
        return False

    def expression(self, path: Path, text: Any, scope: Scope, expected: Type | None = None) -> Expr | None:
        if isinstance(text, Reported):  # its problem is reported already
            return None
        if isinstance(text, bool):
            text = "true" if text else "false"
        if isinstance(text, int):
            text = str(text)
        if not isinstance(text, str) or not self.within_budget(path, text):
            return None
        try:
            expr = parse(text, scope, expected)
        except ExpressionError as error:
            if not error.knock_on:
                self.problems.append(self.document.expression_problem(path, error.offset, error.message))
            return None
        self.uses_calendar = self.uses_calendar or any(
            isinstance(node, Call) and FUNCTIONS[node.function].uses_calendar for node in walk(expr))
        expr.__dict__["where"] = self.document.locator(path)  # for positions found later (rulesvc verify)
        return expr

    def build(self, text: str, loaded_at: datetime) -> Domain | None:
        name = self.data.get("domain")
        self.enums = self._enums()
        self.constants = self._constants()
        self.tables = self._tables()
        self.codes = {code: messages for code, messages in _mapping(self.data.get("codes")).items()
                      if isinstance(messages, dict)}
        self.used_codes: set[str] = set()
        decisions = {}
        every_decision_read = isinstance(name, str)  # without a domain name no decision is read
        for decision_name, body in _mapping(self.data.get("decisions")).items():
            checkpoint()  # a validation's time budget, when one is active
            if isinstance(body, dict) and isinstance(name, str):
                decision = self._decision(name, decision_name, body)
                if decision is not None:
                    decisions[decision_name] = decision
            else:
                every_decision_read = False
        for code in self.codes:
            if code not in self.used_codes and every_decision_read:  # else: a knock-on of the problem above
                self.problem(("codes", code), f"reason code {code} has messages but no rule uses it", key=True)
        if not isinstance(name, str):
            return None
        return Domain(
            name=name, file=self.document.file,
            version="sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest(),
            loaded_at=loaded_at, title=str(self.data.get("title", "")), decisions=decisions,
            uses_calendar=self.uses_calendar, text=text, source=str(self.data.get("source", "")),
            constants=self.constants, tables=self.tables, enums=self.enums)

    # enums and constants ----------------------------------------------------------------------

    def _enums(self) -> dict[str, tuple[str, ...]]:
        enums = {}
        self.enum_labels: dict[str, dict[str, str]] = {}
        for name, values in _mapping(self.data.get("enums")).items():
            if isinstance(values, dict):  # value: label
                self.enum_labels[name] = {str(value): str(label) for value, label in values.items()}
                values = list(values)
            if not isinstance(values, list):
                continue
            seen: set[str] = set()
            for index, value in enumerate(values):
                if value in seen:
                    self.problem(("enums", name, index), f"enum {name}: duplicate value {value!r}")
                seen.add(value)
            enums[name] = tuple(str(value) for value in values)
        return enums

    def type_named(self, path: Path, name: Any) -> Type | None:
        if not isinstance(name, str):
            return None
        if name.startswith("[") and name.endswith("]"):
            item = self.type_named(path, name[1:-1].strip())
            return list_of(item) if item else None
        if name in SCALAR_KINDS or name in ("object", "list"):
            return Type(name)
        if name in self.enums:
            return Type("enum", enum=name, values=self.enums[name])
        known = [*SCALAR_KINDS, "object", "list", *self.enums]
        self.problem(path, f"unknown type {name!r}{did_you_mean(name, known)}; use one of "
                           f"{', '.join(SCALAR_KINDS)}, object, list, [T] or an enum declared under enums")
        return None

    def _constants(self) -> dict[str, Constant]:
        constants = {}
        for name, raw in _mapping(self.data.get("constants")).items():
            path: Path = ("constants", name)
            note = ""
            if isinstance(raw, dict):
                value, note = raw.get("value"), localized(raw.get("note", ""))
                declared = self.type_named(path + ("type",), raw["type"]) if "type" in raw else None
                if "type" in raw and declared is None:  # said at its type; what reads it would only repeat it
                    self.broken.add(name)
                    continue
                path = path + ("value",)
            else:
                value, declared = raw, None
            kind = declared or _infer_type(value)
            if kind is None:
                continue
            try:
                if kind.kind == "list":
                    item_kind = (kind.item or STR)
                    if not isinstance(value, list):
                        raise ValueError("must be a list")
                    parsed = [parse_literal(item_kind.kind, item) for item in value]
                    if item_kind.kind == "enum":
                        self._check_enum_values(path, item_kind, parsed)
                else:
                    parsed = parse_literal(kind.kind, value)
                    if kind.kind == "enum":
                        self._check_enum_values(path, kind, [parsed])
            except ValueError as error:
                self.problem(path, f"constant {name}: {error}")
                self.broken.add(name)
                continue
            constants[name] = Constant(name, kind, parsed, note)
        return constants

    def _tables(self) -> dict[str, Table]:
        tables = {}
        for name, spec in _mapping(self.data.get("tables")).items():
            path: Path = ("tables", name)
            if not isinstance(spec, dict) or not isinstance(spec.get("columns"), dict):
                continue
            if name in self.constants:
                self.problem(path, f"table {name!r} has the name of a constant", key=True)
            key = self.type_named(path + ("key",), spec.get("key"))
            columns = {column: self.type_named(path + ("columns", column), kind)
                       for column, kind in spec["columns"].items()}
            if key is None or None in columns.values():
                continue
            rows: dict[str, dict[str, Any]] = {}
            for row_key, cells in _mapping(spec.get("rows")).items():
                row_path = path + ("rows", row_key)
                if key.kind == "enum" and row_key not in key.values:
                    self.problem(row_path, f"{row_key!r} is not a value of enum {key.enum}"
                                           f"{did_you_mean(str(row_key), key.values)}", key=True)
                    continue
                rows[row_key] = {}
                for column, raw in _mapping(cells).items():
                    if column not in columns:
                        self.problem(row_path + (column,), f"table {name} has no column {column!r}"
                                                           f"{did_you_mean(str(column), list(columns))}", key=True)
                        continue
                    try:
                        rows[row_key][column] = parse_literal(columns[column].kind, raw)
                    except ValueError as error:
                        self.problem(row_path + (column,), f"{name}[{row_key}].{column}: {error}")
            tables[name] = Table(name=name, key=key, columns=columns, rows=rows, note=localized(spec.get("note", "")))
        return tables

    def _check_enum_values(self, path: Path, kind: Type, values: list[Any]) -> None:
        for value in values:
            if value not in kind.values:
                self.problem(path, f"{value!r} is not a value of enum {kind.enum}{did_you_mean(value, kind.values)}")

    # decisions --------------------------------------------------------------------------------

    def _decision(self, domain: str, name: str, body: dict[str, Any]) -> Decision | None:
        base: Path = ("decisions", name)
        qualified = f"{domain}.{name}"
        facts = {}
        for fact_name, spec in _mapping(body.get("facts")).items():
            if fact_name in RESERVED_NAMES:
                self.problem(base + ("facts", fact_name), f"{fact_name!r} is reserved by the engine", key=True)
                continue
            field_spec = self._field(base + ("facts", fact_name), fact_name, fact_name, spec)
            if field_spec is not None:
                facts[fact_name] = field_spec
        declared_wrong = {fact_name for fact_name in _mapping(body.get("facts")) if fact_name not in facts}
        scope = Scope(facts=facts, constants=self.constants, enums=self.enums, tables=self.tables,
                      broken=set(self.broken) | declared_wrong)
        for fact_name in facts:
            if fact_name in self.constants:
                self.problem(base + ("facts", fact_name), f"fact {fact_name!r} has the name of a constant", key=True)

        partition = self._partition(qualified, base, body, scope)
        counters = self._counters(base, body, scope)
        derived = self._derived(base, body, scope)
        obligations = _mapping(body.get("obligations"))
        rules = self._rules(qualified, base, body, scope, obligations)
        derived_by_name = {value.name: value for value in derived}
        for rule in rules:
            rule.assumptions = assumptions_read(rule.when_text, self.constants, derived_by_name)
        fields = field_names(condition_fields([rule.when for rule in rules])).short
        if len(fields) > MAX_FIELDS:
            self.problem(base + ("rules",), f"the conditions of {qualified} read {len(fields)} facts and values "
                                            f"(list lengths included); durable_rules matches at most {MAX_FIELDS}",
                         key=True)
        else:
            self._ruleset_limits(qualified, base, body, rules)
        invariants = self._invariants(qualified, base, body, scope, rules, derived, obligations)
        record = {column: expr for column, text in _mapping(body.get("record")).items()
                  if (expr := self.expression(base + ("record", column), text, scope,
                                              MONEY if column == "amount" else None)) is not None}
        return Decision(
            record=record, enum_labels=self.enum_labels,
            name=qualified, domain=domain, description=localized(body.get("description", "")),
            source=str(body.get("source", self.data.get("source", ""))), facts=facts,
            constants=self.constants, counters=counters, derived=derived,
            obligations=dict(obligations), rules=rules, partition=partition,
            position=self.document.position(base, key=True), invariants=invariants)

    def _ruleset_limits(self, qualified: str, base: Path, body: dict[str, Any], rules: list[Rule]) -> None:
        """Report, at the rule that crosses it, a limit of durable_rules that activation would hit."""
        found = ruleset_problem(qualified, rules)
        if found is None:
            return
        rule_id, message = found
        index = next(index for index, spec in enumerate(body["rules"])
                     if isinstance(spec, dict) and spec.get("id") == rule_id)
        self.problem(base + ("rules", index, "when"), message)

    def _partition(self, qualified: str, base: Path, body: dict[str, Any], scope: Scope) -> Expr | None:
        """The value that groups a commit's stored keys: of the facts only, since counters are read by it."""
        if "partition" not in body:
            if self.require_partition:
                self.problem(base, f"decision {qualified} declares no partition, which a Redis Cluster store "
                                   "(--store redis+cluster://…) needs to keep the keys of a commit in one hash slot; "
                                   "add e.g. partition: customer.id", key=True)
            return None
        expr = self.expression(base + ("partition",), body["partition"], scope)
        if expr is None:
            return None
        if expr.type.kind in ("list", "object") or any(isinstance(node, Ref) and node.kind != "fact" for node in walk(expr)):
            self.problem(base + ("partition",), f"a partition is one value computed from the facts "
                                                f"(e.g. customer.id), not {expr.type}")
            return None
        return expr

    def _field(self, path: Path, name: str, dotted: str, spec: Any) -> FieldSpec | None:
        if not isinstance(spec, dict):
            return None
        kind = self.type_named(path + ("type",), spec.get("type"))
        if kind is None:
            return None
        field_spec = FieldSpec(name=name, path=dotted, type=kind, required=bool(spec.get("required", False)),
                               description=localized(spec.get("description", "")), sensitive=spec.get("sensitive") is True)
        if field_spec.sensitive and kind.kind != "str":
            self.problem(path + ("sensitive",), f"only str facts can be sensitive (kept as an HMAC in the decision "
                                                f"log); {dotted} is {kind}", key=True)
        if kind.kind == "object":
            if not isinstance(spec.get("fields"), dict):
                self.problem(path, f"object fact {dotted} needs fields", key=True)
                return None
            for child, child_spec in spec["fields"].items():
                child_field = self._field(path + ("fields", child), child, f"{dotted}.{child}", child_spec)
                if child_field is not None:
                    field_spec.fields[child] = child_field
        elif "fields" in spec:
            self.problem(path + ("fields",), f"only object facts have fields; {dotted} is {kind}", key=True)
        if kind.kind == "list" and kind.item is None:
            items = spec.get("items")
            if items is None:
                self.problem(path, f"list fact {dotted} needs items (a type name or a declaration)", key=True)
                return None
            item_spec = {"type": items} if isinstance(items, str) else items
            item = self._field(path + ("items",), "[]", f"{dotted}[]", item_spec)
            if item is None:
                return None
            field_spec.item = item
            field_spec.type = list_of(item.type)
        elif kind.kind == "list":
            field_spec.item = FieldSpec(name="[]", path=f"{dotted}[]", type=kind.item, required=True)
        for bound in ("minimum", "maximum"):
            if bound not in spec:
                continue
            if kind.kind not in ("int", "money"):
                self.problem(path + (bound,), f"only int and money facts have a {bound}; {dotted} is {kind}", key=True)
                continue
            try:
                setattr(field_spec, bound, parse_literal(kind.kind, spec[bound]))
            except ValueError as error:
                self.problem(path + (bound,), f"{bound} of {dotted}: {error}")
        if "default" in spec:
            field_spec.default = self._default(path + ("default",), field_spec, spec["default"])
        if field_spec.required and field_spec.default is not MISSING:
            self.problem(path + ("default",), f"{dotted} is required, so its default would never be used", key=True)
        if kind.kind == "object" and field_spec.default is not MISSING:
            # Left out, the object is {} with its fields' defaults: a required field would be absent.
            for child, child_field in field_spec.fields.items():
                if child_field.required:
                    self.problem(path + ("fields", child, "required"),
                                 f"{child_field.path} cannot be required: {dotted} has a default ({{}}), and when "
                                 f"it is left out its fields are absent; give {child_field.path} a default instead",
                                 key=True)
        if kind.kind == "list" and field_spec.type.item is not None and field_spec.type.item.kind == "list":
            self.problem(path + ("items",), f"{dotted}: lists of lists are not supported; use a list of objects",
                         key=True)
            return None
        return field_spec

    def _default(self, path: Path, spec: FieldSpec, raw: Any) -> Any:
        try:
            if spec.type.kind == "object":
                if raw != {}:
                    raise ValueError("an object's default can only be {} (its fields' own defaults fill it)")
                return {}
            if spec.type.kind == "list":
                if not isinstance(raw, list):
                    raise ValueError("must be a list")
                return [parse_literal(spec.type.item.kind, item) for item in raw] if spec.type.item else raw
            value = parse_literal(spec.type.kind, raw)
            if spec.type.kind == "enum" and value not in spec.type.values:
                raise ValueError(f"{value!r} is not a value of enum {spec.type.enum}")
            return value
        except ValueError as error:
            self.problem(path, f"default of {spec.path}: {error}")
            return MISSING

    def _counters(self, base: Path, body: dict[str, Any], scope: Scope) -> list[Counter]:
        counters = []
        for name, spec in _mapping(body.get("counters")).items():
            path = base + ("counters", name)
            if not isinstance(spec, dict) or spec.get("type") not in ("int", "money") \
                    or spec.get("reset") not in ("shanghai_day", "never"):
                continue  # the structure check has reported it
            if name in scope.names():
                self.problem(path, f"counter {name!r} has the name of a fact, constant or value", key=True)
                continue
            kind = MONEY if spec["type"] == "money" else INT
            keys = [self.expression(path + ("key", index), key, scope) for index, key in enumerate(spec.get("key", []))]
            add = self.expression(path + ("add",), spec.get("add"), scope, kind)
            fact = None
            if "fact" in spec:
                fact = self.expression(path + ("fact",), spec["fact"], scope, kind)
                if fact is not None and not (isinstance(fact, Ref) and fact.kind == "fact"):
                    self.problem(path + ("fact",), "a counter's fact must name a declared fact")
                    fact = None
            if add is None or any(key is None for key in keys):
                continue
            counters.append(Counter(name=name, type=kind, key=keys, reset=spec["reset"], add=add, fact=fact,
                                    description=localized(spec.get("description", ""))))
            scope.counters[name] = kind
        return counters

    def _derived(self, base: Path, body: dict[str, Any], scope: Scope) -> list[Derived]:
        derived = []
        for name, spec in _mapping(body.get("derived")).items():
            path = base + ("derived", name)
            if name in scope.names() or name in RESERVED_NAMES:
                self.problem(path, f"derived value {name!r} has the name of a fact, constant or value", key=True)
                continue
            text, output, description = spec, False, ""
            if isinstance(spec, dict):
                text, output = spec.get("expr"), bool(spec.get("output", False))
                description = localized(spec.get("description", ""))
                if isinstance(spec.get("fields"), dict):
                    fields = {field_name: self.expression(path + ("fields", field_name), field_text, scope)
                              for field_name, field_text in spec["fields"].items()}
                    if None not in fields.values():
                        derived.append(Derived(name=name, expr=None, output=output, description=description,
                                               fields=fields))
                        scope.values[name] = OBJECT
                    continue
                path = path + ("expr",)
            expr = self.expression(path, text, scope)
            if expr is None:
                scope.broken.add(name)
                continue
            derived.append(Derived(name=name, expr=expr, output=output, description=description))
            scope.values[name] = expr.type
        return derived

    def _rules(self, qualified: str, base: Path, body: dict[str, Any], scope: Scope,
               obligations: dict[str, Any]) -> list[Rule]:
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        for index, spec in enumerate(body.get("rules") or []):
            path = base + ("rules", index)
            if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
                continue
            rule_id = spec["id"]
            if isinstance(spec.get("code"), str):
                self.used_codes.add(spec["code"])
            if rule_id in seen:
                self.problem(path + ("id",), f"duplicate rule id {rule_id!r} (first used by rule {seen[rule_id] + 1} "
                                             f"of {qualified})")
                continue
            seen[rule_id] = index
            when = self.expression(path + ("when",), spec.get("when"), scope, BOOL)
            if when is not None:
                try:
                    check_matchable(when)
                except ExpressionError as error:
                    self.problems.append(self.document.expression_problem(path + ("when",), error.offset, error.message))
                    when = None
            effect = spec.get("effect")
            if effect not in EFFECTS:
                continue
            code = spec.get("code")
            messages: dict[str, str] = {}
            placeholders: dict[str, Expr] = {}
            if code is None and effect != "oblige":
                self.problem(path, f"rule {rule_id}: a {effect} rule needs a reason code", key=True)
            if isinstance(code, str):
                if code not in self.codes:
                    self.problem(path + ("code",), f"reason code {code} has no messages; add it under codes "
                                                   f"with zh and en{did_you_mean(code, list(self.codes))}")
                else:
                    messages = {lang: text for lang, text in self.codes[code].items() if isinstance(text, str)}
                    placeholders = self._placeholders(("codes", code), messages, scope)
            until = None
            if "until" in spec:
                if effect != "defer":
                    self.problem(path + ("until",), "only defer rules have until", key=True)
                else:
                    until = self.expression(path + ("until",), spec["until"], scope, INSTANT)
            elif effect == "defer":
                self.problem(path, f"rule {rule_id}: a defer rule needs until (when it may be asked again)", key=True)
            rule_obligations = self._rule_obligations(path, spec, effect, scope, obligations)
            if when is None:
                continue
            rules.append(Rule(
                id=rule_id, qualified_id=f"{qualified}/{rule_id}", effect=effect, when=when,
                when_text=str(spec["when"]), source=str(spec.get("source", "")), code=code,
                messages=messages, placeholders=placeholders, obligations=rule_obligations, until=until,
                description=localized(spec.get("description", ""))))
        return rules

    def _invariants(self, qualified: str, base: Path, body: dict[str, Any], scope: Scope, rules: list[Rule],
                    derived: list[Derived], obligations: dict[str, Any]) -> list[Invariant]:
        """The decision's ``invariants``: conditions over the facts, values and the result (SPEC §13)."""
        raw = body.get("invariants")
        if not raw:
            return []
        result_scope = self._result_scope(base, scope, rules, derived, obligations)
        invariants: list[Invariant] = []
        seen: set[str] = set()
        for index, spec in enumerate(raw if isinstance(raw, list) else []):
            path = base + ("invariants", index)
            if not isinstance(spec, dict) or not isinstance(spec.get("id"), str) or result_scope is None:
                continue
            if spec["id"] in seen:
                self.problem(path + ("id",), f"duplicate invariant id {spec['id']!r} in {qualified}")
                continue
            seen.add(spec["id"])
            when = self.expression(path + ("when",), spec.get("when"), result_scope, BOOL)
            then = self.expression(path + ("then",), spec.get("then"), result_scope, BOOL)
            if when is None or then is None:
                continue
            invariants.append(Invariant(
                id=spec["id"], qualified_id=f"{qualified}/{spec['id']}", when=when, then=then,
                when_text=str(spec["when"]), then_text=str(spec["then"]), source=str(spec.get("source", "")),
                messages={lang: str(spec[lang]) for lang in ("zh", "en") if isinstance(spec.get(lang), str)},
                description=localized(spec.get("description", ""))))
        return invariants

    def _result_scope(self, base: Path, scope: Scope, rules: list[Rule], derived: list[Derived],
                      obligations: dict[str, Any]) -> Scope | None:
        """The decision's names plus its result's, as an invariant reads them."""
        clash = [name for name in RESULT_NAMES if name in scope.names()]
        if clash:
            self.problem(base + ("invariants",), f"invariants cannot read the result: {', '.join(clash)} "
                                                 "is also the name of a fact or value", key=True)
            return None
        codes = tuple(sorted({rule.code for rule in rules if rule.code}))
        code_list = list_of(Type("enum", enum="reason code", values=codes))
        obligation_types: dict[str, Type] = {}
        for name, value in obligations.items():
            obligation_types[name] = _infer_type(value) or NULL
        for rule in rules:
            for name, value in rule.obligations.items():
                kind = value.type if isinstance(value, Expr) else _infer_type(value)
                if kind is not None and kind.kind != "null":
                    obligation_types[name] = kind

        def result_field(name: str, kind: Type, **more: Any) -> FieldSpec:
            return FieldSpec(name=name, path=name, type=kind, **more)
        facts = dict(scope.facts)
        facts["outcome"] = result_field("outcome", Type("enum", enum="outcome", values=OUTCOMES), required=True)
        facts["reasons"] = result_field("reasons", code_list, required=True)
        facts["warnings"] = result_field("warnings", code_list, required=True)
        facts["next_eligible_at"] = result_field("next_eligible_at", INSTANT)
        facts["obligations"] = result_field("obligations", OBJECT, required=True, fields={
            name: FieldSpec(name=name, path=f"obligations.{name}", type=kind)
            for name, kind in obligation_types.items()})
        facts["values"] = result_field("values", OBJECT, required=True, fields={
            value.name: FieldSpec(name=value.name, path=f"values.{value.name}", type=scope.values[value.name])
            for value in derived if value.output})
        broken = set(scope.broken) | {f"values.{name}" for name in scope.broken}
        return Scope(facts=facts, constants=scope.constants, values=dict(scope.values),
                     counters=dict(scope.counters), enums=scope.enums, tables=scope.tables, broken=broken)

    def _rule_obligations(self, path: Path, spec: dict[str, Any], effect: str, scope: Scope,
                          declared: dict[str, Any]) -> dict[str, Any]:
        raw = spec.get("obligations")
        if raw is None:
            if effect == "oblige":
                self.problem(path, f"rule {spec['id']}: an oblige rule needs obligations", key=True)
            return {}
        if effect != "oblige":
            self.problem(path + ("obligations",), "only oblige rules set obligations", key=True)
            return {}
        result: dict[str, Any] = {}
        for name, value in _mapping(raw).items():
            if name not in declared:
                self.problem(path + ("obligations", name), f"obligation {name!r} is not declared under the "
                                                           f"decision's obligations{did_you_mean(name, list(declared))}",
                             key=True)
                continue
            if isinstance(value, dict) and set(value) == {"expr"}:
                expr = self.expression(path + ("obligations", name, "expr"), value["expr"], scope)
                if expr is not None:
                    result[name] = expr
            else:
                result[name] = value
        return result

    def _placeholders(self, path: Path, messages: dict[str, str], scope: Scope) -> dict[str, Expr]:
        """Parse every ``{expression}`` of the messages against the decision's names."""
        placeholders = {}
        for lang, text in messages.items():
            for match in PLACEHOLDER.finditer(text):
                if not self.within_budget(path + (lang,), match.group(1)):
                    break
                try:
                    placeholders[match.group(1)] = parse(match.group(1), scope)
                except ExpressionError as error:
                    if error.knock_on:
                        continue
                    self.problems.append(self.document.expression_problem(
                        path + (lang,), match.start(1) + error.offset, f"in message placeholder: {error.message}"))
        return placeholders


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _infer_type(value: Any) -> Type | None:
    if isinstance(value, UnquotedDecimal):  # reported already; typed as the money it was meant to be
        return MONEY
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, str):
        return STR
    if isinstance(value, list):
        return list_of(INT if value and all(isinstance(v, int) for v in value) else STR)
    return None


__all__ = ["load_rule_file", "rule_file_schema"]
