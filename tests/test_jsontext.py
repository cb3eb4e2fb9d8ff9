"""engine.jsontext against the standard library it stands in for: the same values read, the same text
written, the same errors — orjson only where it agrees."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.jsontext import dumps, dumps_text, loads


def json_of(scalars):
    return st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                        | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)


exact_values = json_of(st.none() | st.booleans() | st.integers() | st.text())
json_values = json_of(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                      | st.text())


def standard_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@given(exact_values)
def test_written_as_the_standard_library_writes_it(value):
    assert dumps_text(value) == standard_text(value)
    assert dumps(value) == standard_text(value).encode()


@given(json_values)
def test_floats_are_written_with_the_same_value(value):
    # orjson writes 1e-08 as 1e-8: other text, the same number
    assert json.loads(dumps_text(value)) == json.loads(standard_text(value))


@given(json_values)
def test_read_as_the_standard_library_reads_it(value):
    text = json.dumps(value, ensure_ascii=False)
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text.encode())


@pytest.mark.parametrize("text", [
    '{"amount": 123456789012345678901234567890}',  # past 64 bits: exact, never a float
    '{"count": 18446744073709551616}', '{"count": -9223372036854775809}', '{"count": 9223372036854775807}',
    '{"name": "\\ud800"}',  # a lone surrogate
    '\ufeff{"a": 1}',  # a byte-order mark
    '{"a": 1, "a": 2}',  # the last one wins
    '[1e400]', '[NaN]', '[-Infinity]',
])
def test_unusual_text_is_read_as_the_standard_library_reads_it(text):
    expected, got = json.loads(text.encode("utf-8", "surrogatepass")), loads(text.encode("utf-8", "surrogatepass"))
    assert repr(got) == repr(expected)
    assert type(got) is type(expected)


def test_an_integer_past_64_bits_keeps_every_digit():
    assert loads(b'{"n": 123456789012345678901234567890}')["n"] == 123456789012345678901234567890
    assert dumps_text({"n": 2**70}) == '{"n":1180591620717411303424}'


@pytest.mark.parametrize("text", [b'{"a": }', b'[1,]', b"\xff\xfe", b"", b"[" * 5000 + b"]" * 5000])
def test_what_the_standard_library_refuses_is_refused_with_its_error(text):
    # (how deep the standard library nests depends on the Python version: 3.11 refuses 5000 levels, 3.13 reads them)
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError) as error:
        with pytest.raises(type(error)):
            loads(text)
    else:
        assert loads(text) == expected


def test_default_converts_what_json_has_no_type_for():
    from datetime import date
    from decimal import Decimal

    assert dumps_text({"d": Decimal("1.50"), "when": date(2026, 11, 20)}, default=str) == '{"d":"1.50","when":"2026-11-20"}'
    assert math.isnan(loads(b"NaN"))
