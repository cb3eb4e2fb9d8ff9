"""Where things are: the repository the harness measures and the harness's own files."""

from __future__ import annotations

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RULES_DIR = ROOT / "rules"
RESULTS_DIR = BENCH_DIR / "results"
