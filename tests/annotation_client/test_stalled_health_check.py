"""Browser tests: the page works on while the model server's health check waits for an answer.

A model server that accepts connections and does not answer (hung, or stopped with
SIGSTOP) holds each health check for its whole timeout. The page's own actions must
not wait for it: Dash held every callback downstream of a health check's outputs
until it answered, and that graph reached the image's open and the tool bar through
the "server back" store that re-segments an image opened while the server was away.
"""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import ThreadingHTTPServer

import numpy as np
import pytest
from _dash_helpers import (
    HealthyModelServer,
    click,
    console_errors,
    gradient_png,
    settled,
    wait_for,
)
from _dash_helpers import edit_status as _status
from _dash_helpers import graph_js as _js
from _dash_helpers import upload as _upload
from selenium.webdriver.common.by import By

from annotation_client import create_app, ids

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 256, 200
#: The health check's own limit in these tests (annotate.HEALTH_TIMEOUT_S, 5 s as
#: shipped): long enough that an action that waited for the check to give up is told
#: from one that did not, on a loaded machine too (with 5 s, the 3 s given below were
#: taken by a slow browser alone).
STALL_S = 15.0
#: What each action is given after a health check reached the stalled server: well
#: under the check's limit (STALL_S), and the page load's 30 s.
AT_ONCE_S = 7.0


class _StallingModel(HealthyModelServer):
    """A model server whose /health, while ``stalled`` is set, answers nothing until
    ``release`` is (at most a minute); ``arrivals`` gets the time.monotonic() of each.
    /predict answers at once with a square."""

    stalled: threading.Event
    release: threading.Event
    arrivals: list[float]

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.arrivals.append(time.monotonic())
        if self.stalled.is_set():
            self.release.wait(60)
            return  # the client gave up long ago: no answer at all
        super().do_GET()

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        mask[50:150, 60:180] = True
        self.send_outline(mask)


@contextlib.contextmanager
def _stalling_model(stalled: bool):
    handler = type("Model", (_StallingModel,), {
        "stalled": threading.Event(), "release": threading.Event(), "arrivals": []})
    if stalled:
        handler.stalled.set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_port}"
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def _next_check(dash_duo, model, timeout: float = 30) -> float:
    """Wait for a health check to reach the model server; when it did."""
    seen = len(model.arrivals)
    wait_for(dash_duo, lambda: len(model.arrivals) > seen, timeout, "no health check came")
    return model.arrivals[-1]


def _stalls_long(monkeypatch) -> None:
    from annotation_client.pages import annotate  # registered by create_app

    monkeypatch.setattr(annotate, "HEALTH_TIMEOUT_S", STALL_S)


def test_a_file_opens_while_the_page_load_s_health_check_waits(dash_duo, data_dir, tmp_path,
                                                               monkeypatch):
    """The page loaded against a hung model server: a file dropped then opened only once
    its health check gave up (the request timeout, 30 s). Now it opens at once, and the
    model's outline follows."""
    with _stalling_model(stalled=True) as (model, url):
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir,
                          "REQUEST_TIMEOUT": 30})
        _stalls_long(monkeypatch)
        dash_duo.start_server(app)
        wait_for(dash_duo, lambda: model.arrivals, 20, "the page asked no health check")
        asked = model.arrivals[0]
        dash_duo.wait_for_element(f"#{ids.IMAGE_UPLOAD} input[type=file]", timeout=10)
        _upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
        wait_for(dash_duo, lambda: dash_duo.find_element("#image-name").text == "frame.png",
                 30, "the file did not open")
        took = time.monotonic() - asked
        assert took < AT_ONCE_S, f"the file opened {took:.1f} s after the health check began"
        assert _js(dash_duo, "return !!gd.querySelector('.imagelayer image');")
        # The outline's request does not wait for the health check either.
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 10, _status(dash_duo))
        # The health check gave up in its own time: the badge says so.
        wait_for(dash_duo, lambda: "offline" in dash_duo.find_element(
            f"#{ids.SERVER_STATUS}").text, STALL_S + 10, "the badge never said offline")
        assert time.monotonic() - asked < STALL_S + 5
        assert not console_errors(dash_duo)


def test_a_tool_picked_while_a_health_check_waits_applies_at_once(
    dash_duo, data_dir, tmp_path, monkeypatch
):
    """An image open, no box pending, and the server's health poll stalled: Draw region
    reached the graph only once the poll gave up. Now at once."""
    with _stalling_model(stalled=False) as (model, url):
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": data_dir,
                          "REQUEST_TIMEOUT": 30})
        from annotation_client.pages import annotate  # registered by create_app

        monkeypatch.setattr(annotate, "SERVER_POLL_MS", 3000)
        _stalls_long(monkeypatch)
        dash_duo.start_server(app)
        wait_for(dash_duo, lambda: "ready" in dash_duo.find_element(
            f"#{ids.SERVER_STATUS}").text, 20)
        _upload(dash_duo, gradient_png(tmp_path / "frame.png", WIDTH, HEIGHT))
        wait_for(dash_duo, lambda: "last change: ai" in _status(dash_duo), 20, _status(dash_duo))
        settled(dash_duo, quiet=0.5)
        model.stalled.set()
        asked = _next_check(dash_duo, model)
        for tool, mode in (("Draw region", "drawclosedpath"), ("Box re-segment", "drawrect")):
            click(dash_duo.driver, By.XPATH,
                  f"//*[@id='{ids.TOOL}']//label[normalize-space()='{tool}']")
            wait_for(dash_duo, lambda mode=mode: _js(
                dash_duo, "return gd._fullLayout.dragmode;") == mode, 10,
                f"{tool} did not reach the graph")
        took = time.monotonic() - asked
        assert took < AT_ONCE_S, f"the tools applied {took:.1f} s after the health check began"
        assert not console_errors(dash_duo)
