"""The Try page: a decision's facts as a form, the decision with its trace, errors at their fields.

A try is a plain evaluation, exactly what ``POST /v1/decisions/<decision>`` with ``explain`` does:
it reads counters from the store but never commits, counts or records, so it needs no token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import request

from engine import InvalidFacts
from engine.runtime.evaluation import CompiledDecision
from engine.runtime.values import parse_instant
from engine.state import StoreUnavailable

from . import i18n
from .blueprint import blueprint, compiled_decision, page, rulebook, service, suites
from .facts_form import Widget, apply_list_change, default_text, form_fields, read_form
from .suites import ShippedCase

EMPTY = "empty"
EXAMPLE = "example"


@dataclass
class Prefill:
    key: str  # "example", "empty" or "case:<file>:<index>"
    label: str
    facts: dict[str, Any]
    now: str
    case: ShippedCase | None = None


def prefills(compiled: CompiledDecision) -> list[Prefill]:
    """Where the form can start from: the decision's example file, each shipped case, nothing."""
    found = []
    example = suites().example(compiled.name)
    if example is not None:
        found.append(Prefill(EXAMPLE, i18n.t("try.prefill_example", file=f"examples/{suites().example_name(compiled.name)}"),
                             example, ""))
    for case in suites().cases(rulebook(), compiled.name):
        found.append(Prefill(f"case:{case.file}:{case.index}", i18n.t("try.prefill_case", file=case.file, case=case.name),
                             case.facts, case.now or "", case))
    found.append(Prefill(EMPTY, i18n.t("try.prefill_empty"), {}, ""))
    return found


@blueprint.get("/try/<decision>")
def try_decision(decision: str):
    compiled = compiled_decision(decision)
    options = prefills(compiled)
    wanted = request.args.get("from")
    chosen = next((option for option in options if option.key == wanted), options[0])
    widgets = form_fields(compiled.decision.facts, chosen.facts, {}, compiled.decision.enum_labels)
    return _page(compiled, options, chosen.key, widgets, now=chosen.now, chosen=chosen)


@blueprint.post("/try/<decision>")
def try_submit(decision: str):
    compiled = compiled_decision(decision)
    specs = compiled.decision.facts
    posted = read_form(specs, request.form)
    now_text = request.form.get("now", "").strip()
    change = request.form.get("change", "")
    options = prefills(compiled)
    source = request.form.get("from", EMPTY)
    if change:  # add or remove an item of a list: show the form again, decide nothing
        apply_list_change(posted.shown, specs, change)
        widgets = form_fields(specs, posted.shown, {}, compiled.decision.enum_labels, posted.excluded)
        return _page(compiled, options, source, widgets, now=now_text)
    errors: dict[str, list[str]] = {}
    result: dict[str, Any] | None = None
    store_error = ""
    now = None
    if now_text:
        try:
            now = parse_instant(now_text)
        except ValueError as error:
            errors["now"] = [str(error)]
    try:
        # Counters as a plain API evaluation reads them: from the store, only when a rule needs one.
        result = compiled.evaluate(posted.facts, now=now, explain=True, counters=service().counters())
    except InvalidFacts as error:
        errors.update(error.fields)
    except StoreUnavailable as error:
        store_error = str(error)
    if errors:
        result = None
    widgets = form_fields(specs, posted.shown, errors, compiled.decision.enum_labels, posted.excluded)
    placed = _paths(widgets) | {"now"}
    return _page(compiled, options, source, widgets, now=now_text, result=result, errors=errors,
                 unplaced={path: messages for path, messages in errors.items() if path not in placed},
                 facts_json=json.dumps(posted.facts, ensure_ascii=False, indent=2), store_error=store_error,
                 status=400 if errors else 200)


def _paths(widgets: list[Widget]) -> set[str]:
    paths = set()
    for widget in widgets:
        paths.add(widget.path)
        paths |= _paths(widget.children)
        for item in widget.items:
            paths |= _paths(item)
    return paths


def _page(compiled: CompiledDecision, options: list[Prefill], source: str, widgets: list[Widget], *, now: str,
          chosen: Prefill | None = None, result: dict[str, Any] | None = None, errors: dict[str, list[str]] | None = None,
          unplaced: dict[str, list[str]] | None = None, facts_json: str = "", store_error: str = "", status: int = 200):
    decided = {reason["rule"] for reason in result["reasons"]} if result else set()
    return page("try.html", status, compiled=compiled, decision=compiled.decision, options=options, source=source,
                widgets=widgets, now=now, chosen=chosen, result=result, errors=errors or {}, unplaced=unplaced or {},
                facts_json=facts_json, store_error=store_error, decided=decided, default_text=default_text,
                domain=compiled.domain)
