"""Goals, and the report: JSON, a Markdown table and a PNG bar chart of the ratios against their goals."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # the object API: no pyplot, no GUI backend

ZEN_CAVEAT = ("zen is fed the facts converted once outside its timed loop — money as numbers, instants as Unix "
              "seconds, `now` added, all as JSON text — and does no validation; ours parses and validates the "
              "request facts inside its timed path. This conversion favours zen.")


@dataclass(frozen=True)
class Goal:
    key: str
    label: str
    value: float
    target: float
    unit: str  # "x" for a ratio, "/s" for a rate

    @property
    def met(self) -> bool:
        return self.value >= self.target

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "goal": self.target, "met": self.met}

    def text(self, amount: float) -> str:
        return f"{amount:.2f}×" if self.unit == "x" else f"{amount:,.0f}/s"

    @property
    def bound(self) -> str:
        return f"≥ {self.text(self.target)}"

    @property
    def share(self) -> float:
        """Measured over goal: above 1 when met."""
        return self.value / self.target


@dataclass(frozen=True)
class Ceiling(Goal):
    """A goal met at or below its target (seconds, MiB)."""

    @property
    def met(self) -> bool:
        return self.value <= self.target

    def text(self, amount: float) -> str:
        return f"{amount:,.1f} {self.unit}"

    @property
    def bound(self) -> str:
        return f"≤ {self.text(self.target)}"

    @property
    def share(self) -> float:
        return self.target / self.value if self.value > 0 else 10.0


def goals(report: dict[str, Any]) -> list[Goal]:
    """SPEC §9's goals, each from this run (ratios of contenders measured side by side)."""
    inproc, http, replay, memory = report["inproc"]["ratios"], report["http"], report["replay"], report["memory"]
    found = [
        Goal("ours_per_zen", "ours / zen (in-process, one at a time)", inproc["ours_per_zen"], 1.0, "x"),
        Goal("ours_batch_per_zen", "ours batch API / zen", inproc["ours_batch_per_zen"], 1.5, "x"),
        Goal("ours_per_raw_durable_fast", "ours / fastest raw durable_rules", inproc["ours_per_raw_durable_fast"], 0.3, "x"),
        Goal("ours_logged_per_ours", "in-process with the decision log / without", inproc["ours_logged_per_ours"], 0.9,
             "x"),
        Goal("http_ours_per_noop", "HTTP ours / no-op (wrk)", http["ours_per_noop"], 0.7, "x"),
        Goal("batch_per_s", "HTTP batch decisions/s (one worker)", http["batch_per_s"], 20_000.0, "/s"),
        Ceiling("replay_seconds_per_million", "replay of 1,000,000 logged decisions", replay["seconds_per_million"],
                60.0, "s"),
    ]
    if memory["decisions"] >= 1_000_000:  # the full run's memory section: flat over a million decisions
        found.append(Ceiling("memory_growth_mib", f"RSS growth over {memory['decisions']:,} decisions",
                             memory["growth_before_to_last_quarter_mib"], 5.0, "MiB"))
    return found


def attach_goals(report: dict[str, Any]) -> list[Goal]:
    """Mark each goal met or missed inside its section of the report."""
    found = goals(report)
    sections = {"ours_per_zen": "inproc", "ours_batch_per_zen": "inproc", "ours_per_raw_durable_fast": "inproc",
                "ours_logged_per_ours": "inproc",
                "http_ours_per_noop": "http", "batch_per_s": "http", "replay_seconds_per_million": "replay",
                "memory_growth_mib": "memory"}
    for goal in found:
        report[sections[goal.key]].setdefault("goals", {})[goal.key] = goal.as_json()
    return found


# --- Markdown -----------------------------------------------------------------------------------------

def _status(goal: Goal) -> str:
    return "**met**" if goal.met else "**missed**"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def markdown(report: dict[str, Any], found: list[Goal]) -> str:
    inproc, http, memory, machine = report["inproc"], report["http"], report["memory"], report["machine"]
    run = machine["run"]
    lines = [
        f"# rulesvc benchmark — {run['started_at']} ({'quick' if run['quick'] else 'full'} run, {run['seconds']:.0f} s)",
        "",
        "Absolute numbers are noise on this machine; the ratios are what to read.",
        "",
        "| goal | measured | target | |",
        "|---|---:|---:|---|",
        *[f"| {goal.label} | {goal.text(goal.value)} | {goal.bound} | {_status(goal)} |" for goal in found],
        "",
        "## In-process decisions per second",
        "",
        "| decision | ours | ours batch | zen | fastest raw durable_rules | our reference matcher | Python floor | "
        "ours/zen | batch/zen | ours/fastest raw | outcomes | left to the reference reader |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    rows = [*inproc["per_decision"].items(), ("both (50/50 mix)", {**inproc, "outcomes": {}})]
    for name, numbers in rows:
        ratio = numbers["ratios"]
        outcomes = ", ".join(f"{outcome} {count}" for outcome, count in sorted(numbers.get("outcomes", {}).items()))
        share = numbers.get("reference_reader_share")
        lines.append(f"| {name} | {_rate(numbers['ours_per_s'])} | {_rate(numbers['ours_batch_per_s'])} | "
                     f"{_rate(numbers['zen_per_s'])} | {_rate(numbers['raw_durable_fast_per_s'])} | "
                     f"{_rate(numbers['raw_durable_per_s'])} | {_rate(numbers['python_floor_per_s'])} | "
                     f"{ratio['ours_per_zen']:.2f} | {ratio['ours_batch_per_zen']:.2f} | "
                     f"{ratio['ours_per_raw_durable_fast']:.2f} | {outcomes} | "
                     f"{'' if share is None else f'{share:.1%}'} |")
    setup = http["setup"]
    lines += [
        "",
        f"Every contender reached ours' verdict on every fact set. {ZEN_CAVEAT}",
        "",
        *_stage_lines(inproc),
        "",
        f"## HTTP ({setup['workers']} {setup['worker_class']} workers, {setup['concurrency']} connections, "
        f"{setup['rounds']} turns of {setup['seconds_per_round']} s per server, {setup['load_generator']})",
        "",
        "| server | requests/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        f"| ours: {setup['request']} | {_rate(http['ours_per_s'])} | {http['ours_p50_ms']:.2f} | {http['ours_p99_ms']:.2f} |",
        f"| no-op Flask | {_rate(http['noop_per_s'])} | {http['noop_p50_ms']:.2f} | {http['noop_p99_ms']:.2f} |",
        f"| no-op Flask, gunicorn's stock gthread worker | {_rate(http['noop_gthread_per_s'])} | "
        f"{http['noop_gthread_p50_ms']:.2f} | |",
        f"| ours under granian (api/wsgi.py) | {_rate(http['ours_granian_per_s'])} | "
        f"{http['ours_granian_p50_ms']:.2f} | |",
        f"| no-op Flask under granian | {_rate(http['noop_granian_per_s'])} | {http['noop_granian_p50_ms']:.2f} | |",
        "",
        f"Reading each request whole before a thread takes it (slow clients hold no thread) leaves the no-op at "
        f"{http['noop_per_noop_gthread']:.2f}× its rate under the stock worker. Under granian ours runs at "
        f"{http['ours_granian_per_ours']:.2f}× its rate under `rulesvc serve`.",
        "",
        f"Batch: {_rate(http['batch_per_s'])} decisions/s ({setup['batch_items']} payout.initiate items a request, "
        "one request at a time).",
        "",
        "## Replay (impact analysis)",
        "",
        f"{report['replay']['entries']:,} logged decisions replayed on {report['replay']['candidate']} by "
        f"{report['replay']['processes']} processes in {report['replay']['seconds']:.1f} s: "
        f"{_rate(report['replay']['replay_per_s'])} decisions/s, "
        f"{report['replay']['seconds_per_million']:.1f} s per million; transitions {report['replay']['transitions']} "
        f"(the log: {report['replay']['log_size_mib']:,.0f} MiB of SQLite, made in {report['replay']['log_made_in_s']:.0f} s).",
        "",
        *_dask_lines(report["replay"].get("dask") or {}),
        "## Memory",
        "",
        f"RSS {memory['rss_before_mib']:.1f} MiB before, {memory['rss_after_mib']:.1f} MiB after "
        f"{memory['decisions']:,} in-process decisions ({memory['engine_errors']} engine errors); growth from the first "
        f"to the last quarter {memory['growth_first_to_last_quarter_mib']:+.2f} MiB "
        f"({memory['growth_per_10k_decisions_kib']:+.1f} KiB per 10k decisions).",
        "",
        "## Machine",
        "",
        f"{machine['cpu']}, {machine['logical_cpus']} logical CPUs, {machine['memory_gib']:.0f} GiB; "
        f"Python {machine['python']}; " + ", ".join(f"{name} {version}" for name, version in machine["packages"].items()) + "; "
        f"load average at start {', '.join(f'{load:.2f}' for load in machine['load_average_at_start'])}.",
        "",
    ]
    return "\n".join(lines)


# --- chart ----------------------------------------------------------------------------------------------

def chart(found: list[Goal], title: str, path: Path) -> None:
    """One bar per goal: measured / target on a log scale, the goal line at 1."""
    shares = [goal.share for goal in found]
    figure = Figure(figsize=(11, 5.5), dpi=110)
    axes = figure.subplots()
    bars = axes.bar([textwrap.fill(goal.label, 18) for goal in found], shares,
                    color=["#2e7d32" if goal.met else "#c62828" for goal in found])
    axes.axhline(1.0, color="black", linestyle="--", linewidth=1)
    axes.text(-0.5, 1.0, " goal", va="bottom", ha="left", fontsize=9)
    axes.set_yscale("log")
    axes.set_ylim(min(0.01, min(shares) / 2), max(2.0, max(shares) * 2))
    axes.set_ylabel("measured ÷ goal (log scale)")
    axes.set_title(title)
    axes.tick_params(axis="x", labelsize=8)
    for bar, goal in zip(bars, found, strict=True):
        label = f"{goal.text(goal.value)}\ngoal {goal.bound}\n{'met' if goal.met else 'missed'}"
        axes.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 4),
                      textcoords="offset points", ha="center", va="bottom", fontsize=8,
                      bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    figure.tight_layout()
    figure.savefig(path)


def write(report: dict[str, Any], found: list[Goal], directory: Path, extra_json: Path | None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    written = [directory / "latest.json", directory / "latest.md", directory / "latest.png"]
    written[0].write_text(text, encoding="utf-8")
    written[1].write_text(markdown(report, found), encoding="utf-8")
    run = report["machine"]["run"]
    chart(found, f"rulesvc against its goals — {run['started_at']} ({'quick' if run['quick'] else 'full'})", written[2])
    if extra_json is not None:
        extra_json.write_text(text, encoding="utf-8")
        written.append(extra_json)
    return written


def _dask_lines(dask: dict[str, Any]) -> list[str]:
    """The replay on dask.distributed LocalClusters, beside the local one."""
    if not dask:
        return []
    lines = ["| on dask.distributed (`--scheduler`) | seconds per million | decisions/s | same report |",
             "|---|---:|---:|---|"]
    for run in dask.values():
        lines.append(f"| LocalCluster of {run['workers']} worker{'s' if run['workers'] > 1 else ''} "
                     f"| {run['seconds_per_million']:.1f} | {_rate(run['replay_per_s'])} "
                     f"| {'yes' if run['same_report_as_local'] else 'no'} |")
    return [*lines, ""]


STAGE_LABELS = {"read": "read", "derive": "derive", "encode": "encode", "durable_rules": "durable_rules",
                "result": "result", "between_stages": "between stages", "whole_decision": "**whole decision**",
                "log_entry": "log entry", "log_write": "log write", "with_log": "**decision + log**"}


def _stage_lines(inproc: dict[str, Any]) -> list[str]:
    """CPU µs per decision of each stage, per decision, and the log's cost beside the decision's."""
    per_decision = inproc["per_decision"]
    names = list(per_decision)
    lines = ["### Where a decision's time goes (CPU µs per decision, each stage timed alone: bench/stages.py)", "",
             "| stage | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for stage, label in STAGE_LABELS.items():
        lines.append(f"| {label} | " + " | ".join(f"{per_decision[name]['stages_cpu_us'][stage]:.1f}" for name in names)
                     + " |")
    pair = inproc["logged_pair"]
    lines += ["", f"With the decision log on (SQLite, as `rulesvc serve` logs: a capture per decision, built and "
                  f"written by the worker's writer process): "
                  f"{_rate(pair['ours_logged_per_s'])}/s against {_rate(pair['ours_per_s'])}/s without, measured back "
                  f"to back ({inproc['ratios']['ours_logged_per_ours']:.2f}×; goal ≥ 0.90×).", ""]
    return lines
