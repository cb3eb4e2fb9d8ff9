"""``rulesvc publish``, ``rulesvc approve``, ``rulesvc rollback``: the console's change workflow from a
terminal (SPEC §12.1), through a running service's HTTP API — the same path, the same checks.

The admin token is read from ``RULESVC_ADMIN_TOKEN`` (never from the command line, where ``ps`` shows it).
Exit codes: 0 done, 1 refused (problems, a stale draft, an approval missing), 2 the service cannot be
reached or the request was not understood.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click

from engine.language.source import read_source

from .reports import diff_markdown

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 60  # a draft's review replays the log and runs the proofs


class ServiceAnswer(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        self.status, self.body = status, body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{error.get('code', status)}: {error.get('message', body)}")


def _call(url: str, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None) -> Any:
    token = os.environ.get("RULESVC_ADMIN_TOKEN", "")
    if not token:
        click.echo("set RULESVC_ADMIN_TOKEN to your admin token (one of RULESVC_ADMIN_TOKENS on the service)", err=True)
        sys.exit(2)
    request = urllib.request.Request(url.rstrip("/") + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {token}",
                                              **({"Content-Type": content_type} if content_type else {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            answer = json.loads(error.read() or b"{}")
        except ValueError:
            answer = {}
        raise ServiceAnswer(error.code, answer) from None
    except (urllib.error.URLError, OSError) as error:
        click.echo(f"cannot reach the service at {url}: {getattr(error, 'reason', error)} (is rulesvc serve running? "
                   "--url or RULESVC_URL say where)", err=True)
        sys.exit(2)


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _refused(error: ServiceAnswer) -> None:
    """Say why the service refused, in one line per problem; exit 1 (refused) or 2 (not understood)."""
    failure = error.body.get("error", {}) if isinstance(error.body, dict) else {}
    click.echo(f"refused: {failure.get('code', error.status)}: {failure.get('message', '')}", err=True)
    for problem in failure.get("problems", []):
        click.echo(f"  {problem}", err=True)
    for field, messages in failure.get("fields", {}).items():
        click.echo(f"  {field}: {'; '.join(messages)}", err=True)
    for key in ("base_version", "live_version"):
        if failure.get(key):
            click.echo(f"  {key}: {failure[key]}", err=True)
    sys.exit(2 if error.status in (400, 401, 403) else 1)


def review_lines(draft: dict[str, Any]) -> list[str]:
    """A draft's review as a person reads it in a terminal."""
    lines = [f"draft {draft['draft_id']} of {draft['file']} ({draft.get('domain')}) by {draft['author']}"]
    problems = draft.get("problems") or []
    lines += [f"  problem {problem['text']}" for problem in problems]
    if draft.get("diff"):  # rulesvc diff's own lines, less its headings
        lines += [f"  {line}" for line in diff_markdown(draft["diff"], "live", "draft").splitlines()
                  if line.startswith("- ")]
    impact = draft.get("impact") or {}
    if "unavailable" in impact:
        lines.append(f"  impact: {impact['unavailable']}")
    elif impact:
        moved = ", ".join(f"{key} {count}" for key, count in impact.get("transitions", {}).items()) or "none"
        lines.append(f"  impact on {impact.get('replayed', 0)} logged decisions: {moved}")
    scenarios = draft.get("scenarios") or {}
    if "changed" in scenarios:
        lines.append(f"  scenarios: {scenarios['passed']} passed, {scenarios['failed']} failed; "
                     f"{len(scenarios['changed'])} cases change")
        for case in scenarios["changed"]:
            before, after = case.get("before") or {}, case["after"]
            lines.append(f"    {case['suite']}:{case['line']} {case['case']}: {before.get('outcome')} → "
                         f"{after['outcome']}{'' if after['passed'] else ' (fails its expectation)'}")
    verify = draft.get("verify") or {}
    if isinstance(verify.get("summary"), dict):
        lines.append("  proofs: " + ", ".join(f"{key} {value}" for key, value in verify["summary"].items()))
    return lines


@click.command("publish")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("--reason", required=True, help="Why: recorded with the version.")
@click.option("--draft", "draft_id", help="Publish this draft (made earlier, approved) instead of FILE.")
@click.option("--url", envvar="RULESVC_URL", default=DEFAULT_URL, show_default=True, help="The running service.")
def publish_command(file: str | None, reason: str, draft_id: str | None, url: str) -> None:
    """Make FILE a draft (its review is printed: problems, diff, impact, changed scenario cases, proofs)
    and publish it. With RULESVC_PUBLISH_APPROVALS=2 the draft waits for another admin's
    `rulesvc approve`; publish it then with --draft."""
    if (file is None) == (draft_id is None):
        raise click.UsageError("give FILE or --draft ID")
    if file is not None:
        text, problem = read_source(Path(file))
        if text is None:
            click.echo(str(problem), err=True)
            sys.exit(1)
        name = urllib.parse.quote(Path(file).name)
        try:
            draft = _call(url, "POST", f"/v1/rulesets/drafts?file={name}", body=text.encode("utf-8"),
                          content_type="application/yaml")
        except ServiceAnswer as error:
            _refused(error)
        for line in review_lines(draft):
            click.echo(line)
        if draft.get("problems"):
            click.echo("not published: the draft has problems", err=True)
            sys.exit(1)
        draft_id = draft["draft_id"]
    try:
        published = _call(url, "POST", f"/v1/rulesets/drafts/{urllib.parse.quote(draft_id)}/publish",
                          body=_json({"reason": reason}), content_type="application/json")
    except ServiceAnswer as error:
        if error.body.get("error", {}).get("code") == "APPROVAL_REQUIRED":
            click.echo(f"draft {draft_id} waits for another admin: rulesvc approve {draft_id}; then "
                       f"rulesvc publish --draft {draft_id} --reason …", err=True)
        _refused(error)
    click.echo(f"published {published['domain']} {published['version']} by {published['published_by']} "
               f"(publication {published['seq']}): {published['reason']}")


@click.command("approve")
@click.argument("draft_id")
@click.option("--url", envvar="RULESVC_URL", default=DEFAULT_URL, show_default=True, help="The running service.")
def approve_command(draft_id: str, url: str) -> None:
    """Approve another admin's draft (RULESVC_PUBLISH_APPROVALS=2)."""
    try:
        answer = _call(url, "POST", f"/v1/rulesets/drafts/{urllib.parse.quote(draft_id)}/approve")
    except ServiceAnswer as error:
        _refused(error)
    click.echo(f"approved {draft_id}: {', '.join(a['admin'] for a in answer['approvals'])}")


@click.command("rollback")
@click.argument("domain")
@click.argument("version")
@click.option("--reason", required=True, help="Why: recorded with the version.")
@click.option("--url", envvar="RULESVC_URL", default=DEFAULT_URL, show_default=True, help="The running service.")
def rollback_command(domain: str, version: str, reason: str, url: str) -> None:
    """Publish a kept VERSION of DOMAIN again (`GET /v1/rulesets/versions` lists them)."""
    try:
        published = _call(url, "POST", "/v1/rulesets/rollback",
                          body=_json({"domain": domain, "version": version, "reason": reason}),
                          content_type="application/json")
    except ServiceAnswer as error:
        _refused(error)
    click.echo(f"rolled back {published['domain']} to {published['version']} by {published['published_by']} "
               f"(publication {published['seq']}): {published['reason']}")


COMMANDS = [publish_command, approve_command, rollback_command]
