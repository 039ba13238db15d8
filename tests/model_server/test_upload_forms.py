"""How an upload is sent, and the answers that say what was sent (audit 802).

- A query parameter sent as a form field (``curl -F box=...``) was ignored: 200 with
  the whole-image answer. It is a 400 saying to put it in the URL (F3).
- A browser's file input left empty (a part with ``filename=""`` and no bytes) was a
  400 for /classify's optional mask; it is no mask (F4).
"""

from __future__ import annotations

import pytest
from server_samples import png_bytes, speckle_image

IMAGE = png_bytes(speckle_image(96, 128, seed=2))
BOUNDARY = "sonotrace-test-boundary"


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart/form-data body of (name, filename or None for a text field, bytes)."""
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if filename is not None:
            head += "Content-Type: application/octet-stream\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


def post(client, url, *parts):
    return client.post(url, data=multipart(*parts),
                       content_type=f"multipart/form-data; boundary={BOUNDARY}")


def error(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    return response.get_json()["error"]["message"]


@pytest.mark.parametrize(("url", "name", "value"), [
    ("/predict", "box", b"10,10,60,60"),
    ("/predict", "max_vertices", b"4"),
    ("/vectorize", "max_vertices", b"4"),
    ("/vectorize", "pixel_spacing", b"0.1,0.1"),
])
def test_a_query_parameter_sent_as_a_form_field_is_400_saying_where_it_goes(
        client, url, name, value):
    field = "mask" if url == "/vectorize" else "image"
    message = error(post(client, url, (field, "scan.png", IMAGE), (name, None, value)), 400)
    assert message == (f"'{name}' is a query parameter ({url}?{name}=...), not a form "
                       "field: put it in the URL")


def test_a_parameter_the_endpoint_does_not_take_sent_as_a_form_field_is_400(client):
    response = post(client, "/classify", ("image", "scan.png", IMAGE),
                    ("box", None, b"10,10,60,60"))
    assert "/classify does not take 'box' (sent as a form field)" in error(response, 400)


def test_other_text_fields_are_still_ignored(client):
    response = post(client, "/vectorize", ("note", None, b"hello"), ("mask", "m.png", IMAGE))
    assert response.status_code == 200, response.get_json()


def test_an_empty_file_input_is_no_mask_for_classify(client):
    without = post(client, "/classify", ("image", "scan.png", IMAGE))
    empty = post(client, "/classify", ("image", "scan.png", IMAGE), ("mask", "", b""))
    assert empty.status_code == 200, empty.get_json()
    assert empty.get_json()["probabilities"] == without.get_json()["probabilities"]


def test_an_empty_file_input_for_the_image_says_no_file_was_chosen(client):
    message = error(post(client, "/predict", ("image", "", b"")), 400)
    assert "no file was chosen for multipart field 'image'" in message
