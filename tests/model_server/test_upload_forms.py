"""How an upload is sent, and the answers that say what was sent (audit 802).

- A query parameter sent as a form field (``curl -F box=...``) was ignored: 200 with
  the whole-image answer. It is a 400 saying to put it in the URL (F3).
- A browser's file input left empty (a part with ``filename=""`` and no bytes) was a
  400 for /classify's optional mask; it is no mask (F4).
- A JSON body, a multipart body other than form-data and curl --data-binary's
  url-encoded default were told "not an image" or "missing multipart field"; each is
  told what was sent and what is expected (F5).

And audit 1006 F3: a file part sent twice (``-F mask=@a.png -F mask=@b.png``) was
answered from the first copy, and a part the endpoint does not read was ignored; each
is a 400 naming the field, as a query parameter given twice is.
"""

from __future__ import annotations

import base64
import gzip
import json

import numpy as np
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


@pytest.mark.parametrize(("url", "name", "part"), [
    ("/predict", "extra", ("extra", "x.png", IMAGE)),
    ("/classify", "masks", ("masks", "m.png", IMAGE)),
    ("/vectorize", "note", ("note", None, b"hello")),
])
def test_a_part_the_endpoint_does_not_take_is_400_naming_it_and_the_ones_it_takes(
        client, url, name, part):
    field = "mask" if url == "/vectorize" else "image"
    takes = {"/predict": "image", "/classify": "image, mask", "/vectorize": "mask"}[url]
    for parts in ([(field, "scan.png", IMAGE), part], [part, (field, "scan.png", IMAGE)]):
        message = error(post(client, url, *parts), 400)
        assert message == (f"{url} does not take multipart field '{name}': "
                           f"it takes {takes}")


def test_a_part_without_a_field_name_is_400(client):
    response = post(client, "/predict", ("image", "scan.png", IMAGE), ("", "x.png", IMAGE))
    assert error(response, 400) == ("/predict does not take a multipart part without a "
                                    "field name: it takes image")


@pytest.mark.parametrize(("url", "field"), [
    ("/predict", "image"), ("/classify", "image"), ("/classify", "mask"),
    ("/vectorize", "mask"),
])
def test_a_file_part_sent_twice_is_400_naming_it(client, url, field):
    empty = png_bytes(np.zeros((96, 128), np.uint8))
    full = png_bytes(np.full((96, 128), 255, np.uint8))
    first, second = (IMAGE, IMAGE) if field == "image" else (empty, full)
    parts = [(field, "a.png", first), (field, "b.png", second)]
    if url == "/classify" and field == "mask":
        parts.insert(0, ("image", "scan.png", IMAGE))
    message = error(post(client, url, *parts), 400)
    assert message == f"multipart field '{field}' is given 2 times; give it once"


def test_an_empty_file_input_sent_twice_is_400_too(client):
    # Two file inputs of one name, both left empty: still not the one field asked for.
    response = post(client, "/classify", ("image", "scan.png", IMAGE), ("mask", "", b""),
                    ("mask", "", b""))
    assert error(response, 400) == "multipart field 'mask' is given 2 times; give it once"


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


def test_the_openapi_document_lists_the_parts_each_endpoint_takes_and_no_other(client):
    document = client.get("/openapi.json").get_json()
    mask = png_bytes(np.zeros((96, 128), np.uint8))
    for url in ("/predict", "/classify", "/vectorize"):
        body = document["paths"][url]["post"]["requestBody"]
        schema = body["content"]["multipart/form-data"]["schema"]
        assert schema["additionalProperties"] is False
        assert "another name than those listed, or one given twice, is 400" in (
            body["description"])
        fields = list(schema["properties"])
        parts = [(name, f"{name}.png", mask if name == "mask" else IMAGE) for name in fields]
        assert post(client, url, *parts).status_code == 200, url
        message = error(post(client, url, *parts, ("other", "o.png", IMAGE)), 400)
        assert message.endswith(f"it takes {', '.join(fields)}")


@pytest.mark.parametrize("url", ["/predict", "/classify", "/vectorize"])
@pytest.mark.parametrize("form", [False, True])
def test_a_compressed_body_is_415_naming_its_content_encoding(client, url, form):
    # It was "got content that is not an image we read" (raw) or "malformed
    # multipart/form-data body" (a form): either blamed the file.
    field = "mask" if url == "/vectorize" else "image"
    body, content_type = IMAGE, "image/png"
    if form:
        body = multipart((field, "scan.png", IMAGE))
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
    response = client.post(url, data=gzip.compress(body), content_type=content_type,
                           headers={"Content-Encoding": "gzip"})
    message = error(response, 415)
    assert message.startswith("the body is sent with Content-Encoding 'gzip', which is not read")
    assert response.headers["Accept-Encoding"] == "identity"
    assert client.post(url, data=IMAGE, content_type="image/png",
                       headers={"Content-Encoding": "identity"}).status_code == 200


def test_a_body_with_a_transfer_coding_other_than_chunked_is_501_naming_it(client):
    # gunicorn undid the chunking and passed the gzip bytes on: "not an image we read".
    response = client.post("/predict", data=gzip.compress(IMAGE), content_type="image/png",
                           headers={"Transfer-Encoding": "gzip, chunked"})
    message = error(response, 501)
    assert message.startswith("the body is sent with Transfer-Encoding 'gzip, chunked': "
                              "only chunked is read")
    assert client.post("/predict", data=IMAGE, content_type="image/png").status_code == 200
