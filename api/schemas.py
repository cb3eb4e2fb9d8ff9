"""Request envelopes and response shapes. The facts inside are validated by the engine's schemas,
generated from the rule files; these only describe what surrounds them (and document it)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine.bundle.store import PUBLICATION_KINDS
from engine.reference.facts import FIELD_MESSAGES, SCHEMA_MESSAGES, Instant, StrictBool, text_problem

from .pagination import MAX_PAGE_ENTRIES

OUTCOMES = ["allow", "deny", "defer", "review"]
MAX_BATCH_ITEMS = 10_000


def _plain_text(value: str) -> None:
    problem = text_problem(value)
    if problem:
        raise ValidationError(problem)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank (spaces only)")


class Envelope(Schema):
    """A request body or query: unknown keys refused, in the engine's words (engine/reference/facts.py), not marshmallow's."""

    class Meta:
        unknown = RAISE

    error_messages = SCHEMA_MESSAGES


class DecisionRequest(Envelope):
    facts = fields.Raw(required=True, error_messages=FIELD_MESSAGES,
                       metadata={"description": "The facts the decision declares."})
    now = Instant(load_default=None, allow_none=True,
                  metadata={"description": "Evaluate as of this instant; default: the server clock. With commit, "
                                           "at most RULESVC_COMMIT_SKEW seconds (default 300) from the server clock, "
                                           "else 400 INVALID_REQUEST."})
    explain = StrictBool(load_default=False, metadata={"description": "Add the trace."})
    commit = StrictBool(load_default=False, metadata={"description": "Reserve counters and record the decision."})
    idempotency_key = fields.String(load_default=None, allow_none=True,
                                    validate=[validate.Length(min=1, max=200), _plain_text, _not_blank],
                                    metadata={"description": "Required with commit (else 400 INVALID_REQUEST); scoped "
                                                             "per decision: the same key on this decision returns the "
                                                             "first decision, marked replayed, with the header "
                                                             "Idempotent-Replayed: true."})

    @validates_schema
    def _key_with_commit(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("commit") and not data.get("idempotency_key"):
            raise ValidationError("a commit needs an idempotency_key", "idempotency_key")


class BatchItem(Envelope):
    facts = fields.Raw(required=True, error_messages=FIELD_MESSAGES)
    now = Instant(load_default=None, allow_none=True)


class BatchRequest(Envelope):
    items = fields.List(fields.Raw(allow_none=True), required=True, error_messages=FIELD_MESSAGES,
                        validate=validate.Length(min=1, max=MAX_BATCH_ITEMS),
                        metadata={"description": "Each item: {facts, now?}. Results come back in the same order."})


class RecordsQuery(Envelope):
    decision = fields.String(load_default=None, validate=_plain_text)
    outcome = fields.String(load_default=None, validate=validate.OneOf(OUTCOMES))
    id = fields.String(load_default=None, validate=_plain_text)
    order_id = fields.String(load_default=None, validate=_plain_text)
    store_id = fields.String(load_default=None, validate=_plain_text)
    from_ = Instant(data_key="from", load_default=None)
    to = Instant(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
    limit = fields.Integer(load_default=MAX_PAGE_ENTRIES, validate=validate.Range(min=1, max=MAX_PAGE_ENTRIES),
                           metadata={"description": "Records in this page (at most 1,000)."})
    cursor = fields.String(load_default=None, validate=validate.Length(max=200),
                           metadata={"description": "Where to go on: the Next-Cursor header of the previous page."})


class LogQuery(Envelope):
    decision = fields.String(load_default=None, validate=_plain_text)
    outcome = fields.String(load_default=None, validate=validate.OneOf(OUTCOMES))
    code = fields.String(load_default=None, validate=_plain_text)
    id = fields.String(load_default=None, validate=_plain_text)
    from_ = Instant(data_key="from", load_default=None)
    to = Instant(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE_ENTRIES),
                           metadata={"description": "Entries in this page (at most 1,000)."})
    shadow = fields.Boolean(load_default=False, metadata={"description": "true: the shadow runs instead of decisions"})
    cursor = fields.String(load_default=None, validate=validate.Length(max=200),
                           metadata={"description": "Where to go on: the Next-Cursor header of the previous page."})


class ImpactQuery(Envelope):
    file = fields.String(required=True, error_messages=FIELD_MESSAGES, validate=validate.Regexp(r"^[A-Za-z0-9_.-]+\.ya?ml$",
                                                                 error="must be a rule file name such as payout.yaml"))
    decision = fields.String(load_default=None, validate=_plain_text)
    from_ = Instant(data_key="from", load_default=None)
    to = Instant(load_default=None)
    limit = fields.Integer(load_default=10_000, validate=validate.Range(min=1),
                           metadata={"description": "Replay at most the latest N logged decisions "
                                                    "(past RULESVC_IMPACT_MAX_DECISIONS: 413 LIMIT_EXCEEDED)."})


class VerifyQuery(Envelope):
    file = fields.String(required=True, error_messages=FIELD_MESSAGES, validate=validate.Regexp(r"^[A-Za-z0-9_.-]+\.ya?ml$",
                                                                 error="must be a rule file name such as payout.yaml"))
    decision = fields.String(load_default=None, validate=_plain_text)


RULE_FILE_NAME = validate.Regexp(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.ya?ml$",
                                 error="must be a rule file name such as payout.yaml")
REASON = validate.Length(min=1, max=2000, error="must say why, in 1 to 2000 characters")


class DraftQuery(Envelope):
    file = fields.String(required=True, error_messages=FIELD_MESSAGES, validate=RULE_FILE_NAME,
                         metadata={"description": "The rule file the body replaces (or adds), e.g. recovery.yaml."})


class PublishBody(Envelope):
    reason = fields.String(required=True, error_messages=FIELD_MESSAGES, validate=REASON,
                           metadata={"description": "Why, recorded with the version (SPEC §12.1)."})


class RollbackBody(Envelope):
    domain = fields.String(required=True, error_messages=FIELD_MESSAGES, validate=_plain_text)
    version = fields.String(required=True, error_messages=FIELD_MESSAGES,
                            validate=validate.Regexp(r"^sha256:[0-9a-f]{64}$", error="must be a version such as sha256:…"))
    reason = fields.String(required=True, error_messages=FIELD_MESSAGES, validate=REASON)


# --- responses (documentation) -------------------------------------------------------------------
# These describe the JSON the endpoints answer, for the OpenAPI document (api/openapi.py) and the
# clients generated from it; nothing loads with them.

DATE_TIME = {"format": "date-time"}


class Message(Schema):
    zh = fields.String(required=True)
    en = fields.String(required=True)


class Reason(Schema):
    code = fields.String(required=True)
    rule = fields.String(required=True, metadata={"example": "recovery.contact/sms-window"})
    message = fields.Nested(Message, required=True)


class RulesetRef(Schema):
    domain = fields.String(required=True)
    version = fields.String(required=True, metadata={"example": "sha256:…"})


class TraceCondition(Schema):
    condition = fields.String(required=True, metadata={"description": "As written; a negation stays one."})
    value = fields.Boolean(required=True)
    operands = fields.Dict(required=True, metadata={"description": "Each name the condition reads, with its value."})


class Assumption(Schema):
    constant = fields.String(required=True)
    value = fields.Raw(required=True)
    note = fields.String(required=True)


class TraceEntry(Schema):
    rule = fields.String(required=True)
    effect = fields.String(required=True, validate=validate.OneOf(["deny", "defer", "review", "warn", "oblige"]))
    code = fields.String(required=True, allow_none=True)
    when = fields.String(required=True)
    fired = fields.Boolean(required=True)
    conditions = fields.List(fields.Nested(TraceCondition), required=True)
    assumptions = fields.List(fields.Nested(Assumption), required=True, metadata={
        "description": "Constants marked ASSUMPTION that the condition reads: values to confirm, not platform rules."})


class DecisionResult(Schema):
    """The decision: outcome, reasons, warnings, obligations, values, next_eligible_at."""

    decision_id = fields.String(required=True)
    decision = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reasons = fields.List(fields.Nested(Reason), required=True)
    warnings = fields.List(fields.Nested(Reason), required=True)
    obligations = fields.Dict(required=True)
    values = fields.Dict(required=True)
    next_eligible_at = fields.String(required=True, allow_none=True, metadata={
        **DATE_TIME, "description": "With defer: the earliest instant every deferring rule is satisfied."})
    ruleset = fields.Nested(RulesetRef, required=True)
    evaluated_at = fields.String(required=True, metadata={**DATE_TIME, "description": "The instant evaluated as of "
                                                                                    "(the request's now)."})
    trace = fields.List(fields.Nested(TraceEntry), metadata={"description": "Only with explain."})
    replayed = fields.Boolean(metadata={"description": "true: a repeated idempotency key, answered with the first "
                                                       "decision (header Idempotent-Replayed: true)."})


class ErrorDetail(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.List(fields.String()),
                          metadata={"description": "Each field path with its messages (invalid facts or query)."})
    problems = fields.List(fields.String(), metadata={"description": "FILE:LINE:COL: message lines."})
    known = fields.List(fields.String(), metadata={"description": "The known decisions (unknown decision)."})
    active_version = fields.String(metadata={"description": "The rules still serving (refused reload)."})
    limit = fields.String(metadata={"description": "LIMIT_EXCEEDED: the setting (environment variable) that bounds it"})
    maximum = fields.Float(metadata={"description": "LIMIT_EXCEEDED: its value"})
    unit = fields.String(metadata={"description": "LIMIT_EXCEEDED: steps, seconds…"})


class Error(Schema):
    """An error answer: a code, a message and, where they apply, field errors or problems."""

    error = fields.Nested(ErrorDetail, required=True)


class Ruleset(Schema):
    """One active rule file."""

    domain = fields.String(required=True)
    decisions = fields.List(fields.String(), required=True)
    version = fields.String(required=True)
    file = fields.String(required=True)
    loaded_at = fields.String(required=True, metadata=DATE_TIME)


class ReloadState(Schema):
    ok = fields.Boolean(required=True)
    at = fields.String(required=True, metadata=DATE_TIME)
    problems = fields.List(fields.String(), required=True)


class RulesetList(Schema):
    """The active rules: per domain its decisions, version and file; the last reload's result."""

    version = fields.String(required=True, metadata={"description": "domain=version for every active domain."})
    last_reload = fields.Nested(ReloadState, required=True)
    rulesets = fields.List(fields.Nested(Ruleset), required=True)


class ReloadResult(Schema):
    """The rules were reloaded; their new version."""

    reloaded = fields.Boolean(required=True)
    version = fields.String(required=True)


class Problem(Schema):
    file = fields.String(required=True)
    line = fields.Integer(required=True)
    column = fields.Integer(required=True)
    message = fields.String(required=True)
    text = fields.String(required=True, metadata={"description": "FILE:LINE:COL: message"})


class ValidationReport(Schema):
    """Whether the rule file is valid, and every problem with its line and column."""

    valid = fields.Boolean(required=True)
    problems = fields.List(fields.Nested(Problem), required=True)


class Record(Schema):
    decision_id = fields.String(required=True, metadata={"description": "打款单号 for payouts"})
    decision = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason_codes = fields.List(fields.String(), required=True)
    ruleset_version = fields.String(required=True)
    evaluated_at = fields.String(required=True, metadata={**DATE_TIME, "description": "When the commit was made: "
                                                                                    "the server's clock."})
    now = fields.String(required=True, metadata={**DATE_TIME, "description": "The instant decided as of: the "
                                                                           "request's now (within RULESVC_COMMIT_SKEW)."})
    committed = fields.Boolean(required=True)
    idempotency_key = fields.String(required=True, allow_none=True)
    order_id = fields.String(required=True, allow_none=True)
    customer_account = fields.String(required=True, allow_none=True)
    store_id = fields.String(required=True, allow_none=True)
    amount = fields.String(required=True, allow_none=True, metadata={"description": "CNY, two decimals"})
    reason = fields.String(required=True, allow_none=True)


class RecordList(Schema):
    """Committed decision records, oldest first: one page."""

    records = fields.List(fields.Nested(Record), required=True)
    next_cursor = fields.String(required=True, allow_none=True,
                                metadata={"description": "The cursor of the next page (as ?cursor=); null on the last"})


class CaseReport(Schema):
    case = fields.String(required=True)
    line = fields.Integer(required=True)
    passed = fields.Boolean(required=True)
    failures = fields.List(fields.String(), required=True)
    report = fields.String(required=True, allow_none=True, metadata={"description": "Expected vs actual and the trace."})


class RuleCoverage(Schema):
    fired = fields.Integer(required=True)
    not_fired = fields.Integer(required=True)


class ScenarioRun(Schema):
    """Per-case results and rule coverage."""

    summary = fields.String(required=True, metadata={"example": "12 passed, 0 failed"})
    passed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    results = fields.List(fields.Nested(CaseReport), required=True)
    coverage = fields.Dict(keys=fields.String(), values=fields.Nested(RuleCoverage), required=True,
                           metadata={"description": "Per rule: cases where it fired and where it did not."})


class Health(Schema):
    """The process is alive."""

    status = fields.String(required=True, metadata={"example": "ok"})


class Readiness(Schema):
    """The service is ready, with its active rules: the store can serve commits."""

    status = fields.String(required=True, metadata={"example": "ready"})
    version = fields.String(required=True)
    decisions = fields.Integer(required=True)
    store = fields.String(required=True, metadata={"example": "ok"})
    records = fields.String(required=True, metadata={
        "example": "ok", "description": "ok, or why the record store takes no records now (commits go on: "
                                        "their records wait in the outbox)"})


# --- the decision log, versions, impact and shadow (SPEC §10, §11) ------------------------------------

class ShadowRun(Schema):
    of = fields.String(required=True, metadata={"description": "The decision this shadow run shadowed."})
    candidate = fields.String(required=True, allow_none=True, metadata={"description": "The candidate's version."})
    agreed = fields.Boolean(required=True)
    before = fields.Dict(required=True, metadata={"description": "The service's decision: outcome, codes, values…"})
    not_replayable = fields.String(metadata={"description": "Why the candidate could not decide it."})


class LogEntry(Schema):
    """One logged decision (SPEC §10): sensitive facts appear as hmac:<hex>."""

    decision_id = fields.String(required=True)
    decision = fields.String(required=True)
    evaluated_at = fields.String(required=True, metadata={**DATE_TIME, "description": "When the service decided."})
    now = fields.String(required=True, metadata={**DATE_TIME, "description": "The instant decided as of."})
    source = fields.String(required=True, validate=validate.OneOf(["http", "batch", "commit", "cli"]))
    facts = fields.Dict(required=True, metadata={"description": "As validated; sensitive ones masked."})
    masked = fields.List(fields.String(), required=True, metadata={"description": "The fact paths kept as an HMAC."})
    counters = fields.Dict(required=True, metadata={"description": "The stored counts the decision read."})
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reasons = fields.List(fields.String(), required=True)
    warnings = fields.List(fields.String(), required=True)
    rules_fired = fields.List(fields.String(), required=True)
    obligations = fields.Dict(required=True)
    values = fields.Dict(required=True)
    next_eligible_at = fields.String(required=True, allow_none=True, metadata=DATE_TIME)
    ruleset_version = fields.String(required=True)
    duration_us = fields.Integer(required=True)
    committed = fields.Boolean(required=True)
    shadow = fields.Nested(ShadowRun, required=True, allow_none=True)


class Explanation(Schema):
    """A logged decision replayed on the rules it was made with: whether it reproduces, with the trace."""

    decision_id = fields.String(required=True)
    reproduced = fields.Boolean(required=True)
    logged = fields.Nested(LogEntry, required=True)
    replayed = fields.Nested(DecisionResult, required=True, allow_none=True)
    why_not = fields.String(required=True, allow_none=True)
    differences = fields.List(fields.String(), required=True)


class RulesetVersion(Schema):
    version = fields.String(required=True)
    domain = fields.String(required=True)
    file = fields.String(required=True)
    first_active_at = fields.String(required=True, metadata=DATE_TIME)
    active = fields.Boolean(required=True)
    published_by = fields.String(allow_none=True, metadata={"description": "Who published it last (SPEC §12.1); "
                                                                           "null when only the rules directory had it"})
    reason = fields.String(allow_none=True)
    published_at = fields.String(allow_none=True, metadata=DATE_TIME)
    kind = fields.String(allow_none=True, validate=validate.OneOf(PUBLICATION_KINDS))


class Publication(Schema):
    """One rule-file version put live: by a publication, a rollback, a first start or a change in the directory."""

    seq = fields.Integer(required=True)
    file = fields.String(required=True)
    domain = fields.String(required=True)
    version = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(PUBLICATION_KINDS))
    published_by = fields.String(required=True)
    reason = fields.String(required=True)
    published_at = fields.String(required=True, metadata=DATE_TIME)
    draft_id = fields.String(allow_none=True)


class PublishResult(Publication):
    active_version = fields.String(required=True, metadata={"description": "The rulebook now active in this worker"})


class RulesetVersionList(Schema):
    """Every ruleset version that was ever active, oldest first; every publication, newest first."""

    versions = fields.List(fields.Nested(RulesetVersion), required=True)
    publications = fields.List(fields.Nested(Publication), required=True)


class Approval(Schema):
    admin = fields.String(required=True)
    approved_at = fields.String(required=True, metadata=DATE_TIME)


class DraftReview(Schema):
    """A draft and its review (SPEC §12.1); a part that could not be computed is {"unavailable": why}."""

    draft_id = fields.String(required=True)
    file = fields.String(required=True)
    domain = fields.String(required=True, allow_none=True)
    base_version = fields.String(required=True, allow_none=True)
    author = fields.String(required=True)
    created_at = fields.String(required=True, metadata=DATE_TIME)
    status = fields.String(required=True, validate=validate.OneOf(["open", "published"]))
    approvals = fields.List(fields.Nested(Approval), required=True)
    published_seq = fields.Integer(allow_none=True)
    problems = fields.List(fields.Dict(), required=True, metadata={"description": "file, line, column, message, text"})
    diff = fields.Dict(allow_none=True, metadata={"description": "rulesvc diff's JSON (SPEC §11)"})
    impact = fields.Dict(allow_none=True, metadata={"description": "The impact JSON (SPEC §11)"})
    scenarios = fields.Dict(allow_none=True, metadata={"description": "passed, failed, changed: [{suite, case, line, "
                                                                      "decision, before, after}]"})
    verify = fields.Dict(allow_none=True, metadata={"description": "rulesvc verify's JSON (SPEC §13)"})
    text = fields.String(metadata={"description": "The draft's text (GET of one draft)"})


class DraftSummary(Schema):
    draft_id = fields.String(required=True)
    file = fields.String(required=True)
    domain = fields.String(allow_none=True)
    author = fields.String(required=True)
    created_at = fields.String(required=True, metadata=DATE_TIME)
    status = fields.String(required=True)
    base_version = fields.String(allow_none=True)
    problems = fields.Integer(required=True)
    scenarios_changed = fields.Integer(allow_none=True)
    transitions = fields.Dict(allow_none=True)


class DraftList(Schema):
    drafts = fields.List(fields.Nested(DraftSummary), required=True)


class ApprovalResult(Schema):
    draft_id = fields.String(required=True)
    approvals = fields.List(fields.Nested(Approval), required=True)


class KeptVersion(Schema):
    """One kept ruleset version with the text of its files."""

    version = fields.String(required=True)
    domain = fields.String(required=True)
    file = fields.String(required=True)
    first_active_at = fields.String(required=True, metadata=DATE_TIME)
    files = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class NotReplayable(Schema):
    count = fields.Integer(required=True)
    why = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class RuleFiring(Schema):
    fired_before = fields.Integer(required=True)
    fired_after = fields.Integer(required=True)


class VerifyReport(Schema):
    """rulesvc verify's JSON (SPEC §13): per decision its outcomes, dead and always-firing rules,
    evaluation errors, invariants and what stayed unknown; each witness a request the service decided."""

    decisions = fields.Dict(keys=fields.String(), values=fields.Dict(), required=True,
                            metadata={"description": "decision -> {outcomes, dead, always, errors, invariants, "
                                                     "unknown, problems, seconds}"})
    summary = fields.Dict(required=True, metadata={"description": "{decisions, problems, unknown, proved, seconds}"})


class ImpactReport(Schema):
    """Logged decisions replayed on candidate rules (SPEC §11): what changes."""

    replayed = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    changed = fields.Integer(required=True)
    not_replayable = fields.Nested(NotReplayable, required=True)
    transitions = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                              metadata={"description": "before->after outcome: how many."})
    reasons_added = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    reasons_removed = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    rules = fields.Dict(keys=fields.String(), values=fields.Nested(RuleFiring), required=True)
    values_changed = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    examples = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                           metadata={"description": "Per transition, the first decision ids (explain them)."})
    candidate = fields.Dict(required=True)
