"""Request envelopes. The facts inside are validated by the engine's generated schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine.values import parse_instant


class InstantField(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_instant(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


class StrictBoolean(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class DecisionRequest(Schema):
    class Meta:
        unknown = RAISE

    facts = fields.Raw(required=True)
    now = InstantField(load_default=None, allow_none=True)
    explain = StrictBoolean(load_default=False)
    commit = StrictBoolean(load_default=False)
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))

    @validates_schema
    def _key_with_commit(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("commit") and not data.get("idempotency_key"):
            raise ValidationError("a commit needs an idempotency_key", "idempotency_key")


class RecordsQuery(Schema):
    class Meta:
        unknown = RAISE

    decision = fields.String(load_default=None)
    outcome = fields.String(load_default=None, validate=validate.OneOf(["allow", "deny", "defer", "review"]))
    id = fields.String(load_default=None)
    from_ = InstantField(data_key="from", load_default=None)
    to = InstantField(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=100_000))
