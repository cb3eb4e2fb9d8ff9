"""Who may do what in the console (SPEC §7.1, §12): policies and tryouts are open; pages showing past
decisions (records, log, explanations) need a reading role; running and checking need the admin token.

A token is typed once per browser session and decides the session's role (:data:`ROLES`):
``RULESVC_ADMIN_TOKEN`` → ``admin`` (everything, sensitive facts in clear), ``RULESVC_AUDIT_TOKEN`` →
``audit`` (reads, sensitive facts in clear), ``RULESVC_QA_TOKEN`` → ``qa`` (reads, sensitive facts
masked). Tokens are compared by :func:`api.auth.token_accepted`, like the API's, and so share its
throttle per client address: too many wrong tokens and the sign-in is a 429 with ``Retry-After``.

The session is a cookie signed with the app's secret key (``SameSite=Strict``, HTTP only, ``Secure``
when the request came over https, gone when the browser closes, refused after
:data:`SESSION_LIFETIME`). It holds the role, an HMAC of the role's token — never the token, so
changing a token signs its browsers out — and a random session id. Logging out (or signing in again)
revokes that id in the service's access database (:mod:`api.access`), which every worker reads, so a
copy of the cookie kept from before is refused from then on. Every form carries a CSRF token
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

from flask import Flask, Request, abort, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

from .. import access
from ..auth import AUDIT_TOKEN_VARIABLE, QA_TOKEN_VARIABLE, admin_tokens, token_accepted, token_matches

SECRET_VARIABLE = "RULESVC_SECRET_KEY"
SESSION_COOKIE = "rulesvc_console"
SESSION_LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf_token"
ROLES = ("admin", "audit", "qa")  # strongest first: a token set for two roles signs in as the first
READERS = frozenset(ROLES)  # every role may read the decisions made
CLEAR_READERS = frozenset({"admin", "audit"})  # the roles that see sensitive facts in clear (SPEC §7.1)
_ROLE, _NAME, _MARK, _ID = "role", "name", "mark", "sid"


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, opened only under the console's path: the JSON API never reads
    them, and building the signer for every decision request cost it about 4 % of its CPU (measured)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(self.get_cookie_path(app)):
            return self.session_class()  # empty and never modified: nothing is sent back
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        """``Secure`` whenever the request came over https: ``request.is_secure`` follows the WSGI scheme,
        which gunicorn sets from ``X-Forwarded-Proto`` only for the proxies it trusts
        (``forwarded_allow_ips``, by default the local host); no header is trusted here."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


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


def _signers() -> list[tuple[str, str, str]]:
    """``(role, name, token)`` of every token in force, strongest role first; admins by their names
    (``RULESVC_ADMIN_TOKENS``), the other roles named after themselves."""
    signers = [("admin", name, token) for name, token in admin_tokens().items()]
    for held_role, variable in (("audit", AUDIT_TOKEN_VARIABLE), ("qa", QA_TOKEN_VARIABLE)):
        if os.environ.get(variable):
            signers.append((held_role, held_role, os.environ[variable]))
    return signers


def sign_in_enabled() -> bool:
    """Whether any token the sign-in accepts is set."""
    return bool(_signers())


def admin_enabled() -> bool:
    return bool(admin_tokens())


def _mark(role: str, name: str, token: str) -> str:
    """What the session keeps instead of the token: an HMAC under the app's secret key."""
    key = current_app.secret_key
    key_bytes = key if isinstance(key, bytes) else str(key).encode()
    return hmac.new(key_bytes, f"rulesvc-console-{role}\0{name}\0{token}".encode(), hashlib.sha256).hexdigest()


def role() -> str | None:
    """This browser session's role, if it signed in with a token now in force and has not been revoked
    (looked up once per request, and only for a session that holds a sign-in)."""
    if "console_role" not in g:
        g.console_role = _current_role()
    return g.console_role


def _current_role() -> str | None:
    held_role, name, held_mark, session_id = (session.get(_ROLE), session.get(_NAME), session.get(_MARK),
                                              session.get(_ID))
    if held_role not in READERS or not all(isinstance(value, str) for value in (name, held_mark, session_id)):
        return None
    token = next((token for signer_role, signer, token in _signers() if (signer_role, signer) == (held_role, name)), None)
    if not token or not hmac.compare_digest(held_mark, _mark(held_role, name, token)):
        return None
    if access.current().is_revoked(session_id):
        return None
    if held_role == "admin":
        g.admin_name = name  # who acts: recorded with every draft, approval and publication
    return held_role


def is_admin() -> bool:
    return role() == "admin"


def can_read_decisions() -> bool:
    return role() in READERS


def sees_sensitive_facts() -> bool:
    """Whether this session may see sensitive facts in clear (audit or admin; QA sees them masked)."""
    return role() in CLEAR_READERS


def sign_in(supplied: str) -> bool:
    """Start a session with the role of ``supplied`` if it is one of the tokens in force. Raises
    :class:`~api.access.Throttled` while this client is over its failed checks."""
    signers = _signers()
    if not token_accepted(supplied, *(token for _, _, token in signers)):
        return False
    signed_role, name, token = next(signer for signer in signers if token_matches(supplied, signer[2]))
    _revoke()  # the session held before (maybe a copy the caller kept) ends here: no fixation
    session.clear()  # a fresh session (and CSRF token) on sign-in
    session.update({_ROLE: signed_role, _NAME: name, _MARK: _mark(signed_role, name, token),
                    _ID: secrets.token_urlsafe(18)})
    g.console_role = signed_role
    if signed_role == "admin":
        g.admin_name = name
    return True


def sign_out() -> None:
    _revoke()
    session.clear()
    g.console_role = None


def _revoke() -> None:
    """Refuse this session's id from now on, in every worker."""
    session_id = session.get(_ID)
    if isinstance(session_id, str):
        access.current().revoke(session_id, SESSION_LIFETIME.total_seconds())


def _required(allowed: Callable[[], bool], need: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not allowed():
                abort(403, description=need)
            return view(*args, **kwargs)
        return guarded
    return decorate


# For views that run work or change state: 403 (a page with the way to sign in) without an admin session.
admin_required = _required(is_admin, "admin")
# For views that show decisions made (records, log, explanations): 403 without a reading session.
reader_required = _required(can_read_decisions, "reader")
