"""Parsing and type-checking of rule expressions (``when``, ``until``, derived values).

Expressions use a small, Python-like syntax: ``store.channel == 'pop' and not store.in_gray_release``,
``payout.amount > max_payout_amount``, ``order.state in ['wait_pay', 'locked']``,
``coalesce(order.payout_total, 0) + payout.amount``. They are parsed with :mod:`ast` (parsing only,
nothing is executed) and every node is checked against a whitelist, the fact declarations, the
constants and the functions of :mod:`engine.language.functions`.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.language.functions import FUNCTIONS, MATCHABLE_FUNCTIONS, SignatureError
from engine.language.hints import expression_syntax_hint, huge_number_message
from engine.language.model import Constant, Decision, FieldSpec, Table, sensitive_paths
from engine.runtime.values import (
    BOOL,
    INSTANT,
    INT,
    MAX_INT,
    MONEY,
    NULL,
    ORDERED_KINDS,
    STR,
    Type,
    list_of,
)

COMPARISON_OPERATORS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}
ARITHMETIC_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
LITERAL_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}

# Limits of one expression (docs/rule-format.md §6.6). The length bounds the work of Python's own
# parser (whose AST building is recursive) and of everything after it; the depth bounds the recursion
# of the checker, the compiler and the interpreter, far below Python's recursion limit.
MAX_EXPRESSION_LENGTH = 500  # characters (the longest shipped condition has 214)
MAX_EXPRESSION_DEPTH = 32  # operators, calls and lists inside each other (a dotted name is one level)


@dataclass
class Expr:
    offset: int  # character offset inside the expression text
    type: Type
    text: str  # the source text of this node


@dataclass
class Lit(Expr):
    value: Any = None


@dataclass
class Ref(Expr):
    """A name: a fact path (``actor.quota.enabled``), a derived value, a counter or ``now``."""

    kind: str = "fact"  # fact | derived | counter | now
    path: str = ""
    optional: bool = True  # may be absent at evaluation time


@dataclass
class Compare(Expr):
    op: str = "=="
    left: Expr | None = None
    right: Expr | None = None


@dataclass
class Logic(Expr):
    op: str = "and"
    operands: list[Expr] = field(default_factory=list)


@dataclass
class Not(Expr):
    operand: Expr | None = None


@dataclass
class Arith(Expr):
    op: str = "+"
    left: Expr | None = None
    right: Expr | None = None


@dataclass
class Call(Expr):
    function: str = ""
    args: list[Expr] = field(default_factory=list)


@dataclass
class Lookup(Expr):
    """``table[key].column``: a cell of a table, null when the row or the cell is absent."""

    table: Table | None = None
    key: Expr | None = None
    column: str = ""


@dataclass
class ListLit(Expr):
    items: list[Expr] = field(default_factory=list)


def children(expr: Expr) -> list[Expr]:
    """The expressions directly inside ``expr``, in reading order."""
    found = [child for name in ("left", "right", "operand", "key")
             if isinstance(child := getattr(expr, name, None), Expr)]
    for name in ("operands", "args", "items"):
        found.extend(getattr(expr, name, None) or [])
    return found


def walk(expr: Expr):
    """``expr`` and every expression inside it, depth first."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def names_read(expr: Expr) -> set[str]:
    """The top-level names an expression reads: facts (their root object), derived values, counters,
    ``now``, constants and tables."""
    names: set[str] = set()
    for node in walk(expr):
        if isinstance(node, Ref):
            names.add(node.path.split(".")[0])
        elif isinstance(node, Lit) and node.text.isidentifier():
            names.add(node.text)
        elif isinstance(node, Lookup) and node.table is not None:
            names.add(node.table.name)
    return names


class ExpressionError(Exception):
    def __init__(self, offset: int, message: str, *, knock_on: bool = False):
        self.offset = offset
        self.message = message
        # reading a name whose own declaration has a problem (reported there): not reported again
        self.knock_on = knock_on
        super().__init__(message)


@dataclass
class Scope:
    """What names an expression may use, and their types."""

    facts: dict[str, FieldSpec]
    constants: dict[str, Constant]
    values: dict[str, Type] = field(default_factory=dict)  # derived values defined so far
    counters: dict[str, Type] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    # declared, but their declaration has a problem (a constant that did not parse, a derived value
    # whose expression did not): an expression reading one is not reported again
    broken: set[str] = field(default_factory=set)

    def names(self) -> list[str]:
        return [*self.facts, *self.constants, *self.values, *self.counters, *self.tables, "now"]


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse(text: str, scope: Scope, expected: Type | None = None) -> Expr:
    """Parse and check ``text``; raise :class:`ExpressionError` with the offending offset."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(0, "expression is empty")
    # Newlines of a literal block become spaces (same length) so offsets stay character offsets.
    flat = text.replace("\n", " ")
    check_length(flat)
    try:
        tree = ast.parse(flat.strip() and flat, mode="eval")
    except (SyntaxError, ValueError) as error:
        hint = expression_syntax_hint(flat)
        if hint is not None:
            raise ExpressionError(*hint) from None
        message = error.msg if isinstance(error, SyntaxError) else str(error)
        if "digits" in message:  # an integer past Python's digit limit
            number = max(re.findall(r"[0-9]+", flat), key=len, default="")
            raise ExpressionError(max(flat.find(number), 0), huge_number_message(len(number), MAX_INT)) from None
        if not isinstance(error, SyntaxError):  # a character Python's parser refuses outright (e.g. NUL)
            raise ExpressionError(0, "expression contains a character that is not allowed") from None
        offset = max((error.offset or 1) - 1, 0)
        raise ExpressionError(offset, f"syntax error in expression: {error.msg}") from None
    except (RecursionError, MemoryError):  # not reachable within the length limit; kept as a guard
        raise ExpressionError(0, f"expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep") from None
    checker = _Checker(flat, scope)
    expr = checker.check(tree.body)
    if expected is not None and not _fits(expr.type, expected):
        raise ExpressionError(expr.offset, f"expression must be {expected}, but it is {expr.type}")
    return expr


def check_length(text: str) -> None:
    """Refuse an expression longer than :data:`MAX_EXPRESSION_LENGTH`, before anything parses it."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(0, f"expression is {len(text)} characters long; the maximum is {MAX_EXPRESSION_LENGTH} "
                                 "(split it into derived values)")


def _fits(actual: Type, expected: Type) -> bool:
    if actual.kind == "null":
        return True
    if expected.kind == "money" and actual.kind == "int":
        return True
    if expected.kind == "list" and actual.kind == "list":
        return True
    if expected.is_stringy and actual.is_stringy:
        return True
    return actual.kind == expected.kind


class _Checker:
    def __init__(self, text: str, scope: Scope):
        self.text = text
        self.scope = scope
        self.depth = 0
        # ast offsets count UTF-8 bytes; users count characters (a Chinese string literal is 3 bytes
        # each). The byte → character table is built once, so every offset and segment is a lookup.
        self._chars: list[int] | None = None if text.isascii() else _character_offsets(text)

    def _char(self, byte_offset: int) -> int:
        return byte_offset if self._chars is None else self._chars[byte_offset]

    def offset(self, node: ast.AST) -> int:
        return self._char(node.col_offset)

    def end(self, node: ast.AST) -> int:
        return self._char(node.end_col_offset)

    def segment(self, node: ast.AST) -> str:
        return self.text[self.offset(node):self.end(node)]

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(self.offset(node), message)

    def check(self, node: ast.AST) -> Expr:
        method = getattr(self, f"_check_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"{_describe(node)} is not allowed in a rule expression")
        # The one place the checker recurses: nesting past the limit stops here, long before
        # Python's recursion limit (and the compiler and interpreter only see checked trees).
        if self.depth == MAX_EXPRESSION_DEPTH:
            raise self.fail(node, f"expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep "
                                  "(split it into derived values)")
        self.depth += 1
        try:
            return method(node)
        finally:
            self.depth -= 1

    # --- leaves -------------------------------------------------------------------------------

    def _check_Constant(self, node: ast.Constant) -> Expr:
        value = node.value
        if isinstance(value, bool):
            kind = BOOL
        elif isinstance(value, int):
            if abs(value) > MAX_INT:
                raise self.fail(node, huge_number_message(len(str(abs(value))), MAX_INT))
            kind = INT
        elif isinstance(value, float):
            value, kind = Decimal(repr(value)), MONEY
        elif isinstance(value, str):
            kind = STR
        elif value is None:
            kind = NULL
        else:
            raise self.fail(node, f"literal {value!r} is not allowed")
        return Lit(self.offset(node), kind, self.segment(node), value=value)

    def _check_List(self, node: ast.List | ast.Tuple) -> Expr:
        items = [self.check(item) for item in node.elts]
        for item in items:
            if not isinstance(item, Lit):
                raise ExpressionError(item.offset, "a list written in a rule holds only literal values")
        kinds = {item.type.kind for item in items}
        if len(kinds) > 1:
            raise self.fail(node, f"a list must hold values of one type, got {', '.join(sorted(kinds))}")
        item_type = items[0].type if items else STR
        return ListLit(self.offset(node), list_of(item_type), self.segment(node), items=items)

    _check_Tuple = _check_List

    def _check_Name(self, node: ast.Name) -> Expr:
        return self._resolve(node, [node.id], [node])

    def _check_Attribute(self, node: ast.Attribute) -> Expr:
        parts: list[str] = []
        nodes: list[ast.AST] = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            nodes.append(current)
            current = current.value
        if isinstance(current, ast.Subscript) and len(parts) == 1:
            return self._lookup(node, current, parts[0])
        if not isinstance(current, ast.Name):
            raise self.fail(current, f"{_describe(current)} cannot have fields")
        parts.append(current.id)
        nodes.append(current)
        parts.reverse()
        nodes.reverse()
        return self._resolve(node, parts, nodes)

    def _lookup(self, node: ast.Attribute, subscript: ast.Subscript, column: str) -> Expr:
        if not isinstance(subscript.value, ast.Name) or subscript.value.id not in self.scope.tables:
            raise self.fail(subscript, "only tables can be indexed: write table_name[key].column"
                                       f"{did_you_mean(self.segment(subscript.value), list(self.scope.tables))}")
        table = self.scope.tables[subscript.value.id]
        key = self.check(subscript.slice)
        if not key.type.is_stringy:
            raise ExpressionError(key.offset, f"table {table.name} is keyed by {table.key}, not {key.type}")
        self._check_enum_literals(Lit(key.offset, table.key, key.text), key)
        if column not in table.columns:
            raise ExpressionError(self.end(node) - len(column), f"table {table.name} has no column {column!r}"
                                                     f"{did_you_mean(column, list(table.columns))}")
        return Lookup(self.offset(node), table.columns[column], self.segment(node), table=table, key=key, column=column)

    def _part_offset(self, nodes: list[ast.AST], index: int, name: str) -> int:
        """Offset of the ``index``-th name of a dotted path, for pointing at the misspelt part."""
        node = nodes[index]
        if index == 0:
            return self.offset(node)
        return self.end(node) - len(name)

    def _resolve(self, node: ast.AST, parts: list[str], nodes: list[ast.AST]) -> Expr:
        root = parts[0]
        scope = self.scope
        text = self.segment(node)
        if root in LITERAL_NAMES and len(parts) == 1:
            value = LITERAL_NAMES[root]
            kind = NULL if value is None else BOOL
            return Lit(self.offset(node), kind, text, value=value)
        if root in scope.facts:
            spec = scope.facts[root]
            optional = not spec.always_present
            for index, name in enumerate(parts[1:], start=1):
                if spec.type.kind != "object":
                    raise ExpressionError(self._part_offset(nodes, index, name),
                                          f"fact {'.'.join(parts[:index])} is {spec.type}, it has no field {name!r}")
                if name not in spec.fields and ".".join(parts[: index + 1]) in scope.broken:
                    raise ExpressionError(self._part_offset(nodes, index, name), "declared with a problem",
                                          knock_on=True)
                if name not in spec.fields:
                    raise ExpressionError(
                        self._part_offset(nodes, index, name),
                        f"undeclared fact {'.'.join(parts[: index + 1])}{did_you_mean(name, list(spec.fields))}")
                spec = spec.fields[name]
                optional = optional or not spec.always_present
            return Ref(self.offset(node), spec.type, text, kind="fact", path=".".join(parts), optional=optional)
        if len(parts) > 1 and root in (*scope.constants, *scope.values, *scope.counters, "now"):
            raise ExpressionError(self._part_offset(nodes, 1, parts[1]), f"{root} has no field {parts[1]!r}")
        if root in scope.constants:
            constant = scope.constants[root]
            return Lit(self.offset(node), constant.type, text, value=constant.value)
        if root in scope.values:
            return Ref(self.offset(node), scope.values[root], text, kind="derived", path=root, optional=True)
        if root in scope.counters:
            return Ref(self.offset(node), scope.counters[root], text, kind="counter", path=root, optional=False)
        if root == "now":
            return Ref(self.offset(node), INSTANT, text, kind="now", path="now", optional=False)
        if root in scope.broken:
            raise ExpressionError(self.offset(node), f"{root} has a problem of its own", knock_on=True)
        if len(parts) > 1:
            raise self.fail(node, f"undeclared fact {'.'.join(parts)}{did_you_mean(root, list(scope.facts))}")
        raise self.fail(node, f"undeclared name {root!r}{did_you_mean(root, scope.names())}")

    # --- operators ----------------------------------------------------------------------------

    def _check_BoolOp(self, node: ast.BoolOp) -> Expr:
        operands = [self._boolean(value) for value in node.values]
        op = "and" if isinstance(node.op, ast.And) else "or"
        return Logic(self.offset(node), BOOL, self.segment(node), op=op, operands=operands)

    def _check_UnaryOp(self, node: ast.UnaryOp) -> Expr:
        if isinstance(node.op, ast.Not):
            return Not(self.offset(node), BOOL, self.segment(node), operand=self._boolean(node.operand))
        if isinstance(node.op, ast.USub):
            operand = self.check(node.operand)
            if isinstance(operand, Lit) and operand.type.kind in ("int", "money"):
                return Lit(self.offset(node), operand.type, self.segment(node), value=-operand.value)
        raise self.fail(node, f"operator {_describe(node.op)} is not allowed here")

    def _boolean(self, node: ast.AST) -> Expr:
        expr = self.check(node)
        if expr.type.kind not in ("bool", "null"):
            raise ExpressionError(expr.offset, f"{expr.text!r} is {expr.type}, expected a true/false condition")
        return expr

    def _check_Compare(self, node: ast.Compare) -> Expr:
        left = self.check(node.left)
        text = self.segment(node)
        comparisons: list[Expr] = []
        for op_node, right_node in zip(node.ops, node.comparators, strict=False):
            op = COMPARISON_OPERATORS.get(type(op_node))
            if op is None:
                raise self.fail(node, f"operator {_describe(op_node)} is not allowed (use == != < <= > >= in, not in)")
            right = self.check(right_node)
            comparisons.append(self._comparison(node, text, op, left, right))
            left = right
        if len(comparisons) == 1:
            return comparisons[0]
        return Logic(self.offset(node), BOOL, text, op="and", operands=comparisons)

    def _comparison(self, node: ast.AST, text: str, op: str, left: Expr, right: Expr) -> Expr:
        if op in ("in", "not in"):
            if right.type.kind != "list":
                raise ExpressionError(right.offset, f"the right side of '{op}' must be a list, not {right.type}")
            item_type = right.type.item or STR
            if not left.type.comparable_with(item_type):
                raise ExpressionError(left.offset, f"cannot look for {left.type} in a list of {item_type}")
            self._check_enum_literals(left, right)
            if left.type.kind == "money" and isinstance(right, ListLit) and item_type.kind == "int":
                # amount in [1, 2] means 1.00 or 2.00, as amount == 1 does
                items = [_coerce_money(item, left) for item in right.items]
                right = ListLit(right.offset, list_of(MONEY), right.text, items=items)
            return Compare(self.offset(node), BOOL, text, op=op, left=left, right=right)
        if not left.type.comparable_with(right.type):
            raise ExpressionError(right.offset, f"cannot compare {left.type} with {right.type}")
        _check_money_mix(left, right)
        if op not in ("==", "!=") and (left.type.kind not in ORDERED_KINDS or right.type.kind not in ORDERED_KINDS):
            bad = left if left.type.kind not in ORDERED_KINDS else right
            raise ExpressionError(bad.offset, f"'{op}' needs numbers, money, instants or dates, not {bad.type}")
        self._check_enum_literals(left, right)
        left, right = _coerce_money(left, right), _coerce_money(right, left)
        return Compare(self.offset(node), BOOL, text, op=op, left=left, right=right)

    def _check_enum_literals(self, left: Expr, right: Expr) -> None:
        """A literal compared with an enum fact must be one of the enum's values."""
        for enum_side, other in ((left, right), (right, left)):
            enum_type = enum_side.type.item if enum_side.type.kind == "list" else enum_side.type
            if enum_type is None or enum_type.kind != "enum":
                continue
            literals = other.items if isinstance(other, ListLit) else [other]
            for literal in literals:
                if isinstance(literal, Lit) and isinstance(literal.value, str) and literal.value not in enum_type.values:
                    raise ExpressionError(
                        literal.offset,
                        f"{literal.value!r} is not a value of enum {enum_type.enum}"
                        f"{did_you_mean(literal.value, enum_type.values)}; values: {', '.join(enum_type.values)}")

    def _check_BinOp(self, node: ast.BinOp) -> Expr:
        op = ARITHMETIC_OPERATORS.get(type(node.op))
        if op is None:
            raise self.fail(node, f"operator {_describe(node.op)} is not allowed (use + - * /)")
        left, right = self.check(node.left), self.check(node.right)
        result = _arithmetic_type(op, left.type, right.type)
        if result is None:
            raise self.fail(node, f"cannot compute {left.type} {op} {right.type}")
        if op in ("+", "-"):
            # Adding yuan: a whole-number literal is an amount. (× and ÷ take it as a plain factor.)
            _check_money_mix(left, right)
            left, right = _coerce_money(left, right), _coerce_money(right, left)
        return Arith(self.offset(node), result, self.segment(node), op=op, left=left, right=right)

    def _check_Call(self, node: ast.Call) -> Expr:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only the rule language's functions can be called")
        name = node.func.id
        function = FUNCTIONS.get(name)
        if function is None:
            raise self.fail(node, f"unknown function {name}(){did_you_mean(name, list(FUNCTIONS))}; "
                                  f"functions: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise self.fail(node.keywords[0], f"{name}() takes no keyword arguments")
        args = [self.check(arg) for arg in node.args]
        if function.by_reference:
            for arg in args:
                if not isinstance(arg, Ref) or arg.kind != "fact":
                    raise ExpressionError(arg.offset, f"{name}() takes fact names, not {arg.text!r}")
        try:
            result = function.check([arg.type for arg in args])
        except SignatureError as error:
            raise self.fail(node, str(error)) from None
        if name in ("min", "max", "coalesce", "differing") and any(arg.type.kind == "money" for arg in args):
            # money beside a whole number: a literal is yuan (min(payout.amount, 5) is at most 5.00);
            # an int fact is a count, not yuan
            groups = [args] if name != "differing" else [args[index:index + 2] for index in range(0, len(args), 2)]
            for group in groups:
                for first in group:
                    for second in group:
                        if first is not second:
                            _check_money_mix(first, second)
            if name != "differing":
                args = [_coerce_money(arg, Lit(0, MONEY, "")) for arg in args]
        if args and all(isinstance(arg, Lit) for arg in args) and name not in MATCHABLE_FUNCTIONS \
                and not function.uses_calendar and not function.by_reference:
            # Fold calls on literals and constants (``days(payout_window_days)``) once, at load.
            try:
                value = function.call(*(arg.value for arg in args))
            except (ArithmeticError, ValueError) as error:  # OverflowError is an ArithmeticError
                raise self.fail(node, f"{name}() of these values is out of range: {error}") from None
            return Lit(self.offset(node), result, self.segment(node), value=value)
        return Call(self.offset(node), result, self.segment(node), function=name, args=args)


def _character_offsets(text: str) -> list[int]:
    """For each UTF-8 byte offset of ``text`` (and its end), the character offset it falls in."""
    offsets: list[int] = []
    for index, character in enumerate(text):
        offsets.extend([index] * len(character.encode("utf-8", "surrogatepass")))
    offsets.append(len(text))
    return offsets


def _check_money_mix(left: Expr, right: Expr) -> None:
    """Money next to an int is only allowed for an int literal (yuan); an int fact is a count, not yuan."""
    for money, other in ((left, right), (right, left)):
        if money.type.kind == "money" and other.type.kind == "int" and not isinstance(other, Lit):
            raise ExpressionError(other.offset, f"{other.text!r} is int, not money; declare it as money")


def _coerce_money(expr: Expr, other: Expr) -> Expr:
    """An integer literal next to money means yuan: ``payout.amount > 0``."""
    if isinstance(expr, Lit) and expr.type.kind == "int" and other.type.kind == "money":
        return Lit(expr.offset, MONEY, expr.text, value=Decimal(expr.value))
    return expr


def _arithmetic_type(op: str, left: Type, right: Type) -> Type | None:
    kinds = (left.kind, right.kind)
    if op in ("+", "-"):
        if kinds in (("int", "int"),):
            return INT
        if set(kinds) <= {"int", "money"}:
            return MONEY
        if kinds == ("instant", "duration") or (op == "+" and kinds == ("duration", "instant")):
            return INSTANT
        if kinds == ("duration", "duration"):
            return Type("duration")
        if op == "-" and kinds == ("instant", "instant"):
            return Type("duration")
        return None
    if op == "*":
        if kinds == ("int", "int"):
            return INT
        if set(kinds) == {"money", "int"}:
            return MONEY
        if set(kinds) == {"duration", "int"}:
            return Type("duration")
        return None
    if op == "/":
        if kinds in (("money", "int"), ("money", "money")):
            return MONEY
        return None
    return None


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "a lambda", "IfExp": "an if-expression", "Subscript": "indexing",
        "ListComp": "a comprehension", "GeneratorExp": "a comprehension", "Dict": "a mapping",
        "JoinedStr": "an f-string", "Starred": "unpacking", "Mod": "'%'", "Pow": "'**'",
        "FloorDiv": "'//'", "Is": "'is'", "IsNot": "'is not'", "Invert": "'~'", "UAdd": "unary '+'",
        "BitAnd": "'&'", "BitOr": "'|'", "NamedExpr": "':='", "Await": "await",
    }
    return names.get(type(node).__name__, type(node).__name__)


def sensitive_record_columns(decision: Decision) -> frozenset[str]:
    """The record columns that read a sensitive fact, directly or through derived values: a record
    reader without the audit or admin token sees them masked, as the decision log keeps them."""
    sensitive = set(sensitive_paths(decision.facts))

    def reads_sensitive(expr: Expr | None) -> bool:
        return expr is not None and any(isinstance(node, Ref) and node.path in sensitive for node in walk(expr))

    for derived in decision.derived:  # in order: a derived value reads only those before it
        if reads_sensitive(derived.expr) or any(reads_sensitive(part) for part in derived.fields.values()):
            sensitive.add(derived.name)
    return frozenset(column for column, expr in decision.record.items() if reads_sensitive(expr))
