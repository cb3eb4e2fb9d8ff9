"""Who may do what in the console: reading is open; running and checking need the admin token.

The token (``RULESVC_ADMIN_TOKEN``, the one the admin API takes) is typed once per browser session.
The session is a cookie signed with the app's secret key (``SameSite=Strict``, HTTP only, gone when
the browser closes, refused after :data:`SESSION_LIFETIME`); it holds an HMAC of the token, never the
token, so changing the token signs every browser out. Every form carries a CSRF token
(Flask-WTF's, bound to the session); a POST without a valid one is a 400.

The secret key is ``RULESVC_SECRET_KEY`` when set (needed only when several hosts must share
sessions); otherwise random bytes made when the app is created. ``rulesvc serve`` creates the app
once in the gunicorn master before forking (``preload_app``), so every worker, including one
restarted later, holds the same key and accepts the same sessions.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Request, abort, current_app, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

from ..auth import TOKEN_VARIABLE

SECRET_VARIABLE = "RULESVC_SECRET_KEY"
SESSION_COOKIE = "rulesvc_console"
SESSION_LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf_token"
_ADMIN_KEY = "admin"


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, opened only under the console's path: the JSON API never reads
    them, and building the signer for every decision request cost it about 4 % of its CPU (measured)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(self.get_cookie_path(app)):
            return self.session_class()  # empty and never modified: nothing is sent back
        return super().open_session(app, request)


def configure_sessions(app: Flask, cookie_path: str) -> None:
    """Signed session cookies for the console pages only (the JSON API never reads them)."""
    app.session_interface = ConsoleSessions()
    if not app.secret_key:
        app.secret_key = os.environ.get(SECRET_VARIABLE) or secrets.token_bytes(32)
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_PATH=cookie_path,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,  # also the oldest signature a cookie may carry
        WTF_CSRF_FIELD_NAME=CSRF_FIELD,
        WTF_CSRF_TIME_LIMIT=None,  # a form's token lives as long as its session
    )


def csrf_token() -> str:
    """The token every console form carries in its hidden ``csrf_token`` field."""
    return generate_csrf()


def check_csrf() -> None:
    """Refuse (400) a state-changing request whose form lacks the session's CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    try:
        validate_csrf(request.form.get(CSRF_FIELD))
    except ValidationError:
        abort(400, description="csrf")


def admin_enabled() -> bool:
    return bool(os.environ.get(TOKEN_VARIABLE))


def _mark(token: str) -> str:
    """What the session keeps instead of the token: an HMAC under the app's secret key."""
    key = current_app.secret_key
    key_bytes = key if isinstance(key, bytes) else str(key).encode()
    return hmac.new(key_bytes, b"rulesvc-console-admin\0" + token.encode(), hashlib.sha256).hexdigest()


def is_admin() -> bool:
    """Whether this browser session signed in with the admin token now in force."""
    token = os.environ.get(TOKEN_VARIABLE)
    held = session.get(_ADMIN_KEY)
    return bool(token) and isinstance(held, str) and hmac.compare_digest(held, _mark(token))


def sign_in(supplied: str) -> bool:
    """Start an admin session if ``supplied`` is the admin token (compared in constant time)."""
    token = os.environ.get(TOKEN_VARIABLE)
    if not token or not hmac.compare_digest(supplied.encode(), token.encode()):
        return False
    session.clear()  # a fresh session (and CSRF token) on sign-in: no fixation
    session[_ADMIN_KEY] = _mark(token)
    return True


def sign_out() -> None:
    session.clear()


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """For views that run work or change state: 403 (a page with the way to sign in) without a session."""
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            abort(403)
        return view(*args, **kwargs)
    return guarded
