"""Edges of a request the audit of the REST API found (helper-501): long query values,
a raw body cut short, a served path called with the wrong method."""

from __future__ import annotations

import re

import numpy as np
import pytest
from server_samples import png_bytes

from model_server import create_app


@pytest.fixture
def client():
    # /vectorize needs no model: these tests run without loading any.
    return create_app({"WARMUP": False, "TESTING": True}).test_client()


def _mask_png() -> bytes:
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 15:45] = 255
    return png_bytes(mask)


@pytest.mark.parametrize(("path", "query"), [
    ("/vectorize", "max_vertices=" + "1" * 4000),
    ("/vectorize", "pixel_spacing=" + "1," * 2000 + "1"),
    ("/predict", "box=" + "1" * 4000),
])
def test_a_long_query_value_is_quoted_cut_short(client, path, query):
    # The annotation client shows the server's message to its user: a 4000-character
    # value quoted whole buried the reason.
    response = client.post(f"{path}?{query}", data=_mask_png(), content_type="image/png")
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert len(message) < 200, message
    assert "characters)" in message


@pytest.mark.parametrize("sent", [b"\x89PNG", "most of the mask"])
def test_a_raw_body_shorter_than_its_content_length_is_said_to_be_cut_short(client, sent):
    # As gunicorn hands it over: its input marked as ending where the body does, so
    # werkzeug reads what came without a word (a 415 "not an image" for 4 bytes).
    data = _mask_png()[: len(_mask_png()) * 4 // 5] if sent == "most of the mask" else sent
    response = client.post("/vectorize", data=data, content_type="image/png",
                           environ_overrides={"wsgi.input_terminated": True,
                                              "CONTENT_LENGTH": "100000"})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == (
        "the request body ended before all of it was sent")


def test_a_whole_raw_body_is_read(client):
    data = _mask_png()
    response = client.post("/vectorize", data=data, content_type="image/png",
                           environ_overrides={"wsgi.input_terminated": True,
                                              "CONTENT_LENGTH": str(len(data))})
    assert response.status_code == 200


def _count(text: str, labels: str) -> float:
    found = re.findall(r"^sonotrace_http_requests_total\{" + re.escape(labels) + r"\} (\S+)$",
                       text, flags=re.MULTILINE)
    return float(found[0]) if found else 0.0


def test_a_served_path_called_with_the_wrong_method_is_counted_on_its_route(client):
    # A client misconfigured to GET /predict belongs on the /predict series, where its
    # errors are looked for, not among the scans of paths no route serves.
    labels = 'endpoint="/predict",method="{}",status="405"'
    before = client.get("/metrics").get_data(as_text=True)
    assert client.get("/predict").status_code == 405
    assert client.put("/predict").status_code == 405
    assert client.get("/no/such/path").status_code == 404
    after = client.get("/metrics").get_data(as_text=True)
    for method in ("GET", "PUT"):
        assert _count(after, labels.format(method)) - _count(before, labels.format(method)) == 1
    assert 'endpoint="unmatched",method="GET",status="405"' not in after


def test_the_openapi_document_says_metrics_can_be_503(client):
    responses = client.get("/openapi.json").get_json()["paths"]["/metrics"]["get"]["responses"]
    assert "503" in responses
