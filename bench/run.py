"""rulesvc benchmark harness: ``python bench/run.py [--quick] [--json FILE] [--seed N]``.

Measures in one run, side by side: in-process decisions per second (ours, zen-engine, raw
durable_rules, a hand-written Python floor), HTTP throughput and latency against a no-op Flask app,
the batch endpoint, and memory over many decisions. Writes bench/results/latest.{json,md,png}.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable (engine/, bench/)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Settings, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark rulesvc against zen-engine, raw durable_rules, "
                                                 "a Python floor and a no-op Flask app.")
    parser.add_argument("--quick", action="store_true", help="a short run (under 2 minutes on 2 cores)")
    parser.add_argument("--json", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--seed", type=int, default=20261121, help="seed of the fact-set mix")
    arguments = parser.parse_args()
    settings = Settings.quick_run(arguments.seed) if arguments.quick else Settings.full_run(arguments.seed)
    sys.exit(run(settings, arguments.json))


if __name__ == "__main__":
    main()
