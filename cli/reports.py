"""Reports for people: the policy diff and the impact report as Markdown, and the impact report as a
self-contained HTML page with an SVG chart. They only format what the engine computed."""

from __future__ import annotations

import html
from typing import Any


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return str(value).replace("'", '"')


def diff_markdown(diff: dict[str, Any], old: str, new: str) -> str:
    lines = [f"# Rules: {old} → {new}", ""]
    if diff["equal"]:
        return "\n".join([*lines, "No policy change (the files may differ in comments or layout only).", ""])
    for domain in diff["domains"]:
        lines += [f"## {domain['domain']} ({domain['file']}) — {domain['status']}", ""]
        if domain["status"] != "changed":
            lines += [f"Decisions: {', '.join(domain['decisions'])}", ""]
            continue
        for entry in domain.get("constants", {}).get("changed", []):
            value = entry["changes"].get("value")
            what = f"{value['old']} → {value['new']}" if value else "note changed"
            readers = f" (read by {', '.join(entry['read_by'])})" if entry.get("read_by") else ""
            lines.append(f"- constant `{entry['name']}`: {what}{readers}")
        for kind in ("added", "removed"):
            for entry in domain.get("constants", {}).get(kind, []):
                lines.append(f"- constant `{entry['name']}` {kind}: {_value(entry['value'])}")
        for kind in ("added", "removed", "changed"):
            for entry in domain.get("tables", {}).get(kind, []):
                lines.append(f"- table `{entry['name']}` {kind}")
            for entry in domain.get("enums", {}).get(kind, []):
                lines.append(f"- enum `{entry['name']}` {kind}")
        for entry in domain.get("messages", {}).get("changed", []):
            for lang, change in entry["changes"].items():
                lines.append(f"- message {entry['code']} ({lang}): “{_value(change['old'])}” → “{_value(change['new'])}”")
        if lines[-1]:
            lines.append("")
        for decision in domain["decisions"]:
            lines += [f"### {decision['decision']} — {decision['status']}", ""]
            rules = decision.get("rules", {})
            for entry in rules.get("added", []):
                lines.append(f"- rule `{entry['rule']}` added: {entry['effect']} {entry['code'] or ''} when `{entry['when']}`")
            for entry in rules.get("removed", []):
                lines.append(f"- rule `{entry['rule']}` removed (was {entry['effect']} {entry['code'] or ''} "
                             f"when `{entry['when']}`)")
            for entry in rules.get("changed", []):
                for aspect, change in entry["changes"].items():
                    lines.append(f"- rule `{entry['rule']}` {aspect}: `{_value(change['old'])}` → `{_value(change['new'])}`")
            for section, key in (("facts", "fact"), ("derived", "value"), ("counters", "counter")):
                part = decision.get(section, {})
                for entry in part.get("added", []):
                    lines.append(f"- {key} `{entry[key]}` added")
                for entry in part.get("removed", []):
                    lines.append(f"- {key} `{entry[key]}` removed")
                for entry in part.get("changed", []):
                    changes = "; ".join(f"{aspect}: {_value(c['old'])} → {_value(c['new'])}"
                                        for aspect, c in entry["changes"].items())
                    lines.append(f"- {key} `{entry[key]}`: {changes}")
            if "obligations" in decision:
                lines.append(f"- default obligations: {decision['obligations']['old']} → {decision['obligations']['new']}")
            lines.append("")
    if diff.get("calendar"):
        lines += ["## calendar", ""]
        for kind, section in diff["calendar"].items():
            for change in ("added", "removed", "changed"):
                days = [entry["day"] for entry in section[change]]
                if days:
                    lines.append(f"- {kind} {change}: {', '.join(days)}")
        lines.append("")
    return "\n".join(lines)


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.2f}%" if total else "0%"


def impact_markdown(report: dict[str, Any], title: str) -> str:
    total = report["replayed"]
    lines = [f"# Impact of {title}", "",
             f"Replayed **{total:,}** logged decisions: **{report['unchanged']:,}** unchanged, "
             f"**{report.get('changed', 0):,}** changed, **{report['not_replayable']['count']:,}** not replayable.", ""]
    if report["transitions"]:
        lines += ["| transition | decisions | share | examples |", "|---|---:|---:|---|"]
        for transition, count in report["transitions"].items():
            examples = ", ".join(f"`{decision_id}`" for decision_id in report["examples"].get(transition, [])[:3])
            lines.append(f"| {transition} | {count:,} | {_share(count, total)} | {examples} |")
        lines += ["", "Explain an example: `rulesvc explain <decision_id>` (on the rules it was made with).", ""]
    else:
        lines += ["No decision changes its outcome.", ""]
    for key, label in (("reasons_added", "Reason codes added"), ("reasons_removed", "Reason codes removed"),
                       ("values_changed", "Values changed")):
        if report[key]:
            lines += [f"**{label}**: " + ", ".join(f"{name} ×{count:,}" for name, count in report[key].items()), ""]
    moved = {rule: counts for rule, counts in report["rules"].items() if counts["fired_before"] != counts["fired_after"]}
    if moved:
        lines += ["| rule | fired before | fired after | change |", "|---|---:|---:|---:|"]
        for rule, counts in moved.items():
            lines.append(f"| {rule} | {counts['fired_before']:,} | {counts['fired_after']:,} | "
                         f"{counts['fired_after'] - counts['fired_before']:+,} |")
        lines.append("")
    if report["not_replayable"]["count"]:
        lines += ["**Not replayable**:", *(f"- {why}: {count:,}" for why, count in report["not_replayable"]["why"].items()), ""]
    return "\n".join(lines)


_COLORS = {"allow": "#2e7d32", "deny": "#c62828", "defer": "#ef6c00", "review": "#6a1b9a"}


def _bar_chart(rows: list[tuple[str, int, str]], width: int = 640) -> str:
    """A horizontal bar chart as inline SVG: (label, value, colour) per row."""
    if not rows:
        return ""
    peak = max(value for _, value, _ in rows) or 1
    height = 28 * len(rows) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for index, (label, value, color) in enumerate(rows):
        y = 10 + 28 * index
        length = max(2, int((width - 260) * value / peak))
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{html.escape(label)}</text>'
                     f'<rect x="170" y="{y}" width="{length}" height="20" fill="{color}" rx="3"/>'
                     f'<text x="{176 + length}" y="{y + 15}" font-size="13">{value:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


_RULES_HEADER = "<tr><th>rule</th><th>fired before</th><th>fired after</th><th>change</th></tr>"


def impact_html(report: dict[str, Any], title: str) -> str:
    """A self-contained page: the summary, a chart of transitions, rule deltas and examples."""
    total = report["replayed"]
    transitions = [(name, count, _COLORS.get(name.split("->")[1], "#455a64"))
                   for name, count in report["transitions"].items()]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{count:,}</td><td>{_share(count, total)}</td>"
        f"<td>{'<br>'.join(f'<code>{html.escape(i)}</code>' for i in report['examples'].get(name, []))}</td></tr>"
        for name, count in report["transitions"].items())
    rules = "".join(
        f"<tr><td>{html.escape(rule)}</td><td>{c['fired_before']:,}</td><td>{c['fired_after']:,}</td>"
        f"<td>{c['fired_after'] - c['fired_before']:+,}</td></tr>"
        for rule, c in report["rules"].items() if c["fired_before"] != c["fired_after"])
    codes = "".join(f"<li>{html.escape(label)}: {html.escape(', '.join(f'{k} ×{v:,}' for k, v in report[key].items()))}</li>"
                    for key, label in (("reasons_added", "reason codes added"), ("reasons_removed", "reason codes removed"),
                                       ("values_changed", "values changed")) if report[key])
    why = "".join(f"<li>{html.escape(reason)}: {count:,}</li>" for reason, count in report["not_replayable"]["why"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Impact of {html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px/1.5 system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1c2833; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} td, th {{ border-bottom: 1px solid #d5d8dc; padding: .3rem .8rem;
       text-align: left; vertical-align: top; }} th {{ background: #f4f6f7; }}
.figures span {{ display: inline-block; margin-right: 2rem; }} .figures b {{ font-size: 1.6rem; display: block; }}
svg {{ max-width: 100%; height: auto; }} code {{ font-size: .85rem; }}
</style></head><body>
<h1>Impact of {html.escape(title)}</h1>
<p class="figures"><span><b>{total:,}</b>replayed</span><span><b>{report['unchanged']:,}</b>unchanged</span>
<span><b>{report.get('changed', 0):,}</b>changed</span><span><b>{report['not_replayable']['count']:,}</b>not replayable</span></p>
<h2>Outcome transitions</h2>
{_bar_chart(transitions) or '<p>No decision changes its outcome.</p>'}
{f'<table><tr><th>transition</th><th>decisions</th><th>share</th><th>examples (rulesvc explain ID)</th></tr>{rows}</table>'
 if rows else ''}
{f'<ul>{codes}</ul>' if codes else ''}
{f'<h2>Rules that fire more or less often</h2><table>{_RULES_HEADER}{rules}</table>' if rules else ''}
{f'<h2>Not replayable</h2><ul>{why}</ul>' if why else ''}
</body></html>
"""
