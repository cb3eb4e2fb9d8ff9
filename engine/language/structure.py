"""Structure checks of YAML documents against their published JSON Schemas (rule files, scenario
files), reported as ``FILE:LINE:COL: message`` with did-you-mean for misspelt keys."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema

from engine.errors import Problem
from engine.language.expressions import did_you_mean
from engine.language.source import Path, SourceDocument


def load_schema(name: str) -> tuple[dict[str, Any], jsonschema.protocols.Validator]:
    """A schema shipped in ``engine/schemas`` and its validator."""
    schema = json.loads(resources.files("engine").joinpath(f"schemas/{name}").read_text("utf-8"))
    return schema, jsonschema.Draft202012Validator(schema)


def structure_problems(document: SourceDocument, validator: jsonschema.protocols.Validator) -> list[Problem]:
    """Every place where the document does not fit the JSON Schema, as positioned problems."""
    problems = []
    for error in validator.iter_errors(document.data):
        problems.extend(_explain(document, error))
    return problems


def _explain(document: SourceDocument, error: jsonschema.ValidationError) -> list[Problem]:
    path: Path = tuple(error.absolute_path)
    where = _describe_path(path)
    if error.validator == "oneOf":
        # Of the alternatives, explain the one that got furthest: it matched the type, failed inside.
        inside = [sub for sub in error.context if sub.validator != "type"]
        if inside:
            return _explain(document, jsonschema.exceptions.best_match(inside))
        expected = sorted({t for sub in error.context for t in _as_list(sub.validator_value)})
        return [document.problem(path, f"{where}: expected {' or '.join(expected)}, got {_json_type(error.instance)}")]
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extras = [key for key in error.instance if key not in allowed]
        return [document.problem(path + (key,), f"unknown key {key!r} in {where}{did_you_mean(str(key), allowed)}",
                                 key=True) for key in extras]
    if error.validator == "required":
        # jsonschema reports each missing key on its own, naming it in a message it may reword: the key is
        # the missing one the message names (the longest, if one name holds another), else the first missing.
        missing = [key for key in error.validator_value if isinstance(error.instance, dict) and key not in error.instance]
        named = [key for key in missing if key in error.message]
        name = max(named, key=len) if named else (missing[0] if missing else error.message)
        return [document.problem(path, f"{where}: missing required key {name!r}", key=True)]
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return [document.problem(path, f"{where}: expected {' or '.join(expected)}, got {_json_type(error.instance)}")]
    if error.validator == "enum":
        choices = [str(choice) for choice in error.validator_value]
        return [document.problem(path, f"{where}: {error.instance!r} is not one of {', '.join(choices)}"
                                       f"{did_you_mean(str(error.instance), choices)}")]
    if error.validator == "pattern":
        return [document.problem(path, f"{where}: {error.instance!r} does not match {error.validator_value}")]
    if error.validator == "propertyNames":
        return [document.problem(path, f"{where}: {error.message}")]
    return [document.problem(path, f"{where}: {error.message}")]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _describe_path(path: Path) -> str:
    if not path:
        return "the file"
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "mapping"}.get(
        type(value), type(value).__name__)
