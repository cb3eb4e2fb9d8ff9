"""The app's JSON: request bodies and answers through :mod:`engine.jsontext` (orjson where it gives the
standard library's answer), everything else as Flask's default provider does it."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.json.provider import DefaultJSONProvider

from engine.jsontext import dumps, loads


class ServiceJSONProvider(DefaultJSONProvider):
    """Flask's default provider with non-ASCII text as is, keys in their order, and the hot calls —
    reading a request body, writing an answer — through orjson."""

    ensure_ascii = False
    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s) if not kwargs else super().loads(s, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)  # indented for reading
        body = dumps(self._prepare_response_obj(args, kwargs), default=self.default)
        return self._app.response_class(body + b"\n", mimetype=self.mimetype)
