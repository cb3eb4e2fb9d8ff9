"""Rule expressions as Python source, for the fast path's generated functions.

Each node becomes inline code that calls the same helpers the reference interpreter
(:mod:`engine.interpret`) calls — :func:`~engine.interpret.arith`, :func:`~engine.interpret.compare`,
:func:`~engine.interpret.apply_function` — so the semantics (null in, null out; money rounded half-up
to the fen; null past the calendar) are the interpreter's own; what goes away is the tree of closures
and the repeated lookups of nested facts, which are bound to locals once per function.
"""

from __future__ import annotations

from typing import Any

from ..expressions import Arith, Call, Compare, Expr, ListLit, Lit, Logic, Lookup, Not, Ref, walk
from ..functions import FUNCTIONS
from ..interpret import apply_function, arith, compare
from .codegen import Source

HELPERS: dict[str, Any] = {"_arith": arith, "_compare": compare, "_apply": apply_function, "_EMPTY": {}}


class ExpressionCode:
    """Generates the Python source of expressions inside one generated function.

    Names read from ``values`` (facts, derived values, counters, ``now``) unless ``local`` maps them to a
    variable of the function; the objects nested facts go through are looked up once, at the first use,
    into locals emitted by :meth:`bind_objects` at the top of the function.
    """

    def __init__(self, source: Source, values: str = "values"):
        self.source = source
        self.values = values
        self.local: dict[str, str] = {}
        self._objects: dict[str, str] = {}  # "actor.quota" -> local variable holding that object (or None)

    def bind_objects(self, indent: int, expressions: list[Expr]) -> None:
        """Emit locals for every object a fact path in ``expressions`` goes through."""
        for expression in expressions:
            for node in _refs(expression):
                if node.kind != "fact":
                    continue
                parts = node.path.split(".")
                for depth in range(1, len(parts)):
                    self._object(".".join(parts[:depth]), indent)

    def _object(self, path: str, indent: int) -> str:
        name = self._objects.get(path)
        if name is not None:
            return name
        name = self.source.name("o")
        parent, _, leaf = path.rpartition(".")
        if parent:
            holder = self._object(parent, indent)
            self.source.add(indent, f"{name} = {holder}.get({leaf!r}) if type({holder}) is dict else None")
        else:
            self.source.add(indent, f"{name} = {self.values}.get({leaf!r})")
        self._objects[path] = name
        return name

    def code(self, expr: Expr) -> str:
        """Python source computing ``expr`` (objects must have been bound)."""
        if isinstance(expr, Lit):
            return self.source.constant(expr.value, "LIT")
        if isinstance(expr, Ref):
            if expr.path in self.local:
                return self.local[expr.path]
            parent, _, leaf = expr.path.rpartition(".")
            if not parent:
                return f"{self.values}.get({leaf!r})"
            holder = self._objects[parent]
            return f"({holder}.get({leaf!r}) if type({holder}) is dict else None)"
        if isinstance(expr, ListLit):
            return f"list({self.source.constant([item.value for item in expr.items], 'LIST')})"
        if isinstance(expr, Lookup):
            assert expr.table is not None and expr.key is not None
            rows = self.source.constant(expr.table.rows, "ROWS")
            return f"{rows}.get({self.code(expr.key)}, _EMPTY).get({expr.column!r})"
        if isinstance(expr, Arith):
            return f"_arith({self.source.constant(expr, 'ARITH')}, {self.code(expr.left)}, {self.code(expr.right)})"
        if isinstance(expr, Call):
            function = self.source.constant(FUNCTIONS[expr.function], "FN")
            paths = self.source.constant([getattr(arg, "path", "") for arg in expr.args], "PATHS")
            arguments = ", ".join(self.code(arg) for arg in expr.args)
            return f"_apply({function}, {paths}, [{arguments}], calendar)"
        if isinstance(expr, Not):
            value = self.source.name("n")
            return f"(None if ({value} := {self.code(expr.operand)}) is None else not {value})"
        if isinstance(expr, Logic):
            operands = ", ".join(self.code(operand) for operand in expr.operands)
            return f"{'all' if expr.op == 'and' else 'any'}([{operands}])"
        if isinstance(expr, Compare):
            return f"_compare({expr.op!r}, {self.code(expr.left)}, {self.code(expr.right)})"
        raise TypeError(f"no Python form for {type(expr).__name__}")


def _refs(expr: Expr) -> list[Ref]:
    return [node for node in walk(expr) if isinstance(node, Ref)]
