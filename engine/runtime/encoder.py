"""The fact asserted into durable_rules on the fast path: flat, with short property names.

Only the names the decision's conditions read are encoded, each in its matcher form (integer fen,
epoch microseconds, day ordinals…, see :func:`engine.runtime.values.to_matcher`): a list also gets its
length, an object only its presence (conditions can only ask ``exists()`` of an object). The
encoding is generated code, on its own (:func:`build_encoder`) and at the end of the generated
deriver (engine/runtime/deriver.py), which has the values at hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.language.expressions import Call, Expr, Ref, walk
from engine.runtime.codegen import Source
from engine.runtime.compiler import LENGTH_SUFFIX, MARKER, FieldNames
from engine.runtime.expressions import ExpressionCode
from engine.runtime.values import Type, epoch_us, to_matcher

Encoder = Callable[[dict[str, Any]], dict[str, Any]]
# durable_rules refuses a fact of more than 255 properties; the fast path adds "id" and the decision marker.
MAX_FIELDS = 253
HELPERS: dict[str, Any] = {"_epoch_us": epoch_us, "_to_matcher": to_matcher}


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


def _conversion(kind: Type, value: str) -> str:
    """Python source turning ``value`` (a Python value of type ``kind``) into its matcher form."""
    if kind.kind in ("bool", "int", "str", "enum"):
        return value
    if kind.kind == "money":
        return f"int({value} * 100)"
    if kind.kind == "instant":
        return f"_epoch_us({value})"
    return f"_to_matcher({value})"  # dates, times, durations


def emit_encoding(source: Source, code: ExpressionCode, indent: int, fields: dict[str, Type], names: FieldNames,
                  facts: set[str], fact: str = "fact", replacing: bool = False) -> None:
    """Emit the statements that set ``fact``'s property for each of ``fields`` from the values.

    Fact values have their declared types; derived values and counters are converted by their runtime
    type, as :func:`to_matcher` does. With ``replacing`` (a copy of an earlier fact), a value now absent
    removes its property.
    """
    code.bind_paths(indent, [path for path in fields if path.split(".")[0] in facts])
    for path, kind in fields.items():
        typed = path.split(".")[0] in facts
        value = source.name("v")
        source.add(indent, f"{value} = {code.path_code(path)}")
        short = names(path)
        source.add(indent, f"if {value} is not None:")
        if kind.kind == "object":
            source.add(indent + 1, f"{fact}[{short!r}] = 1")
        elif kind.kind == "list":
            item = source.name("i")
            conversion = _conversion(kind.item or Type("str"), item) if typed else f"_to_matcher({item})"
            source.add(indent + 1, f"{fact}[{short!r}] = [{conversion} for {item} in {value}]")
            source.add(indent + 1, f"{fact}[{names(path + LENGTH_SUFFIX)!r}] = len({value})")
        else:
            source.add(indent + 1, f"{fact}[{short!r}] = {_conversion(kind, value) if typed else f'_to_matcher({value})'}")
        if replacing:
            source.add(indent, "else:")
            source.add(indent + 1, f"{fact}.pop({short!r}, None)")
            if kind.kind == "list":
                source.add(indent + 1, f"{fact}.pop({names(path + LENGTH_SUFFIX)!r}, None)")


def build_encoder(decision: str, fields: dict[str, Type], names: FieldNames, facts: set[str]) -> tuple[Encoder, str]:
    """The encoder of values (facts, ``now``, counters, derived) into the flat fact; also its source."""
    source = Source()
    marker = source.constant(decision, "DECISION")
    source.add(0, "def encode(values):")
    source.add(1, f"fact = {{{MARKER!r}: {marker}}}")
    emit_encoding(source, ExpressionCode(source), 1, fields, names, facts)
    source.add(1, "return fact")
    namespace = source.compile(f"<encoder {decision}>", HELPERS)
    return namespace["encode"], source.text
