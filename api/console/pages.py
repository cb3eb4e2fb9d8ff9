"""Reading pages: the policies, one rule file rendered as policy, the calendar; language and sign-in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from engine.language.model import FieldSpec
from engine.runtime.values import MAX_YEAR, MIN_YEAR, to_shanghai, to_text

from . import i18n, security
from .blueprint import PREFIX, blueprint, not_found, page, rulebook, safe_next, service, suites
from .calendar_view import year_view
from .facts_form import default_text
from .readable import readable


@dataclass
class FactRow:
    path: str
    depth: int
    spec: FieldSpec
    values: list[tuple[str, str]]  # enum values and their labels


def fact_rows(specs: Mapping[str, FieldSpec], labels: Mapping[str, Mapping[str, str]], depth: int = 0) -> list[FactRow]:
    """The declarations flattened for a table, children under their object, list items as ``[]``."""
    rows = []
    for spec in specs.values():
        kind = spec.type.item if spec.type.kind == "list" and spec.type.item else spec.type
        values = [(value, labels.get(kind.enum or "", {}).get(value, "")) for value in kind.values]
        rows.append(FactRow(spec.path, depth, spec, values))
        rows += fact_rows(spec.fields, labels, depth + 1)
        if spec.item is not None and spec.item.fields:
            rows += fact_rows(spec.item.fields, labels, depth + 1)
    return rows


def expression_text(value: Any) -> str:
    """An obligation, ``until`` or derived value as written in the rule file."""
    text = getattr(value, "text", None)
    return " ".join(text.split()) if isinstance(text, str) else to_text(value)


@blueprint.get("/")
def index():
    book = rulebook()
    domains = [domain for _, domain in sorted(book.domains.items())]
    return page("index.html", domains=domains, last_reload=service().last_reload)


@blueprint.get("/rules/<domain>")
def rules(domain: str):
    book = rulebook()
    if domain not in book.domains:
        raise not_found(i18n.t("err.unknown_domain", name=domain))
    loaded = book.domains[domain]
    fired_by = suites().fired_by(book)
    decisions: list[dict[str, Any]] = []
    for decision in loaded.decisions.values():
        decisions.append({
            "decision": decision,
            "facts": fact_rows(decision.facts, decision.enum_labels),
            "rules": [{"rule": rule, "condition": readable(rule.when, decision),
                       "cases": fired_by.get(rule.qualified_id, [])} for rule in decision.rules],
        })
    return page("rules.html", domain=loaded, decisions=decisions, default_text=default_text,
                expression_text=expression_text, is_assumption=_is_assumption, to_text=to_text)


def _is_assumption(note: str) -> bool:
    return "ASSUMPTION" in note.upper()


@blueprint.get("/calendar")
def calendar():
    this_year = to_shanghai(datetime.now(UTC)).year
    year = request.args.get("year", type=int, default=this_year)
    if not MIN_YEAR <= year <= MAX_YEAR:
        abort(400)
    book = rulebook()
    return page("calendar.html", view=year_view(book.calendar, year), covered=sorted(book.calendar.years))


# --- language and sign-in ---------------------------------------------------------------------------

@blueprint.get("/lang/<code>")
def switch_language(code: str) -> Response:
    if code not in i18n.LANGUAGES:
        abort(404)
    response = redirect(safe_next(request.args.get("next")))
    response.set_cookie(i18n.COOKIE, code, max_age=i18n.COOKIE_MAX_AGE, path=PREFIX, samesite="Lax", httponly=True,
                        secure=request.is_secure)
    return response


@blueprint.get("/login")
def login():
    return page("login.html", next=safe_next(request.args.get("next")), wrong=False)


@blueprint.post("/login")
def login_submit():
    target = safe_next(request.form.get("next"))
    if not security.sign_in_enabled():
        return page("login.html", 403, next=target, wrong=False)
    if not security.sign_in(request.form.get("token", "")):
        return page("login.html", 401, next=target, wrong=True)
    flash(i18n.t("auth.done" if security.is_admin() else "auth.done_reader"))
    return redirect(target)


@blueprint.post("/logout")
def logout() -> Response:
    security.sign_out()
    flash(i18n.t("auth.out"))
    return redirect(url_for("console.index"))


@blueprint.route("/<path:rest>")
def unknown(rest: str):
    abort(404)
