"""The run: settings, the sections in order, the machine's description, the report."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from . import report
from .http_load import ServerFailed, run_http
from .inproc import Disagreement, run_inproc
from .paths import RESULTS_DIR, ROOT
from .replay import run_replay

PACKAGES = ("durable-rules", "zen-engine", "flask", "gunicorn", "marshmallow")


@dataclass(frozen=True)
class Settings:
    quick: bool
    seed: int
    mix_size: int  # fact sets per decision, each checked against every contender
    rounds: int  # interleaved timing rounds; the median is kept
    seconds_per_round: float
    http_warmup_s: float
    http_rounds: int  # the two servers take turns
    http_seconds_per_round: float
    batch_items: int
    batch_requests: int
    memory_decisions: int
    replay_entries: int

    @classmethod
    def quick_run(cls, seed: int) -> Settings:
        return cls(True, seed, mix_size=1000, rounds=3, seconds_per_round=0.5,
                   http_warmup_s=1, http_rounds=2, http_seconds_per_round=2,
                   batch_items=2000, batch_requests=3, memory_decisions=100_000, replay_entries=1_000_000)

    @classmethod
    def full_run(cls, seed: int) -> Settings:
        return cls(False, seed, mix_size=5000, rounds=5, seconds_per_round=2.0,
                   http_warmup_s=2, http_rounds=5, http_seconds_per_round=3,
                   batch_items=2000, batch_requests=10, memory_decisions=1_000_000, replay_entries=1_000_000)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(settings: Settings, started_at: str, seconds: float) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cpus": psutil.cpu_count(logical=False),
        "memory_gib": psutil.virtual_memory().total / 1024**3,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),  # other work on the machine makes every number noisier
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "run": {"started_at": started_at, "seconds": seconds, **asdict(settings)},
    }


def run_memory(decisions: int, seed: int) -> dict[str, Any]:
    """In a fresh process, so that only the decisions count."""
    completed = subprocess.run([sys.executable, "-m", "bench.memory", "--decisions", str(decisions), "--seed", str(seed)],
                               cwd=ROOT, capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(completed.stdout)


def measure(settings: Settings) -> dict[str, Any]:
    progress(f"in-process: {settings.mix_size} fact sets per decision, checking every contender against ours")
    inproc = run_inproc(settings.mix_size, settings.seed, settings.rounds, settings.seconds_per_round)
    progress(f"memory: {settings.memory_decisions:,} decisions in a fresh process")
    memory = run_memory(settings.memory_decisions, settings.seed)
    progress(f"http: rulesvc serve and a no-op app, {settings.http_rounds} turns of {settings.http_seconds_per_round} s each, "
             "then the batch endpoint")
    http = run_http(settings.http_warmup_s, settings.http_rounds, settings.http_seconds_per_round, settings.batch_items,
                    settings.batch_requests, settings.seed)
    progress(f"replay: impact of a lowered payout limit on a log of {settings.replay_entries:,} decisions")
    replay = run_replay(settings.replay_entries, settings.seed)
    return {"inproc": inproc, "http": http, "memory": memory, "replay": replay}


def summary(found: list[report.Goal], seconds: float) -> str:
    lines = [f"{goal.label}: {goal.text(goal.value)} (goal {goal.bound}) {'met' if goal.met else 'MISSED'}"
             for goal in found]
    return "\n".join([*lines, f"run time: {seconds:.1f} s"])


def run(settings: Settings, extra_json: Path | None) -> int:
    started = time.perf_counter()
    started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    try:
        sections = measure(settings)
    except (Disagreement, ServerFailed) as error:
        print(f"bench FAILED: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    results = {**sections, "machine": machine(settings, started_at, seconds)}
    found = report.attach_goals(results)
    for path in report.write(results, found, RESULTS_DIR, extra_json):
        progress(f"wrote {path}")
    print(summary(found, seconds))
    return 0
