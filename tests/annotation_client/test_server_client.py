"""The HTTP client against a real model server process, and against nothing at all."""

import base64
import contextlib
import io
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pydicom
import pytest
from _dash_helpers import HealthyModelServer, as_callback, closed_port, text_of
from image_samples import dicom_bytes, speckle_image
from PIL import Image

from annotation_client import ModelServerClient, ModelServerError, ModelServerUnavailable


def _busi_image(busi_dir, name="benign (2).png"):
    path = busi_dir / "benign" / name
    if not path.exists():
        path = sorted((busi_dir / "benign").glob("benign (*).png"))[0]
    return path.name, path.read_bytes()


def test_health_of_the_live_server(live_model_server):
    body = ModelServerClient(live_model_server).health()
    assert body["status"] == "ok"


def test_predict_returns_a_mask_of_the_image_size(live_model_server, busi_dir):
    name, data = _busi_image(busi_dir)
    width, height = Image.open(io.BytesIO(data)).size
    result = ModelServerClient(live_model_server, timeout=60).predict(data, name, max_vertices=16)
    assert (result["width"], result["height"]) == (width, height)
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask"]))))
    assert mask.shape == (height, width)
    assert set(np.unique(mask)) <= {0, 255}
    assert all(p.startswith("M") for p in result["paths"])
    assert result["model"]["name"]


def test_predict_inside_a_box_only_marks_the_box(live_model_server, busi_dir):
    name, data = _busi_image(busi_dir)
    width, height = Image.open(io.BytesIO(data)).size
    # A box around the true lesion with a margin, as a radiologist would draw it.
    truth = np.asarray(Image.open(busi_dir / "benign" / name.replace(".png", "_mask.png"))) > 0
    rows, cols = np.nonzero(truth if truth.ndim == 2 else truth.any(axis=2))
    pad = 20
    box = (max(int(cols.min()) - pad, 0), max(int(rows.min()) - pad, 0),
           min(int(cols.max()) + pad, width), min(int(rows.max()) + pad, height))
    assert (box[2] - box[0]) * (box[3] - box[1]) < 0.5 * width * height
    result = ModelServerClient(live_model_server, timeout=60).predict(data, name, box=box)
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask"])))) > 0
    outside = mask.copy()
    outside[box[1] : box[3], box[0] : box[2]] = False
    assert mask.any(), "the box holds the lesion, so something must be marked"
    assert not outside.any()
    truth = truth if truth.ndim == 2 else truth.any(axis=2)
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.5


def test_classify_with_a_mask(live_model_server, busi_dir):
    name, data = _busi_image(busi_dir)
    width, height = Image.open(io.BytesIO(data)).size
    mask = np.zeros((height, width), np.uint8)
    mask[height // 3 : height // 2, width // 3 : width // 2] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    result = ModelServerClient(live_model_server, timeout=60).classify(
        data, name, mask_png=buffer.getvalue()
    )
    assert result["label"] in ("normal", "benign", "malignant")
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)


def test_a_refused_upload_carries_the_server_message(live_model_server):
    client = ModelServerClient(live_model_server)
    with pytest.raises(ModelServerError) as caught:
        client.predict(b"this is not an image", "notes.txt")
    assert not isinstance(caught.value, ModelServerUnavailable)
    assert caught.value.status in (400, 415)
    assert caught.value.message.startswith("The model server refused the request")


def test_the_log_line_of_a_refusal_gives_its_status_not_what_the_file_said(live_model_server):
    # The server's message may quote a header's value; the log gets the status and code.
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(speckle_image())))
    ds.add_new(0x00281053, "LO", "JANE^DOE")  # RescaleSlope, not a number
    sent = io.BytesIO()
    ds.save_as(sent)
    with pytest.raises(ModelServerError) as caught:
        ModelServerClient(live_model_server).predict(sent.getvalue(), "scan.dcm")
    refusal = caught.value
    assert "JANE^DOE" in refusal.message  # the person who sent it is told why
    assert refusal.status == 400 and refusal.code
    assert str(refusal.code) == "400"
    # Named by the request's id, which the model server's access line gives too.
    assert re.fullmatch(r"[0-9a-f]{16}", refusal.request_id)
    assert refusal.logged() == f"HTTP 400 [request {refusal.request_id}]"
    # conftest's live_model_server writes the process's output there.
    logs = Path(__file__).resolve().parents[2] / "test-artifacts" / "live_model_server"
    deadline = time.monotonic() + 10  # the access line is written as the answer goes
    while not any(" 400 " in line and f"id={refusal.request_id}" in line
                  for path in logs.glob("*.log")
                  for line in path.read_text(errors="replace").splitlines()):
        assert time.monotonic() < deadline, "the server's access line has no such id"
        time.sleep(0.1)
    # The client's own words (no answer to quote) are logged as they are.
    slow = ModelServerUnavailable("The model server at x did not answer within 3 s.")
    assert slow.logged() == slow.message
    # The model server's code is the status again: not said twice ("HTTP 503 (503)").
    loading = ModelServerUnavailable("models are loading", status=503, code=503)
    assert loading.logged() == "HTTP 503"


def test_a_server_that_is_down_is_unavailable():
    client = ModelServerClient(f"http://127.0.0.1:{closed_port()}", timeout=2)
    with pytest.raises(ModelServerUnavailable, match="cannot be reached"):
        client.health()
    with pytest.raises(ModelServerUnavailable):
        client.predict(b"\x89PNG\r\n\x1a\n", "x.png")


class _SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        time.sleep(1.5)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_server_that_is_too_slow_is_unavailable():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = ModelServerClient(f"http://127.0.0.1:{server.server_port}", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(ModelServerUnavailable, match="did not answer within 0.3 s"):
            client.health()
        assert time.monotonic() - started < 1.4
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"base_url": "localhost:5000"}, ValueError), ({"timeout": 0}, ValueError)],
)
def test_bad_client_settings(kwargs, error):
    arguments = {"base_url": "http://127.0.0.1:5000"} | kwargs
    with pytest.raises(error):
        ModelServerClient(**arguments)


def test_bad_request_arguments_fail_before_sending():
    client = ModelServerClient(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ValueError, match="image"):
        client.predict(b"", "x.png")
    with pytest.raises(ValueError, match="box"):
        client.predict(b"x", "x.png", box=(1, 2, 3))
    with pytest.raises(TypeError, match="mask_png"):
        client.classify(b"x", "x.png", mask_png="nope")


# --------------------------------------------------------------------------- the page's alert


def _as_browser_holds(component):
    """A Dash component as a callback's Input gets it back from the browser: JSON."""
    import json

    import plotly

    return json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))


@pytest.mark.usefixtures("an_app_exists")
def test_the_health_poll_takes_back_only_the_alert_that_the_server_cannot_be_reached(
    tmp_path, annotate, monkeypatch
):
    """The server was down when a model request was made; the poll finds it back."""
    import dash

    monkeypatch.setattr(annotate, "HEALTH_FRESH_S", 0)  # each call asks the server

    from annotation_client import create_app
    from annotation_client._server_client import ModelServerUnreachable

    port = closed_port()
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{port}", "DATA_DIR": tmp_path})
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        with pytest.raises(ModelServerUnreachable, match="cannot be reached"):
            annotate._client().health()
        down = _as_browser_holds(annotate._server_alert(
            ModelServerUnreachable("The model server at x cannot be reached."),
            "Box re-segmentation"))
        slow = _as_browser_holds(annotate._server_alert(
            ModelServerUnavailable("The model server at x did not answer within 3 s."),
            "Classification"))
        refused = _as_browser_holds(annotate._server_alert(
            ModelServerError("The model server refused the request: draw a larger box."),
            "Box re-segmentation"))
        # Still down: the alert stays, the badge says offline.
        badge, alert, back, again = annotate.refresh_server_status(1, down)
        assert "offline" in str(badge.children) and alert is dash.no_update
        assert back is again is dash.no_update
        server = ThreadingHTTPServer(("127.0.0.1", port), HealthyModelServer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            # Asked by the alert itself, in the chain of the request that failed: the
            # alert stays for the next poll, whose SERVER_BACK can ask again.

            from annotation_client import ids

            badge, alert, back, _again = as_callback(
                lambda: annotate.refresh_server_status(2, down), f"{ids.SERVER_ALERT}.children")
            assert "ready" in str(badge.children)
            assert (alert, back) == (dash.no_update, dash.no_update)
            badge, alert, back, _again = annotate.refresh_server_status(2, down)
            assert "ready" in str(badge.children) and alert is None
            # Back: the time, for segment to outline an image opened meanwhile.
            assert isinstance(back, int) and back > 0
            # What the server answered, or a slow answer, is not taken back.
            for other in (slow, refused, None):
                assert annotate.refresh_server_status(3, other)[1:] == (
                    dash.no_update, dash.no_update, dash.no_update)
        finally:
            server.shutdown()
            server.server_close()


class _Hanging(HealthyModelServer):
    """A model server that answers, until ``hung`` is set: then it accepts and never
    answers (hung, or stopped by SIGSTOP)."""

    hung = threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.hung.wait(0):
            time.sleep(10)
        else:
            super().do_GET()


@pytest.mark.usefixtures("an_app_exists")
def test_a_page_load_s_check_of_a_hung_server_is_said_when_it_gives_up(
    tmp_path, annotate, monkeypatch
):
    """The page load's check waited the whole request timeout; now the page goes on at
    once, asks again a second later, and once the check gave up says what it said (not
    the answer before it, that the server was ready)."""
    import dash

    from annotation_client import create_app, ids

    monkeypatch.setattr(annotate, "HEALTH_TIMEOUT_S", 1.0)
    monkeypatch.setattr(annotate, "HEALTH_FRESH_S", 0)  # each call asks the server
    handler = type("Hanging", (_Hanging,), {"hung": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recheck = f"{ids.SERVER_RECHECK}.n_intervals"
    try:
        app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{server.server_port}",
                          "DATA_DIR": tmp_path, "REQUEST_TIMEOUT": 30})
        ready = as_callback(lambda: annotate.check_server(1, 0), f"{ids.PAGE_LOAD}.data",
                            app=app)
        assert ready[1].children.startswith("model server ready")
        handler.hung.set()
        started = time.monotonic()
        assert as_callback(lambda: annotate.check_server(1, 0), f"{ids.PAGE_LOAD}.data",
                           app=app) == (dash.no_update, dash.no_update, 1)
        assert time.monotonic() - started < 1
        # Asked again while the check waits: still nothing to show, and again later.
        assert as_callback(lambda: annotate.refresh_server_status(None, None, None, 1, None),
                           recheck, app=app) == (dash.no_update,) * 3 + (2,)
        deadline = time.monotonic() + 10
        while True:
            badge, alert, back, again = as_callback(
                lambda: annotate.refresh_server_status(None, None, None, 2, None), recheck,
                app=app)
            if again is dash.no_update:
                break
            assert badge is dash.no_update and time.monotonic() < deadline
            time.sleep(0.1)
        assert badge.children == "model server offline" and back is dash.no_update
        assert "Auto-segmentation and classification unavailable" in text_of(alert)
        assert "did not answer within 1 s" in text_of(alert)
    finally:
        server.shutdown()
        server.server_close()


def _answering(status: int, body: bytes):
    class Handler(HealthyModelServer):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.mark.usefixtures("an_app_exists")
@pytest.mark.parametrize(("status", "body", "badge"), [
    (400, b'{"error": {"code": "bad_host", "message": "this server does not answer to the '
          b'host \'gpu-box:5000\'"}}', "model server refuses this client"),
    (503, b'{"status": "loading", "error": {"code": 503, "message": "models are loading"}}',
     "model server not ready"),
    (200, b'{"status": "ok", "model": {"name": "stand-in"}}', "model server ready"),
])
def test_the_badge_tells_a_refusing_or_loading_server_from_one_that_is_offline(
    tmp_path, annotate, status, body, badge
):
    from annotation_client import create_app

    server = ThreadingHTTPServer(("127.0.0.1", 0), _answering(status, body))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": tmp_path})
        with app.server.test_request_context("/_dash-update-component", method="POST"):
            shown = annotate.refresh_server_status(1, None)[0]
            _alert, first, _again = annotate.check_server(None)
    finally:
        server.shutdown()
        server.server_close()
    assert str(shown.children).startswith(badge) and str(first.children).startswith(badge)
    if status == 400:  # the reason, on hover
        assert "does not answer to the host" in shown.title
    # No answer at all is still "offline".
    app = create_app({"MODEL_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
                      "DATA_DIR": tmp_path})
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        assert annotate.refresh_server_status(1, None)[0].children == "model server offline"


# ----------------------------------------------------------------- a server slow to take a body


class _SlowReader:
    """A model server stand-in on a raw socket that starts reading a request only
    ``delay`` seconds after it arrives (``None``: never), as a model server does whose
    workers are all busy; then it answers a /predict. Its receive buffer is small, so
    a body of a few MB waits in the client's send() for the whole delay."""

    ANSWER = b'{"width": 1, "height": 1, "mask": "", "paths": []}'

    def __init__(self, delay: float | None):
        import socket

        self.delay = delay
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received: list[int] = []
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            if self.stop.wait(self.delay):
                return
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += conn.recv(1 << 20)
            self.received.append(len(body))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(self.ANSWER), self.ANSWER))

    def close(self):
        self.stop.set()
        self.listener.close()


#: An image file of 8 MB (random bytes after a PNG signature: the stand-in only counts them).
_LARGE = b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(8 << 20)


@pytest.fixture
def short_connect_timeout(monkeypatch):
    """Connecting bounded by 0.5 s, the upload by the request's timeout: the 5 s of a
    real deployment, scaled down."""
    from annotation_client import _server_client

    monkeypatch.setattr(_server_client, "CONNECT_TIMEOUT_S", 0.5)


@pytest.mark.usefixtures("short_connect_timeout")
def test_a_large_image_waits_for_a_busy_server_within_the_request_timeout():
    server = _SlowReader(delay=2.0)  # four times the connect timeout
    try:
        started = time.monotonic()
        result = ModelServerClient(server.url, timeout=10).predict(_LARGE, "large.png")
        took = time.monotonic() - started
    finally:
        server.close()
    assert result["paths"] == [] and server.received and server.received[0] > len(_LARGE)
    assert 2.0 <= took < 10


@pytest.mark.usefixtures("short_connect_timeout")
def test_a_server_that_never_takes_the_image_did_not_answer_in_time():
    from annotation_client._server_client import ModelServerUnreachable

    server = _SlowReader(delay=None)
    try:
        started = time.monotonic()
        with pytest.raises(ModelServerUnavailable, match="did not answer within 1.5 s") as caught:
            ModelServerClient(server.url, timeout=1.5).predict(_LARGE, "large.png")
        took = time.monotonic() - started
    finally:
        server.close()
    assert not isinstance(caught.value, ModelServerUnreachable)
    assert 1.5 <= took < 5


def test_a_refused_connection_fails_at_once_whatever_the_request_timeout():
    from annotation_client._server_client import ModelServerUnreachable

    started = time.monotonic()
    with pytest.raises(ModelServerUnreachable, match="cannot be reached"):
        ModelServerClient(f"http://127.0.0.1:{closed_port()}", timeout=30).predict(
            _LARGE, "large.png")
    assert time.monotonic() - started < 2


class _DropsTheRequest:
    """A server on 127.0.0.1 that takes each request's first bytes, then closes the
    connection without an answer (``reset``: with an RST, as the kernel does for a
    worker killed with the request unread), as a model-server worker killed mid-request."""

    def __init__(self, reset: bool, drops: int | None = None):
        import socket
        import struct

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        #: The requests taken, dropped or answered.
        self.taken = 0

        def serve():
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:  # closed
                    return
                conn.recv(1024)
                self.taken += 1
                if drops is not None and self.taken > drops:  # answered, as /health is
                    body = b'{"status": "ok"}'
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    conn.close()
                    continue
                if reset:  # linger 0: close() sends RST
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        import socket

        # Wakes the accept() under way, which else keeps the socket listening.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_health_check_dropped_once_is_asked_again_on_a_new_connection(reset):
    """A check that raced the server's stopping (a connection it had queued, then reset
    as it closed its socket) was said as a request the server "stopped answering", and
    the page kept saying so after the server had gone: it is asked once more."""
    server = _DropsTheRequest(reset, drops=1)
    try:
        assert ModelServerClient(server.url, timeout=5).health() == {"status": "ok"}
        assert server.taken == 2
    finally:
        server.close()
    # Dropped twice: said as dropped, after the second try.
    server = _DropsTheRequest(reset, drops=2)
    try:
        from annotation_client._server_client import ModelServerDropped

        with pytest.raises(ModelServerDropped, match="stopped answering"):
            ModelServerClient(server.url, timeout=5).health()
        assert server.taken == 2
    finally:
        server.close()


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_request_dropped_while_answered_is_told_from_a_refused_connection(reset):
    """A model-server worker killed mid-/predict was said as "cannot be reached", with the
    server up all along (audit 904 F6): it is said as a request to try again."""
    from annotation_client._server_client import ModelServerDropped, ModelServerUnreachable

    server = _DropsTheRequest(reset)
    try:
        client = ModelServerClient(server.url, timeout=5)
        for call in (client.health, lambda: client.predict(b"\x89PNG\r\n\x1a\n", "x.png")):
            with pytest.raises(ModelServerDropped) as caught:
                call()
            message = caught.value.message
            assert message == (f"The model server at {server.url} stopped answering this "
                               "request (the connection closed before its answer); try again.")
            # Still taken back by the next health check that answers, as before.
            assert isinstance(caught.value, ModelServerUnreachable)
    finally:
        server.close()
    # Nothing listening: refused, as before.
    with pytest.raises(ModelServerUnreachable, match="cannot be reached") as caught:
        ModelServerClient(f"http://127.0.0.1:{closed_port()}", timeout=5).health()
    assert not isinstance(caught.value, ModelServerDropped)
