"""``rulesvc`` commands. Each one only parses arguments, calls the engine and prints the answer."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from engine import Rulebook, RuleFileError, check, load_rulebook
from engine.calendar import CALENDAR_DIR, import_years
from engine.errors import InvalidFacts, UnknownDecision
from engine.store import DEFAULT_STORE_URL, RecordQuery, StoreUnavailable, export_csv, is_cluster, open_store
from engine.values import parse_instant

DEFAULT_RULES = "rules"
DEFAULT_SCENARIOS = "tests/scenarios"


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _rules_or_exit(rules_dir: str, require_partitions: bool = False) -> Rulebook:
    """The rulebook, or every problem on standard error and exit status 1."""
    try:
        return load_rulebook([rules_dir], require_partitions=require_partitions)
    except RuleFileError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)


def _instant_option(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """rulesvc: merchant money-flow policies in YAML, matched by durable_rules."""


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--show-compiled", is_flag=True, help="Print the durable_rules rulesets generated from each decision.")
def check_command(paths: tuple[str, ...], show_compiled: bool) -> None:
    """Validate rule files (default: rules/). Prints FILE:LINE:COL: message per problem; exit 1 if any."""
    paths = paths or (DEFAULT_RULES,)
    domains, problems = check(paths)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found; nothing was activated.", err=True)
        sys.exit(1)
    for domain in domains:
        rules = sum(len(decision.rules) for decision in domain.decisions.values())
        click.echo(f"{domain.file}: ok — domain {domain.name}, {len(domain.decisions)} decisions, "
                   f"{rules} rules, {domain.version}")
    if show_compiled:
        rulebook = load_rulebook(paths)
        _print_json({name: compiled.definition for name, compiled in sorted(rulebook.decisions.items())})


@main.command("decide")
@click.argument("decision")
@click.option("--facts", "facts_file", type=click.File("r", encoding="utf-8"), default="-", show_default=True,
              help="JSON file with the facts, or - for standard input.")
@click.option("--now", callback=_instant_option, help="Evaluate at this ISO 8601 instant (with offset).")
@click.option("--explain", is_flag=True, help="Add the trace: every rule, whether it fired, each condition's value.")
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(),
              help="Rules directory.")
def decide_command(decision: str, facts_file: Any, now: datetime | None, explain: bool, rules_dir: str) -> None:
    """Evaluate DECISION (e.g. payout.initiate) and print the decision JSON. Invalid facts: exit 2."""
    try:
        facts = json.load(facts_file)
    except json.JSONDecodeError as error:
        _print_json({"error": {"code": "INVALID_JSON", "message": f"{error.msg} at line {error.lineno} "
                                                                  f"column {error.colno}"}})
        sys.exit(2)
    except RecursionError:
        _print_json({"error": {"code": "INVALID_JSON", "message": "the JSON is nested too deeply"}})
        sys.exit(2)
    rulebook = _rules_or_exit(rules_dir)
    try:
        result = rulebook.decide(decision, facts, now=now, explain=explain)
    except InvalidFacts as error:
        _print_json({"error": {"code": "INVALID_FACTS", "fields": error.fields}})
        for path, messages in sorted(error.fields.items()):
            click.echo(f"{path}: {'; '.join(messages)}", err=True)
        sys.exit(2)
    except UnknownDecision as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    _print_json(result)


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(), help="Rules directory.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Write JUnit XML here (for CI).")
@click.option("--coverage", is_flag=True, help="Print rule coverage: per rule, cases where it fired and did not.")
@click.option("--fail-under", type=click.FloatRange(0, 100), help="Fail below this rule-coverage percentage.")
def test_command(paths: tuple[str, ...], rules_dir: str, junit_file: str | None, coverage: bool,
                 fail_under: float | None) -> None:
    """Run QA scenario files (default: tests/scenarios/) against the rules."""
    from engine import tester

    rulebook = _rules_or_exit(rules_dir)
    report = tester.run(paths or (DEFAULT_SCENARIOS,), rulebook)
    for problem in report.problems:
        click.echo(str(problem))
    for result in report.results:
        if not result.passed:
            click.echo(result.describe())
    if junit_file:
        Path(junit_file).write_text(tester.junit_xml(report), encoding="utf-8")
    if coverage or fail_under is not None:
        for line in tester.coverage_lines(report):
            click.echo(line)
    click.echo(report.summary() + (f", {len(report.problems)} problems" if report.problems else ""))
    below = fail_under is not None and report.coverage_percent < fail_under
    if below:
        click.echo(f"rule coverage {report.coverage_percent:.1f}% is below --fail-under {fail_under:g}%", err=True)
    if report.failed or report.problems or below or not report.results:
        sys.exit(1)


def _year_range(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        first, _, last = value.partition("-")
        years = int(first), int(last or first)
    except ValueError:
        raise click.BadParameter("write the years as A-B, e.g. 2024-2026") from None
    if years[0] > years[1]:
        raise click.BadParameter("the first year comes first")
    return years


@main.group("calendar")
def calendar_group() -> None:
    """The China working-day calendar under RULES/calendars/."""


@calendar_group.command("import")
@click.option("--years", required=True, callback=_year_range, help="Years to import, e.g. 2024-2026.")
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False))
def calendar_import_command(years: tuple[int, int], rules_dir: str) -> None:
    """Write one calendar file per year from the chinese-calendar package's holiday data."""
    try:
        files = import_years(*years)
    except ValueError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    directory = Path(rules_dir) / CALENDAR_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for year, text in files.items():
        path = directory / f"cn-{year}.yaml"
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")


@main.command("serve")
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(), help="Rules directory.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--store", "store_url", default=DEFAULT_STORE_URL, show_default=True,
              help="Counters and idempotency keys: sqlite:///PATH, redis://HOST:PORT/DB or "
                   "redis+cluster://HOST:PORT[,HOST:PORT…].")
@click.option("--records", "records_url", default=None,
              help="Decision records: sqlite:///PATH or postgresql://… (default: the SQLite store file).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(min=2),
              help="Threads per worker: one may run a heavy request (scenarios, validation) while the others answer.")
def serve_command(rules_dir: str, host: str, port: int, store_url: str, records_url: str | None, workers: int,
                  threads: int) -> None:
    """Serve decisions over HTTP with gunicorn."""
    from .serve import serve

    _rules_or_exit(rules_dir, is_cluster(store_url))  # refuse to start on broken rules, with their problems
    serve(rules_dir, host, port, workers, store_url, records_url, threads)


@main.command("records")
@click.option("--decision", help="Only this decision, e.g. payout.initiate.")
@click.option("--from", "start", callback=_instant_option, help="From this instant (inclusive).")
@click.option("--to", "end", callback=_instant_option, help="To this instant (exclusive).")
@click.option("--outcome", type=click.Choice(["allow", "deny", "defer", "review"]))
@click.option("--id", "decision_id", help="One decision record by its id (打款单号).")
@click.option("--order-id", help="The records of one order (订单号, 输入单号查询).")
@click.option("--store-id", help="The records of one store (店铺).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with the merchant's column names (批量导出).")
@click.option("--store", "store_url", default=DEFAULT_STORE_URL, show_default=True)
@click.option("--records", "records_url", default=None, help="Record store URL when it is not the store's.")
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(),
              help="Rules directory (for the labels of the CSV).")
def records_command(decision: str | None, start: datetime | None, end: datetime | None, outcome: str | None,
                    decision_id: str | None, order_id: str | None, store_id: str | None, as_csv: bool, store_url: str,
                    records_url: str | None, rules_dir: str) -> None:
    """Print committed decision records as JSON lines, or as CSV."""
    try:
        store = open_store(store_url, records_url)
        found = store.records(RecordQuery(decision=decision, start=start, end=end, outcome=outcome,
                                          decision_id=decision_id, order_id=order_id, store_id=store_id,
                                          limit=1_000_000))
    except StoreUnavailable as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    if not as_csv:
        for record in found:
            click.echo(json.dumps(record.as_json(), ensure_ascii=False))
        return
    try:
        rulebook = load_rulebook([rules_dir])
    except RuleFileError:
        rulebook = None

    def label(name: str, value: str | None) -> str:
        if rulebook is None or name not in rulebook.decisions:
            return value or ""
        return rulebook.decision(name).label("reason", value)

    click.echo(export_csv(found, label), nl=False)


if __name__ == "__main__":
    main()
