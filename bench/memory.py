"""Resident memory of a fresh process over many in-process decisions (ours, both decisions alternating).

Run by the harness as ``python -m bench.memory --decisions N --seed S`` (cwd: the repository), so
nothing the other sections allocated is counted; prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
from itertools import cycle, islice
from typing import Any

import psutil

from engine.errors import MatcherError
from engine.rulebook import load_rulebook

from .factsets import DECISIONS, fact_sets
from .paths import RULES_DIR

MIX_SIZE = 1000
MIB = 1024 * 1024


def rss_mib(process: psutil.Process) -> float:
    gc.collect()
    return process.memory_info().rss / MIB


def measure(decisions: int, seed: int) -> dict[str, Any]:
    process = psutil.Process()
    rulebook = load_rulebook([RULES_DIR])
    mix = [fact_set for pair in zip(*(fact_sets(d, MIX_SIZE, seed) for d in DECISIONS), strict=True) for fact_set in pair]
    compiled = {decision: rulebook.decision(decision) for decision in DECISIONS}
    before = rss_mib(process)
    quarter = decisions // 4
    stream = cycle(mix)
    after_quarters = []
    engine_errors = 0
    for _ in range(4):
        for fact_set in islice(stream, quarter):
            try:
                compiled[fact_set.decision].evaluate(fact_set.facts, now=fact_set.now)
            except MatcherError:
                engine_errors += 1
        after_quarters.append(rss_mib(process))
    return {
        "decisions": quarter * 4,
        "engine_errors": engine_errors,
        "growth_before_to_last_quarter_mib": after_quarters[-1] - before,
        "rss_before_mib": before,
        "rss_after_mib": after_quarters[-1],
        "rss_after_each_quarter_mib": after_quarters,
        "growth_first_to_last_quarter_mib": after_quarters[-1] - after_quarters[0],
        "growth_per_10k_decisions_kib": (after_quarters[-1] - after_quarters[0]) * 1024 / (quarter * 3) * 10_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261121)
    arguments = parser.parse_args()
    print(json.dumps(measure(arguments.decisions, arguments.seed)))


if __name__ == "__main__":
    main()
