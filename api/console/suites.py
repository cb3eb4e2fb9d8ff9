"""What ships beside the rules: example facts (``examples/``) and QA scenario files (``tests/scenarios/``).

The console prefills the Try form from them, runs them on the Scenarios page, and links each rule to
the shipped cases that make it fire. Parsing and the fired-rules index are kept per rules version
and per state of the scenario files, so a page view costs a dictionary lookup once they are built.
Files are named to the browser by their name in the folder, never by a path the browser chooses.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import Rulebook
from engine.runtime.values import to_output
from engine.tester import Report, ScenarioFile, load_scenario_file, run, scenario_files


@dataclass(frozen=True)
class ShippedCase:
    """One case of a shipped scenario file, as the Try form can show it (its first step)."""

    file: str  # name in the scenarios folder: "payout-initiate.yaml"
    index: int
    name: str
    line: int
    decision: str
    facts: dict[str, Any]
    now: str | None
    steps: int


class Suites:
    def __init__(self, examples_dir: Path, scenarios_dir: Path):
        self.examples_dir = examples_dir
        self.scenarios_dir = scenarios_dir
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._parsed: dict[str, ScenarioFile] = {}
        self._fired_by: dict[str, list[ShippedCase]] | None = None

    # --- examples --------------------------------------------------------------------------------

    def example_name(self, decision: str) -> str:
        """``payout.initiate`` → ``payout-initiate.json``."""
        return decision.replace(".", "-").replace("_", "-") + ".json"

    def example(self, decision: str) -> dict[str, Any] | None:
        """The example facts of ``decision``, or None when there is none (or it is not a JSON object)."""
        try:
            facts = json.loads((self.examples_dir / self.example_name(decision)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return facts if isinstance(facts, dict) else None

    # --- scenario files ----------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The scenario files, written by hand first: a rule's link opens a case a person wrote when
        there is one, before the cases rulesvc test --generate wrote (in generated/)."""
        if not self.scenarios_dir.is_dir():
            return []
        return sorted(scenario_files([self.scenarios_dir]),
                      key=lambda path: ("generated" in path.relative_to(self.scenarios_dir).parts[:-1], str(path)))

    def file_names(self, *, generated: bool = True) -> list[str]:
        """The files' names; ``generated=False``: only those written by hand (not in generated/)."""
        return [self._name(path) for path in self.files()
                if generated or "generated" not in path.relative_to(self.scenarios_dir).parts[:-1]]

    def parsed(self, rulebook: Rulebook) -> dict[str, ScenarioFile]:
        """Every shipped scenario file that loads cleanly against ``rulebook``, by name."""
        with self._lock:
            self._refresh(rulebook)
            return self._parsed

    def cases(self, rulebook: Rulebook, decision: str) -> list[ShippedCase]:
        return [case for name, scenario in self.parsed(rulebook).items() if scenario.decision == decision
                for case in self._cases(name, scenario)]

    def case(self, rulebook: Rulebook, file: str, index: int) -> ShippedCase | None:
        scenario = self.parsed(rulebook).get(file)
        if scenario is None or not 0 <= index < len(scenario.cases):
            return None
        return self._cases(file, scenario)[index]

    def fired_by(self, rulebook: Rulebook) -> dict[str, list[ShippedCase]]:
        """For each rule (``payout.initiate/amount-limit``), the shipped cases in which it fired."""
        with self._lock:
            self._refresh(rulebook)
            if self._fired_by is None:
                index: dict[str, list[ShippedCase]] = {}
                report = run(self.files(), rulebook)
                cases = {(case.file, case.line): case for name, scenario in self._parsed.items()
                         for case in self._cases(name, scenario)}
                for result in report.results:
                    case = cases.get((self._name(Path(result.file)), result.line))
                    for rule in sorted(result.fired) if case else ():
                        index.setdefault(rule, []).append(case)
                self._fired_by = index
            return self._fired_by

    def run(self, rulebook: Rulebook, names: list[str]) -> Report:
        """Run the shipped files called ``names`` (unknown names are ignored)."""
        chosen = [path for path in self.files() if self._name(path) in set(names)]
        return run(chosen, rulebook)

    def display_name(self, file: str) -> str:
        """A result's file as the page shows it: its name in the scenarios folder when it is one."""
        path = Path(file)
        try:
            return str(path.relative_to(self.scenarios_dir))
        except ValueError:
            return file

    def _name(self, path: Path) -> str:
        return str(path.relative_to(self.scenarios_dir))

    def _refresh(self, rulebook: Rulebook) -> None:
        """Parse again when the rules or any scenario file changed (caller holds the lock)."""
        files = self.files()
        key = (rulebook.version, tuple((str(path), *_stat(path)) for path in files))
        if key == self._key:
            return
        parsed = {}
        for path in files:
            try:
                scenario, _ = load_scenario_file(str(path), path.read_text(encoding="utf-8"), rulebook)
            except (OSError, UnicodeDecodeError):
                continue
            if scenario is not None:
                parsed[self._name(path)] = scenario
        self._key, self._parsed, self._fired_by = key, parsed, None

    @staticmethod
    def _cases(name: str, scenario: ScenarioFile) -> list[ShippedCase]:
        return [ShippedCase(file=name, index=index, name=case.name, line=case.line, decision=scenario.decision,
                            facts=case.steps[0].facts, now=to_output(case.steps[0].now), steps=len(case.steps))
                for index, case in enumerate(scenario.cases)]


def _stat(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)
