"""A rules directory, loaded, validated and compiled as one unit: all of it activates or none of it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .calendar import CALENDAR_DIR, Calendar, load_calendar
from .counters import CounterSource
from .errors import Problem, RuleFileError, UnknownDecision
from .evaluation import CompiledDecision
from .loader import load_rule_file
from .model import Domain

RULE_FILE_SUFFIXES = (".yaml", ".yml")


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The rule files named by ``paths``: files as given, directories' ``*.yaml`` (not sub-folders)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix in RULE_FILE_SUFFIXES))
        else:
            files.append(path)
    return files


@dataclass
class Rulebook:
    """Every active domain and decision. Immutable once built, so it can be swapped atomically."""

    domains: dict[str, Domain] = field(default_factory=dict)
    decisions: dict[str, CompiledDecision] = field(default_factory=dict)
    calendar: Calendar = field(default_factory=Calendar)

    @property
    def version(self) -> str:
        return ",".join(f"{name}={domain.version}" for name, domain in sorted(self.domains.items()))

    def decision(self, name: str) -> CompiledDecision:
        try:
            return self.decisions[name]
        except KeyError:
            raise UnknownDecision(name, list(self.decisions)) from None

    def decide(self, name: str, facts: Any, *, now: datetime | None = None, explain: bool = False,
               counters: CounterSource | None = None) -> dict[str, Any]:
        """Evaluate decision ``name`` (``DOMAIN.NAME``) for ``facts``. See :meth:`CompiledDecision.evaluate`."""
        return self.decision(name).evaluate(facts, now=now, explain=explain, counters=counters)


def check(paths: Iterable[str | Path], *, require_partitions: bool = False) -> tuple[list[Domain], list[Problem]]:
    """Validate rule files and their calendars without activating anything."""
    domains, _, problems = _load(list(paths), require_partitions)
    return domains, problems


def load_rulebook(paths: Iterable[str | Path], *, require_partitions: bool = False) -> Rulebook:
    """Load, validate and compile; raise :class:`RuleFileError` listing every problem if any.

    ``require_partitions``: every decision must declare a ``partition`` (a Redis Cluster store).
    """
    domains, calendar, problems = _load(list(paths), require_partitions)
    if problems:
        raise RuleFileError(problems)
    rulebook = Rulebook(calendar=calendar)
    for domain in domains:
        rulebook.domains[domain.name] = domain
        for decision in domain.decisions.values():
            rulebook.decisions[decision.name] = CompiledDecision(decision, domain, calendar)
    return rulebook


def calendar_directory(paths: list[str | Path]) -> Path:
    """``calendars/`` beside the rule files (in the rules directory, or the folder of a rule file)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            return path / CALENDAR_DIR if path.name != CALENDAR_DIR else path
        if path.parent.name == CALENDAR_DIR:
            return path.parent
        return path.parent / CALENDAR_DIR
    return Path(CALENDAR_DIR)


def _load(paths: list[str | Path], require_partitions: bool = False) -> tuple[list[Domain], Calendar, list[Problem]]:
    calendar, problems = load_calendar(calendar_directory(paths))
    domains: list[Domain] = []
    first_file: dict[str, str] = {}
    loaded_at = datetime.now(UTC)
    files = [path for path in rule_files(paths) if path.parent.name != CALENDAR_DIR]
    if not files and not any(Path(path).parent.name == CALENDAR_DIR for path in paths):
        problems.append(Problem(str(paths[0] if paths else "."), 1, 1, "no rule files (*.yaml) found"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(str(path), 1, 1, f"cannot read rule file: {error}"))
            continue
        domain, file_problems = load_rule_file(str(path), text, loaded_at=loaded_at,
                                               require_partition=require_partitions)
        problems.extend(file_problems)
        if domain is None:
            continue
        if domain.name in first_file:
            problems.append(Problem(str(path), 1, 1, f"domain {domain.name!r} is already defined in {first_file[domain.name]}"))
            continue
        if domain.uses_calendar and calendar.version:
            domain.version = "sha256:" + hashlib.sha256(f"{domain.version}+{calendar.version}".encode()).hexdigest()
        first_file[domain.name] = str(path)
        domains.append(domain)
    return domains, calendar, sorted(set(problems))
