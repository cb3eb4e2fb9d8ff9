"""Request envelopes. The facts inside are validated by the engine's generated schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields

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
