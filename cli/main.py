"""``rulesvc`` commands. Each one only parses arguments, calls the engine and prints the answer."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from engine import Rulebook, RuleFileError, check, load_rulebook
from engine.audit.log import DEFAULT_LOG_URL, LogUnavailable, open_log
from engine.errors import InvalidFacts, Problem, UnknownDecision
from engine.language.source import FileTooLarge, decode_source, read_capped, read_source
from engine.reference.trace import assumption_marks
from engine.runtime.calendar import CALENDAR_DIR, calendar_lines, import_years, load_calendar, package_version, package_years
from engine.runtime.values import MAX_YEAR, MIN_YEAR
from engine.state import DEFAULT_STORE_URL, RecordQuery, StoreUnavailable, export_csv, is_cluster, open_store

from . import changes, proofs, publish
from .common import DEFAULT_RULES, DEFAULT_THREADS, instant_option, print_json, rules_or_exit

DEFAULT_SCENARIOS = "tests/scenarios"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """rulesvc: merchant money-flow policies in YAML, matched by durable_rules."""


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--show-compiled", is_flag=True,
              help="Print what each decision is compiled to: its durable_rules rulesets, the names of the matched "
                   "fact's properties and the Python program generated from its declarations.")
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
        # Rules that read a constant marked ASSUMPTION: values to confirm with the platform, not its rules.
        for _, compiled in sorted(rulebook.decisions.items()):
            for rule in compiled.decision.rules:
                for mark in assumption_marks(rule.assumptions, compiled.decision.constants):
                    click.echo(f"ASSUMPTION {rule.qualified_id}: {mark['constant']} = {mark['value']} ({mark['note']})")
        print_json({name: {
            "ruleset": compiled.fast_definition,
            "fields": compiled.field_names.short,  # the fact's short property names: what each one holds
            "reference_ruleset": compiled.reference.definition,
            "program": compiled.program_source,  # the Python generated from the declarations, as it runs
        } for name, compiled in sorted(rulebook.decisions.items())})


@main.command("decide")
@click.argument("decision")
@click.option("--facts", "facts_file", default="-", show_default=True,
              help="JSON file with the facts (at most 1 MiB), or - for standard input.")
@click.option("--now", callback=instant_option, help="Evaluate at this ISO 8601 instant (with offset).")
@click.option("--explain", is_flag=True, help="Add the trace: every rule, whether it fired, each condition's value.")
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(),
              help="Rules directory.")
@click.option("--log", "log_url", is_flag=False, flag_value=DEFAULT_LOG_URL, default=None,
              help=f"Append the decision to the decision log (source cli); --log alone: {DEFAULT_LOG_URL}.")
def decide_command(decision: str, facts_file: str, now: datetime | None, explain: bool, rules_dir: str,
                   log_url: str | None) -> None:
    """Evaluate DECISION (e.g. payout.initiate) and print the decision JSON. Invalid facts or rules: exit 2."""
    text = _facts_text(facts_file)
    try:
        facts = json.loads(text)
    except json.JSONDecodeError as error:
        print_json({"error": {"code": "INVALID_JSON", "message": f"{error.msg} at line {error.lineno} "
                                                                  f"column {error.colno}"}})
        sys.exit(2)
    except RecursionError:
        print_json({"error": {"code": "INVALID_JSON", "message": "the JSON is nested too deeply"}})
        sys.exit(2)
    rulebook = rules_or_exit([rules_dir], code=2)  # rules that do not load are bad input too
    started = time.perf_counter()
    try:
        compiled = rulebook.decision(decision)
        result, evaluation = compiled.run(facts, now=now, explain=explain)
    except InvalidFacts as error:
        print_json({"error": {"code": "INVALID_FACTS", "fields": error.fields}})
        for path, messages in sorted(error.fields.items()):
            click.echo(f"{path}: {'; '.join(messages)}", err=True)
        sys.exit(2)
    except UnknownDecision as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    if log_url is not None:
        _log_cli_decision(log_url, rulebook, compiled, evaluation, result, int((time.perf_counter() - started) * 1e6))
    print_json(result)


def _facts_text(facts_file: str) -> str:
    """The facts' JSON text from a file or standard input, at most 1 MiB (the decision endpoint's maximum);
    anything else: the reason on standard error and exit 2. A pipe or FIFO is fine: it is read, bounded."""
    if facts_file == "-":
        if sys.stdin.isatty():
            click.echo("Reading the facts as JSON from the terminal: paste them and end with Ctrl-D "
                       "(or give a file: --facts examples/payout-initiate.json).", err=True)
        try:
            text, problem = decode_source("<stdin>", read_capped(sys.stdin.buffer))
        except FileTooLarge as error:
            text, problem = None, Problem("<stdin>", 1, 1, str(error))
    else:
        text, problem = read_source(facts_file, regular_only=False)
    if text is None:
        click.echo(f"--facts {problem}", err=True)
        sys.exit(2)
    return text


def _log_cli_decision(log_url: str, rulebook: Rulebook, compiled: Any, evaluation: Any, result: dict[str, Any],
                      duration_us: int) -> None:
    try:
        decision_log = open_log(log_url)
    except (ValueError, LogUnavailable) as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    if decision_log is None:
        return
    decision_log.keep_versions(rulebook)
    decision_log.record(compiled, evaluation, result=result, decision_id=result["decision_id"], source="cli",
                        duration_us=duration_us)
    decision_log.close()
    if decision_log.dropped:
        click.echo(f"the decision was not logged: {log_url} is unavailable", err=True)


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(), help="Rules directory.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Write JUnit XML here (for CI).")
@click.option("--coverage", is_flag=True, help="Print rule coverage: per rule, cases where it fired and did not.")
@click.option("--fail-under", type=click.FloatRange(0, 100), help="Fail below this rule-coverage percentage.")
@click.option("--generate", "generate_decision", metavar="DECISION",
              help="Write a scenario file for DECISION instead: every rule firing and not, every comparison at "
                   "its boundary, expectations from the engine (generated: true).")
@click.option("-o", "--output", "output_file", type=click.Path(dir_okay=False),
              help="With --generate: write the file here (default: standard output).")
def test_command(paths: tuple[str, ...], rules_dir: str, junit_file: str | None, coverage: bool,
                 fail_under: float | None, generate_decision: str | None, output_file: str | None) -> None:
    """Run QA scenario files (default: tests/scenarios/) against the rules."""
    from engine import tester

    rulebook = rules_or_exit([rules_dir])
    if generate_decision is not None:
        _generate(rulebook, generate_decision, output_file)
        return
    if output_file is not None:
        raise click.UsageError("-o/--output needs --generate")
    report = tester.run(paths or (DEFAULT_SCENARIOS,), rulebook)
    for problem in report.problems:
        click.echo(str(problem))
    for result in report.results:
        if not result.passed:
            click.echo(result.describe())
    if junit_file:
        try:  # the documented example writes into var/, which a fresh clone does not have yet
            Path(junit_file).parent.mkdir(parents=True, exist_ok=True)
            Path(junit_file).write_text(tester.junit_xml(report), encoding="utf-8")
        except OSError as error:
            click.echo(f"cannot write the JUnit report {junit_file}: {error.strerror or error}", err=True)
            sys.exit(1)
    if coverage or fail_under is not None:
        for line in tester.coverage_lines(report):
            click.echo(line)
    click.echo(report.summary() + (f", {len(report.problems)} problems" if report.problems else ""))
    below = fail_under is not None and report.coverage_percent < fail_under
    if below:
        click.echo(f"rule coverage {report.coverage_percent:.1f}% is below --fail-under {fail_under:g}%", err=True)
    if report.failed or report.problems or below or not report.results:
        sys.exit(1)


def _generate(rulebook: Rulebook, decision: str, output_file: str | None) -> None:
    import yaml

    from engine.analysis.generate import generate_cases

    if decision not in rulebook.decisions:
        click.echo(f"unknown decision {decision!r}; decisions: {', '.join(sorted(rulebook.decisions))}", err=True)
        sys.exit(2)
    scenario = generate_cases(rulebook.decision(decision))
    text = (f"# Generated by: rulesvc test --generate {decision} -o FILE — regenerate after a rule change.\n"
            + yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False, width=120))
    if output_file is None:
        click.echo(text, nl=False)
        return
    Path(output_file).parent.mkdir(parents=True, exist_ok=True)
    Path(output_file).write_text(text, encoding="utf-8")
    click.echo(f"{output_file}: {len(scenario['cases'])} cases for {decision}", err=True)


def _year_range(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
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
@click.option("--years", callback=_year_range,
              help="Years to import, e.g. 2024-2026. Default: every year the installed chinese-calendar has "
                   "after the last one in RULES/calendars/ (what a new release brings).")
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False))
def calendar_import_command(years: tuple[int, int] | None, rules_dir: str) -> None:
    """Write one calendar file per year from the chinese-calendar package's holiday data.

    An imported year is official from then on: it is no longer estimated (no CALENDAR_ESTIMATED)."""
    directory = Path(rules_dir) / CALENDAR_DIR
    if years is None:
        calendar, _ = load_calendar(directory)
        first, last = package_years()
        start = max(calendar.years, default=first - 1) + 1
        if start > last:
            click.echo(f"nothing to import: chinese-calendar {package_version()} covers {first}-{last} and "
                       f"{directory} already has {last}; later years stay estimated until a release has them "
                       "(a newer release: make lock UPGRADE=chinesecalendar)")
            return
        years = (start, last)
    try:
        files = import_years(*years)
    except ValueError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    directory.mkdir(parents=True, exist_ok=True)
    for year, text in files.items():
        path = directory / f"cn-{year}.yaml"
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")


@calendar_group.command("show")
@click.argument("year", type=click.IntRange(MIN_YEAR, MAX_YEAR))
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False))
def calendar_show_command(year: int, rules_dir: str) -> None:
    """Print YEAR's days off and make-up workdays, and whether they are official or estimated."""
    directory = Path(rules_dir) / CALENDAR_DIR
    calendar, problems = load_calendar(directory)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(1)
    for line in calendar_lines(calendar, year, directory):
        click.echo(line)


@main.command("serve")
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(), help="Rules directory.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--store", "store_url", default=DEFAULT_STORE_URL, show_default=True,
              help="Counters and idempotency keys: sqlite:///PATH, redis://HOST:PORT/DB or "
                   "redis+cluster://HOST:PORT[,HOST:PORT…].")
@click.option("--records", "records_url", default=None,
              help="Decision records: sqlite:///PATH or postgresql://… (default: the SQLite store file).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(min=2),
              help="Threads per worker: one may run a heavy request (scenarios, validation) while the others answer.")
@click.option("--log", "log_url", default=DEFAULT_LOG_URL, show_default=True,
              help="Decision log: sqlite:///PATH, postgresql://… or none.")
@click.option("--log-sample", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Log this share of the decisions (0 < R <= 1).")
@click.option("--shadow", "shadow_dir", type=click.Path(exists=True, file_okay=False),
              help="Also evaluate every logged decision on the rules in DIR, after answering; compare and log.")
@click.option("--rules-store", "rules_store_url", default=None,
              help="Keep published rule versions in sqlite:///PATH or postgresql://… (seeded from --rules); "
                   "every instance sharing it serves the newest within 5 s. Default: publish into --rules.")
def serve_command(rules_dir: str, host: str, port: int, store_url: str, records_url: str | None, workers: int,
                  threads: int, log_url: str, log_sample: float, shadow_dir: str | None,
                  rules_store_url: str | None) -> None:
    """Serve decisions over HTTP with gunicorn."""
    from api.app import publish_approvals
    from api.auth import admin_tokens
    from engine.bundle.store import RulesStore, RulesStoreUnavailable

    from .serve import bind_problem, serve

    rules_or_exit([rules_dir], require_partitions=is_cluster(store_url))  # refuse to start on broken rules
    if shadow_dir is not None and log_url == "none":
        raise click.UsageError("--shadow needs a decision log (its runs are compared and kept there); drop --log none")
    try:  # a log that cannot be opened is said here, in one line, not by a traceback from the workers
        open_log(log_url)
    except (ValueError, LogUnavailable) as error:
        raise click.UsageError(f"--log {log_url}: {error}") from None
    try:
        admin_tokens(), publish_approvals()
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if rules_store_url is not None:
        if not rules_store_url.startswith(("sqlite:///", "postgresql://")):
            raise click.UsageError(f"--rules-store {rules_store_url}: use sqlite:///PATH or postgresql://…")
        try:
            RulesStore(rules_store_url).change_marker()
        except RulesStoreUnavailable as error:
            raise click.UsageError(f"--rules-store: {error}") from None
    problem = bind_problem(host, port)
    if problem:
        click.echo(f"rulesvc serve: {problem}", err=True)
        sys.exit(1)
    serve(rules_dir, host, port, workers, store_url, records_url, threads, log_url=log_url, log_sample=log_sample,
          shadow_dir=shadow_dir, rules_store_url=rules_store_url)


@main.command("records")
@click.option("--decision", help="Only this decision, e.g. payout.initiate.")
@click.option("--from", "start", callback=instant_option, help="From this instant (inclusive).")
@click.option("--to", "end", callback=instant_option, help="To this instant (exclusive).")
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
    for url in (store_url, records_url):
        missing = _missing_sqlite_file(url)
        if missing:  # reading must not create directories and an empty database
            click.echo(f"no store at {missing}: nothing was ever committed there (give --store/--records the URL "
                       f"the service uses; `rulesvc serve` defaults to {DEFAULT_STORE_URL})", err=True)
            sys.exit(1)
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


def _missing_sqlite_file(url: str | None) -> str | None:
    """The path of an SQLite store URL whose file does not exist (None for other URLs)."""
    if not url or not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    path = url[len("sqlite:///"):]
    return None if Path(path).exists() else path


for _command in [*changes.COMMANDS, *proofs.COMMANDS, *publish.COMMANDS]:
    main.add_command(_command)


if __name__ == "__main__":
    main()
