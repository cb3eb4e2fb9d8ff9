"""Admin endpoints need ``Authorization: Bearer $RULESVC_ADMIN_TOKEN``; without the variable they are off."""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable
from typing import Any

from flask import jsonify, request

from .errors import error_body

TOKEN_VARIABLE = "RULESVC_ADMIN_TOKEN"


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        token = os.environ.get(TOKEN_VARIABLE)
        if not token:
            return jsonify(error_body("ADMIN_DISABLED", f"admin endpoints are disabled: {TOKEN_VARIABLE} is not set")), 403
        supplied = request.headers.get("Authorization", "")
        if not supplied.startswith("Bearer ") or not hmac.compare_digest(supplied[7:].encode(), token.encode()):
            response = jsonify(error_body("UNAUTHORIZED", "a valid admin bearer token is required"))
            response.headers["WWW-Authenticate"] = "Bearer"
            return response, 401
        return view(*args, **kwargs)
    return guarded
