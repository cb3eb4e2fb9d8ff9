"""The OpenAPI document, generated with apispec from the marshmallow schemas — including, for every
decision, the facts schema generated from its rule file — and rebuilt when the rules change.

It is written for client generators as much as for people: every operation has an ``operationId``,
every answer a typed schema, integer bounds are ``minimum``/``maximum``, an optional object is that
object or null (never "any object"), and instants are ``format: date-time``.

To document an endpoint, describe its JSON with a marshmallow schema in ``api/schemas.py`` and add one
:class:`Endpoint` to ``ENDPOINTS`` below, e.g.::

    Endpoint("get", "/v1/decisions/log", "list_decision_log", "log", "Logged decisions",
             ok=schemas.LogEntries, query=(query("decision"), query("from", fmt="date-time")), errors=(400,)),
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from engine import Rulebook
from engine.reference.facts import Date, Instant, Money, StrictBool, StrictInt, StrictStr, TimeOfDay

from . import schemas

TITLE = "rulesvc"
YAML_TYPES = ("application/yaml",)  # the media type documented for YAML bodies
# Every error answer is an Error body; an endpoint lists the statuses it can answer.
ERRORS = {
    400: "Invalid facts or request: every field path with its messages",
    401: "No or wrong token: the admin token; the QA token when RULESVC_QA_TOKEN is set; for audit reads the "
         "audit, QA or admin token",
    403: "Admin endpoints are disabled (no RULESVC_ADMIN_TOKEN); audit reads are disabled (none of "
         "RULESVC_AUDIT_TOKEN, RULESVC_QA_TOKEN, RULESVC_ADMIN_TOKEN is set)",
    404: "Unknown decision, domain, version, draft or logged decision; or the decision log is off",
    409: "Idempotency key reused with different facts; or a change refused: DRAFT_STALE (the live file changed since "
         "the draft), DRAFT_CLOSED, APPROVAL_REQUIRED, OWN_DRAFT, ALREADY_LIVE",
    413: "Body over the size limit (1 MiB; 16 MiB for a batch), or LIMIT_EXCEEDED: more work than a count limit allows",
    415: "Body not sent in the media type the endpoint takes (application/json; YAML: application/yaml)",
    422: "Refused: every FILE:LINE:COL problem (the running rules stay active), or a limit exceeded",
    429: "BUSY: this worker is running another scenario run, validation or impact replay; or TOO_MANY_REQUESTS: "
         "too many wrong tokens from this address lately (every endpoint that checks a token); see Retry-After",
    503: "Store or decision log unavailable; nothing was written",
}
DECISION_ERRORS = (400, 404, 409, 413, 415, 503)
HEAVY_ERRORS = (401, 413, 415, 422, 429)  # scenario runs, validations, impact replays: bounded work (SPEC §7.1)
AUDIT_ERRORS = (401, 403, 422, 429)  # reads of what was decided: a token, and bounded like heavy work
PAGE_HEADERS = {
    "Link": {"schema": {"type": "string"}, "description": 'The next page: <URL>; rel="next" (absent on the last page)'},
    "Next-Cursor": {"schema": {"type": "string"}, "description": "The cursor of the next page (absent on the last page)"},
}


def query(name: str, *, enum: list[str] | None = None, fmt: str | None = None, kind: str = "string",
          minimum: int | None = None, maximum: int | None = None, description: str = "") -> dict[str, Any]:
    """An optional query parameter."""
    schema: dict[str, Any] = {"type": kind}
    for key, value in (("enum", enum), ("format", fmt), ("minimum", minimum), ("maximum", maximum)):
        if value is not None:
            schema[key] = value
    parameter = {"in": "query", "name": name, "required": False, "schema": schema}
    return {**parameter, "description": description} if description else parameter


PATH_EXAMPLES = {"domain": "payout", "decision_id": "01M7ZVQDJC0SVSE542E53XQ5AG", "draft_id": "01M98WK1A5EHMMBFH1SGC88N9Y",
                 "version": "sha256:2dd55c56a7710bbc726547e90eb594e3160c0c198657b4aeafd6c4961c2f0ff0"}
LOG_FILTERS = (query("decision"), query("from", fmt="date-time", description="Logged at or after this instant"),
               query("to", fmt="date-time", description="Logged before this instant"))


def path_parameter(name: str, example: str) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "schema": {"type": "string"}, "example": example}


CURSOR = query("cursor", description="Where to go on: the Next-Cursor header of the previous page")
FILE_NAME = query("file", description="The file name the problems are reported under (FILE:LINE:COL), "
                                      "e.g. payout.yaml")


@dataclass(frozen=True)
class Endpoint:
    """One documented operation. ``ok`` is the 200 body's schema; ``body`` is ``"yaml"`` for a YAML text
    body or a schema for a JSON one; ``errors`` are the statuses it may answer with an Error body."""

    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    ok: type[Schema] | None = None
    query: tuple[dict[str, Any], ...] = ()
    body: str | type[Schema] | None = None
    errors: tuple[int, ...] = ()
    admin: bool = False
    qa: bool = False  # open, unless RULESVC_QA_TOKEN is set: then that token or the admin token
    audit: bool = False  # the audit, QA or admin token (SPEC §7.1)
    paged: bool = False  # a page with a cursor: Link and Next-Cursor headers
    also: tuple[tuple[str, dict[str, Any]], ...] = ()  # other 200 media types: (type, schema)
    ok_text: str = ""  # a 200 that is text (e.g. Prometheus), when there is no ``ok`` schema
    many: bool = False  # the 200 body is a JSON list of ``ok``
    status: int = 200  # the success status (201: a draft made)


ENDPOINTS = (
    Endpoint("get", "/v1/decisions/records", "list_decision_records", "records",
             "Committed decision records (JSON, or CSV with format=csv)", ok=schemas.RecordList,
             query=(query("decision"), query("outcome", enum=schemas.OUTCOMES), query("id"),
                    query("order_id", description="订单号"), query("store_id"),
                    query("from", fmt="date-time"), query("to", fmt="date-time"), query("format", enum=["json", "csv"]),
                    query("limit", kind="integer", minimum=1, maximum=1000), CURSOR),
             errors=(400, *AUDIT_ERRORS, 503), also=(("text/csv", {"type": "string"}),), audit=True, paged=True),
    Endpoint("get", "/v1/rulesets", "list_rulesets", "rulesets", "Active rule files", ok=schemas.RulesetList),
    Endpoint("get", "/v1/rulesets/{domain}", "get_ruleset", "rulesets", "One active rule file", ok=schemas.Ruleset,
             errors=(404,)),
    Endpoint("post", "/v1/rulesets/validate", "validate_ruleset", "rulesets",
             "Validate a rule file (YAML text); nothing is activated", ok=schemas.ValidationReport,
             query=(FILE_NAME,), body="yaml", errors=HEAVY_ERRORS, qa=True),
    Endpoint("post", "/v1/rulesets/reload", "reload_rulesets", "rulesets",
             "Reload rule files from disk, atomically (admin)", ok=schemas.ReloadResult, errors=(401, 403, 422),
             admin=True),
    Endpoint("post", "/v1/scenarios/run", "run_scenarios", "scenarios",
             "Run a QA scenario file (YAML text) against the active rules", ok=schemas.ScenarioRun,
             query=(FILE_NAME,), body="yaml", errors=(400, *HEAVY_ERRORS), qa=True),
    Endpoint("get", "/v1/decisions/log", "list_decision_log", "decision log",
             "Logged decisions, newest first (a JSON list)", ok=schemas.LogEntry, many=True,
             query=(*LOG_FILTERS, query("outcome", enum=schemas.OUTCOMES), query("code"), query("id"),
                    query("limit", kind="integer", minimum=1, maximum=1000),
                    query("shadow", kind="boolean", description="true: the shadow runs instead of the decisions"), CURSOR),
             errors=(400, 404, *AUDIT_ERRORS, 503), audit=True, paged=True),
    Endpoint("get", "/v1/decisions/log/{decision_id}/explain", "explain_logged_decision", "decision log",
             "Replay a logged decision on the rules it was made with: reproduced or why not, with the trace",
             ok=schemas.Explanation, errors=(404, *AUDIT_ERRORS, 503), audit=True),
    Endpoint("get", "/v1/rulesets/versions", "list_ruleset_versions", "rulesets",
             "Every ruleset version that was ever active", ok=schemas.RulesetVersionList, errors=(404, 503)),
    Endpoint("get", "/v1/rulesets/versions/{version}", "get_ruleset_version", "rulesets",
             "One kept ruleset version with its files' text", ok=schemas.KeptVersion, errors=(404, *AUDIT_ERRORS, 503),
             audit=True),
    Endpoint("post", "/v1/rulesets/impact", "impact_of_candidate", "rulesets",
             "Replay logged decisions on the active rules with one file replaced (admin)", ok=schemas.ImpactReport,
             query=({**query("file", description="The rule file the body replaces, e.g. payout.yaml"), "required": True},
                    *LOG_FILTERS, query("limit", kind="integer", minimum=1)),
             body="yaml", errors=(400, 403, 404, *HEAVY_ERRORS, 503), admin=True),
    Endpoint("post", "/v1/rulesets/verify", "verify_candidate", "rulesets",
             "Prove the active rules with one file replaced: outcomes, dead and always-firing rules, errors, "
             "invariants (admin)", ok=schemas.VerifyReport,
             query=({**query("file", description="The rule file the body replaces, e.g. recovery.yaml"), "required": True},
                    query("decision", description="Only this decision")),
             body="yaml", errors=(400, 403, *HEAVY_ERRORS, 503), admin=True),
    Endpoint("post", "/v1/rulesets/drafts", "create_draft", "publishing",
             "Make a draft of one rule file (YAML body) and answer its review: problems, diff, impact, the shipped "
             "scenario cases it changes, proofs (admin)", ok=schemas.DraftReview,
             query=({**query("file", description="The rule file the body replaces or adds, e.g. recovery.yaml"),
                     "required": True},), body="yaml", errors=(400, 403, *HEAVY_ERRORS, 503), admin=True, status=201),
    Endpoint("get", "/v1/rulesets/drafts", "list_drafts", "publishing", "Drafts, newest first (admin)",
             ok=schemas.DraftList, errors=(401, 403, 503), admin=True),
    Endpoint("get", "/v1/rulesets/drafts/{draft_id}", "get_draft", "publishing", "One draft with its text and review "
             "(admin)", ok=schemas.DraftReview, errors=(401, 403, 404, 503), admin=True),
    Endpoint("post", "/v1/rulesets/drafts/{draft_id}/approve", "approve_draft", "publishing",
             "Approve another admin's draft (RULESVC_PUBLISH_APPROVALS=2)", ok=schemas.ApprovalResult,
             errors=(401, 403, 404, 409, 503), admin=True),
    Endpoint("post", "/v1/rulesets/drafts/{draft_id}/publish", "publish_draft", "publishing",
             "Put a draft live, atomically, recording who and why; 409 DRAFT_STALE when the live file changed "
             "since the draft (admin)", ok=schemas.PublishResult, body=schemas.PublishBody,
             errors=(400, 401, 403, 404, 409, 415, 422, 503), admin=True),
    Endpoint("post", "/v1/rulesets/rollback", "rollback_ruleset", "publishing",
             "Publish a kept version of a domain again (admin)", ok=schemas.PublishResult, body=schemas.RollbackBody,
             errors=(400, 401, 403, 404, 409, 415, 422, 503), admin=True),
    Endpoint("get", "/v1/rulesets/shadow", "shadow_report", "rulesets",
             "The shadow rules' runs so far, in the impact form", ok=schemas.ImpactReport,
             errors=(404, *AUDIT_ERRORS, 503), audit=True),
    Endpoint("get", "/healthz", "healthz", "operations", "Liveness", ok=schemas.Health),
    Endpoint("get", "/readyz", "readyz", "operations", "Readiness: the active rules, a store that can serve commits",
             ok=schemas.Readiness, errors=(503,)),
    Endpoint("get", "/metrics", "metrics", "operations", "Prometheus metrics", ok_text="text/plain"),
)


def build_spec(rulebook: Rulebook) -> dict[str, Any]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title=TITLE, version=_document_version(rulebook), openapi_version="3.0.3", plugins=[plugin],
                   info={"description": "Merchant money-flow policies in YAML, matched by durable_rules. "
                                        "Each decision's facts are documented from its rule file.",
                         "x-ruleset-versions": {name: domain.version for name, domain in sorted(rulebook.domains.items())}})
    plugin.converter.add_attribute_function(_describe_custom_fields)
    spec.components.security_scheme("admin", {"type": "http", "scheme": "bearer",
                                              "description": "The token in RULESVC_ADMIN_TOKEN"})
    spec.components.security_scheme("qa", {"type": "http", "scheme": "bearer",
                                           "description": "When RULESVC_QA_TOKEN is set: that token (or the admin one)"})
    spec.components.security_scheme("audit", {"type": "http", "scheme": "bearer",
                                              "description": "The token in RULESVC_AUDIT_TOKEN (or the QA or admin one)"})
    for name in ("DecisionRequest", "BatchRequest", "DecisionResult", "Error"):
        spec.components.schema(name, schema=getattr(schemas, name))
    spec.path(path="/v1/decisions/{decision}", operations={"post": {
        "operationId": "decide", "tags": ["decisions"],
        "summary": "Evaluate a decision (any; see the per-decision paths for facts)",
        "parameters": [path_parameter("decision", "DOMAIN.NAME, e.g. payout.initiate")],
        "requestBody": _json_body("DecisionRequest"), "responses": _decision_responses(spec)}})
    for name, compiled in sorted(rulebook.decisions.items()):
        _decision_paths(spec, name, compiled)
    for endpoint in ENDPOINTS:
        _add(spec, endpoint)
    return _with_null_branches_closed(spec.to_dict())


def _decision_paths(spec: APISpec, name: str, compiled: Any) -> None:
    facts_name = f"{name}.facts"
    spec.components.schema(facts_name, schema=compiled.facts.schema_class)
    facts = {"$ref": f"#/components/schemas/{facts_name}"}
    now = {"type": "string", "format": "date-time", "nullable": True,
           "description": "Evaluate as of this instant (RFC 3339 with offset); default: the server clock. With "
                          "commit, at most RULESVC_COMMIT_SKEW seconds (default 300) from the server clock."}
    request = {"type": "object", "required": ["facts"], "additionalProperties": False, "properties": {
        "facts": facts, "now": now, "explain": {"type": "boolean"}, "commit": {"type": "boolean"},
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S", "nullable": True}}}
    operation = "decide_" + name.replace(".", "_")
    spec.path(path=f"/v1/decisions/{name}", operations={"post": {
        "operationId": operation, "tags": [compiled.domain.name], "summary": compiled.decision.description or name,
        "description": f"Rule file: {compiled.domain.file}. Source: {compiled.decision.source}",
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": _decision_responses(spec)}})
    item = {"type": "object", "required": ["facts"], "additionalProperties": False,
            "properties": {"facts": facts, "now": now}}
    batch = {"type": "object", "required": ["items"], "additionalProperties": False, "properties": {"items": {
        "type": "array", "minItems": 1, "maxItems": schemas.MAX_BATCH_ITEMS, "items": item}}}
    results = {"type": "object", "required": ["results"], "properties": {"results": {
        "type": "array", "description": "One per item, in order: a decision, or an error for an invalid item",
        "items": {"anyOf": [{"$ref": "#/components/schemas/DecisionResult"}, {"$ref": "#/components/schemas/Error"}]}}}}
    spec.path(path=f"/v1/decisions/{name}/batch", operations={"post": {
        "operationId": f"{operation}_batch", "tags": [compiled.domain.name],
        "summary": f"Evaluate {name} for many fact sets, in order",
        "requestBody": {"required": True, "content": {"application/json": {"schema": batch}}},
        "responses": {"200": {"description": "One result per item", "content": {"application/json": {"schema": results}}},
                      **_error_responses((400, 404, 413, 415))}}})


def _add(spec: APISpec, endpoint: Endpoint) -> None:
    operation: dict[str, Any] = {"operationId": endpoint.operation_id, "tags": [endpoint.tag],
                                 "summary": endpoint.summary}
    parameters = [path_parameter(part[1:-1], PATH_EXAMPLES.get(part[1:-1], "payout"))
                  for part in endpoint.path.split("/") if part.startswith("{")]
    if parameters or endpoint.query:
        operation["parameters"] = [*parameters, *endpoint.query]
    if endpoint.body == "yaml":
        operation["requestBody"] = {"required": True, "content": {
            media: {"schema": {"type": "string", "description": "YAML text"}} for media in YAML_TYPES}}
    elif endpoint.body is not None:
        operation["requestBody"] = _json_body(_component(spec, endpoint.body))
    if endpoint.admin:
        operation["security"] = [{"admin": []}]
    elif endpoint.qa:
        operation["security"] = [{}, {"qa": []}, {"admin": []}]
    elif endpoint.audit:
        operation["security"] = [{"audit": []}, {"qa": []}, {"admin": []}]
    errors = endpoint.errors
    if 401 in errors and 429 not in errors:
        errors = (*errors, 429)  # a token check is throttled per client (api.auth.token_accepted)
    if endpoint.ok is not None:
        operation["responses"] = _responses(spec, endpoint.ok, errors, many=endpoint.many)
        for media, schema in endpoint.also:
            operation["responses"]["200"]["content"][media] = {"schema": schema}
        if endpoint.paged:
            operation["responses"]["200"]["headers"] = PAGE_HEADERS
        if endpoint.status != 200:
            operation["responses"] = {str(endpoint.status): operation["responses"].pop("200"), **operation["responses"]}
    else:
        operation["responses"] = {"200": {"description": "OK", "content": {endpoint.ok_text: {"schema": {
            "type": "string"}}}}, **_error_responses(errors)}
    spec.path(path=endpoint.path, operations={endpoint.method: operation})


def _responses(spec: APISpec, ok: type[Schema], errors: tuple[int, ...], many: bool = False) -> dict[str, Any]:
    name = _component(spec, ok)
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
    return {"200": {"description": ok.__doc__.strip().splitlines()[0] if ok.__doc__ else name,
                    "content": {"application/json": {"schema": {"type": "array", "items": schema} if many else schema}}},
            **_error_responses(errors)}


def _decision_responses(spec: APISpec) -> dict[str, Any]:
    """A decision's answers; a commit's repeated idempotency key says so in a header too (SPEC §6)."""
    responses = _responses(spec, schemas.DecisionResult, DECISION_ERRORS)
    responses["200"]["headers"] = {"Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "Present on a commit whose idempotency key was used before on this decision: the first decision"}}
    return responses


def _error_responses(errors: tuple[int, ...]) -> dict[str, Any]:
    responses: dict[str, Any] = {str(status): {"description": ERRORS[status], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for status in errors}
    if "429" in responses:
        responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                       "description": "seconds until the running one's time budget ends, "
                                                                      "or until this address may try a token again"}}
    return responses


def _json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _component(spec: APISpec, schema: type[Schema]) -> str:
    """The component name of a response schema (its class name), registered once."""
    name = schema.__name__
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)
    return name


def _schema_name(schema: Any) -> str:
    """Nested response schemas are components named after their class."""
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__


def _document_version(rulebook: Rulebook) -> str:
    """The service's version and a digest of the active rules: whole, and a valid PEP 440 version
    (a generated client's package takes it); the domains' own versions are in ``x-ruleset-versions``."""
    try:
        package = metadata.version("rulesvc")
    except metadata.PackageNotFoundError:
        package = "0"
    return f"{package}+rules.{hashlib.sha256(rulebook.version.encode()).hexdigest()}"


def _with_null_branches_closed(document: dict[str, Any]) -> dict[str, Any]:
    """apispec writes an optional object (OpenAPI 3.0) as ``anyOf: [{type: object, nullable: true}, $ref]``,
    whose first branch accepts any object; keep the object's shape: ``anyOf: [$ref, null]``."""
    def visit(node: Any) -> None:
        if isinstance(node, dict):
            branches = node.get("anyOf")
            if isinstance(branches, list) and {"type": "object", "nullable": True} in branches:
                node["anyOf"] = [branch for branch in branches if branch != {"type": "object", "nullable": True}]
                node["anyOf"].append({"type": "object", "nullable": True, "enum": [None]})
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)
    visit(document)
    return document


_CUSTOM_FIELDS: dict[type, dict[str, Any]] = {
    Money: {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$",
            "description": "CNY, at most two decimals; a JSON number is accepted too"},
    Instant: {"type": "string", "format": "date-time",
              "description": "RFC 3339 with an offset, 1970–2999, e.g. 2026-11-20T10:00:00+08:00"},
    Date: {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
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
            # apispec writes the bounds of fields it does not know as numbers as x-minimum/x-maximum
            for bound, words in (("minimum", "at least"), ("maximum", "at most")):
                if f"x-{bound}" not in ret:
                    continue
                if field_class is StrictInt:
                    merged[bound] = ret.pop(f"x-{bound}")
                elif field_class is Money:  # a string: the bound is said in words
                    merged["description"] = f"{merged['description']}; {words} {ret.pop(f'x-{bound}')}"
            return {key: value for key, value in merged.items() if key not in ret or key == "description"}
    return {}
