"""Bearer tokens. Admin endpoints need an admin's token: ``Authorization: Bearer <token>`` with a token
of ``RULESVC_ADMIN_TOKENS="name:token,…"`` or ``RULESVC_ADMIN_TOKEN`` (the admin named ``admin``);
without either they are off (403). Admins are named so that every draft, approval, publication and
rollback records who made it (SPEC §12.1): the view reads it as :func:`admin_name`.
When ``RULESVC_QA_TOKEN`` is set, scenario runs and validations need it
or the admin token; without it they are open. Reading what decisions were made (the decision log,
records, explain, shadow reports, version texts, CSV exports) needs ``RULESVC_AUDIT_TOKEN``, the QA or
the admin token (SPEC §7.1): with none of them set those reads are off (403), never open. The scheme
is matched in any letter case and tokens are compared in constant time (as digests, so not even
their length leaks).

Guessing is throttled per client address (:func:`token_accepted`): after
:data:`~api.access.MAX_FAILURES` wrong tokens within :data:`~api.access.WINDOW_SECONDS` every token
check from that address — a right token too, or guessing would go on — is a 429 with ``Retry-After``
until the oldest failure ages out. The count lives in the service's access database (:mod:`api.access`),
so it holds across gunicorn's workers. The address is the connecting one (``REMOTE_ADDR``): no
forwarded header is trusted, so clients behind one proxy share its count."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any

from flask import g, jsonify, request

from . import access
from .errors import error_body

TOKEN_VARIABLE = "RULESVC_ADMIN_TOKEN"
NAMED_TOKENS_VARIABLE = "RULESVC_ADMIN_TOKENS"
DEFAULT_ADMIN = "admin"  # the name of RULESVC_ADMIN_TOKEN's admin
_ADMIN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
QA_TOKEN_VARIABLE = "RULESVC_QA_TOKEN"
AUDIT_TOKEN_VARIABLE = "RULESVC_AUDIT_TOKEN"


def admin_tokens() -> dict[str, str]:
    """``{admin name: token}`` from ``RULESVC_ADMIN_TOKENS`` and ``RULESVC_ADMIN_TOKEN``; raises
    :class:`ValueError` naming the entry that is not ``name:token`` (checked when the app is made)."""
    return dict(_parse_admin_tokens(os.environ.get(NAMED_TOKENS_VARIABLE, ""), os.environ.get(TOKEN_VARIABLE, "")))


@functools.lru_cache(maxsize=4)
def _parse_admin_tokens(named: str, single: str) -> tuple[tuple[str, str], ...]:
    tokens: dict[str, str] = {}
    for number, entry in enumerate(filter(None, (part.strip() for part in named.split(","))), start=1):
        name, colon, token = entry.partition(":")
        name, token = name.strip(), token.strip()
        if not colon or not token or not _ADMIN_NAME.fullmatch(name):
            raise ValueError(f"{NAMED_TOKENS_VARIABLE}: entry {number} must be name:token, the name of letters, "
                             "digits, '_', '.', '@' or '-' (at most 64)")
        if name in tokens:
            raise ValueError(f"{NAMED_TOKENS_VARIABLE}: admin {name!r} is named twice")
        tokens[name] = token
    if single.strip():
        if DEFAULT_ADMIN in tokens and tokens[DEFAULT_ADMIN] != single.strip():
            raise ValueError(f"{TOKEN_VARIABLE} is the admin named {DEFAULT_ADMIN!r}, whom {NAMED_TOKENS_VARIABLE} "
                             "gives another token")
        tokens[DEFAULT_ADMIN] = single.strip()
    if len(set(tokens.values())) != len(tokens):
        raise ValueError(f"{NAMED_TOKENS_VARIABLE}: two admins share a token (each must be told apart)")
    return tuple(tokens.items())


def admin_named(supplied: str | None) -> str | None:
    """The name of the admin whose token is ``supplied`` (every token compared, in constant time)."""
    found = None
    for name, token in admin_tokens().items():
        if token_matches(supplied, token):
            found = name
    return found


def admin_name() -> str:
    """Who is acting, in a view behind :func:`admin_required` (or a console admin session)."""
    return g.get("admin_name") or DEFAULT_ADMIN


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (``bearer``, ``BEARER``… too)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_matches(supplied: str | None, *expected: str | None) -> bool:
    """Whether ``supplied`` is one of the ``expected`` tokens (unset ones never match), in constant time."""
    if supplied is None:
        return False
    digest = hashlib.sha256(supplied.encode("utf-8", "surrogatepass")).digest()
    matched = False
    for token in expected:
        if token:  # every configured token is compared, whichever matches
            matched |= hmac.compare_digest(digest, hashlib.sha256(token.encode("utf-8")).digest())
    return matched


def client_address() -> str:
    """Who a failed check counts against: the connecting address (see the module's docstring); an
    IPv6 client by its /64, the block one host is usually given, so changing addresses inside it
    does not reset the count."""
    address = request.remote_addr or "-"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # ::ffff:1.2.3.4 is the IPv4 client 1.2.3.4
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def token_accepted(supplied: str | None, *expected: str | None) -> bool:
    """:func:`token_matches`, throttled per client: raises :class:`~api.access.Throttled` while this
    client is over its failed checks; a wrong token is counted as one. No token is no guess: it is
    refused without a look at the count."""
    if supplied is None:
        return False
    ledger, client = access.current(), client_address()
    ledger.check(client)
    if token_matches(supplied, *expected):
        return True
    ledger.failed(client)
    return False


def _unauthorized(message: str) -> Any:
    response = jsonify(error_body("UNAUTHORIZED", message))
    response.headers["WWW-Authenticate"] = "Bearer"
    return response, 401


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tokens = admin_tokens()
        if not tokens:
            return jsonify(error_body("ADMIN_DISABLED", f"admin endpoints are disabled: neither {TOKEN_VARIABLE} "
                                      f"nor {NAMED_TOKENS_VARIABLE} is set")), 403
        supplied = bearer_token()
        if not token_accepted(supplied, *tokens.values()):
            return _unauthorized("a valid admin bearer token is required")
        g.admin_name = admin_named(supplied)
        return view(*args, **kwargs)
    return guarded


def qa_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Open unless ``RULESVC_QA_TOKEN`` is set; then the QA or the admin token."""
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        qa_token = os.environ.get(QA_TOKEN_VARIABLE)
        if qa_token and not token_accepted(bearer_token(), qa_token, *admin_tokens().values()):
            return _unauthorized(f"a valid bearer token ({QA_TOKEN_VARIABLE} or the admin token) is required")
        return view(*args, **kwargs)
    return guarded


def audit_tokens() -> tuple[str | None, ...]:
    """The tokens that may read the audit trail: audit, QA and admin (unset ones are None)."""
    return (os.environ.get(AUDIT_TOKEN_VARIABLE), os.environ.get(QA_TOKEN_VARIABLE), *admin_tokens().values())


def sees_sensitive_facts(token: str | None) -> bool:
    """Whether ``token`` may read sensitive facts in clear: the audit or the admin token (not QA's)."""
    return token_matches(token, os.environ.get(AUDIT_TOKEN_VARIABLE), *admin_tokens().values())


def audit_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """The audit, QA or admin token; 403 when none of them is configured."""
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tokens = audit_tokens()
        if not any(tokens):
            return jsonify(error_body("AUDIT_DISABLED", f"audit reads are disabled: set {AUDIT_TOKEN_VARIABLE} "
                                      f"(or {QA_TOKEN_VARIABLE} / {TOKEN_VARIABLE})")), 403
        if not token_accepted(bearer_token(), *tokens):
            return _unauthorized(f"a valid bearer token ({AUDIT_TOKEN_VARIABLE}, {QA_TOKEN_VARIABLE} "
                                 "or the admin token) is required")
        return view(*args, **kwargs)
    return guarded
