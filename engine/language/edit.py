"""Edit one value of a rule file's text — a constant or a table cell — leaving every other character
as it was (comments, order, quoting), so a draft made from a form differs from the live file by that
value alone and its diff says exactly what a person changed.

A value is found by its path in the YAML node graph (PyYAML's ``compose``, which keeps each node's
start and end) and its source span replaced by the new value written as YAML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from engine.errors import RulesvcError
from engine.language.model import Domain, Type
from engine.runtime.values import parse_literal

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class EditError(RulesvcError):
    """The value cannot be changed here: ``message`` says why (for the person filling the form)."""


@dataclass(frozen=True)
class EditableValue:
    """One value the form may change: a constant (``cell`` None) or a table's cell."""

    target: str  # "sms_window_end", or "rebate_wait[jd].working_days"
    kind: Type
    value: Any
    note: str
    table: str | None = None
    row: str | None = None
    column: str | None = None

    @property
    def path(self) -> tuple[str, ...]:
        if self.table is None:
            return ("constants", self.target)
        return ("tables", self.table, "rows", self.row or "", self.column or "")


def editable_values(domain: Domain) -> list[EditableValue]:
    """Every constant and every filled table cell of ``domain``, in file order."""
    values = [EditableValue(constant.name, constant.type, constant.value, constant.note)
              for constant in domain.constants.values()]
    for table in domain.tables.values():
        for row, cells in table.rows.items():
            for column, value in cells.items():
                values.append(EditableValue(f"{table.name}[{row}].{column}", table.columns[column], value,
                                            table.note, table.name, row, column))
    return values


def find_editable(domain: Domain, target: str) -> EditableValue:
    for value in editable_values(domain):
        if value.target == target:
            return value
    raise EditError(f"{domain.name} has no constant or table cell {target!r}")


def parse_entered(kind: Type, raw: str) -> Any:
    """The value a person typed for a value of ``kind``, checked as the rule-file loader checks it.
    Raises :class:`ValueError` with the loader's own message."""
    text = raw.strip()
    if kind.kind == "list":
        items = [item.strip() for item in text.replace("，", ",").split(",") if item.strip()]
        return [parse_entered(kind.item or Type("str"), item) for item in items]
    if kind.kind == "int":
        try:
            return parse_literal("int", int(text))
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind.kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError("must be true or false")
        return text.lower() == "true"
    value = parse_literal(kind.kind, text)
    if kind.kind == "enum" and value not in (kind.values or ()):
        raise ValueError(f"must be one of: {', '.join(kind.values or ())}")
    return value


def replace_value(text: str, editable: EditableValue, raw: str) -> str:
    """``text`` with ``editable``'s value replaced by what was typed (``raw``), checked against its type
    first; raises :class:`ValueError` (a wrong value) or :class:`EditError` (the text has no such value)."""
    parse_entered(editable.kind, raw)
    node = _value_node(text, editable)
    start, end = node.start_mark.index, _end(node)
    return text[:start] + yaml_literal(editable.kind, raw) + text[end:]


def _end(node: yaml.Node) -> int:
    """Where ``node``'s own text ends: a block collection's end mark lies past the comments and blank
    lines that follow it, which stay; its last item's end is its own."""
    if isinstance(node, yaml.ScalarNode) or node.flow_style or not node.value:
        return node.end_mark.index
    last = node.value[-1]
    return _end(last[1] if isinstance(last, tuple) else last)


def yaml_literal(kind: Type, raw: str) -> str:
    """What is written in the file: numbers and booleans plain, money, times, dates and text quoted
    (so ``21:00`` stays a time of day and ``500.00`` keeps its fen), a list as ``[a, b]``."""
    text = raw.strip()
    if kind.kind == "list":
        items = [item.strip() for item in text.replace("，", ",").split(",") if item.strip()]
        return "[" + ", ".join(yaml_literal(kind.item or Type("str"), item) for item in items) + "]"
    if kind.kind in ("int",):
        return str(int(text))
    if kind.kind == "bool":
        return text.lower()
    return json.dumps(text, ensure_ascii=False)


def _value_node(text: str, editable: EditableValue) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as error:
        raise EditError(f"the file does not parse: {error}") from None
    path = list(editable.path)
    if editable.table is None:
        chain = _chain(root, path[:2])
        if isinstance(chain[-1], yaml.MappingNode):  # {type:, value:, note:} rather than a bare value
            chain += _chain(chain[-1], ["value"])[1:]
    else:
        chain = _chain(root, path)
    uses = _uses(root)
    if any(uses[id(node)] > 1 for node in chain[1:]):
        # an anchor (&) and its aliases (*) share one value: changing it here would change it there too
        raise EditError(f"{editable.target} is shared with another place through a YAML anchor (&) and alias (*); "
                        "edit the file's text instead")
    return chain[-1]


def _chain(node: yaml.Node | None, path: list[str]) -> list[yaml.Node]:
    """``node`` and the node at each step of ``path`` below it."""
    chain = [node]
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            raise EditError(f"no value at {'.'.join(path)}")
        node = next((value for name, value in node.value if isinstance(name, yaml.ScalarNode) and name.value == key), None)
        if node is None:
            raise EditError(f"no value at {'.'.join(path)}")
        chain.append(node)
    return chain


def _uses(root: yaml.Node) -> dict[int, int]:
    """How many places hold each node: more than one for an anchored node and its aliases."""
    uses: dict[int, int] = {}
    pending = [root]
    while pending:
        node = pending.pop()
        uses[id(node)] = uses.get(id(node), 0) + 1
        if uses[id(node)] > 1:
            continue  # its children were counted through its first place
        if isinstance(node, yaml.MappingNode):
            pending += [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            pending += node.value
    return uses


__all__ = ["EditError", "EditableValue", "editable_values", "find_editable", "parse_entered", "replace_value",
           "yaml_literal"]
