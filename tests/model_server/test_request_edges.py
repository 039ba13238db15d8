"""Edges of a request the audit of the REST API found (helper-501): long query values,
a raw body cut short, a served path called with the wrong method."""

from __future__ import annotations

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
