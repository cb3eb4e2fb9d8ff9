"""Property-based fuzzing of the decision endpoints, generated from the service's own OpenAPI document
(schemathesis): valid and invalid bodies for every decision, never a 5xx."""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings

from api import create_app

from .conftest import RULES

_directory = tempfile.mkdtemp(prefix="rulesvc-fuzz-")
app = create_app(RULES, store_url=f"sqlite:///{_directory}/store.db", log_url=f"sqlite:///{_directory}/log.db")
schema = schemathesis.openapi.from_wsgi("/openapi.json", app)


@schema.include(path_regex=r"^/v1/decisions/").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_decisions_never_answer_5xx(case):
    response = case.call()
    assert response.status_code < 500, response.text
    if response.content:  # (an automatic OPTIONS answer has no body)
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith(("application/json", "text/csv")), (case.method, content_type)
