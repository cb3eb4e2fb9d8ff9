"""The fast path's fact reader: the decision's declarations turned into straight-line Python.

It accepts exactly what the reference reader (:class:`engine.reference.facts.FactsLoader`, marshmallow) accepts
in the usual shapes — JSON objects, strings for money, instants and dates — and gives the same values
(``Decimal`` money, aware ``datetime`` instants, defaults filled in). Anything else, valid or not, it
refuses with :class:`Unusual`, and the reference reader decides: it reports every error by path, or
accepts the rarer forms (money as a JSON number…). tests/test_fastpath.py checks the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.language.model import MISSING, FieldSpec
from engine.reference.facts import MAX_INT, MAX_TEXT, text_problem
from engine.runtime.codegen import Source
from engine.runtime.values import _MONEY_TEXT, FEN, MAX_MONEY, SHANGHAI, parse_date, parse_instant, parse_time, to_output

Reader = Callable[[Any], dict[str, Any]]


class Unusual(Exception):
    """The fast reader does not take these facts; the reference reader will."""


_UNUSUAL = Unusual()
_PARSERS = {"instant": "_parse_instant", "date": "_parse_date", "time": "_parse_time"}


_SHANGHAI_INSTANT_TEXT = re.compile(r"(199[2-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+08:00")
# Money written as its output form: no leading zero, exactly two decimals, at most MAX_MONEY's 12 digits.
_MONEY_WRITTEN_AS_OUTPUT = re.compile(r"(0|[1-9][0-9]{0,11})\.[0-9]{2}")


def _instant_written_as_output(text: str) -> bool:
    """Whether ``text`` is a real instant written as its output form: seconds, +08:00, a year from 1992
    (Shanghai kept daylight saving time until 1991) within the supported years. The parsed instant must
    write back to the same text: a parser that reads ``T24:00:00`` as the next midnight (Python 3.14)
    does not make it one."""
    if _SHANGHAI_INSTANT_TEXT.fullmatch(text) is None:
        return False
    try:
        return datetime.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


_WRITTEN_AS_OUTPUT = {"money": "_money_as_output", "instant": "_instant_as_output"}
# What to_output makes of each kind's value (engine/runtime/values.py), as code written inline.
_OUTPUT_CODE = {"money": "str({})", "instant": "{}.astimezone(_SHANGHAI).isoformat()", "date": "{}.isoformat()",
                 "time": "{}.isoformat()"}


def build_reader(decision: str, specs: dict[str, FieldSpec], *, output: bool = False) -> tuple[Reader, str]:
    """The reader of a decision's request facts, and its generated source. With ``output``, the facts come
    in their output form instead (money ``"0.00"``, instants in Shanghai time: what ``to_output`` makes of
    the values), ready for orjson without a ``default``: the decision log's writer process reads so."""
    source = _ReaderSource(output)
    root = _object_function(source, specs)
    namespace = source.compile(f"<reader {decision}>", {
        "_UNUSUAL": _UNUSUAL, "_Decimal": Decimal, "_FEN": FEN, "_MAX_MONEY": MAX_MONEY,
        "_money_text": _MONEY_TEXT.fullmatch, "_MAX_INT": MAX_INT, "_text_problem": text_problem, "_MAX_TEXT": MAX_TEXT,
        "_parse_instant": parse_instant, "_parse_date": parse_date, "_parse_time": parse_time, "_ValueError": ValueError,
        "_SHANGHAI": SHANGHAI, "_money_as_output": _MONEY_WRITTEN_AS_OUTPUT.fullmatch,
        "_instant_as_output": _instant_written_as_output,
    })
    return namespace[root], source.text


def _object_function(source: _ReaderSource, specs: dict[str, FieldSpec]) -> str:
    """Generate ``def read_objectN(raw)`` for an object with these fields; returns its name."""
    children = {name: _object_function(source, spec.fields) for name, spec in specs.items()
                if spec.type.kind == "object"}
    items = {name: _item_function(source, spec.item) for name, spec in specs.items()
             if spec.type.kind == "list" and spec.item is not None}
    function = source.name("read_object")
    declared = source.constant(frozenset(specs), "DECLARED")
    required = [name for name, spec in specs.items() if spec.required]
    source.add(0, f"def {function}(raw):")
    source.add(1, f"if type(raw) is not dict or not {declared}.issuperset(raw):")
    source.add(2, "raise _UNUSUAL")
    source.add(1, "out = {}")
    for name, spec in specs.items():
        value = source.name("x")
        source.add(1, f"{value} = raw.get({name!r})")
        source.add(1, f"if {value} is None:")
        if name in required:
            source.add(2, "raise _UNUSUAL")
        elif spec.default is MISSING:
            source.add(2, "pass")
        elif spec.type.kind == "object":
            source.add(2, f"out[{name!r}] = {children[name]}({{}})")
        elif isinstance(spec.default, list):
            source.add(2, f"out[{name!r}] = list({source.constant(_default(source, spec), 'DEFAULT')})")
        else:
            source.add(2, f"out[{name!r}] = {source.constant(_default(source, spec), 'DEFAULT')}")
        source.add(1, "else:")
        if spec.type.kind == "object":
            source.add(2, f"out[{name!r}] = {children[name]}({value})")
        elif spec.type.kind == "list":
            item = source.name("i")
            source.add(2, f"if type({value}) is not list:")
            source.add(3, "raise _UNUSUAL")
            source.add(2, f"out[{name!r}] = [{items[name]}({item}) for {item} in {value}]")
        else:
            _scalar(source, spec, value, 2)
            source.add(2, f"out[{name!r}] = {value}")
    source.add(1, "return out")
    return function


class _ReaderSource(Source):
    """A reader's generated module: its values as the request's Python values, or in their output form."""

    def __init__(self, output: bool):
        super().__init__()
        self.output = output


def _default(source: _ReaderSource, spec: FieldSpec) -> Any:
    return to_output(spec.default) if source.output else spec.default


def _item_function(source: _ReaderSource, spec: FieldSpec) -> str:
    """A reader of one list item (never null)."""
    if spec.type.kind == "object":
        return _object_function(source, spec.fields)
    inner = _item_function(source, spec.item) if spec.type.kind == "list" and spec.item is not None else None
    function = source.name("read_item")
    source.add(0, f"def {function}(x):")
    if spec.type.kind == "list":
        source.add(1, "if type(x) is not list:")
        source.add(2, "raise _UNUSUAL")
        source.add(1, f"return [{inner}(i) for i in x]")
        return function
    source.add(1, "if x is None:")
    source.add(2, "raise _UNUSUAL")
    _scalar(source, spec, "x", 1)
    source.add(1, "return x")
    return function


def _scalar(source: _ReaderSource, spec: FieldSpec, value: str, indent: int) -> None:
    """Check ``value`` (not None) against a scalar declaration; rebind it to its Python value."""
    kind = spec.type.kind
    if source.output and kind in _WRITTEN_AS_OUTPUT and spec.minimum is None and spec.maximum is None:
        # Text already in its output form is valid and stays as it is: no Decimal or datetime made and
        # written back (most of the log writer's reading); any other text takes the whole way.
        source.add(indent, f"if type({value}) is str and {_WRITTEN_AS_OUTPUT[kind]}({value}):")
        source.add(indent + 1, "pass")
        source.add(indent, "else:")
        indent += 1
    if kind == "bool":
        source.add(indent, f"if type({value}) is not bool:")
        source.add(indent + 1, "raise _UNUSUAL")
    elif kind == "int":
        source.add(indent, f"if type({value}) is not int or not -_MAX_INT <= {value} <= _MAX_INT:")
        source.add(indent + 1, "raise _UNUSUAL")
    elif kind == "str":
        # text_problem's checks, cheapest first: an ASCII string cannot hold a lone surrogate
        source.add(indent, f"if type({value}) is not str or len({value}) > _MAX_TEXT or '\\x00' in {value} "
                           f"or not {value}.isascii() and _text_problem({value}):")
        source.add(indent + 1, "raise _UNUSUAL")
    elif kind == "enum":
        allowed = source.constant(frozenset(spec.type.values), "ENUM")
        source.add(indent, f"if type({value}) is not str or {value} not in {allowed}:")
        source.add(indent + 1, "raise _UNUSUAL")
    elif kind == "money":
        # parse_money for strings: digits with at most two decimals, at most MAX_MONEY, to the fen
        source.add(indent, f"if type({value}) is not str or _money_text({value}) is None:")
        source.add(indent + 1, "raise _UNUSUAL")
        source.add(indent, f"{value} = _Decimal({value})")
        source.add(indent, f"if {value} > _MAX_MONEY:")  # before quantize, which fails past 28 digits
        source.add(indent + 1, "raise _UNUSUAL")
        source.add(indent, f"{value} = {value}.quantize(_FEN)")
    elif kind in _PARSERS:
        source.add(indent, f"if type({value}) is not str:")
        source.add(indent + 1, "raise _UNUSUAL")
        source.add(indent, "try:")
        source.add(indent + 1, f"{value} = {_PARSERS[kind]}({value})")
        source.add(indent, "except _ValueError:")
        source.add(indent + 1, "raise _UNUSUAL from None")
    else:
        raise ValueError(f"no fast reader for {kind}")
    if spec.minimum is not None:
        source.add(indent, f"if {value} < {source.constant(spec.minimum, 'MIN')}:")
        source.add(indent + 1, "raise _UNUSUAL")
    if spec.maximum is not None:
        source.add(indent, f"if {value} > {source.constant(spec.maximum, 'MAX')}:")
        source.add(indent + 1, "raise _UNUSUAL")
    if source.output and kind in _OUTPUT_CODE:
        source.add(indent, f"{value} = {_OUTPUT_CODE[kind].format(value)}")
