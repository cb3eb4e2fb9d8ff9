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
        raise InvalidRequest({"cursor": ["not a cursor of this listing: pass the Next-Cursor of its previous page"]})
    return decoded[1]


def with_next_page(response: Response, cursor: str | None) -> Response:
    """``response`` with the ``Link``/``Next-Cursor`` headers of the next page (none on the last one)."""
    if cursor is not None:
        arguments = request.args.to_dict()
        arguments["cursor"] = cursor
        response.headers["Link"] = f'<{request.base_url}?{urlencode(arguments)}>; rel="next"'
        response.headers["Next-Cursor"] = cursor
    return response
