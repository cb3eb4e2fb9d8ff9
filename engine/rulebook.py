"""A rules directory, loaded, validated and compiled as one unit: all of it activates or none of it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import durable_rules_engine

from engine.errors import MatcherError, Problem, RuleFileError, UnknownDecision
from engine.language.loader import load_rule_file
from engine.language.model import Decision, Domain
from engine.language.source import read_source
from engine.runtime.calendar import CALENDAR_DIR, Calendar, load_calendar
from engine.runtime.evaluation import CompiledDecision
from engine.state.counters import CounterSource

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

    def files(self) -> dict[str, str]:
        """The text of every file this rulebook was loaded from, by name relative to its rules
        directory (``payout.yaml``, ``calendars/cn-2026.yaml``): enough to load it again anywhere."""
        files = {os.path.basename(domain.file): domain.text for domain in self.domains.values()}
        files.update({f"{CALENDAR_DIR}/{name}": text for name, text in self.calendar.texts.items()})
        return files

    def domain_files(self, domain: Domain) -> dict[str, str]:
        """The files a domain's version covers: its rule file, and the calendars if it counts working days."""
        files = {os.path.basename(domain.file): domain.text}
        if domain.uses_calendar:
            files.update({f"{CALENDAR_DIR}/{name}": text for name, text in self.calendar.texts.items()})
        return files

    def decide(self, name: str, facts: Any, *, now: datetime | None = None, explain: bool = False,
               counters: CounterSource | None = None) -> dict[str, Any]:
        """Evaluate decision ``name`` (``DOMAIN.NAME``) for ``facts``. See :meth:`CompiledDecision.evaluate`."""
        return self.decision(name).evaluate(facts, now=now, explain=explain, counters=counters)


def check(paths: Iterable[str | Path], *, require_partitions: bool = False) -> tuple[list[Domain], list[Problem]]:
    """Validate rule files and their calendars without activating anything."""
    domains, _, problems = _load(list(paths), require_partitions)
    return domains, problems


def load_rulebook(paths: Iterable[str | Path], *, require_partitions: bool = False,
                  display: Callable[[Path], str] | None = None) -> Rulebook:
    """Load, validate and compile; raise :class:`RuleFileError` listing every problem if any.

    ``require_partitions``: every decision must declare a ``partition`` (a Redis Cluster store).
    ``display``: the name a rule file goes by in problems and positions (default: its path).
    """
    domains, calendar, problems = _load(list(paths), require_partitions, display)
    if problems:
        raise RuleFileError(problems)
    rulebook = Rulebook(calendar=calendar)
    for domain in domains:
        rulebook.domains[domain.name] = domain
        for decision in domain.decisions.values():
            rulebook.decisions[decision.name] = _activated(decision, domain, calendar)
    return rulebook


def _activated(decision: Decision, domain: Domain, calendar: Calendar) -> CompiledDecision:
    """The compiled decision; an engine refusal validation did not foresee (a full handle table, a limit
    not known) is still the decision's ``FILE:LINE:COL`` problem, never a traceback or a 500."""
    try:
        return CompiledDecision(decision, domain, calendar)
    except (durable_rules_engine.error, MatcherError) as error:
        line, column = decision.position
        raise RuleFileError([Problem(domain.file, line, column,
                                     f"durable_rules cannot activate {decision.name}: {error}")]) from None


def rules_signature(rules_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a rule or calendar file of ``rules_dir`` is edited, added or removed."""
    files = [*rules_dir.glob("*.yaml"), *rules_dir.glob("*.yml"), *(rules_dir / CALENDAR_DIR).glob("*.yaml")]
    signature = []
    for path in sorted(files):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        signature.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


def read_rule_files(directory: str | Path) -> dict[str, str]:
    """The rule and calendar files of a rules directory as ``{relative name: text}`` (see :meth:`Rulebook.files`);
    :class:`RuleFileError` when one cannot be read."""
    root = Path(directory)
    calendars = root / CALENDAR_DIR
    paths = {path.name: path for path in rule_files([root])}
    if calendars.is_dir():
        paths.update({f"{CALENDAR_DIR}/{path.name}": path for path in sorted(calendars.glob("*.yaml"))})
    files, problems = {}, []
    for name, path in paths.items():
        text, problem = read_source(path)  # bounded, like every read of a rule file
        if text is None:
            problems.append(problem)
        else:
            files[name] = text
    if problems:
        raise RuleFileError(problems)
    return files


def rulebook_from_files(files: dict[str, str], display_dir: str = "", *, require_partitions: bool = False) -> Rulebook:
    """Load a rulebook from file texts (:meth:`Rulebook.files`, a kept ruleset version, a candidate).

    Problems name the files as ``display_dir/NAME``; raises :class:`RuleFileError` like :func:`load_rulebook`.
    """
    with tempfile.TemporaryDirectory(prefix="rulesvc-rules-") as directory:
        root = Path(directory)

        def shown(path: Path) -> str:
            return os.path.join(display_dir, os.path.relpath(path, root))

        for name, text in files.items():
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise RuleFileError([Problem(name, 1, 1, "a rule file name must be relative, without '..'")])
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        (root / CALENDAR_DIR).mkdir(exist_ok=True)
        try:
            # loaded under its own name, so problems and every position inside (rulesvc verify's) say it
            rulebook = load_rulebook([root], require_partitions=require_partitions, display=shown)
        except RuleFileError as error:
            raise RuleFileError([Problem(shown(Path(problem.file)) if Path(problem.file).is_relative_to(root)
                                         else problem.file, problem.line, problem.column, problem.message)
                                 for problem in error.problems]) from None
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


def _load(paths: list[str | Path], require_partitions: bool = False,
          display: Callable[[Path], str] | None = None) -> tuple[list[Domain], Calendar, list[Problem]]:
    calendar, problems = load_calendar(calendar_directory(paths))
    domains: list[Domain] = []
    first_file: dict[str, str] = {}
    loaded_at = datetime.now(UTC)
    files = [path for path in rule_files(paths) if path.parent.name != CALENDAR_DIR]
    if not files and not any(Path(path).parent.name == CALENDAR_DIR for path in paths):
        problems.append(Problem(str(paths[0] if paths else "."), 1, 1, "no rule files (*.yaml) found"))
    for path in files:
        text, problem = read_source(path)
        if text is None:
            problems.append(problem)
            continue
        name = display(path) if display else str(path)
        domain, file_problems = load_rule_file(name, text, loaded_at=loaded_at,
                                               require_partition=require_partitions)
        problems.extend(file_problems)
        if domain is None:
            continue
        if domain.name in first_file:
            problems.append(Problem(name, 1, 1, f"domain {domain.name!r} is already defined in {first_file[domain.name]}"))
            continue
        if domain.uses_calendar and calendar.version:
            domain.version = "sha256:" + hashlib.sha256(f"{domain.version}+{calendar.version}".encode()).hexdigest()
        first_file[domain.name] = name
        domains.append(domain)
    return domains, calendar, sorted(set(problems))
