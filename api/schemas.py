"""Request envelopes and response shapes. The facts inside are validated by the engine's schemas,
generated from the rule files; these only describe what surrounds them (and document it)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine.facts import Instant, StrictBool, text_problem

OUTCOMES = ["allow", "deny", "defer", "review"]
MAX_BATCH_ITEMS = 10_000


def _plain_text(value: str) -> None:
    problem = text_problem(value)
    if problem:
        raise ValidationError(problem)


class DecisionRequest(Schema):
    class Meta:
        unknown = RAISE

    facts = fields.Raw(required=True, metadata={"description": "The facts the decision declares."})
    now = Instant(load_default=None, allow_none=True,
                  metadata={"description": "Evaluate as of this instant (ISO 8601 with offset); default: the server clock."})
    explain = StrictBool(load_default=False, metadata={"description": "Add the trace."})
    commit = StrictBool(load_default=False, metadata={"description": "Reserve counters and record the decision."})
    idempotency_key = fields.String(load_default=None, allow_none=True,
                                    validate=[validate.Length(min=1, max=200), _plain_text],
                                    metadata={"description": "Required with commit; the same key returns the first decision."})

    @validates_schema
    def _key_with_commit(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("commit") and not data.get("idempotency_key"):
            raise ValidationError("a commit needs an idempotency_key", "idempotency_key")


class BatchItem(Schema):
    class Meta:
        unknown = RAISE

    facts = fields.Raw(required=True)
    now = Instant(load_default=None, allow_none=True)


class BatchRequest(Schema):
    class Meta:
        unknown = RAISE

    items = fields.List(fields.Raw(allow_none=True), required=True, validate=validate.Length(min=1, max=MAX_BATCH_ITEMS),
                        metadata={"description": "Each item: {facts, now?}. Results come back in the same order."})


class RecordsQuery(Schema):
    class Meta:
        unknown = RAISE

    decision = fields.String(load_default=None, validate=_plain_text)
    outcome = fields.String(load_default=None, validate=validate.OneOf(OUTCOMES))
    id = fields.String(load_default=None, validate=_plain_text)
    order_id = fields.String(load_default=None, validate=_plain_text)
    store_id = fields.String(load_default=None, validate=_plain_text)
    from_ = Instant(data_key="from", load_default=None)
    to = Instant(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=100_000))


# --- responses (documentation) -------------------------------------------------------------------

class Message(Schema):
    zh = fields.String()
    en = fields.String()


class Reason(Schema):
    code = fields.String()
    rule = fields.String(metadata={"example": "recovery.contact/sms-window"})
    message = fields.Nested(Message)


class RulesetRef(Schema):
    domain = fields.String()
    version = fields.String(metadata={"example": "sha256:…"})


class DecisionResult(Schema):
    decision_id = fields.String()
    decision = fields.String()
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    reasons = fields.List(fields.Nested(Reason))
    warnings = fields.List(fields.Nested(Reason))
    obligations = fields.Dict()
    values = fields.Dict()
    next_eligible_at = fields.String(allow_none=True)
    ruleset = fields.Nested(RulesetRef)
    evaluated_at = fields.String()
    trace = fields.List(fields.Dict(), metadata={"description": "Only with explain."})


class ErrorDetail(Schema):
    code = fields.String()
    message = fields.String()
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.List(fields.String()))
    problems = fields.List(fields.String())
    limit = fields.String(metadata={"description": "LIMIT_EXCEEDED: the setting (environment variable) that bounds it"})
    maximum = fields.Float(metadata={"description": "LIMIT_EXCEEDED: its value"})
    unit = fields.String(metadata={"description": "LIMIT_EXCEEDED: steps, seconds…"})


class Error(Schema):
    error = fields.Nested(ErrorDetail)


class Ruleset(Schema):
    domain = fields.String()
    decisions = fields.List(fields.String())
    version = fields.String()
    file = fields.String()
    loaded_at = fields.String()


class Problem(Schema):
    file = fields.String()
    line = fields.Integer()
    column = fields.Integer()
    message = fields.String()
    text = fields.String(metadata={"description": "FILE:LINE:COL: message"})


class ValidationReport(Schema):
    valid = fields.Boolean()
    problems = fields.List(fields.Nested(Problem))
