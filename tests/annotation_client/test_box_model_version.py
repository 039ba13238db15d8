"""A box re-segmentation's model is recorded with the save, against real model servers.

Before, the record named only the model of the first outline (``model.segmentation``):
the part of the outline a box re-segmented came from a model no record named, though
the server could have been upgraded between the outline and the box.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from _dash_helpers import as_callback

from annotation_client import _editing, _history, create_app, decode_image, ids
from annotation_client._database import AnnotationIndex, default_url
from annotation_client._server_client import ModelServerClient

pytestmark = pytest.mark.slow

NEWER = "2027-01-01.1"
NAME = "benign (4).png"


@pytest.fixture(autouse=True)
def app(tmp_path):
    """An app the page registers with (before the page module is imported)."""
    return create_app({"DATA_DIR": tmp_path / "first-app"})


@pytest.fixture
def newer_model_server(start_service, free_port, tmp_path) -> str:
    """A second real model server serving the shipped weights as version NEWER (the
    server upgraded after the first outline)."""
    from models.runtime import DEFAULT_WEIGHTS_DIR

    weights = tmp_path / "release-2"
    shutil.copytree(Path(DEFAULT_WEIGHTS_DIR).resolve(), weights)
    manifest = json.loads((weights / "manifest.json").read_text())
    manifest["version"] = NEWER
    (weights / "manifest.json").write_text(json.dumps(manifest, indent=1))
    base = f"http://127.0.0.1:{free_port}"
    start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "1"],
        f"{base}/health",
        env={"SONOTRACE_LOG_LEVEL": "INFO", "SONOTRACE_WEIGHTS_DIR": str(weights)},
        timeout=180,
    )
    return base


def _app(server: str, data_dir: Path):
    return create_app({"MODEL_SERVER_URL": server, "DATA_DIR": data_dir})


def _in(app, call, fired):
    with app.server.test_request_context():
        return as_callback(call, fired)


def _outlined(annotate, app, data: bytes):
    """The image opened and auto-segmented by ``app``'s server: meta, image data, the AI
    store and the history with its outline."""
    meta = decode_image(data, NAME).meta()
    image_data = {"contents": "data:image/png;base64," + base64.b64encode(data).decode()}
    ai = _in(app, lambda: annotate.segment(1, meta, False, image_data, 32, None),
             f"{ids.SEGMENT_BUTTON}.n_clicks")[0]
    assert ai["paths"], "the model outlined nothing"
    start = _history.new_history(_editing.empty_state(), image=meta["sha256"])
    return meta, image_data, ai, annotate._take_ai(start, ai)


def _box_around(annotate, ai: dict, meta: dict, pad: int = 12) -> list[int]:
    """A box a little larger than the AI's outline: the model finds the lesion in it."""
    rows, cols = np.nonzero(annotate._decode_mask(ai["mask"]))
    return [max(0, int(cols.min()) - pad), max(0, int(rows.min()) - pad),
            min(meta["width"], int(cols.max()) + 1 + pad),
            min(meta["height"], int(rows.max()) + 1 + pad)]


def _boxed(annotate, app, meta, image_data, ai, history):
    """The history after a box around the AI's outline re-segmented by ``app``'s server."""
    request = {"image": meta["sha256"], "box": _box_around(annotate, ai, meta), "at": 1_000}
    answer = _in(app, lambda: annotate.segment_box(request, meta, image_data, 32, None,
                                                   [request], None),
                 f"{ids.BOX_REQUEST}.data")[0]
    assert not answer["answers"][0].get("failed")
    out = _in(app, lambda: annotate.edit(
        meta, None, answer, None, None, None, None, 32, 0.3, True, True, None, history,
        pending=[request], page="p" * 16,
    ), f"{ids.BOX_DONE}.data")
    assert out[0]["present"]["action"] == "box"
    return out[0]


def _boxed_by_the_upgrade(annotate, live_model_server, newer_model_server, busi_dir,
                          tmp_path):
    """Both servers' apps on one data folder, and the image outlined by the first with a
    box by the upgraded one: ``(data, data_dir, first, upgraded, meta, image_data, ai,
    boxed)``."""
    data = (busi_dir / "benign" / NAME).read_bytes()
    data_dir = tmp_path / "annotations"
    first, upgraded = _app(live_model_server, data_dir), _app(newer_model_server, data_dir)
    meta, image_data, ai, history = _outlined(annotate, first, data)
    boxed = _boxed(annotate, upgraded, meta, image_data, ai, history)
    return data, data_dir, first, upgraded, meta, image_data, ai, boxed


def _reset(annotate, app, meta, ai, history):
    """The history after Reset to AI."""
    reset = _in(app, lambda: annotate.edit(
        meta, ai, None, None, None, None, 1, 32, 0.3, True, True, None, history,
        page="p" * 16), f"{ids.RESET_BUTTON}.n_clicks")[0]
    assert reset["present"]["action"] == "reset"
    return reset


def _saved_record(annotate, app, meta, image_data, ai, history, data_dir: Path) -> dict:
    blank = [None] * len(annotate.DESCRIPTOR_OPTIONS)
    alert = _in(app, lambda: annotate.save(1, meta, history, ai, None, "benign", "", "Dr Ada",
                                           image_data, *blank),
                f"{ids.SAVE_BUTTON}.n_clicks")[0]
    [record] = sorted((data_dir / meta["sha256"]).glob("v*.json"))[-1:]
    assert "Saved" in json.dumps(alert.to_plotly_json(), default=str), alert
    return json.loads(record.read_text())


def test_a_box_answered_by_an_upgraded_server_is_recorded_with_its_version(
    annotate, live_model_server, newer_model_server, busi_dir, tmp_path
):
    data = (busi_dir / "benign" / NAME).read_bytes()
    data_dir = tmp_path / "annotations"
    first, upgraded = _app(live_model_server, data_dir), _app(newer_model_server, data_dir)
    shipped = ModelServerClient(live_model_server, timeout=60).health()["model"]
    meta, image_data, ai, history = _outlined(annotate, first, data)

    # The outline from the shipped model, a box from the upgraded server.
    boxed = _boxed(annotate, upgraded, meta, image_data, ai, history)
    record = _saved_record(annotate, upgraded, meta, image_data, ai, boxed, data_dir)
    model = record["model"]
    assert model["segmentation"] == {"name": shipped["name"], "version": shipped["version"]}
    assert model["box"] == [{"name": shipped["name"], "version": NEWER}]
    assert model["box_differs"] is True
    # The index (and so the Saved page's CSV) keeps the box's version beside the outline's.
    index = AnnotationIndex(default_url(data_dir))
    try:
        [row] = index.query()
    finally:
        index.engine.dispose()
    assert (row["model_version"], row["box_model_versions"]) == (shipped["version"], NEWER)

    # A box by the same server as the outline: named, and not different.
    again = _boxed(annotate, first, meta, image_data, ai, history)
    record = _saved_record(annotate, first, meta, image_data, ai,
                           _history.push(again, dict(again["present"], paths=[
                               *again["present"]["paths"], "M 1,1 L 9,1 L 9,9 L 1,9 Z"],
                               action="edit")), data_dir)
    assert record["model"]["box"] == [model["segmentation"]]
    assert record["model"]["box_differs"] is False

    # An undone box shaped nothing saved: the record names no box.
    undone = _history.undo(boxed)
    undone = _history.push(undone, dict(undone["present"], paths=[
        *undone["present"]["paths"], "M 2,2 L 12,2 L 12,12 L 2,12 Z"], action="edit"))
    record = _saved_record(annotate, first, meta, image_data, ai, undone, data_dir)
    assert record["model"]["box"] is None and record["model"]["box_differs"] is None


def test_a_box_taken_back_by_reset_to_ai_is_not_recorded(
    annotate, live_model_server, newer_model_server, busi_dir, tmp_path
):
    # Reset to AI after a box: the outline saved is the model's own, but the record
    # named the box's model and said it differs (review 1012, F1).
    _, data_dir, first, _, meta, image_data, ai, boxed = _boxed_by_the_upgrade(
        annotate, live_model_server, newer_model_server, busi_dir, tmp_path)
    reset = _reset(annotate, first, meta, ai, boxed)
    record = _saved_record(annotate, first, meta, image_data, ai, reset, data_dir)
    assert record["model"]["box"] is None and record["model"]["box_differs"] is None


def test_a_revision_keeps_the_box_model_of_the_version_it_loaded(
    annotate, live_model_server, newer_model_server, busi_dir, tmp_path
):
    # Version 1's outline was partly the upgraded server's box; the radiologist loads it
    # to revise on a client of the first server and saves version 2 with an edit: its
    # record named no box model, though its outline kept the box's.
    data, data_dir, first, upgraded, meta, image_data, ai, boxed = _boxed_by_the_upgrade(
        annotate, live_model_server, newer_model_server, busi_dir, tmp_path)
    box_model = _saved_record(annotate, upgraded, meta, image_data, ai, boxed,
                              data_dir)["model"]["box"]

    # The page opened afresh on the first server's client: the AI's outline, then the load.
    meta, image_data, ai, history = _outlined(annotate, first, data)
    loaded = _in(first, lambda: annotate.load_saved(1, meta), f"{ids.LOAD_SAVED_BUTTON}.n_clicks")
    assert loaded[0]["version"] == 1
    revised = _in(first, lambda: annotate.edit(
        meta, ai, None, None, None, None, None, 32, 0.3, True, True, loaded[0], history,
        page="p" * 16,
    ), f"{ids.LOADED_SAVE}.data")[0]
    assert revised["present"]["action"] == "saved"
    revised = _history.push(revised, dict(revised["present"], paths=[
        *revised["present"]["paths"], "M 1,1 L 9,1 L 9,9 L 1,9 Z"], action="edit"))
    record = _saved_record(annotate, first, meta, image_data, ai, revised, data_dir)
    assert record["based_on"]["version"] == 1
    assert record["model"]["box"] == box_model == [
        {"name": record["model"]["segmentation"]["name"], "version": NEWER}]
    assert record["model"]["box_differs"] is True
    index = AnnotationIndex(default_url(data_dir))
    try:
        rows = {row["version"]: row for row in index.query(latest_only=False)}
    finally:
        index.engine.dispose()
    assert rows[2]["box_model_versions"] == NEWER

    # Reset to AI after the load: the outline is the model's own again, no box's.
    with first.server.test_request_context():
        assert annotate._box_models(_reset(annotate, first, meta, ai, revised), meta) == []
