"""What changed between two sets of rules, in policy terms (SPEC §11): per domain its constants, tables,
enums, reason-code messages and calendar days; per decision its rules (condition, effect, code, until,
obligations, source), facts, derived values, counters and default obligations.

Formatting and comments are not policy: two files that differ only there are equal here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.language.expressions import Expr, names_read
from engine.language.model import MISSING, Decision, Domain, FieldSpec
from engine.rulebook import Rulebook
from engine.runtime.values import to_output


def _text(value: Any) -> Any:
    """A value as a person reads it: money "500.00", dates, lists; expressions by their text."""
    if isinstance(value, Expr):
        return " ".join(value.text.split())
    if isinstance(value, dict):
        return {key: _text(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_text(item) for item in value]
    return to_output(value)


def _condition(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Section:
    """Named things of one kind (rules, facts…): what was added, removed and changed."""

    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_json(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


def _compare(key: str, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> Section:
    """Compare named descriptions (``{name: {aspect: value}}``) aspect by aspect."""
    section = Section()
    for name in new.keys() - old.keys():
        section.added.append({key: name, **new[name]})
    for name in old.keys() - new.keys():
        section.removed.append({key: name, **old[name]})
    for name in old.keys() & new.keys():
        changes = {aspect: {"old": old[name].get(aspect), "new": new[name].get(aspect)}
                   for aspect in dict.fromkeys([*old[name], *new[name]])
                   if old[name].get(aspect) != new[name].get(aspect)}
        if changes:
            section.changed.append({key: name, "changes": changes})
    for entries in (section.added, section.removed, section.changed):
        entries.sort(key=lambda entry: entry[key])
    return section


def _rules(decision: Decision) -> dict[str, dict[str, Any]]:
    return {rule.id: {"effect": rule.effect, "code": rule.code, "when": _condition(rule.when_text),
                      "until": _text(rule.until) if rule.until is not None else None,
                      "obligations": _text(rule.obligations) or None, "source": rule.source}
            for rule in decision.rules}


def _facts(specs: dict[str, FieldSpec]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for spec in specs.values():
        found[spec.path] = {"type": str(spec.type), "required": spec.required,
                            "default": None if spec.default is MISSING else _text(spec.default),
                            "minimum": _text(spec.minimum), "maximum": _text(spec.maximum), "sensitive": spec.sensitive}
        found.update(_facts(spec.fields))
        if spec.item is not None and spec.item.fields:
            found.update(_facts(spec.item.fields))
    return found


def _derived(decision: Decision) -> dict[str, dict[str, Any]]:
    return {item.name: {"expr": _text(item.expr) if item.expr is not None else _text(item.fields), "output": item.output}
            for item in decision.derived}


def _counters(decision: Decision) -> dict[str, dict[str, Any]]:
    return {counter.name: {"type": str(counter.type), "key": _text(counter.key), "reset": counter.reset,
                           "add": _text(counter.add), "fact": _text(counter.fact) if counter.fact is not None else None}
            for counter in decision.counters}


def constants_read(decision: Decision) -> dict[str, list[str]]:
    """For each constant or table a decision's rules read (directly or through derived values), those rules."""
    derived_reads: dict[str, set[str]] = {}
    for item in decision.derived:
        names: set[str] = set()
        for expr in ([item.expr] if item.expr is not None else list(item.fields.values())):
            names |= names_read(expr)
        for name in list(names):
            names |= derived_reads.get(name, set())
        derived_reads[item.name] = names
    readers: dict[str, list[str]] = {}
    for rule in decision.rules:
        names = names_read(rule.when) | (names_read(rule.until) if rule.until is not None else set())
        for name in list(names):
            names |= derived_reads.get(name, set())
        for name in sorted(names):
            readers.setdefault(name, []).append(rule.qualified_id)
    return readers


def _messages(domain: Domain) -> dict[str, dict[str, Any]]:
    return {rule.code: dict(rule.messages) for decision in domain.decisions.values() for rule in decision.rules
            if rule.code}


def diff_decision(old: Decision | None, new: Decision | None) -> dict[str, Any] | None:
    """The changes of one decision (None when it is the same in policy terms)."""
    empty: dict[str, dict[str, Any]] = {}
    sections = {
        "rules": _compare("rule", _rules(old) if old else empty, _rules(new) if new else empty),
        "facts": _compare("fact", _facts(old.facts) if old else empty, _facts(new.facts) if new else empty),
        "derived": _compare("value", _derived(old) if old else empty, _derived(new) if new else empty),
        "counters": _compare("counter", _counters(old) if old else empty, _counters(new) if new else empty),
    }
    obligations = None
    if old and new and _text(old.obligations) != _text(new.obligations):
        obligations = {"old": _text(old.obligations), "new": _text(new.obligations)}
    if old and new and not any(sections.values()) and obligations is None:
        return None
    status = "added" if old is None else "removed" if new is None else "changed"
    answer: dict[str, Any] = {"decision": (new or old).name, "status": status}  # type: ignore[union-attr]
    answer.update({name: section.as_json() for name, section in sections.items() if section})
    if obligations:
        answer["obligations"] = obligations
    return answer


def diff_domain(old: Domain | None, new: Domain | None) -> dict[str, Any] | None:
    """The changes of one rule file's domain (None when equal in policy terms)."""
    domain = new or old
    assert domain is not None
    answer: dict[str, Any] = {"domain": domain.name, "status": "added" if old is None else "removed" if new is None
                              else "changed", "file": domain.file,
                              "version": {"old": old.version if old else None, "new": new.version if new else None}}
    if old is None or new is None:
        answer["decisions"] = sorted(domain.decisions)
        return answer
    readers: dict[str, list[str]] = {}
    for decision in new.decisions.values():
        for name, rules in constants_read(decision).items():
            readers.setdefault(name, []).extend(rules)
    constants = _compare(
        "name",
        {name: {"value": _text(c.value), "note": c.note} for name, c in old.constants.items()},
        {name: {"value": _text(c.value), "note": c.note} for name, c in new.constants.items()})
    for entry in constants.changed + constants.added:
        entry["read_by"] = readers.get(entry["name"], [])
    tables = _compare(
        "name",
        {name: {"rows": _text(t.rows), "note": t.note} for name, t in old.tables.items()},
        {name: {"rows": _text(t.rows), "note": t.note} for name, t in new.tables.items()})
    for entry in tables.changed:
        entry["read_by"] = readers.get(entry["name"], [])
    enums = _compare("name", {name: {"values": list(values)} for name, values in old.enums.items()},
                     {name: {"values": list(values)} for name, values in new.enums.items()})
    messages = _compare("code", _messages(old), _messages(new))
    decisions = [change for name in sorted(old.decisions.keys() | new.decisions.keys())
                 if (change := diff_decision(old.decisions.get(name), new.decisions.get(name))) is not None]
    parts = {"constants": constants, "tables": tables, "enums": enums, "messages": messages}
    if not decisions and not any(parts.values()):
        return None
    answer.update({name: part.as_json() for name, part in parts.items() if part})
    answer["decisions"] = decisions
    return answer


def diff_calendars(old: Rulebook, new: Rulebook) -> dict[str, Any] | None:
    changes = {}
    for kind in ("holidays", "workdays"):
        before, after = getattr(old.calendar, kind), getattr(new.calendar, kind)
        section = _compare("day", {day.isoformat(): {"name": name} for day, name in before.items()},
                           {day.isoformat(): {"name": name} for day, name in after.items()})
        if section:
            changes[kind] = section.as_json()
    return changes or None


def diff_rulebooks(old: Rulebook, new: Rulebook) -> dict[str, Any]:
    """``{"equal": bool, "domains": [...], "calendar": {...} | None}`` — see docs/changing-rules.md."""
    domains = [change for name in sorted(old.domains.keys() | new.domains.keys())
               if (change := diff_domain(old.domains.get(name), new.domains.get(name))) is not None]
    calendar = diff_calendars(old, new)
    return {"equal": not domains and calendar is None, "domains": domains, "calendar": calendar}


__all__ = ["constants_read", "diff_calendars", "diff_decision", "diff_domain", "diff_rulebooks"]
