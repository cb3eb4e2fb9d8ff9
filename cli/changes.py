"""``rulesvc`` commands around the decision log and rule changes: log, explain, versions, diff, impact.

The workflow they serve (docs/changing-rules.md): edit → ``rulesvc diff`` → ``rulesvc impact`` →
review → ship, with ``rulesvc serve --shadow`` for the risky ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml

from engine import RuleFileError, load_rulebook
from engine.analysis.prove import prove_exit_code, prove_rulebooks, scenario_files
from engine.analysis.report import prove_markdown
from engine.audit.diff import diff_rulebooks
from engine.audit.log import DEFAULT_LOG_URL, LogDatabase, LogQuery, LogUnavailable
from engine.audit.replay import VersionLibrary, explain, impact
from engine.audit.replay.cluster import SCHEDULER_VARIABLE, ClusterUnavailable
from engine.language.source import FileTooLarge, read_capped
from engine.rulebook import Rulebook, read_rule_files, rulebook_from_files

from .common import DEFAULT_RULES, instant_option, print_json, rules_or_exit
from .reports import diff_markdown, impact_html, impact_markdown

OUTCOMES = ["allow", "deny", "defer", "review"]


def _database(url: str) -> LogDatabase:
    try:
        return LogDatabase(url, create=False)
    except LogUnavailable as error:
        click.echo(str(error), err=True)
        sys.exit(1)


log_option = click.option("--log", "log_url", default=DEFAULT_LOG_URL, show_default=True,
                          help="The decision log: sqlite:///PATH or postgresql://…")


# --- the decision log ----------------------------------------------------------------------------------

@click.group("log", invoke_without_command=True)
@click.option("--decision", help="Only this decision, e.g. payout.initiate.")
@click.option("--from", "start", callback=instant_option, help="Logged at or after this instant.")
@click.option("--to", "end", callback=instant_option, help="Logged before this instant.")
@click.option("--outcome", type=click.Choice(OUTCOMES))
@click.option("--code", help="With this reason or warning code.")
@click.option("--id", "decision_id", help="One decision by its id.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1), help="At most this many, newest first.")
@click.option("--shadow", is_flag=True, help="The shadow runs instead of the decisions.")
@log_option
@click.pass_context
def log_group(ctx: click.Context, decision: str | None, start: datetime | None, end: datetime | None, outcome: str | None,
              code: str | None, decision_id: str | None, limit: int, shadow: bool, log_url: str) -> None:
    """Print logged decisions as JSON lines, newest first (sensitive facts appear as hmac:…)."""
    if ctx.invoked_subcommand is not None:
        # `rulesvc log --log URL prune …`: the subcommand works on this log; the filters are not its own
        given = [name for name, value in (("--decision", decision), ("--from", start), ("--to", end), ("--outcome", outcome),
                                          ("--code", code), ("--id", decision_id), ("--shadow", shadow)) if value]
        if given:
            raise click.UsageError(f"{', '.join(given)} filter what `rulesvc log` prints; "
                                   f"`rulesvc log {ctx.invoked_subcommand}` takes only its own options")
        ctx.obj = {"log_url": log_url}
        return
    try:
        entries = _database(log_url).query(LogQuery(decision=decision, start=start, end=end, outcome=outcome, code=code,
                                                    decision_id=decision_id, limit=limit, shadow=shadow))
    except LogUnavailable as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    for entry in entries:
        click.echo(json.dumps(entry, ensure_ascii=False))


@log_group.command("prune")
@click.option("--before", required=True, callback=instant_option, help="Delete entries logged before this instant.")
@click.option("--log", "log_url", default=None, help=f"The decision log (default: the one given to `rulesvc log`, "
                                                     f"else {DEFAULT_LOG_URL}).")
@click.pass_context
def log_prune(ctx: click.Context, before: datetime, log_url: str | None) -> None:
    """Delete old entries (retention). Run it on a schedule: see docs/decision-log.md."""
    log_url = log_url or (ctx.obj or {}).get("log_url") or DEFAULT_LOG_URL
    try:
        removed = _database(log_url).prune(before)
    except LogUnavailable as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    click.echo(f"deleted {removed} decision-log entries logged before {before.isoformat()}")


@click.command("explain")
@click.argument("decision_id")
@log_option
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(),
              help="The active rules, used when the decision's version is theirs.")
def explain_command(decision_id: str, log_url: str, rules_dir: str) -> None:
    """Replay a logged decision on the rules it was made with; say whether it reproduces, with the trace."""
    database = _database(log_url)
    try:
        entry = database.entry(decision_id)
    except LogUnavailable as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    if entry is None:
        click.echo(f"no decision {decision_id} in the decision log {log_url}", err=True)
        sys.exit(1)
    try:
        active: Rulebook | None = load_rulebook([rules_dir])
    except RuleFileError:
        active = None  # the kept versions may still have it
    answer = explain(entry, VersionLibrary(database, active))
    print_json(answer)
    if not answer["reproduced"]:
        click.echo(f"not reproduced: {answer['why_not']}", err=True)
        sys.exit(1)


@click.command("versions")
@click.argument("version", required=False)
@log_option
def versions_command(version: str | None, log_url: str) -> None:
    """List every ruleset version that was ever active; with VERSION, print its files' text as JSON."""
    database = _database(log_url)
    try:
        if version:
            kept = database.version(version)
            if kept is None:
                click.echo(f"ruleset version {version} is not kept in {log_url}", err=True)
                sys.exit(1)
            print_json(kept)
            return
        for kept in database.versions():
            click.echo(f"{kept['version']}  {kept['domain']:<10} {kept['file']:<16} first active {kept['first_active_at']}")
    except LogUnavailable as error:
        click.echo(str(error), err=True)
        sys.exit(1)


# --- changing rules -------------------------------------------------------------------------------------

def _git_rules(revision: str, rules_dir: str) -> tuple[dict[str, str], str]:
    """The rules directory's files as they are in git ``revision``."""
    directory = Path(rules_dir).resolve()
    try:
        top = subprocess.run(["git", "-C", str(directory), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True).stdout.strip()
        relative = directory.relative_to(Path(top).resolve()).as_posix()
        names = subprocess.run(["git", "-C", top, "ls-tree", "-r", "--name-only", revision, "--", relative],
                               capture_output=True, text=True, check=True).stdout.split()
        files = {}
        for name in names:
            inner = name[len(relative) + 1:] if relative != "." else name
            if inner.endswith((".yaml", ".yml")) and inner.count("/") <= 1:
                files[inner] = _git_blob(top, f"{revision}:{name}")
    except (subprocess.CalledProcessError, ValueError, FileNotFoundError, FileTooLarge) as error:
        detail = getattr(error, "stderr", "") or str(error)
        click.echo(f"cannot read {rules_dir} at git revision {revision}: {detail.strip()}", err=True)
        sys.exit(2)
    if not files:
        click.echo(f"git revision {revision} has no rule files under {rules_dir}", err=True)
        sys.exit(2)
    return files, f"{rules_dir}@{revision}"


def _git_blob(top: str, spec: str) -> str:
    """The text of ``git show SPEC``, read no further than a rule file's maximum."""
    with subprocess.Popen(["git", "-C", top, "show", spec], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as git:
        try:
            raw = read_capped(git.stdout)
        except FileTooLarge as error:
            git.kill()  # git need not write the rest
            raise FileTooLarge(f"{spec}: {error}") from None
        stderr = git.stderr.read(4096).decode("utf-8", errors="replace")
    if git.returncode != 0:
        raise subprocess.CalledProcessError(git.returncode, ["git", "show", spec], stderr=stderr)
    return raw.decode("utf-8")  # not UTF-8: a ValueError, reported as the revision's problem


def _revision(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A git revision that git cannot take for an option (``--output=…`` would write a file)."""
    if value is not None and value.startswith("-"):
        raise click.BadParameter(f"{value!r} is not a git revision (it starts with '-')")
    return value


@click.command("diff")
@click.argument("old", required=False, type=click.Path(exists=True, file_okay=False))
@click.argument("new", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--git", "revision", callback=_revision,
              help="Compare the rules directory (NEW, default rules/) at this git revision with the working tree.")
@click.option("--format", "output", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("--prove", is_flag=True,
              help="Prove each changed decision equivalent, or give a request for every outcome it changes "
                   "(exit 0 equivalent, 1 different, 4 unknown).")
@click.option("--cases", "cases_path", type=click.Path(dir_okay=True),
              help="With --prove: write the witnesses as scenario cases that pass on NEW and fail on OLD "
                   "(one file; a directory of files when several decisions differ).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="With --prove: seconds per decision; what is not settled by then is unknown.")
def diff_command(old: str | None, new: str | None, revision: str | None, output: str, prove: bool,
                 cases_path: str | None, timeout: float) -> None:
    """Compare two rules directories in policy terms. Exit 0 when equal, 1 when different, 2 on errors."""
    if cases_path and not prove:
        raise click.UsageError("--cases needs --prove")
    if revision:
        if new is not None:
            raise click.UsageError("with --git give at most one directory (the working tree's rules)")
        new = old or DEFAULT_RULES
        files, old_label = _git_rules(revision, new)
        try:
            before = rulebook_from_files(files, display_dir=old_label)
        except RuleFileError as error:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            sys.exit(2)
    else:
        if old is None or new is None:
            raise click.UsageError("give OLD and NEW rules directories, or --git REV")
        old_label = old
        before = rules_or_exit([old], code=2)
    after = rules_or_exit([new], code=2)
    diff = diff_rulebooks(before, after)
    if not prove:
        if output == "json":
            print_json(diff)
        else:
            click.echo(diff_markdown(diff, old_label, new), nl=False)
        sys.exit(0 if diff["equal"] else 1)
    proof = prove_rulebooks(before, after, timeout=timeout)
    if cases_path:
        _write_cases(Path(cases_path), scenario_files(proof))
    if output == "json":
        print_json({**proof, "diff": diff})
    else:
        click.echo(diff_markdown(diff, old_label, new) + "\n" + prove_markdown(proof, old_label, new), nl=False)
    sys.exit(prove_exit_code(proof["summary"]))


def _write_cases(path: Path, files: dict[str, dict[str, Any]]) -> None:
    """One scenario file at ``path``, or a directory of them (``DECISION.yaml``) when several decisions differ."""
    if not files:
        return
    texts = {name: yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False) for name, scenario in files.items()}
    if len(texts) == 1 and not path.is_dir():
        path.write_text(next(iter(texts.values())), encoding="utf-8")
        return
    path.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (path / f"{name}.yaml").write_text(text, encoding="utf-8")


def _fail_on(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, float]]:
    limits = []
    for value in values:
        transition, _, share = value.replace(" ", "").rpartition(">")
        try:
            before, _, after = transition.partition("->")
            if before not in OUTCOMES or after not in OUTCOMES or not share.endswith("%"):
                raise ValueError
            limits.append((transition, float(share[:-1]) / 100))
        except ValueError:
            raise click.BadParameter(f"{value!r}: write it as BEFORE->AFTER>PCT% with outcomes "
                                     f"{'/'.join(OUTCOMES)}, e.g. allow->deny>0.5%") from None
    return limits


@click.command("impact")
@click.option("--candidate", "candidate_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The candidate rules directory.")
@click.option("--rules", "rules_dir", default=DEFAULT_RULES, show_default=True, type=click.Path(),
              help="The active rules: what they decide is the 'before' (a decision logged under an older version is "
                   "replayed on them), and the reports show the policy diff from them to the candidate.")
@log_option
@click.option("--decision", help="Only this decision.")
@click.option("--from", "start", callback=instant_option, help="Decisions logged at or after this instant.")
@click.option("--to", "end", callback=instant_option, help="Decisions logged before this instant.")
@click.option("--limit", type=click.IntRange(min=1), help="At most the latest N logged decisions.")
@click.option("--format", "output", type=click.Choice(["md", "json", "html"]), default="md", show_default=True)
@click.option("--fail-on", "fail_on", multiple=True, callback=_fail_on,
              help="Exit 3 when a transition's share of the replayed decisions passes a limit, e.g. 'allow->deny>0.5%'.")
@click.option("--processes", type=click.IntRange(min=1), help="Replay with this many processes (default: one per core).")
@click.option("--scheduler", envvar=SCHEDULER_VARIABLE, show_envvar=True,
              help="Replay on the dask.distributed cluster of this scheduler (tcp://HOST:PORT) instead of local "
                   "processes; its workers must reach the log (--log) and run this rulesvc.")
def impact_command(candidate_dir: str, rules_dir: str, log_url: str, decision: str | None, start: datetime | None,
                   end: datetime | None, limit: int | None, output: str, fail_on: list[tuple[str, float]],
                   processes: int | None, scheduler: str | None) -> None:
    """Replay logged decisions on candidate rules and report what would change (SPEC §11)."""
    candidate = rules_or_exit([candidate_dir], code=2)  # every problem, and no replay, when the candidate is broken
    database = _database(log_url)
    # "before" is what the active rules decide; without them, the logged decisions as they were made
    active = rules_or_exit([rules_dir], code=2) if Path(rules_dir).is_dir() else None
    query = LogQuery(decision=decision, start=start, end=end, limit=limit)
    show_progress = output != "json" and sys.stderr.isatty() and not os.environ.get("CI")
    started = time.monotonic()
    try:
        candidate_files = read_rule_files(candidate_dir)
        active_files = active.files() if active is not None else None
        if show_progress:
            tally = _with_progress(database, candidate_files, active_files, query, processes, scheduler)
        else:
            tally = impact(database, candidate_files, query, active=active_files, processes=processes,
                           scheduler=scheduler)
    except (LogUnavailable, ClusterUnavailable) as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    except RuleFileError as error:  # a candidate file changed since it was checked
        for problem in error.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    report = tally.as_json()
    report["candidate"] = {"dir": candidate_dir, "versions": sorted(d.version for d in candidate.domains.values())}
    report["compared_with"] = f"the rules in {rules_dir}" if active is not None else "the logged decisions"
    title = f"{candidate_dir} on {log_url}"
    if output == "json":
        print_json(report)
    else:
        diff_text = diff_markdown(diff_rulebooks(active, candidate), rules_dir, candidate_dir) if active else ""
        if output == "md":
            click.echo(impact_markdown(report, title) + ("\n" + diff_text if diff_text else ""))
        else:
            click.echo(impact_html(report, title))
        seconds = time.monotonic() - started
        click.echo(f"replayed {report['replayed']:,} decisions in {seconds:.1f} s", err=True)
    exceeded = [(transition, limit_share) for transition, limit_share in fail_on if tally.share(transition) > limit_share]
    for transition, limit_share in exceeded:
        click.echo(f"--fail-on: {transition} is {100 * tally.share(transition):.2f}% of the replayed decisions "
                   f"(limit {100 * limit_share:g}%)", err=True)
    if exceeded:
        sys.exit(3)


def _with_progress(database: LogDatabase, files: dict[str, str], active: dict[str, str] | None, query: LogQuery,
                   processes: int | None, scheduler: str | None) -> Any:
    """Replay with a progress bar on the terminal: done, rate and the time left."""
    total = database.span(query)[0]
    started = time.monotonic()
    done = [0]

    def rate(_: Any) -> str:
        seconds = time.monotonic() - started
        return f"{done[0] / seconds:,.0f} decisions/s" if seconds > 0 and done[0] else ""

    with click.progressbar(length=total, label="replaying", file=sys.stderr, show_eta=True, show_percent=True,
                           item_show_func=rate) as bar:
        def advance(count: int) -> None:
            done[0] += count
            bar.update(count, done[0])

        return impact(database, files, query, active=active, processes=processes, on_progress=advance,
                      scheduler=scheduler)


COMMANDS = [log_group, explain_command, versions_command, diff_command, impact_command]
