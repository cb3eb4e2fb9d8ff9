"""The fact asserted into durable_rules on the fast path: flat, with short property names.

Only the names the decision's conditions read are encoded, each in its matcher form (integer fen,
epoch milliseconds, day ordinals…, see :func:`engine.values.to_matcher`): a list also gets its
length, an object only its presence (conditions can only ask ``exists()`` of an object).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..compiler import LENGTH_SUFFIX, MARKER, FieldNames
from ..expressions import Call, Expr, Ref, walk
from ..values import Type, epoch_ms, to_matcher
from .codegen import Source

Encoder = Callable[[dict[str, Any]], dict[str, Any]]


# durable_rules refuses a fact of more than 255 properties; the fast path adds "id" and the decision marker.
MAX_FIELDS = 253


def condition_fields(conditions: list[Expr]) -> dict[str, Type]:
    """The names the conditions read, with their static types (``len(x)`` reads ``x`` too)."""
    fields: dict[str, Type] = {}
    for condition in conditions:
        for node in walk(condition):
            if isinstance(node, Ref):
                fields.setdefault(node.path, node.type)
            elif isinstance(node, Call) and node.function == "len" and isinstance(node.args[0], Ref):
                fields.setdefault(node.args[0].path, node.args[0].type)
    return fields


def field_names(fields: dict[str, Type]) -> FieldNames:
    """Short names for the fields, and for each list's length."""
    paths: list[str] = []
    for path, kind in fields.items():
        paths.append(path)
        if kind.kind == "list":
            paths.append(path + LENGTH_SUFFIX)
    return FieldNames(paths)


def _conversion(kind: Type, value: str, source: Source) -> str:
    """Python source turning ``value`` (a Python value of type ``kind``) into its matcher form."""
    if kind.kind in ("bool", "int", "str", "enum"):
        return value
    if kind.kind == "money":
        return f"int({value} * 100)"
    if kind.kind == "instant":
        return f"_epoch_ms({value})"
    return f"_to_matcher({value})"  # dates, times, durations, values of computed types


def build_encoder(decision: str, fields: dict[str, Type], names: FieldNames, facts: set[str]) -> tuple[Encoder, str]:
    """The encoder of values (facts, ``now``, counters, derived) into the flat fact; also its source.

    ``facts`` are the top-level fact names: their values are of their declared types, while derived
    values and counters are converted by their runtime type, as :func:`to_matcher` does.
    """
    source = Source()
    marker = source.constant(decision, "DECISION")
    source.add(0, "def encode(values):")
    source.add(1, f"fact = {{{MARKER!r}: {marker}}}")
    # Group paths by their first parts so that each parent object is looked up once.
    tree: dict[str, Any] = {}
    for path in fields:
        branch = tree
        *parents, leaf = path.split(".")
        for part in parents:
            branch = branch.setdefault(part, {}).setdefault("", {})
        branch.setdefault(leaf, {})["path"] = path

    def emit(branch: dict[str, Any], parent: str, indent: int, typed: bool) -> None:
        for name, node in branch.items():
            value = source.name("v")
            source.add(indent, f"{value} = {parent}.get({name!r})")
            source.add(indent, f"if {value} is not None:")
            path = node.get("path")
            if path is not None:
                kind = fields[path]
                short = names(path)
                if kind.kind == "object":
                    source.add(indent + 1, f"fact[{short!r}] = 1")
                elif kind.kind == "list":
                    item = kind.item or Type("str")
                    item_value = source.name("i")
                    conversion = _conversion(item, item_value, source) if typed else f"_to_matcher({item_value})"
                    source.add(indent + 1, f"fact[{short!r}] = [{conversion} for {item_value} in {value}]")
                    source.add(indent + 1, f"fact[{names(path + LENGTH_SUFFIX)!r}] = len({value})")
                else:
                    conversion = _conversion(kind, value, source) if typed else f"_to_matcher({value})"
                    source.add(indent + 1, f"fact[{short!r}] = {conversion}")
            children = node.get("")
            if children:
                source.add(indent + 1, f"if type({value}) is dict:")
                emit(children, value, indent + 2, typed)
            if path is None and not children:
                source.add(indent + 1, "pass")

    for name, node in tree.items():
        emit({name: node}, "values", 1, name in facts)
    source.add(1, "return fact")
    namespace = source.compile(f"<encoder {decision}>", {"_epoch_ms": epoch_ms, "_to_matcher": to_matcher})
    return namespace["encode"], source.text
