"""``rulesvc verify``: proofs about the rules (SPEC §13)."""

from __future__ import annotations

import sys

import click

from engine.analysis.report import verify_markdown
from engine.analysis.verify import DEFAULT_TIMEOUT, exit_code, verify_rulebook

from .common import DEFAULT_RULES, print_json, rules_or_exit


@click.command("verify")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--decision", help="Only this decision, e.g. payout.initiate.")
@click.option("--format", "output", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds per decision; what is not settled by then is unknown, never proved.")
def verify_command(paths: tuple[str, ...], decision: str | None, output: str, timeout: float) -> None:
    """Prove what the rules can do to any valid request: reachable outcomes, dead and always-firing rules,
    evaluation errors and the declared invariants. Exit 0 all proved, 1 a problem, 4 something unknown,
    2 rules that do not load."""
    paths = paths or (DEFAULT_RULES,)
    rulebook = rules_or_exit(list(paths), code=2)
    if decision is not None and decision not in rulebook.decisions:
        click.echo(f"unknown decision {decision!r}; decisions: {', '.join(sorted(rulebook.decisions))}", err=True)
        sys.exit(2)
    report = verify_rulebook(rulebook, decision=decision, timeout=timeout)
    if output == "json":
        print_json(report)
    else:
        click.echo(verify_markdown(report, ", ".join(paths)), nl=False)
    sys.exit(exit_code(report["summary"]))


COMMANDS = [verify_command]
