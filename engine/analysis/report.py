"""``rulesvc verify`` and ``rulesvc diff --prove`` as Markdown: problems as ``FILE:LINE:COL`` lines first."""

from __future__ import annotations

import json
from typing import Any

_MARK = {"proved": "✅ proved", "violated": "❌ violated", "unknown": "❔ unknown",
         "reachable": "reachable", "unreachable": "unreachable"}


def verify_markdown(report: dict[str, Any], label: str) -> str:
    summary = report["summary"]
    lines = [f"# rulesvc verify — {label}", ""]
    verdict = ("everything proved" if summary["proved"] else
               f"{summary['problems']} problem(s), {summary['unknown']} unknown")
    lines += [f"{summary['decisions']} decisions, {verdict}, in {summary['seconds']:.2f} s.", ""]
    problems = list(_problem_lines(report))
    if problems:
        lines += ["## Problems", "", *[f"- {line}" for line in problems], ""]
    lines += ["| decision | allow | deny | defer | review | invariants | problems | unknown | seconds |",
              "|---|---|---|---|---|---|---|---|---:|"]
    for name, item in report["decisions"].items():
        outcomes = [item["outcomes"][outcome]["status"] for outcome in ("allow", "deny", "defer", "review")]
        proved = sum(1 for entry in item["invariants"].values() if entry["status"] == "proved")
        lines.append(f"| {name} | {' | '.join(outcomes)} | {proved}/{len(item['invariants'])} proved "
                     f"| {item['problems']} | {len(item['unknown'])} | {item['seconds']:.2f} |")
    for name, item in report["decisions"].items():
        lines += ["", f"## {name}", ""]
        for invariant_id, entry in item["invariants"].items():
            message = entry["message"].get("zh") or entry["message"].get("en") or ""
            lines.append(f"- {_MARK[entry['status']]} `{invariant_id}` ({entry['where']}): when `{entry['when']}` "
                         f"then `{entry['then']}`{' — ' + message if message else ''}")
            if "witness" in entry:
                lines += _witness(entry["witness"], entry.get("result"))
        for outcome, entry in item["outcomes"].items():
            if entry["status"] == "reachable":
                lines.append(f"- {outcome}: reachable, e.g. now {entry['witness']['now']}")
            else:
                lines.append(f"- {outcome}: {entry['status']}{' (' + entry['why'] + ')' if entry.get('why') else ''}")
        for entry in item["unknown"]:
            lines.append(f"- ❔ {entry['property']}{' at ' + entry['where'] if entry.get('where') else ''}: {entry['why']}")
    return "\n".join(lines) + "\n"


def _problem_lines(report: dict[str, Any]):
    for item in report["decisions"].values():
        for entry in item["dead"]:
            yield f"{entry['where']}: dead rule: {entry['message']}"
        for entry in item["always"]:
            yield f"{entry['where']}: always fires: {entry['message']}"
        for entry in item["errors"]:
            yield f"{entry['where']}: evaluation can fail ({entry['what']}): {entry['expression']}"
        for invariant_id, entry in item["invariants"].items():
            if entry["status"] == "violated":
                yield f"{entry['where']}: invariant {invariant_id} is violated"


def _witness(witness: dict[str, Any], result: dict[str, Any] | None) -> list[str]:
    lines = ["", "  ```json", *["  " + line for line in json.dumps(witness, ensure_ascii=False, indent=2).splitlines()],
             "  ```"]
    if result:
        lines.append(f"  → the service answers {result['outcome']} {result['reasons']}")
    return lines + [""]


def prove_markdown(report: dict[str, Any], old_label: str, new_label: str) -> str:
    summary = report["summary"]
    verdict = ("every decision equivalent" if summary["equivalent"] else
               f"{summary['different']} decision(s) different, {summary['unknown']} unknown")
    lines = [f"## Proof: {old_label} → {new_label}", "", f"{verdict}.", ""]
    for name, item in report["decisions"].items():
        if item.get("unchanged"):
            continue
        if item.get("added") or item.get("removed"):
            lines.append(f"- **{name}**: {'added' if item.get('added') else 'removed'}")
            continue
        if item["equivalent"]:
            lines.append(f"- **{name}**: equivalent (proved: every valid request gets the same outcome, "
                         "reason codes and obligations)")
            continue
        lines.append(f"- **{name}**: {len(item['transitions'])} transition(s)")
        for transition, entry in item["transitions"].items():
            old, new = entry["old"], entry["new"]
            lines.append(f"  - `{transition}`: OLD {old['outcome']} {old['reasons']}, NEW {new['outcome']} "
                         f"{new['reasons']} — now {entry['witness']['now']}")
            lines += ["    " + line for line in _witness(entry["witness"], None)]
        for entry in item["unknown"]:
            lines.append(f"  - ❔ {entry.get('transition') or entry.get('where')}: {entry['why']}")
    return "\n".join(lines) + "\n"
