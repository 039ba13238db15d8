"""The real ``python -m model_server`` process, over HTTP."""

from __future__ import annotations

import base64
import io

import numpy as np
import requests
from PIL import Image
from server_samples import busi_image, png_bytes, speckle_image


def test_live_health(live_model_server):
    response = requests.get(f"{live_model_server}/health", timeout=30)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_live_predict_and_classify(live_model_server, busi_dir):
    data, pixels = busi_image(busi_dir, "benign (13)")
    response = requests.post(
        f"{live_model_server}/predict",
        files={"image": ("benign.png", data, "image/png")},
        timeout=60,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["height"], body["width"]) == pixels.shape[:2]
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask"]))))
    assert mask.shape == pixels.shape[:2]
    png = requests.post(
        f"{live_model_server}/predict",
        data=data,
        headers={"Content-Type": "image/png", "Accept": "image/png"},
        timeout=60,
    )
    assert png.headers["Content-Type"] == "image/png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png.content))), mask)

    response = requests.post(
        f"{live_model_server}/classify",
        files={"image": ("benign.png", data, "image/png")},
        timeout=60,
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body["probabilities"]) == {"normal", "benign", "malignant"}
    assert abs(sum(body["probabilities"].values()) - 1.0) < 1e-6
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)


def test_live_bad_input_is_json_4xx_and_server_keeps_serving(live_model_server):
    bad = requests.post(
        f"{live_model_server}/predict",
        files={"image": ("scan.png", b"not an image", "image/png")},
        timeout=30,
    )
    assert bad.status_code == 415
    assert bad.headers["Content-Type"] == "application/json"
    assert bad.json()["error"]["code"] == 415
    missing = requests.get(f"{live_model_server}/nope", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    good = requests.post(
        f"{live_model_server}/predict",
        data=png_bytes(speckle_image(64, 64)),
        headers={"Content-Type": "image/png"},
        timeout=60,
    )
    assert good.status_code == 200
