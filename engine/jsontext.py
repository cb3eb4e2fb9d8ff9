"""JSON text on the hot paths: orjson where it gives the standard library's answer, the standard library
where it would not.

orjson is several times faster, but differs in two places that matter here: it writes no integer past
64 bits (a ``TypeError``; the standard library writes any integer), and it reads an integer past 64 bits
as a float (the standard library keeps it exact, so such a fact is refused as too long or out of range,
never silently rounded). Text with a run of 19 or more digits is therefore read by the standard library,
and so is anything orjson refuses (``NaN``, a lone surrogate, a byte-order mark, nesting past 1024 levels)
— the answer, or the error, is the standard library's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

# 2**63 has 19 digits: a shorter run of digits is an integer orjson reads exactly. The text is searched
# for such a run with every digit turned into a 9 (bytes.translate, then a substring search): ten times
# faster than a regular expression, and it runs on every request body and every replayed entry.
_DIGITS_AS_NINES = bytes.maketrans(b"012345678", b"999999999")
_LONG_DIGITS = b"9" * 19
# Types orjson would write its own way; handed to ``default`` as the standard library's encoder would.
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON of ``value`` (keys in their order, non-ASCII as is); ``default`` converts what JSON
    has no type for, as in :func:`json.dumps`."""
    try:
        return orjson.dumps(value, default=default, option=_PASSTHROUGH)
    except TypeError:  # an integer past 64 bits, a key that is not a string
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_text(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """:func:`dumps` as text."""
    return dumps(value, default).decode()


def loads(data: bytes | str) -> Any:
    """The value of JSON text, exactly as :func:`json.loads` reads it (raising its errors)."""
    try:
        raw = data.encode() if isinstance(data, str) else data
    except UnicodeEncodeError:  # a lone surrogate in the text
        return json.loads(data)
    if _LONG_DIGITS not in raw.translate(_DIGITS_AS_NINES):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard library decides: it reads some of these, and says why it does not
    return json.loads(data)
