"""The Try page's form, generated from a decision's fact declarations, and read back into facts.

One path in each direction: ``facts_from_form`` turns posted fields into the JSON facts a caller of
``POST /v1/decisions`` would send (values stay text where the type is text on the wire — money,
instants, dates — so the engine judges them exactly as it judges the API); ``form_fields`` turns
facts (an example, a scenario case, or what was just posted) into widgets, with the engine's field
errors attached to the widget of their path.

Field names: ``fact.<path>`` for values (``fact.order.items.0.sku``), ``present.<path>`` for the
"include" box of an optional object, ``count.<path>`` for the number of items of a list of objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from werkzeug.datastructures import MultiDict

from engine.language.model import MISSING, FieldSpec
from engine.runtime.values import to_output

MAX_LIST_ITEMS = 50  # items of one list of objects the form shows or reads
_ABSENT = object()
# Scalar kinds whose wire form is text: the engine parses them (and says why a text is wrong).
_TEXT_KINDS = ("str", "money", "instant", "date", "time")


@dataclass
class Widget:
    """One field of the form: a scalar input, an object's fieldset or a list."""

    path: str  # dotted: "actor.quota.enabled", "order.items.0.sku"
    spec: FieldSpec
    control: str  # text | select | lines | checkboxes | object | objects
    value: Any = ""  # text for text/select/lines; list of chosen values for checkboxes
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label) for select/checkboxes
    children: list[Widget] = field(default_factory=list)  # an object's fields
    items: list[list[Widget]] = field(default_factory=list)  # a list of objects: each item's fields
    present: bool = True  # an optional object: whether it is included
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "f-" + self.path.replace(".", "-")

    @property
    def name(self) -> str:
        return "fact." + self.path

    @property
    def kind(self) -> str:
        return self.spec.type.kind

    @property
    def item_kind(self) -> str:
        return self.spec.type.item.kind if self.spec.type.item else ""

    @property
    def optional_object(self) -> bool:
        return self.control == "object" and not self.spec.required


# --- form → facts ---------------------------------------------------------------------------------

@dataclass
class PostedForm:
    """What a posted form says: the facts to decide on, and what to show again in the form.

    An optional object whose "include" box is unchecked is left out of ``facts`` but kept in
    ``shown`` (listed in ``excluded``), so ticking the box again brings back what was typed.
    """

    facts: dict[str, Any]
    shown: dict[str, Any]
    excluded: set[str]


def read_form(specs: Mapping[str, FieldSpec], form: MultiDict) -> PostedForm:
    """The facts a posted form describes; empty inputs are absent facts."""
    excluded: set[str] = set()
    shown = _read_object(specs, form, "", excluded)
    return PostedForm(facts=_without(shown, excluded), shown=shown, excluded=excluded)


def _read_object(specs: Mapping[str, FieldSpec], form: MultiDict, prefix: str, excluded: set[str]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name, spec in specs.items():
        value = _read(spec, f"{prefix}{name}", form, excluded)
        if value is not _ABSENT:
            facts[name] = value
    return facts


def _read(spec: FieldSpec, path: str, form: MultiDict, excluded: set[str]) -> Any:
    kind = spec.type.kind
    if kind == "object":
        if not spec.required and form.get(f"present.{path}") != "1":
            excluded.add(path)
        return _read_object(spec.fields, form, f"{path}.", excluded)
    if kind == "list":
        return _read_list(spec, path, form, excluded)
    return _scalar(kind, form.get(f"fact.{path}", ""))


def _read_list(spec: FieldSpec, path: str, form: MultiDict, excluded: set[str]) -> Any:
    item = spec.item
    assert item is not None
    if item.type.kind == "object":
        count = _count(form.get(f"count.{path}"))
        values: list[Any] = [_read_object(item.fields, form, f"{path}.{index}.", excluded) for index in range(count)]
    elif item.type.kind == "enum":
        values = form.getlist(f"fact.{path}")[:MAX_LIST_ITEMS * 10]
    else:
        lines = [line.strip() for line in form.get(f"fact.{path}", "").splitlines()]
        values = [_scalar(item.type.kind, line) for line in lines if line]
    if not values and not spec.required:
        return _ABSENT
    return values


def _without(value: Any, excluded: set[str], path: str = "") -> Any:
    """``value`` less the objects at the ``excluded`` paths."""
    if isinstance(value, dict):
        inner = {name: f"{path}.{name}" if path else name for name in value}
        return {name: _without(entry, excluded, inner[name]) for name, entry in value.items() if inner[name] not in excluded}
    if isinstance(value, list):
        return [_without(entry, excluded, f"{path}.{index}") for index, entry in enumerate(value)]
    return value


def _count(raw: str | None) -> int:
    try:
        return max(0, min(int(raw or 0), MAX_LIST_ITEMS))
    except ValueError:
        return 0


def _scalar(kind: str, raw: str) -> Any:
    text = raw.strip()
    if text == "":
        return _ABSENT
    if kind == "bool":
        return {"true": True, "false": False}.get(text, text)
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            return text  # the engine answers "must be a whole number" at this field
    return text


def apply_list_change(facts: dict[str, Any], specs: Mapping[str, FieldSpec], change: str) -> bool:
    """Add an empty item (``add:order.items``) or remove one (``remove:order.items.1``); False if unknown."""
    action, _, path = change.partition(":")
    parts = path.split(".")
    if action == "remove":
        if len(parts) < 2 or not parts[-1].isdigit():
            return False
        parts, index = parts[:-1], int(parts[-1])
    spec = fact_spec(specs, ".".join(parts))
    if spec is None or spec.type.kind != "list" or spec.item is None or spec.item.type.kind != "object":
        return False
    container = facts
    for part in parts[:-1]:
        container = container.setdefault(part, {})
        if not isinstance(container, dict):
            return False
    items = container.setdefault(parts[-1], [])
    if not isinstance(items, list):
        return False
    if action == "add" and len(items) < MAX_LIST_ITEMS:
        items.append({})
        return True
    if action == "remove" and index < len(items):
        del items[index]
        return True
    return False


def fact_spec(specs: Mapping[str, FieldSpec], path: str) -> FieldSpec | None:
    """The declaration of the fact at dotted ``path`` (``actor.quota.enabled``), or None."""
    spec = None
    current: Mapping[str, FieldSpec] = specs
    for part in path.split("."):
        spec = current.get(part)
        if spec is None:
            return None
        current = spec.fields
    return spec


# --- facts → form ---------------------------------------------------------------------------------

@dataclass
class _Context:
    errors: Mapping[str, list[str]]
    enum_labels: Mapping[str, Mapping[str, str]]
    excluded: set[str]


def form_fields(specs: Mapping[str, FieldSpec], facts: Mapping[str, Any] | None, errors: Mapping[str, list[str]],
                enum_labels: Mapping[str, Mapping[str, str]], excluded: set[str] | None = None) -> list[Widget]:
    """Widgets for ``specs`` showing ``facts``; ``errors`` are the engine's, keyed by field path;
    ``excluded`` optional objects are shown with their "include" box unticked."""
    return _fields(specs, facts, _Context(errors, enum_labels, excluded or set()), "")


def _fields(specs: Mapping[str, FieldSpec], facts: Any, context: _Context, prefix: str) -> list[Widget]:
    facts = facts if isinstance(facts, Mapping) else {}
    return [_widget(spec, f"{prefix}{name}", facts.get(name, _ABSENT), context) for name, spec in specs.items()]


def _widget(spec: FieldSpec, path: str, value: Any, context: _Context) -> Widget:
    kind = spec.type.kind
    widget = Widget(path=path, spec=spec, control="text", errors=list(context.errors.get(path, [])))
    if kind == "object":
        widget.control = "object"
        given = value is not _ABSENT and value is not None
        widget.present = spec.required or (given and path not in context.excluded)
        widget.children = _fields(spec.fields, value, context, f"{path}.")
    elif kind == "list":
        _list_widget(widget, spec, value, context)
    elif kind in ("enum", "bool"):
        widget.control = "select"
        widget.options = _choices(spec, context.enum_labels)
        widget.value = _text(value)
        if widget.value and widget.value not in (choice for choice, _ in widget.options):
            widget.options.append((widget.value, widget.value))  # shown as given; the engine will say why not
    else:
        widget.value = _text(value)
    return widget


def _list_widget(widget: Widget, spec: FieldSpec, value: Any, context: _Context) -> None:
    item = spec.item
    assert item is not None
    values = value if isinstance(value, list) else []
    # Errors of scalar items ("...menu_permissions.2") belong to the list's one input.
    for path, messages in context.errors.items():
        if path.startswith(widget.path + ".") and path[len(widget.path) + 1:].isdigit() and item.type.kind != "object":
            widget.errors += [f"#{int(path.rsplit('.', 1)[1]) + 1}: {message}" for message in messages]
    if item.type.kind == "object":
        widget.control = "objects"
        widget.items = [_fields(item.fields, entry, context, f"{widget.path}.{index}.")
                        for index, entry in enumerate(values[:MAX_LIST_ITEMS])]
    elif item.type.kind == "enum":
        widget.control = "checkboxes"
        widget.options = _choices(item, context.enum_labels)
        widget.value = [_text(entry) for entry in values]
        known = {choice for choice, _ in widget.options}
        widget.options += [(entry, entry) for entry in widget.value if entry not in known]
    else:
        widget.control = "lines"
        widget.value = "\n".join(_text(entry) for entry in values)


def _choices(spec: FieldSpec, enum_labels: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str]]:
    if spec.type.kind == "bool":
        return [("true", "true"), ("false", "false")]
    labels = enum_labels.get(spec.type.enum or "", {})
    return [(value, f"{value} · {labels[value]}" if value in labels else value) for value in spec.type.values]


def _text(value: Any) -> str:
    """How a fact value reads in an input: its JSON form as text ("12.50", "true", an ISO instant)."""
    if value is _ABSENT or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Decimal, datetime, date, time)):
        return str(to_output(value))
    return str(value)


def default_text(spec: FieldSpec) -> str:
    """The declared default of an optional fact, as the form shows it ("" when there is none)."""
    if spec.default is MISSING or spec.default in ({}, []):
        return ""
    return _text(spec.default)
