"""A weights file that fails to load is named in /health, the 503s and the log (audit 802 F7).

Before, a truncated ``.tflite`` gave "ValueError: The model is not a valid Flatbuffer
buffer" and no word of which of the three networks, or of the folder.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from server_samples import png_bytes, speckle_image

from model_server import create_app


@pytest.mark.parametrize("name", ["sonotrace_unet.tflite", "lesion_classifier.tflite",
                                  "lesion_refiner.tflite"])
def test_a_truncated_weights_file_is_named_with_its_folder(tmp_path, caplog, name):
    from models.runtime import DEFAULT_WEIGHTS_DIR

    weights = tmp_path / "weights"
    shutil.copytree(Path(DEFAULT_WEIGHTS_DIR), weights)
    broken = weights / name
    broken.write_bytes(broken.read_bytes()[:1000])
    app = create_app({"WEIGHTS_DIR": str(weights), "WARMUP": False})
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        response = client.post("/predict", data=png_bytes(speckle_image(64, 64)),
                               content_type="image/png")
    assert response.status_code == 503
    message = response.get_json()["error"]["message"]
    assert f"from {broken}" in message, message
    health = client.get("/health").get_json()
    assert str(broken) in health["error"]["message"]
    assert str(broken) in caplog.text
