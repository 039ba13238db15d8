"""Bad input gets a clear JSON 4xx, never a 500 or an HTML page, and the server keeps serving."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from flask import jsonify
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless
from server_samples import (
    deflated_dicom_bytes,
    dicom_bytes,
    huge_png_bytes,
    jpeg_bytes,
    png_bytes,
    recompressed_dicom_bytes,
    speckle_image,
)
from urllib3.filepost import encode_multipart_formdata

from model_server import create_app

IMAGE = speckle_image(96, 128, seed=2)


def post_file(client, url, data, *, field="image", filename="scan.png", mimetype=None):
    # Encoded as requests and browsers do. Werkzeug's test encoder leaves out the line
    # break before the closing boundary of an empty part, which is malformed.
    part = (filename, data, mimetype) if mimetype else (filename, data)
    body, content_type = encode_multipart_formdata({field: part})
    return client.post(url, data=body, content_type=content_type)


def assert_json_error(response, status: int, needle: str | None = None) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    # The HTTP status as an integer (README): not "400", nor 400.0.
    assert type(body["error"]["code"]) is int and body["error"]["code"] == status
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    if needle:
        assert needle in message.lower()
    assert "<html" not in response.get_data(as_text=True).lower()
    return message


PNG = png_bytes(IMAGE)
JPEG = jpeg_bytes(IMAGE)

BAD_UPLOADS = {
    "zero-bytes": (b"", 400, "empty"),
    "truncated-png": (PNG[: len(PNG) // 2], 400, "could not decode"),
    "png-header-only": (PNG[:33], 400, "could not decode"),
    "truncated-jpeg": (JPEG[: len(JPEG) // 3], 400, "could not decode"),
    "text-named-png": (b"patient notes, not an image\n" * 4, 415, "unsupported"),
    "html": (b"<!doctype html><html><body>hi</body></html>", 415, "unsupported"),
    "gif": (b"GIF89a" + bytes(40), 415, "unsupported"),
    # Was taken for a DICOM without its preamble and refused as one: 400 "no pixel data".
    "binary-starting-08-00": (b"\x08" + bytes(7) + b"random binary junk" * 9,
                              415, "unsupported"),
    "dicom-without-pixels": (dicom_bytes(None), 400, "no pixel data"),
    "dicom-truncated": (dicom_bytes(IMAGE)[:-3000], 400, None),
}


@pytest.mark.parametrize("endpoint", ["/predict", "/classify"])
@pytest.mark.parametrize("label", list(BAD_UPLOADS))
def test_bad_image_uploads(client, endpoint, label):
    data, status, needle = BAD_UPLOADS[label]
    assert_json_error(post_file(client, endpoint, data), status, needle)
    if data:
        raw = client.post(endpoint, data=data, content_type="application/octet-stream")
        assert_json_error(raw, status, needle)


def test_text_file_named_png_with_png_content_type_is_415(client):
    response = post_file(
        client, "/predict", b"just text\n", filename="scan.png", mimetype="image/png"
    )
    assert_json_error(response, 415, "unsupported")


def test_20000_square_png_is_413(client):
    assert_json_error(post_file(client, "/predict", huge_png_bytes()), 413, "pixels")


def test_decompression_bomb_413_names_one_limit_the_servers(client, app):
    # 30000x30000 is over twice Pillow's guard, which would fire before the header check
    # and name its own limit; the reader opens a PNG by its plugin and reads the size.
    message = assert_json_error(
        post_file(client, "/predict", huge_png_bytes(30000, 30000)), 413, "pixels"
    )
    assert message == (
        "image is 30000x30000 = 900000000 pixels, "
        f"over the limit of {app.config['MAX_PIXELS']} pixels"
    )


DICOM_SAMPLE = speckle_image(120, 160, seed=4)
DICOM_JPEG = jpeg_bytes(DICOM_SAMPLE)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            recompressed_dicom_bytes(
                DICOM_SAMPLE, JPEGBaseline8Bit, DICOM_JPEG[: len(DICOM_JPEG) // 3]
            ),
            id="jpeg-truncated",
        ),
        pytest.param(
            recompressed_dicom_bytes(DICOM_SAMPLE, JPEGBaseline8Bit, b"\xff\xd8\xff" + bytes(99)),
            id="jpeg-junk",
        ),
        pytest.param(
            recompressed_dicom_bytes(DICOM_SAMPLE, JPEG2000Lossless, b"junk" * 30),
            id="j2k-junk",
        ),
        pytest.param(
            recompressed_dicom_bytes(DICOM_SAMPLE, RLELossless)[:-1000], id="rle-truncated"
        ),
    ],
)
def test_corrupt_compressed_dicom_pixel_data_is_400(client, data):
    message = assert_json_error(post_file(client, "/predict", data), 400, "truncated")
    assert "0x" not in message and "<_io" not in message and "no pixel data" not in message


def test_non_finite_number_in_a_response_is_a_json_500_not_invalid_json():
    # json.dumps writes NaN/Infinity as bare words, which no JSON parser accepts.
    bug_app = create_app({"TESTING": False, "WARMUP": False})

    @bug_app.get("/nan")
    def nan():
        return jsonify({"area_mm2": float("inf"), "ok": float("nan")})

    response = bug_app.test_client().get("/nan")
    assert_json_error(response, 500)
    with bug_app.app_context():
        assert json.loads(bug_app.json.dumps({"a": 1.5})) == {"a": 1.5}


@pytest.mark.parametrize("endpoint", ["/predict", "/classify", "/vectorize"])
def test_missing_field_and_empty_body_are_400(client, endpoint):
    field = "mask" if endpoint == "/vectorize" else "image"
    # The server's own messages in full: the decoders' errors say "empty" too, so a
    # word would not notice these checks gone.
    assert assert_json_error(client.post(endpoint), 400) == (
        f"empty request: send the file as multipart field '{field}' or as the raw body")
    other = client.post(
        endpoint, data={"file": (io.BytesIO(PNG), "x.png")}, content_type="multipart/form-data"
    )
    assert_json_error(other, 400, f"{endpoint} does not take multipart field 'file'")
    # A form of no part at all: a browser's form whose file inputs were all removed.
    nothing = client.post(endpoint, data=b"--b--\r\n",
                          content_type="multipart/form-data; boundary=b")
    assert_json_error(nothing, 400, f"missing multipart file field '{field}'")
    text = client.post(endpoint, data={field: "not a file"}, content_type="multipart/form-data")
    assert_json_error(text, 400, "must be a file")
    empty = post_file(client, endpoint, b"", field=field)
    assert assert_json_error(empty, 400) == f"multipart field '{field}' is empty"
    form = client.post(endpoint, data={field: "x"})  # url-encoded form
    assert_json_error(form, 400)


def test_malformed_multipart_bodies_are_400(client):
    body, content_type = encode_multipart_formdata({"image": ("scan.png", PNG)})
    cut = client.post("/predict", data=body[:-20], content_type=content_type)
    assert_json_error(cut, 400, "malformed multipart")
    no_boundary = client.post("/predict", data=body, content_type="multipart/form-data")
    assert_json_error(no_boundary, 400, "boundary")
    wrong_boundary = client.post(
        "/predict", data=body, content_type="multipart/form-data; boundary=not-the-one"
    )
    assert_json_error(wrong_boundary, 400, "malformed multipart")
    # The server still answers a good request after all of those.
    assert post_file(client, "/predict", PNG).status_code == 200


def test_too_many_multipart_parts_is_413(client):
    from model_server._inputs import MAX_PARTS

    fields = {f"f{i}": ("x.png", b"x") for i in range(MAX_PARTS + 1)}
    body, content_type = encode_multipart_formdata(fields)
    response = client.post("/predict", data=body, content_type=content_type)
    assert_json_error(response, 413, "limit")


def test_multipart_file_larger_than_a_read_chunk_arrives_intact(client):
    from model_server._inputs import _READ_CHUNK

    # Incompressible noise makes a PNG of several read chunks, so that a boundary
    # search across chunk edges is exercised.
    noise = np.random.default_rng(3).integers(0, 256, (1400, 1400), dtype=np.uint8)
    data = png_bytes(noise)
    assert len(data) > 1.5 * _READ_CHUNK
    # First a file input left empty (no mask), so that the image starts past the body's
    # first bytes.
    body, content_type = encode_multipart_formdata(
        {"mask": ("", b""), "image": ("scan.png", data)}
    )
    response = client.post("/classify", data=body, content_type=content_type)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    raw = client.post("/classify", data=data, content_type="application/octet-stream")
    assert response.get_json()["probabilities"] == raw.get_json()["probabilities"]


def test_not_found_and_method_not_allowed_are_json(client):
    assert_json_error(client.get("/nope"), 404)
    response = client.get("/predict")
    assert_json_error(response, 405)
    assert "POST" in response.headers["Allow"]
    assert_json_error(client.post("/health"), 405)
    assert_json_error(client.delete("/models"), 405)


def test_a_405_names_the_methods_in_one_order_whatever_the_hash_seed(
        client, methods_listed_unsorted):
    response = client.get("/predict")
    assert_json_error(response, 405)
    assert response.headers["Allow"] == "OPTIONS, POST"


def test_byte_limit_is_413():
    app = create_app({"TESTING": True, "MAX_CONTENT_LENGTH": 4096, "WARMUP": False})
    client = app.test_client()
    big = png_bytes(speckle_image(200, 200, seed=5))
    assert len(big) > 4096
    assert_json_error(post_file(client, "/predict", big), 413, "4096 bytes")
    assert_json_error(
        client.post("/predict", data=big, content_type="application/octet-stream"), 413
    )


def test_pixel_limit_is_413_for_images_and_masks():
    app = create_app({"TESTING": True, "MAX_PIXELS": 5000, "WARMUP": False})
    client = app.test_client()
    assert_json_error(post_file(client, "/predict", PNG), 413, "over the limit of 5000")
    assert_json_error(post_file(client, "/predict", dicom_bytes(IMAGE)), 413)
    assert_json_error(post_file(client, "/vectorize", PNG, field="mask"), 413)


def test_a_deflated_dicom_that_inflates_beyond_the_limit_is_413():
    # 64 MiB of zero pixel data under a 96x128 header, 64 kB on the wire: pydicom
    # inflated it whole (a 1 MB upload took 2.3 GB). With a million pixels the limit is
    # 4 bytes a pixel plus 16 MiB for the header.
    app = create_app({"TESTING": True, "MAX_PIXELS": 10**6, "WARMUP": False})
    client = app.test_client()
    bomb = deflated_dicom_bytes(IMAGE, bytes(64 << 20))
    for url in ("/predict", "/classify"):
        assert_json_error(post_file(client, url, bomb), 413, "inflates to more than")


def test_config_is_validated():
    with pytest.raises(ValueError, match="MAX_PIXELS"):
        create_app({"MAX_PIXELS": 0, "WARMUP": False})
    with pytest.raises(ValueError, match="MAX_CONTENT_LENGTH"):
        create_app({"MAX_CONTENT_LENGTH": "big", "WARMUP": False})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("false", False), ("False", False), ("off", False), ("no", False), ("0", False),
     (0, False), ("true", True), ("Yes", True), ("on", True), ("1", True), (True, True)],
)
def test_warmup_takes_the_usual_words_for_yes_and_no(raw, expected):
    from model_server._app import DEFAULTS, _check_config

    config = {**DEFAULTS, "WARMUP": raw}
    _check_config(config)
    assert config["WARMUP"] is expected


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "2.5"])
def test_a_read_timeout_that_is_not_a_positive_whole_number_stops_the_server(
    monkeypatch, raw
):
    monkeypatch.setenv("SONOTRACE_READ_TIMEOUT", raw)
    with pytest.raises(ValueError, match=rf"^SONOTRACE_READ_TIMEOUT='{raw}': must be a whole "
                                         r"number of seconds from 1 to 86400$"):
        create_app({"WARMUP": False})


def test_warmup_false_in_the_environment_turns_it_off(monkeypatch):
    # Before: only JSON `false`/`0` did; "False" or "off" stayed a (true) string.
    monkeypatch.setenv("SONOTRACE_WARMUP", "False")
    assert create_app().config["WARMUP"] is False


def test_an_unknown_runtime_backend_is_refused_at_start(monkeypatch):
    # Before: the server started and answered 503 once the background load failed.
    monkeypatch.setenv("SONOTRACE_RUNTIME_BACKEND", "tflite")
    with pytest.raises(ValueError, match="^SONOTRACE_RUNTIME_BACKEND='tflite': must be one of "
                                         "auto, litert, keras$"):
        create_app({"WARMUP": False})
    monkeypatch.setenv("SONOTRACE_RUNTIME_BACKEND", "keras")
    assert create_app({"WARMUP": False}).config["WARMUP"] is False


def test_a_warmup_that_is_not_a_yes_or_no_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("SONOTRACE_WARMUP", "sometimes")
    with pytest.raises(ValueError, match="^SONOTRACE_WARMUP='sometimes': must be true or false"):
        create_app()


def test_config_from_environment(monkeypatch):
    monkeypatch.setenv("SONOTRACE_MAX_PIXELS", "1234")
    app = create_app({"WARMUP": False})
    assert app.config["MAX_PIXELS"] == 1234


def test_genuine_bug_is_a_json_500_without_details(app):
    bug_app = create_app({"TESTING": False, "WARMUP": False})

    @bug_app.get("/bug")
    def bug():
        raise RuntimeError("secret internal detail")

    response = bug_app.test_client().get("/bug")
    message = assert_json_error(response, 500)
    assert "secret" not in message


def test_server_keeps_serving_after_bad_input(client):
    for data, _, _ in BAD_UPLOADS.values():
        post_file(client, "/predict", data)
    response = post_file(client, "/predict", PNG)
    assert response.status_code == 200
    assert response.get_json()["width"] == 128


def test_mutated_files_never_cause_a_500(client):
    """Random corruption of valid files: only 200 or a JSON 4xx."""
    rng = np.random.default_rng(7)
    seeds = [PNG, JPEG, dicom_bytes(IMAGE)]
    statuses = set()
    for i in range(24):
        data = bytearray(seeds[i % 3])
        for _ in range(1 + i % 4):
            position = int(rng.integers(0, len(data)))
            data[position : position + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        if i % 5 == 0:
            data = data[: int(rng.integers(10, len(data)))]
        response = post_file(client, "/predict", bytes(data))
        statuses.add(response.status_code)
        assert response.status_code in (200, 400, 413, 415), response.get_data(as_text=True)
        assert response.mimetype == "application/json"
    assert statuses & {400, 415}
