"""Request facts: marshmallow schemas generated from a decision's declarations.

A schema is built once per load. Loading facts gives Python values (``Decimal`` money, aware
``datetime`` instants, ``date``); null and absent optional facts are the same thing, and declared
defaults fill them in. Every error is reported by its field path (``order.items.0.sku``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from engine.errors import InvalidFacts
from engine.language.model import MISSING, FieldSpec
from engine.runtime.values import MAX_INT, parse_date, parse_instant, parse_money, parse_time


class _Parsed(fields.Field):
    """A field whose value goes through one of the rule language's parsers."""

    parser: Any = None

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return type(self).parser(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


class Money(_Parsed):
    parser = staticmethod(parse_money)


class Instant(_Parsed):
    parser = staticmethod(parse_instant)


class Date(_Parsed):
    parser = staticmethod(parse_date)


class TimeOfDay(_Parsed):
    parser = staticmethod(parse_time)


class StrictBool(fields.Field):
    """Only JSON true/false: 1, "yes" or "true" are not booleans."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class StrictInt(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be a whole number")
        if abs(value) > MAX_INT:
            raise ValidationError(f"must be between -{MAX_INT} and {MAX_INT}")
        return value


MAX_TEXT = 2000


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored and matched as text, or None."""
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters"
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


class StrictStr(fields.Field):
    """Only JSON strings (an enum adds a OneOf validator, which also documents its values)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ValidationError("must be a string")
        problem = text_problem(value)
        if problem:
            raise ValidationError(problem)
        return value


# What a request is told about a field or an object that does not fit, in our words rather than
# marshmallow's defaults (a release may reword those; callers and the console's translations read these).
REQUIRED = "Missing data for required field."
NULL = "Field may not be null."
UNKNOWN = "Unknown field."
NOT_AN_OBJECT = "Invalid input type."
NOT_A_LIST = "Not a valid list."
FIELD_MESSAGES = {"required": REQUIRED, "null": NULL}
SCHEMA_MESSAGES = {"unknown": UNKNOWN, "type": NOT_AN_OBJECT}

_SCALARS: dict[str, type[fields.Field]] = {
    "money": Money, "instant": Instant, "date": Date, "time": TimeOfDay, "bool": StrictBool, "int": StrictInt, "str": StrictStr,
}


def _field(spec: FieldSpec, decision: str, *, in_list: bool = False) -> fields.Field:
    options: dict[str, Any] = {"required": spec.required or in_list, "allow_none": not (spec.required or in_list),
                               "error_messages": FIELD_MESSAGES}
    if spec.description:
        options["metadata"] = {"description": spec.description}
    kind = spec.type.kind
    if spec.minimum is not None or spec.maximum is not None:
        options["validate"] = validate.Range(min=spec.minimum, max=spec.maximum,
                                             error=_range_message(spec.minimum, spec.maximum))
    if kind == "object":
        return fields.Nested(_schema_class(spec.fields, decision, spec.path), **options)
    if kind == "list":
        assert spec.item is not None
        options["error_messages"] = {**FIELD_MESSAGES, "invalid": NOT_A_LIST}
        return fields.List(_field(spec.item, decision, in_list=True), **options)
    if kind == "enum":
        return StrictStr(validate=validate.OneOf(spec.type.values, error="must be one of: {choices}"), **options)
    return _SCALARS[kind](**options)


def _range_message(minimum: Any, maximum: Any) -> str:
    if minimum is not None and maximum is not None:
        return "must be between {min} and {max}"
    return "must be at least {min}" if minimum is not None else "must be at most {max}"


def _schema_class(specs: dict[str, FieldSpec], decision: str, path: str = "facts") -> type[Schema]:
    """A schema class named ``payout.initiate.actor.quota``: the name also labels it in the OpenAPI document."""
    declared = {field_name: _field(spec, decision) for field_name, spec in specs.items()}
    schema_class = Schema.from_dict(declared, name=f"{decision}.{path.replace('[]', '.item')}")
    schema_class.Meta.unknown = RAISE
    schema_class.error_messages = SCHEMA_MESSAGES
    return schema_class


class FactsLoader:
    """Validates raw request facts for one decision with marshmallow and fills in defaults: the
    reference reader, which reports every error by its path (the fast path's generated reader,
    engine/runtime/reader.py, takes the usual shapes first)."""

    def __init__(self, name: str, specs: dict[str, FieldSpec]):
        self.specs = specs
        self.schema_class = _schema_class(specs, name)
        self.schema = self.schema_class(unknown=RAISE)

    def load(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise InvalidFacts({"facts": ["must be an object"]})
        try:
            loaded = self.schema.load(raw)
        except ValidationError as error:
            raise InvalidFacts(flatten_errors(error.messages)) from None
        return _fill_defaults(loaded, self.specs)


def _fill_defaults(values: dict[str, Any], specs: dict[str, FieldSpec]) -> dict[str, Any]:
    """Drop nulls (absent and null are the same) and apply declared defaults, depth first."""
    result: dict[str, Any] = {}
    for name, spec in specs.items():
        value = values.get(name)
        if value is None and spec.default is not MISSING:
            value = list(spec.default) if isinstance(spec.default, list) else (
                {} if isinstance(spec.default, dict) else spec.default)
        if value is None:
            continue
        if spec.type.kind == "object":
            value = _fill_defaults(value, spec.fields)
        elif spec.type.kind == "list" and spec.item is not None and spec.item.type.kind == "object":
            value = [_fill_defaults(item, spec.item.fields) for item in value]
        result[name] = value
    return result


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages as ``{"order.items.0.sku": [messages]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            # marshmallow files "not an object" under _schema; it belongs to the field itself.
            path = prefix if key == "_schema" and prefix else (f"{prefix}.{key}" if prefix else str(key))
            for sub_path, sub_messages in flatten_errors(value, path).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    elif isinstance(messages, list):
        flat[prefix or "facts"] = [str(message) for message in messages]
    else:
        flat[prefix or "facts"] = [str(messages)]
    return flat
