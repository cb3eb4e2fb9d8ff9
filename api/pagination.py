"""Pages of the audit reads (SPEC §7.1): at most :data:`MAX_PAGE_ENTRIES` entries an answer, and a
cursor for the next page.

The next page's address is in a ``Link: <…>; rel="next"`` header (RFC 8288, as GitHub's API pages)
and its cursor alone in ``Next-Cursor``, so a JSON list stays a list and a CSV stays a CSV. A cursor
is opaque to callers: base64url of where the page ended, tagged with its listing so that one listing's
cursor is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from .errors import InvalidRequest

MAX_PAGE_ENTRIES = 1000


def encode_cursor(listing: str, position: Any) -> str:
    text = json.dumps([listing, position], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, listing: str) -> Any:
    """Where the previous page of ``listing`` ended (None: from the start); a 400 for anything else."""
    if cursor is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        decoded = None
    if not (isinstance(decoded, list) and len(decoded) == 2 and decoded[0] == listing):
        raise _not_a_cursor()
    return decoded[1]


def log_position(cursor: str | None) -> int | None:
    """The sequence number a decision-log page ended before (a cursor made by :func:`encode_cursor`)."""
    position = decode_cursor(cursor, "log")
    if position is not None and not _row_number(position):
        raise _not_a_cursor()
    return position


def record_position(cursor: str | None) -> tuple[int, str] | None:
    """The (evaluated ms, decision id) a records page ended at."""
    position = decode_cursor(cursor, "records")
    if position is None:
        return None
    if not (isinstance(position, list) and len(position) == 2 and _row_number(position[0])
            and isinstance(position[1], str) and len(position[1]) <= 64):
        raise _not_a_cursor()
    return position[0], position[1]


def _row_number(value: Any) -> bool:
    """An integer a database column holds (a tampered cursor must not reach SQL as anything else)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _not_a_cursor() -> InvalidRequest:
    return InvalidRequest({"cursor": ["not a cursor of this listing: pass the Next-Cursor of its previous page"]})


def with_next_page(response: Response, cursor: str | None) -> Response:
    """``response`` with the ``Link``/``Next-Cursor`` headers of the next page (none on the last one)."""
    if cursor is not None:
        arguments = request.args.to_dict()
        arguments["cursor"] = cursor
        response.headers["Link"] = f'<{request.base_url}?{urlencode(arguments)}>; rel="next"'
        response.headers["Next-Cursor"] = cursor
    return response
