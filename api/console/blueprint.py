"""The console blueprint and what every page shares: language, CSRF check, security headers, errors."""

from __future__ import annotations

import logging
import posixpath
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, current_app, render_template, request
from flask_babel import format_datetime, format_decimal
from werkzeug.exceptions import HTTPException, NotFound

from engine import Rulebook, UnknownDecision
from engine.language.model import in_language
from engine.limits import LimitExceeded
from engine.runtime.evaluation import CompiledDecision
from engine.runtime.values import to_output
from engine.state import StoreUnavailable

from ..access import Throttled
from ..limits import Busy
from ..state import ServiceState
from . import i18n, security
from .suites import Suites

log = logging.getLogger(__name__)
PREFIX = "/console"
EXTENSION = "rulesvc-console"

blueprint = Blueprint("console", __name__, url_prefix=PREFIX, template_folder="templates",
                      static_folder="static", static_url_path="/static")

# Nothing from another host, no inline script or style: the pages work offline and resist injection.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'; object-src 'none'")
NAVIGATION = (("console.index", "nav.home"), ("console.scenarios", "nav.scenarios"),
              ("console.validate", "nav.validate"), ("console.impact", "nav.impact"),
              ("console.drafts", "nav.drafts"), ("console.versions", "nav.versions"),
              ("console.log_page", "nav.log"), ("console.calendar", "nav.calendar"))
OUTCOMES = ("allow", "deny", "defer", "review")
# abort(…, description=NAME) → the page's message: a missing CSRF token, the role a page needs
NAMED_ERRORS = {"csrf": "err.csrf", "admin": "err.403", "reader": "err.403_reader"}


def service() -> ServiceState:
    return current_app.extensions["rulesvc"]


def rulebook() -> Rulebook:
    return service().rulebook


def suites() -> Suites:
    return current_app.extensions[EXTENSION]


def safe_next(target: str | None) -> str:
    """A console path to go back to after a switch or a sign-in. Anything else goes home: a control or
    other unprintable character (CR LF would split the ``Location`` header), a scheme or host, ``//`` or
    a backslash (browsers read both as another host), a path outside the console (``..`` and its
    percent-encoded forms resolved first, as a browser does)."""
    home = PREFIX + "/"
    if not target or not target.isprintable() or "\\" in target:
        return home
    parts = urlsplit(target)
    resolved = posixpath.normpath(unquote(parts.path) or "/")
    if parts.scheme or parts.netloc or "//" in parts.path or not parts.path.startswith(home):
        return home
    return target if resolved == PREFIX or resolved.startswith(home) else home


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"console/{template}", **context), status


@blueprint.before_request
def _before() -> None:
    i18n.current_language()
    security.check_csrf()


@blueprint.after_request
def _headers(response: Any) -> Any:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html":
        response.vary.add("Cookie")  # the language and the sign-in change the page
    return response


@blueprint.context_processor
def _context() -> dict[str, Any]:
    return {
        "t": i18n.t, "lang": i18n.current_language(), "field_message": i18n.field_message, "type_label": i18n.type_label,
        "problem_text": i18n.problem_message, "holiday_name": i18n.holiday_name,
        "csrf_token": security.csrf_token, "is_admin": security.is_admin(), "role": security.role(),
        "admin_enabled": security.admin_enabled(), "sign_in_enabled": security.sign_in_enabled(),
        "navigation": NAVIGATION, "to_output": to_output,
        "here": request.full_path.rstrip("?") if request.method == "GET" else request.path,
    }


@blueprint.app_template_filter("shanghai")
def shanghai_time(stamp: str | None) -> str:
    """A recorded instant (ISO, any offset) as a reader in China reads it: ``2026-12-08 02:34:53`` Shanghai time."""
    if not stamp:
        return "—"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return format_datetime(moment, "yyyy-MM-dd HH:mm:ss")  # Babel, in the app's zone (Asia/Shanghai)


@blueprint.app_template_filter("localized")
def localized_text(text: Any) -> str:
    """A rule file's description or note in the page's language, when the file gives both."""
    return in_language(text, i18n.current_language())


@blueprint.app_template_filter("number")
def number(value: Any) -> str:
    """A count as the page's locale writes it (Babel: 12,345)."""
    return format_decimal(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


@blueprint.app_template_filter("rule_anchor")
def rule_anchor(qualified_id: str) -> str:
    """The id of a rule's row on its rules page: ``payout.initiate/amount-limit`` → ``payout-initiate--amount-limit``."""
    return qualified_id.replace("/", "--").replace(".", "-")


@blueprint.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    key = f"err.{code}" if i18n.has_text(f"err.{code}") else "err.title"
    message = i18n.t(NAMED_ERRORS[error.description]) if error.description in NAMED_ERRORS else i18n.t(key)
    return page("error.html", code, code=code, message=message, detail=getattr(error, "console_detail", ""))


@blueprint.errorhandler(StoreUnavailable)
def _store_unavailable(error: StoreUnavailable) -> tuple[str, int]:
    return page("error.html", 503, code=503, message=i18n.t("log.store_unavailable", error=str(error)), detail="")


@blueprint.errorhandler(LimitExceeded)
def _limit_exceeded(error: LimitExceeded) -> tuple[str, int]:
    code = 413 if error.kind == "count" else 422
    return page("error.html", code, code=code, message=i18n.t("err.limit"), detail=str(error))


@blueprint.errorhandler(Busy)
def _busy(error: Busy) -> tuple[str, int, dict[str, str]]:
    body, code = page("error.html", 429, code=429, message=i18n.t("err.429"), detail=str(error))
    return body, code, {"Retry-After": str(error.retry_after)}


@blueprint.errorhandler(Throttled)
def _throttled(error: Throttled) -> tuple[str, int, dict[str, str]]:
    body, code = page("error.html", 429, code=429, message=i18n.t("err.throttled"),
                      detail=i18n.t("err.retry_after", seconds=error.retry_after))
    return body, code, {"Retry-After": str(error.retry_after)}


@blueprint.errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[str, int]:
    log.exception("console: unexpected error")
    return page("error.html", 500, code=500, message=i18n.t("err.500"), detail="")


def compiled_decision(name: str) -> CompiledDecision:
    """The active decision ``name``, or a 404 page that says so."""
    try:
        return rulebook().decision(name)
    except UnknownDecision:
        raise not_found(i18n.t("err.unknown_decision", name=name)) from None


def not_found(detail: str) -> HTTPException:
    """A 404 whose page says what was not found."""
    error = NotFound()
    error.console_detail = detail  # type: ignore[attr-defined]
    return error
