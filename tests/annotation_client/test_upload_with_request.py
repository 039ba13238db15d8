"""A file uploaded in the same Dash call as a worklist request is opened, not dropped.

Every page load asks ``open_to_revise`` for a worklist entry (most often none). With a
slow model server, the browser holds that request back behind the health poll, and a
file dropped meanwhile goes in the same call: ``changedPropIds`` names both inputs, the
worklist request first. The open dispatched on the first trigger, so the empty request
won, the call answered nothing, and the file stayed unopened, silently; dropped again it
was no change, and Dash did not even ask (audit 602, F1).
"""

from __future__ import annotations

import base64
import io
import time

import dash
import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    as_callback,
    console_errors,
    gradient_png,
    image_name,
    serve_http,
    text_of,
    upload,
    wait_for,
)
from PIL import Image

from annotation_client import create_app, ids

pytestmark = pytest.mark.usefixtures("an_app_exists")

UPLOAD = f"{ids.IMAGE_UPLOAD}.contents"
REQUEST = f"{ids.WORKLIST_REQUEST}.data"
#: IMAGE_META, UPLOAD_ALERT, IMAGE_UPLOAD.contents and IMAGE_OPENED in the answer.
META, ALERT, CONTENTS, OPENED = 0, 4, 8, 9


def _contents(seed: int = 0) -> str:
    ramp = (np.add.outer(np.arange(40), np.arange(60)) * 3 + seed).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _png(path, seed: int):
    ramp = (np.add.outer(np.arange(40), np.arange(60)) * 2 + seed).astype(np.uint8)
    Image.fromarray(ramp).save(path)


@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "worklist"
    folder.mkdir()
    _png(folder / "a.png", 5)
    return create_app({"DATA_DIR": tmp_path / "data", "WORKLIST_DIR": folder,
                       "MODEL_SERVER_URL": "http://127.0.0.1:9"})


def _open(app, annotate, fired, contents, request, failed=None):
    """``open_to_revise`` as Dash calls it with ``fired`` (prop ids, in Dash's order)."""
    return as_callback(lambda: annotate.open_to_revise(
        contents, request, "scan.png", None, "pan", None, "Dr Ada", failed),
        fired, app=app, value=1)


def test_a_file_dropped_with_the_page_s_empty_request_opens(app, annotate):
    out = _open(app, annotate, [REQUEST, UPLOAD], _contents(), None)
    assert out[META]["name"] == "scan.png"
    assert isinstance(out[OPENED], dict) and out[OPENED]["image"] == out[META]["sha256"]
    assert out[ALERT] is None  # nothing asked for was passed over
    # No worklist file failed, and none is passed over.
    assert out[-2] is dash.no_update
    # The other order, and the request alone (the page load's own call), as before.
    assert _open(app, annotate, [UPLOAD, REQUEST], _contents(), None)[META]["name"] == (
        "scan.png")
    with pytest.raises(dash.exceptions.PreventUpdate):
        _open(app, annotate, [REQUEST], None, None)


def test_the_upload_is_emptied_after_each_open_so_the_same_file_opens_again(app, annotate):
    opened = _open(app, annotate, [UPLOAD], _contents(), None)
    assert opened[CONTENTS] is None
    refused = _open(app, annotate, [UPLOAD], "data:image/png;base64,AAAA", None)
    assert refused[META] is dash.no_update and refused[CONTENTS] is None
    assert "Cannot open this file." in text_of(refused[ALERT])


def test_a_file_and_an_entry_asked_for_at_once_the_file_wins_and_says_so(app, annotate):
    asked = {"path": "a.png", "at": 1}
    out = _open(app, annotate, [REQUEST, UPLOAD], _contents(), asked)
    assert out[META]["name"] == "scan.png" and "worklist_path" not in out[META]
    note = text_of(out[ALERT])
    assert "Not opened: a.png, asked for at the same moment as this file" in note
    assert out[-2] is dash.no_update  # not a failure of a.png: it is not passed over
    # A file that does not open: its refusal, the same note, and the claim Open next
    # may have moved to a.png handed back, without passing a.png over.
    out = _open(app, annotate, [REQUEST, UPLOAD], "data:image/png;base64,AAAA", asked,
                failed={"entries": {}})
    assert out[META] is dash.no_update
    assert "Cannot open this file." in text_of(out[ALERT])
    assert "Not opened: a.png" in text_of(out[ALERT])
    assert out[-2]["entries"] == {} and out[-2]["last"] == "a.png"
    # The entry alone still opens, as before.
    alone = _open(app, annotate, [REQUEST], None, asked)
    assert alone[META]["worklist_path"] == "a.png" and alone[ALERT] is None


# --------------------------------------------------------------------------- in the browser


class _SlowHealth(HealthyModelServer):
    """A model server slow to say it is healthy (busy, or just restarted): the page's
    first requests wait behind its health check."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        time.sleep(HEALTH_S)
        super().do_GET()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(503)
        self.end_headers()


#: How long the stand-in model server takes over /health.
HEALTH_S = 4.0


@pytest.mark.browser
def test_a_file_dropped_as_the_page_loads_behind_a_slow_server_opens(dash_duo, tmp_path):
    with serve_http(_SlowHealth) as url:
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": tmp_path / "data",
                          "REQUEST_TIMEOUT": 10})
        dash_duo.start_server(app)
        dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD} input[type=file]")
        started = time.monotonic()
        upload(dash_duo, gradient_png(tmp_path / "early.png"))
        assert time.monotonic() - started < HEALTH_S / 2, "too slow to test"
        wait_for(dash_duo, lambda: image_name(dash_duo) == "early.png", HEALTH_S + 15,
                 "the file dropped while the page loaded was not opened")
        assert not console_errors(dash_duo)
