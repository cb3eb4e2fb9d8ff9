"""Finishing a change in the console (SPEC §12.1): make a draft (an upload, edited text, or a form that
changes one constant or table cell), read its review on one page, approve, publish with a reason,
and roll back from the versions page. The work is the API's and the engine's
(:func:`api.publishing.make_draft`, :class:`engine.bundle.publisher.Publisher`); these views only
translate forms and pages. Everything here needs an admin session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, request, url_for
from marshmallow import ValidationError

from engine import Problem, RuleFileError
from engine.bundle.publisher import ChangeRefused
from engine.language.edit import EditableValue, EditError, editable_values, find_editable, replace_value

from ..auth import admin_name
from ..publishing import make_draft
from ..schemas import REASON, RULE_FILE_NAME
from . import i18n
from .blueprint import blueprint, not_found, page, rulebook, service
from .runs import annotated, posted_text, transition_bars
from .security import admin_required

MAX_REASON = 2000


def _publisher() -> Any:
    publisher = service().publisher
    if publisher is None:
        raise not_found("drafts")
    return publisher


# --- drafts ------------------------------------------------------------------------------------------

@blueprint.get("/drafts")
@admin_required
def drafts():
    book = rulebook()
    files = sorted(os.path.basename(domain.file) for domain in book.domains.values())
    return page("drafts.html", drafts=_publisher().store.drafts(), files=files, domains=sorted(book.domains),
                text="", name="")


@blueprint.post("/drafts")
@admin_required
def draft_from_text():
    """A draft from an uploaded file or pasted text, named as the select says (or as its domain's file)."""
    text, name = posted_text("text", "upload", "name", "rules.yaml")
    book = rulebook()
    message = i18n.t("val.empty") if not text.strip() else None
    if message is None and not _passes(RULE_FILE_NAME, name):
        message = i18n.t("chg.bad_name", name=name)
    if message is not None:
        files = sorted(os.path.basename(domain.file) for domain in book.domains.values())
        return page("drafts.html", 400, drafts=_publisher().store.drafts(), files=files, domains=sorted(book.domains),
                    text=text, name=name, message=message)
    draft = make_draft(name, text, admin_name())
    return redirect(url_for("console.draft", draft_id=draft.draft_id))


@blueprint.get("/drafts/edit/<domain>")
@admin_required
def draft_form(domain: str):
    return _edit_page(domain)


@blueprint.post("/drafts/edit/<domain>")
@admin_required
def draft_form_submit(domain: str):
    """A draft that changes one value of the live file: the value is checked against its type first, and a
    wrong one is refused in its field (nothing is drafted)."""
    live = rulebook().domains.get(domain)
    if live is None:
        raise not_found(domain)
    target, raw = request.form.get("target", ""), request.form.get("value", "")
    try:
        editable = find_editable(live, target)
        text = replace_value(live.text, editable, raw)
    except (ValueError, EditError) as error:
        return _edit_page(domain, status=400, errors={target: i18n.field_message(str(error))}, entered={target: raw})
    draft = make_draft(os.path.basename(live.file), text, admin_name())
    return redirect(url_for("console.draft", draft_id=draft.draft_id))


def _edit_page(domain: str, status: int = 200, errors: dict[str, str] | None = None,
               entered: dict[str, str] | None = None) -> Any:
    live = rulebook().domains.get(domain)
    if live is None:
        raise not_found(domain)
    return page("draft_edit.html", status, domain=live, values=editable_values(live), errors=errors or {},
                entered=entered or {}, shown=shown_value)


def shown_value(editable: EditableValue) -> str:
    """A value as the form shows it and takes it back: ``21:00``, ``500.00``, ``a, b``."""
    value = editable.value
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if editable.kind.kind == "time" and text.endswith(":00") and len(text) == 8:
        return text[:5]
    return text


# --- review ------------------------------------------------------------------------------------------

@dataclass
class DiffLine:
    kind: str  # constant | cell | table | rule | fact | message | decision
    name: str
    old: Any
    new: Any
    read_by: list[str]


def diff_lines(diff: dict[str, Any] | None) -> list[DiffLine]:
    """The semantic diff as one line per change a person made: a constant, a table cell, a rule's aspect."""
    lines: list[DiffLine] = []
    for domain in (diff or {}).get("domains", []):
        if domain.get("status") in ("added", "removed"):  # a whole file: its decisions by name
            decisions = ", ".join(str(name) for name in domain.get("decisions", []))
            lines.append(DiffLine(f"domain {domain['status']}", domain["domain"],
                                  decisions if domain["status"] == "removed" else None,
                                  decisions if domain["status"] == "added" else None, []))
            continue
        constants = domain.get("constants") or {}
        for entry in constants.get("changed", []):
            for aspect, change in entry["changes"].items():
                lines.append(DiffLine("constant" if aspect == "value" else f"constant {aspect}", entry["name"],
                                      change["old"], change["new"], entry.get("read_by", [])))
        for kind in ("added", "removed"):
            for entry in constants.get(kind, []):
                lines.append(DiffLine(f"constant {kind}", entry["name"], None if kind == "added" else entry.get("value"),
                                      entry.get("value") if kind == "added" else None, []))
        for entry in (domain.get("tables") or {}).get("changed", []):
            rows = entry["changes"].get("rows")
            if rows:
                for row in sorted(set(rows["old"]) | set(rows["new"])):
                    before, after = rows["old"].get(row, {}), rows["new"].get(row, {})
                    for column in sorted(set(before) | set(after)):
                        if before.get(column) != after.get(column):
                            lines.append(DiffLine("cell", f"{entry['name']}[{row}].{column}", before.get(column),
                                                  after.get(column), entry.get("read_by", [])))
            for aspect, change in entry["changes"].items():
                if aspect != "rows":
                    lines.append(DiffLine(f"table {aspect}", entry["name"], change["old"], change["new"], []))
        for entry in (domain.get("messages") or {}).get("changed", []):
            for language, change in entry["changes"].items():
                lines.append(DiffLine(f"message {language}", entry["code"], change["old"], change["new"], []))
        for decision in domain.get("decisions", []):
            rules = decision.get("rules", {})
            for entry in rules.get("added", []):
                lines.append(DiffLine("rule added", entry["rule"], None, f"{entry['effect']} {entry['code'] or ''} "
                                      f"when {entry['when']}", []))
            for entry in rules.get("removed", []):
                lines.append(DiffLine("rule removed", entry["rule"], f"{entry['effect']} {entry['code'] or ''} "
                                      f"when {entry['when']}", None, []))
            for entry in rules.get("changed", []):
                for aspect, change in entry["changes"].items():
                    lines.append(DiffLine(f"rule {aspect}", entry["rule"], change["old"], change["new"], []))
            for section in ("facts", "derived", "counters"):
                for kind in ("added", "removed", "changed"):
                    for entry in decision.get(section, {}).get(kind, []):
                        name = entry.get("fact") or entry.get("value") or entry.get("counter") or ""
                        lines.append(DiffLine(f"{section} {kind}", f"{decision['decision']}: {name}", None, None, []))
    return lines


@blueprint.get("/drafts/<draft_id>")
@admin_required
def draft(draft_id: str):
    return _review_page(draft_id)


def _review_page(draft_id: str, status: int = 200, message: str | None = None, reason: str = "") -> Any:
    publisher = _publisher()
    try:
        found = publisher.draft(draft_id)
    except ChangeRefused:
        raise not_found(draft_id) from None
    review = found.review
    problems = [Problem(p["file"], p["line"], p["column"], p["message"]) for p in review.get("problems") or []]
    impact = review.get("impact")
    report = impact if isinstance(impact, dict) and "unavailable" not in impact else None
    live = rulebook().domains.get(found.domain or "")
    stale = found.status == "open" and (live.version if live else None) != found.base_version
    return page("draft.html", status, draft=found, problems=problems,
                lines=annotated(found.text, problems) if problems else [], diff=diff_lines(review.get("diff")),
                report=report, impact_unavailable=(impact or {}).get("unavailable") if isinstance(impact, dict) else None,
                bars=transition_bars(report) if report else [], scenarios=review.get("scenarios") or {},
                verify_unavailable=(review.get("verify") or {}).get("unavailable"),
                proofs=review.get("verify") if isinstance(review.get("verify"), dict)
                and "decisions" in review.get("verify", {}) else None,
                approvals_needed=publisher.approvals, stale=stale, message=message, reason=reason,
                me=admin_name(), kind_text=kind_text)


def kind_text(kind: str) -> str:
    """What changed, or how a version came to be, in the page's language (``constant`` → 常量)."""
    key = f"chg.kind.{kind}"
    return i18n.t(key) if i18n.has_text(key) else kind


@blueprint.post("/drafts/<draft_id>/approve")
@admin_required
def draft_approve(draft_id: str):
    try:
        _publisher().approve(draft_id, admin_name())
    except ChangeRefused as error:
        return _review_page(draft_id, 409, message=_refusal(error))
    flash(i18n.t("chg.approved"))
    return redirect(url_for("console.draft", draft_id=draft_id))


@blueprint.post("/drafts/<draft_id>/publish")
@admin_required
def draft_publish(draft_id: str):
    reason = request.form.get("reason", "").strip()[:MAX_REASON]
    if not _passes(REASON, reason):
        return _review_page(draft_id, 400, message=i18n.t("chg.reason_needed"), reason=reason)
    publisher = _publisher()
    try:
        publication = service().put_live(lambda active: publisher.publish(active, draft_id, admin_name(), reason))
    except ChangeRefused as error:
        return _review_page(draft_id, error.status, message=_refusal(error), reason=reason)
    except RuleFileError as error:
        return _review_page(draft_id, 422, message=i18n.t("chg.invalid", problems="; ".join(map(str, error.problems))),
                            reason=reason)
    flash(i18n.t("chg.published", domain=publication.domain, version=publication.version[:19]))
    return redirect(url_for("console.versions"))


def _passes(validator: Any, value: str) -> bool:
    """Whether ``value`` passes one of the API's field validators (the same rule, not a copy of it)."""
    try:
        validator(value)
    except ValidationError:
        return False
    return True


def _refusal(error: ChangeRefused) -> str:
    key = f"chg.refused.{error.code}"
    return i18n.t(key) if i18n.has_text(key) else str(error)


# --- versions -------------------------------------------------------------------------------------------

@blueprint.get("/versions")
@admin_required
def versions():
    return _versions_page()


def _versions_page(status: int = 200, message: str | None = None) -> Any:
    book = rulebook()
    live = {domain.version for domain in book.domains.values()}
    publications = _publisher().store.publications()
    by_domain: dict[str, list[Any]] = {}
    for publication in publications:
        by_domain.setdefault(publication.domain, []).append(publication)
    return page("versions.html", status, by_domain=sorted(by_domain.items()), live=live, message=message,
                kind_text=kind_text)


@blueprint.post("/versions/rollback")
@admin_required
def rollback():
    domain, version = request.form.get("domain", ""), request.form.get("version", "")
    reason = request.form.get("reason", "").strip()[:MAX_REASON]
    if not _passes(REASON, reason):
        return _versions_page(400, message=i18n.t("chg.reason_needed"))
    state, publisher = service(), _publisher()
    try:
        publication = state.put_live(lambda active: publisher.rollback(active, domain, version, admin_name(), reason,
                                                                        state.kept_version_text))
    except ChangeRefused as error:
        return _versions_page(error.status, message=_refusal(error))
    except RuleFileError as error:
        return _versions_page(422, message=i18n.t("chg.invalid", problems="; ".join(map(str, error.problems))))
    flash(i18n.t("chg.rolled_back", domain=publication.domain, version=publication.version[:19]))
    return redirect(url_for("console.versions"))
