"""Request bodies: the content type each endpoint takes and how much of it (SPEC §7.1).

Decision endpoints take ``application/json`` only, YAML endpoints ``application/yaml``,
``application/x-yaml`` or ``text/yaml`` (a ``charset`` parameter is fine); anything else is a 415,
so a web page cannot make a browser post a decision as a "simple" form or text request. Bodies are
at most 1 MiB, the batch endpoint's 16 MiB; past that, a 413 — also for a streamed (chunked) body,
which the server would otherwise hand over cut at the limit.
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import UnsupportedMediaType

from engine import Problem
from engine.language.source import decode_source

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_BODY_BYTES = 16 * 1024 * 1024
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


def require_content_type(accepted: tuple[str, ...]) -> None:
    """415 unless the request's media type (parameters aside) is one of ``accepted``."""
    if request.mimetype not in accepted:
        sent = request.mimetype or "no content type"
        raise UnsupportedMediaType(f"this endpoint takes {' or '.join(accepted)}, not {sent}")


def body_bytes(max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The body, at most ``max_bytes`` of it; 413 beyond."""
    request.max_content_length = max_bytes
    data = request.get_data(cache=True)
    if len(data) >= max_bytes and request.content_length is None:
        # A streamed body is handed over cut at the limit: reading on raises the 413 if there is more.
        request.stream.read(1)
    return data


def json_body(max_bytes: int = MAX_BODY_BYTES) -> Any:
    """The request's JSON (content type checked, size bounded); None if it is not JSON."""
    require_content_type(JSON_TYPES)
    body_bytes(max_bytes)
    try:
        return request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes
        return None


def yaml_text(file: str) -> tuple[str | None, Problem | None]:
    """The request's YAML text (content type checked, size bounded), or — for bytes that are not UTF-8,
    such as a file saved as GBK — the problem that says so, positioned as ``file:LINE:COL``."""
    require_content_type(YAML_TYPES)
    return decode_source(file, body_bytes())
