"""The OpenAPI document, generated with apispec from the marshmallow schemas — including, for every
decision, the facts schema generated from its rule file — and rebuilt when the rules change."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from engine import Rulebook
from engine.facts import Date, Instant, Money, StrictBool, StrictInt, StrictStr, TimeOfDay

from . import schemas
from .bodies import YAML_TYPES

TITLE = "rulesvc"
_ERRORS = {
    "400": "Invalid facts or request: every field path with its messages",
    "404": "Unknown decision",
    "409": "Idempotency key reused with different facts",
    "413": "Body over the size limit (1 MiB; 16 MiB for a batch)",
    "415": "Body not sent as application/json",
    "503": "Store unavailable; nothing was written",
}


def build_spec(rulebook: Rulebook) -> dict[str, Any]:
    plugin = MarshmallowPlugin()
    spec = APISpec(title=TITLE, version=rulebook.version[:80] or "0", openapi_version="3.0.3", plugins=[plugin],
                   info={"description": "Merchant money-flow policies in YAML, matched by durable_rules. "
                                        "Each decision's facts are documented from its rule file."})
    converter = plugin.converter
    converter.add_attribute_function(_describe_custom_fields)
    for name in ("DecisionRequest", "BatchRequest", "DecisionResult", "Error", "Ruleset", "ValidationReport"):
        spec.components.schema(name, schema=getattr(schemas, name))
    error_responses = {code: _json(text, "Error") for code, text in _ERRORS.items()}

    spec.path(path="/v1/decisions/{decision}", operations={"post": {
        "tags": ["decisions"], "summary": "Evaluate a decision (any; see the per-decision paths for facts)",
        "parameters": [_path_parameter("decision", "DOMAIN.NAME, e.g. payout.initiate")],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/DecisionRequest"}}}},
        "responses": {"200": _json("The decision", "DecisionResult"), **error_responses}}})
    for name, compiled in sorted(rulebook.decisions.items()):
        facts_name = f"{name}.facts"
        spec.components.schema(facts_name, schema=compiled.facts.schema_class)
        request = {"type": "object", "required": ["facts"], "additionalProperties": False, "properties": {
            "facts": {"$ref": f"#/components/schemas/{facts_name}"},
            "now": {"type": "string", "format": "date-time", "nullable": True},
            "explain": {"type": "boolean"}, "commit": {"type": "boolean"},
            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200, "nullable": True}}}
        spec.path(path=f"/v1/decisions/{name}", operations={"post": {
            "tags": [compiled.domain.name], "summary": compiled.decision.description or name,
            "description": f"Rule file: {compiled.domain.file}. Source: {compiled.decision.source}",
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {"200": _json("The decision", "DecisionResult"), **error_responses}}})
        spec.path(path=f"/v1/decisions/{name}/batch", operations={"post": {
            "tags": [compiled.domain.name], "summary": f"Evaluate {name} for many fact sets, in order",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["items"], "additionalProperties": False, "properties": {"items": {
                    "type": "array", "minItems": 1, "maxItems": schemas.MAX_BATCH_ITEMS, "items": {
                        "type": "object", "required": ["facts"], "additionalProperties": False, "properties": {
                            "facts": {"$ref": f"#/components/schemas/{facts_name}"},
                            "now": {"type": "string", "format": "date-time", "nullable": True}}}}}}}}},
            "responses": {"200": {"description": "One result per item: a decision or an error",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          **error_responses}}})
    _static_paths(spec)
    return spec.to_dict()


def _static_paths(spec: APISpec) -> None:
    spec.path(path="/v1/decisions/records", operations={"get": {
        "tags": ["records"], "summary": "Committed decision records (JSON, or CSV with format=csv)",
        "parameters": [_query("decision"), _query("outcome", enum=schemas.OUTCOMES), _query("id"),
                       _query("order_id"), _query("store_id"),
                       _query("from", fmt="date-time"), _query("to", fmt="date-time"),
                       _query("format", enum=["json", "csv"]), _query("limit", kind="integer")],
        "responses": {"200": {"description": "Records", "content": {
            "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}},
            "400": _json("Invalid query", "Error"), "503": _json("Store unavailable", "Error")}}})
    spec.path(path="/v1/rulesets", operations={"get": {
        "tags": ["rulesets"], "summary": "Active rule files",
        "responses": {"200": {"description": "Rulesets", "content": {"application/json": {"schema": {"type": "object"}}}}}}})
    spec.path(path="/v1/rulesets/{domain}", operations={"get": {
        "tags": ["rulesets"], "summary": "One active rule file", "parameters": [_path_parameter("domain", "payout")],
        "responses": {"200": _json("Ruleset", "Ruleset"), "404": _json("Unknown domain", "Error")}}})
    spec.path(path="/v1/rulesets/validate", operations={"post": {
        "tags": ["rulesets"], "summary": "Validate a rule file (YAML text); nothing is activated",
        "parameters": [_query("file")], "security": _QA_SECURITY, "requestBody": _YAML_BODY,
        "responses": {"200": _json("Validation report", "ValidationReport"), **_HEAVY_ERRORS}}})
    spec.path(path="/v1/rulesets/reload", operations={"post": {
        "tags": ["rulesets"], "summary": "Reload rule files from disk, atomically (admin)",
        "security": [{"admin": []}],
        "responses": {"200": {"description": "Reloaded"}, "401": _json("No or wrong token", "Error"),
                      "403": _json("Admin endpoints disabled", "Error"),
                      "422": _json("Refused: problems listed, the running rules stay active", "Error")}}})
    spec.path(path="/v1/scenarios/run", operations={"post": {
        "tags": ["scenarios"], "summary": "Run a QA scenario file (YAML text) against the active rules",
        "parameters": [_query("file")], "security": _QA_SECURITY, "requestBody": _YAML_BODY,
        "responses": {"200": {"description": "Per-case results and rule coverage",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "400": _json("The scenario file has problems (FILE:LINE:COL)", "Error"), **_HEAVY_ERRORS}}})
    spec.components.security_scheme("admin", {"type": "http", "scheme": "bearer",
                                              "description": "The token in RULESVC_ADMIN_TOKEN"})
    spec.components.security_scheme("qa", {"type": "http", "scheme": "bearer",
                                           "description": "When RULESVC_QA_TOKEN is set: that token or the admin token"})
    for path, summary in (("/healthz", "Liveness"), ("/readyz", "Readiness"), ("/metrics", "Prometheus metrics")):
        spec.path(path=path, operations={"get": {"tags": ["operations"], "summary": summary,
                                                 "responses": {"200": {"description": "OK"}}}})


# Scenario runs and validations: YAML bodies, bounded work (SPEC §7.1).
_YAML_BODY = {"required": True, "content": {media: {"schema": {"type": "string"}} for media in YAML_TYPES}}
_QA_SECURITY: list[dict[str, list[str]]] = [{}, {"qa": []}]  # open unless RULESVC_QA_TOKEN is set
_HEAVY_ERRORS = {
    "401": {"description": "RULESVC_QA_TOKEN is set and no valid token was sent",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "413": {"description": "Body over 1 MiB, or LIMIT_EXCEEDED: more work than a count limit allows",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "415": {"description": "Body not sent as YAML",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "422": {"description": "LIMIT_EXCEEDED: the time budget ran out",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "429": {"description": "BUSY: this worker is running another one; see Retry-After",
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _path_parameter(name: str, example: str) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "schema": {"type": "string"}, "example": example}


def _query(name: str, *, enum: list[str] | None = None, fmt: str | None = None, kind: str = "string") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if enum:
        schema["enum"] = enum
    if fmt:
        schema["format"] = fmt
    return {"in": "query", "name": name, "required": False, "schema": schema}


_CUSTOM_FIELDS: dict[type, dict[str, Any]] = {
    Money: {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$",
            "description": "CNY, at most two decimals; a JSON number is accepted too"},
    Instant: {"type": "string", "format": "date-time", "description": "ISO 8601 with an offset"},
    Date: {"type": "string", "format": "date"},
    TimeOfDay: {"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2})?$"},
    StrictBool: {"type": "boolean"},
    StrictInt: {"type": "integer"},
    StrictStr: {"type": "string"},
}


def _describe_custom_fields(self: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    for field_class, properties in _CUSTOM_FIELDS.items():
        if isinstance(field, field_class):
            merged = dict(properties)
            if "description" in ret and "description" in merged:
                merged["description"] = f"{ret['description']} ({merged['description']})"
            return {key: value for key, value in merged.items() if key not in ret or key == "description"}
    return {}
