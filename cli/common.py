"""What the ``rulesvc`` commands share: printing JSON, reading instants, loading rules or saying why not."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from engine import Rulebook, RuleFileError, load_rulebook
from engine.runtime.values import parse_instant

DEFAULT_RULES = "rules"
# Threads per gunicorn worker: one may run a heavy request (scenarios, validation) while the others answer.
DEFAULT_THREADS = 4


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def instant_option(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A click callback: the option's RFC 3339 instant, or a usage error that says what is wrong."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def rules_or_exit(paths: list[str | Path], code: int = 1, *, require_partitions: bool = False) -> Rulebook:
    """The rulebook, or every problem on standard error and exit with ``code``."""
    try:
        return load_rulebook(paths, require_partitions=require_partitions)
    except RuleFileError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(error.problems)} problem(s) in {', '.join(map(str, paths))}", err=True)
        sys.exit(code)
