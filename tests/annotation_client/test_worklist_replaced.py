"""A save says so when the worklist file its image came from now holds another image.

A PACS that exports a case again under the same name replaces the file while the
reader has the old image open. The save is of the image on screen, as it should be,
but the file's new image is then listed as not annotated and left out of the export:
a reload said so, the save did not (audit helper-407, F3).
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
from _dash_helpers import as_callback, open_work, text_of
from PIL import Image

from annotation_client import create_app, ids

pytestmark = pytest.mark.usefixtures("an_app_exists")


@pytest.fixture
def opened(tmp_path):
    """``(app, folder, meta, history, image_data)``: ``scan.png`` opened from a worklist."""
    meta, history, image_data = open_work()
    folder = tmp_path / "worklist"
    folder.mkdir()
    data = base64.b64decode(image_data["contents"].split(",", 1)[1])
    (folder / "scan.png").write_bytes(data)
    app = create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder,
                      "MODEL_SERVER_URL": "http://127.0.0.1:9"})
    return app, folder, dict(meta, worklist_path="scan.png"), history, image_data


def _save(app, annotate, meta, history, image_data, label):
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    alert, _work = as_callback(lambda: annotate.save(
        1, meta, history, None, None, label, "", "Dr Ada", image_data, *blank,
    ), f"{ids.SAVE_BUTTON}.n_clicks", app=app, value=1)
    return alert


def test_a_save_says_the_worklist_file_now_holds_another_image(opened, annotate):
    app, folder, meta, history, image_data = opened
    alert = _save(app, annotate, meta, history, image_data, "benign")
    assert text_of(alert).startswith("Saved.") and "has changed" not in text_of(alert)
    assert "data-attention" not in alert.to_plotly_json()["props"]

    other = np.arange(600, dtype=np.uint8).reshape(20, 30)[::-1].copy()
    Image.fromarray(other).save(folder / "scan.png")
    alert = _save(app, annotate, meta, history, image_data, "malignant")
    text = text_of(alert)
    assert text.startswith("Saved.") and "Version 2 of scan.png" in text
    assert "scan.png has changed since it was opened: it now holds another image" in text
    # Save & next stays on the image, so the message is read.
    assert alert.to_plotly_json()["props"]["data-attention"] == "1"
    assert alert.children[0].color == "warning"


def test_a_save_says_the_worklist_file_is_gone(opened, annotate):
    app, folder, meta, history, image_data = opened
    (folder / "scan.png").unlink()
    alert = _save(app, annotate, meta, history, image_data, "benign")
    text = text_of(alert)
    assert text.startswith("Saved.")
    assert "scan.png is no longer in the worklist folder" in text
    assert alert.children[0].color == "warning"


def test_an_upload_is_not_checked_against_the_worklist(opened, annotate):
    app, folder, meta, history, image_data = opened
    (folder / "scan.png").unlink()
    meta = {k: v for k, v in meta.items() if k != "worklist_path"}
    alert = _save(app, annotate, meta, history, image_data, "benign")
    assert text_of(alert).startswith("Saved.") and "worklist" not in text_of(alert)
    assert alert.children[0].color == "success"
