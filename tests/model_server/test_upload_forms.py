"""How an upload is sent, and the answers that say what was sent (audit 802).

- A query parameter sent as a form field (``curl -F box=...``) was ignored: 200 with
  the whole-image answer. It is a 400 saying to put it in the URL (F3).
- A browser's file input left empty (a part with ``filename=""`` and no bytes) was a
  400 for /classify's optional mask; it is no mask (F4).
- A JSON body, a multipart body other than form-data and curl --data-binary's
  url-encoded default were told "not an image" or "missing multipart field"; each is
  told what was sent and what is expected (F5).
"""

from __future__ import annotations

import base64
import json

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


@pytest.mark.parametrize("content_type", ["application/json", "application/ld+json"])
def test_a_json_body_is_415_saying_what_is_expected(client, content_type):
    body = json.dumps({"image": base64.b64encode(IMAGE).decode()})
    message = error(client.post("/predict", data=body, content_type=content_type), 415)
    assert message.startswith("a JSON body is not read: send the file as multipart/form-data "
                              "field 'image' or as the raw body")


def test_a_multipart_body_other_than_form_data_is_415_naming_it(client):
    response = client.post("/predict", data=multipart(("image", "scan.png", IMAGE)),
                           content_type=f"multipart/mixed; boundary={BOUNDARY}")
    assert error(response, 415).startswith("a multipart/mixed body is not read")


@pytest.mark.parametrize("url", ["/predict", "/classify", "/vectorize"])
def test_curl_data_binary_without_a_content_type_is_told_to_add_one(client, url):
    response = client.post(url, data=IMAGE,
                           content_type="application/x-www-form-urlencoded")
    message = error(response, 400)
    assert "application/x-www-form-urlencoded" in message
    assert "-H 'Content-Type: application/octet-stream'" in message


def test_a_file_sent_raw_with_a_json_content_type_by_mistake_is_still_read(client):
    response = client.post("/vectorize", data=IMAGE, content_type="application/json")
    assert response.status_code == 200, response.get_json()
