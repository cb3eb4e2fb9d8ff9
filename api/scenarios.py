"""``/v1/scenarios/run``: QA's scenario runner over HTTP, against the active rules (fresh stores)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from engine import tester
from engine.limits import SCENARIO_SECONDS, SCENARIO_STEPS, Budget

from .auth import qa_required
from .bodies import yaml_text
from .errors import error_body
from .limits import heavy_run

blueprint = Blueprint("scenarios", __name__, url_prefix="/v1/scenarios")


@blueprint.post("/run")
@qa_required
def run_scenarios():
    name = request.args.get("file", "scenario.yaml")
    text, problem = yaml_text(name)  # a GBK upload: "save it as UTF-8"
    if text is None:
        report = tester.Report(problems=[problem])
    else:
        with heavy_run(Budget("scenario run", count=SCENARIO_STEPS, seconds=SCENARIO_SECONDS)):
            report = tester.run_text(name, text, current_app.extensions["rulesvc"].rulebook)
    if report.problems:
        return jsonify(error_body("INVALID_SCENARIO", "the scenario file has problems",
                                  problems=[str(problem) for problem in report.problems])), 400
    exercised = {rule for result in report.results for rule in result.fired | result.not_fired}
    return jsonify({
        "summary": report.summary(), "passed": report.passed, "failed": report.failed,
        "results": [{"case": r.case, "line": r.line, "passed": r.passed, "failures": r.failures,
                     "report": None if r.passed else r.describe()} for r in report.results],
        "coverage": {rule: {"fired": fired, "not_fired": not_fired}
                     for rule, (fired, not_fired) in report.coverage.items() if rule in exercised},
    })
