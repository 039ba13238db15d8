"""schemathesis against /openapi.json: generated requests never get a 5xx.

Responses are also checked against the document (status codes, content
types, JSON schemas), so the OpenAPI description stays true to the server.

The schema is loaded from an app created at import without a warm-up (cheap:
nothing loads until a request needs the models, and the process-wide runtime
is shared with the session ``app`` fixture). schemathesis's fixture-based
loader (``schemathesis.pytest.from_fixture``) is not used: 4.32 relies on a
private pytest attribute that pytest 9 no longer has.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from model_server import create_app

# DICOM bodies are opaque bytes, like application/octet-stream.
schemathesis.serializer.alias("application/dicom", "application/octet-stream")
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app({"WARMUP": False}))


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_generated_requests_get_no_server_error(case, app):
    # ``app`` (the session app) has loaded the shared runtime: /health is 200 here.
    response = case.call()
    assert response.status_code < 500, response.text[:500]
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
