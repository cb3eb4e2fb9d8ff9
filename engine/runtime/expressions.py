"""Rule expressions as Python source, for the fast path's generated functions.

Each node becomes inline code with the reference interpreter's semantics (:mod:`engine.reference.interpret`):
null in, null out; money rounded half-up to the fen; the same function implementations. The closures
and the repeated lookups of nested facts go away (objects are bound to locals once per function).
One thing is left out: where the interpreter turns an ``OverflowError`` (past the representable
calendar) into null at the node, generated code lets it propagate — the caller then decides that
one request on the reference path, which never happens for facts inside the validated years.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.language.expressions import Arith, Call, Compare, Expr, ListLit, Lit, Logic, Lookup, Not, Ref, walk
from engine.language.functions import FUNCTIONS
from engine.reference.interpret import apply_function, arith, compare
from engine.runtime.calendar import Calendar
from engine.runtime.codegen import Source
from engine.runtime.values import round_fen

HELPERS: dict[str, Any] = {"_arith": arith, "_compare": compare, "_apply": apply_function, "_EMPTY": {},
                           "_round_fen": round_fen, "_Decimal": Decimal, "_Calendar": Calendar}
_ORDERING = ("<", "<=", ">", ">=")


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
        self.bind_paths(indent, [node.path for expression in expressions for node in _refs(expression)
                                 if node.kind == "fact"])

    def bind_paths(self, indent: int, paths: list[str]) -> None:
        """Emit locals for every object the fact ``paths`` go through."""
        for path in paths:
            parts = path.split(".")
            for depth in range(1, len(parts)):
                self._object(".".join(parts[:depth]), indent)

    def path_code(self, path: str) -> str:
        """Python source reading the value at ``path`` (a local, or through bound objects)."""
        if path in self.local:
            return self.local[path]
        parent, _, leaf = path.rpartition(".")
        if not parent:
            return f"{self.values}.get({leaf!r})"
        holder = self._objects[parent]
        return f"({holder}.get({leaf!r}) if type({holder}) is dict else None)"

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
            return self.path_code(expr.path)
        if isinstance(expr, ListLit):
            return f"list({self.source.constant([item.value for item in expr.items], 'LIST')})"
        if isinstance(expr, Lookup):
            assert expr.table is not None and expr.key is not None
            rows = self.source.constant(expr.table.rows, "ROWS")
            return f"{rows}.get({self.code(expr.key)}, _EMPTY).get({expr.column!r})"
        if isinstance(expr, Arith):
            if expr.op == "/":  # division has its own rules (by zero: null; Decimal or duration)
                return f"_arith({self.source.constant(expr, 'ARITH')}, {self.code(expr.left)}, {self.code(expr.right)})"
            left, right = self.source.name("a"), self.source.name("b")
            combined = f"{left} {expr.op} {right}"
            if expr.type.kind == "money":
                combined = f"_round_fen(_Decimal({combined}))"
            return f"(None if ({left} := {self.code(expr.left)}) is None or ({right} := {self.code(expr.right)}) is None " \
                   f"else {combined})"
        if isinstance(expr, Call):
            function = FUNCTIONS[expr.function]
            call = self.source.constant(function.call, "CALL")
            if function.by_reference:
                pairs = ", ".join(f"({getattr(arg, 'path', '')!r}, {self.code(arg)})" for arg in expr.args)
                return f"{call}({pairs})"
            if not expr.args:
                return f"{call}()"
            names = [self.source.name("p") for _ in expr.args]
            arguments = (["(calendar or _Calendar())"] if function.uses_calendar else []) + names
            bound = ", ".join(f"({name} := {self.code(arg)})" for name, arg in zip(names, expr.args, strict=True))
            if function.null_in_null_out:
                test = " or ".join(f"{name} is None" for name in names)
                return f"(None if ({bound},) and ({test}) else {call}({', '.join(arguments)}))"
            return f"({bound},) and {call}({', '.join(arguments)})"
        if isinstance(expr, Not):
            value = self.source.name("n")
            return f"(None if ({value} := {self.code(expr.operand)}) is None else not {value})"
        if isinstance(expr, Logic):
            operands = ", ".join(self.code(operand) for operand in expr.operands)
            return f"{'all' if expr.op == 'and' else 'any'}([{operands}])"
        if isinstance(expr, Compare):
            if expr.op in _ORDERING:  # with a null operand: false
                left, right = self.source.name("a"), self.source.name("b")
                return f"(False if ({left} := {self.code(expr.left)}) is None or ({right} := {self.code(expr.right)}) " \
                       f"is None else {left} {expr.op} {right})"
            return f"_compare({expr.op!r}, {self.code(expr.left)}, {self.code(expr.right)})"
        raise TypeError(f"no Python form for {type(expr).__name__}")


def _refs(expr: Expr) -> list[Ref]:
    return [node for node in walk(expr) if isinstance(node, Ref)]
