"""One log line per request, with sizes and timing but never image content."""

from __future__ import annotations

import base64
import io
import logging
import re

import numpy as np
from server_samples import png_bytes, speckle_image

LINE = re.compile(
    r"^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<ms>\d+\.\d)ms "
    r"image=(?P<image>\S+) bytes=(?P<bytes>\d+) from=(?P<peer>\S+) id=(?P<id>\S+)$"
)


def access_lines(caplog) -> list[re.Match]:
    lines = [r.getMessage() for r in caplog.records if r.name == "model_server.access"]
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return matches


def test_one_line_per_request_without_image_content(client, caplog):
    caplog.set_level(logging.INFO)
    image = speckle_image(90, 120, seed=9)
    data = png_bytes(image)
    response = client.post("/predict", data=data, content_type="image/png")
    assert response.status_code == 200
    client.get("/nope")
    client.post("/classify", data=b"plain text", content_type="text/plain")
    lines = access_lines(caplog)
    assert [(m["method"], m["path"], m["status"]) for m in lines] == [
        ("POST", "/predict", "200"),
        ("GET", "unmatched", "404"),
        ("POST", "/classify", "415"),
    ]
    assert lines[0]["image"] == "120x90" and int(lines[0]["bytes"]) == len(data)
    assert lines[1]["image"] == "-"
    # Who asked, for an operator matching a client's refusals to the server's lines.
    assert {m["peer"] for m in lines} == {"127.0.0.1"}
    everything = "\n".join(r.getMessage() for r in caplog.records)
    mask_b64 = response.get_json()["mask"]
    assert mask_b64[:40] not in everything
    assert base64.b64encode(data)[:40].decode() not in everything
    assert "plain text" not in everything


def test_the_line_names_the_route_never_the_path_as_sent(client, caplog):
    # Audit 804 F9: an unmatched path was logged as sent ("GET /nope Doe Jane 404"),
    # though the line carries sizes and the caller's address only.
    caplog.set_level(logging.INFO)
    client.get("/nope%20Doe%20Jane?patient=Doe")
    client.get("/static/Doe_Jane.png?x=1")
    client.get("/predict?patient=Doe")  # 405: its route is served
    client.get("/health?patient=Doe")
    lines = access_lines(caplog)
    assert [(m["path"], m["status"]) for m in lines] == [
        ("unmatched", "404"), ("/static/<path:filename>", "404"), ("/predict", "405"),
        ("/health", "200")]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "Doe" not in everything and "patient" not in everything


def test_each_request_is_named_by_the_callers_id_or_one_of_its_own(client, caplog):
    # A client's "segmentation failed" could not be matched to the server's line: the
    # annotation client now sends X-Request-ID, the server logs it and answers it.
    caplog.set_level(logging.INFO)
    named = client.get("/health", headers={"X-Request-ID": "3f2a9c0d11b7e4a8"})
    assert named.headers["X-Request-ID"] == "3f2a9c0d11b7e4a8"
    unnamed = client.get("/health")
    forged = client.get("/health", headers={"X-Request-ID": "a b POST /predict 200"})
    ids = [m["id"] for m in access_lines(caplog)]
    assert ids[0] == "3f2a9c0d11b7e4a8"
    # None given, or one that is no short token (a forged log line): one of its own.
    for response, given in ((unnamed, ids[1]), (forged, ids[2])):
        assert re.fullmatch(r"[0-9a-f]{16}", given)
        assert response.headers["X-Request-ID"] == given
    # Refusals too, one for its Host among them (refused before any other hook runs).
    refused = client.post("/classify", data=b"x", content_type="text/plain",
                          headers={"X-Request-ID": "abc-1"})
    assert refused.status_code == 415 and refused.headers["X-Request-ID"] == "abc-1"
    foreign = client.get("/health", headers={"X-Request-ID": "abc-2", "Host": "evil.example"})
    assert foreign.status_code == 400 and foreign.headers["X-Request-ID"] == "abc-2"
    assert access_lines(caplog)[-1]["id"] == "abc-2"


def test_a_chunked_upload_is_logged_with_the_bytes_read(client, caplog):
    # A chunked body declares no Content-Length: bytes=0 was logged for every one, a
    # 70 MB upload refused at the limit included. As gunicorn hands it over: no length,
    # its input marked as ending where the body does.
    caplog.set_level(logging.INFO)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 15:45] = 255
    data = png_bytes(mask)
    response = client.post("/vectorize", input_stream=io.BytesIO(data), content_type="image/png",
                           environ_overrides={"wsgi.input_terminated": True,
                                              "HTTP_TRANSFER_ENCODING": "chunked",
                                              "CONTENT_LENGTH": ""})
    assert response.status_code == 200
    (line,) = access_lines(caplog)
    assert int(line["bytes"]) == len(data)
