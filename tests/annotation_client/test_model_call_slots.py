"""A slow model server takes at most ``SONOTRACE_MODEL_CALLS`` of the client's threads.

Every call to the model server waits for its answer in one of the client worker's
request threads. Without a bound, a slow server held all of them, and a save, the
Saved page and the client's own ``/health`` waited the whole request timeout.
"""

import json
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from _dash_helpers import ROUTE, HealthyModelServer, saved_page_body, serve_http

from annotation_client import ClientConfig, ModelServerClient, ids
from annotation_client import _server_client as server_client
from annotation_client.__main__ import _leave_threads_free
from annotation_client._server_client import CallSlots, ModelServerBusy


def _held_server(hold: threading.Event, release: threading.Event, asked: list):
    """A model server stand-in that, while ``hold`` is set, answers nothing until
    ``release`` is: a server whose workers are all busy."""

    class Handler(HealthyModelServer):
        def do_GET(self):  # noqa: N802 - http.server's naming
            asked.append(self.path)
            if hold.is_set():
                release.wait(30)
            super().do_GET()

        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            self.do_GET()

    return Handler


def test_a_call_that_finds_every_slot_taken_is_told_the_server_is_busy(monkeypatch):
    monkeypatch.setattr(server_client, "SLOT_WAIT_S", 0.3)
    hold, release, asked = threading.Event(), threading.Event(), []
    hold.set()
    slots = CallSlots(2)
    with serve_http(_held_server(hold, release, asked)) as url, ThreadPoolExecutor(2) as pool:
        client = ModelServerClient(url, timeout=10, slots=slots)
        waiting = [pool.submit(client.predict, b"\x89PNG\r\n\x1a\nx", "x.png") for _ in range(2)]
        deadline = time.monotonic() + 5
        while len(asked) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            # A model request waits SLOT_WAIT_S for a slot; a health check not at all.
            started = time.monotonic()
            with pytest.raises(ModelServerBusy, match="busy with other readers' requests"):
                client.classify(b"\x89PNG\r\n\x1a\nx", "x.png")
            assert 0.3 <= time.monotonic() - started < 2
            started = time.monotonic()
            with pytest.raises(ModelServerBusy):
                client.health()
            assert time.monotonic() - started < 0.2
            assert len(asked) == 2  # neither was sent
        finally:
            release.set()
        for call in waiting:  # the stand-in's answer is no outline: refused, but answered
            with pytest.raises(server_client.ModelServerError, match="lacks"):
                call.result(timeout=10)
        # The slots given back, the server is asked again.
        hold.clear()
        assert client.health()["status"] == "ok"


def test_a_busy_server_is_unavailable_not_unreachable():
    # The page's alert: a warning to go on by hand, and not one a health check takes
    # back as "the server is back" (see annotate.refresh_server_status).
    assert issubclass(ModelServerBusy, server_client.ModelServerUnavailable)
    assert not issubclass(ModelServerBusy, server_client.ModelServerUnreachable)


@pytest.mark.parametrize("value", ["0", "257", "two", "2.5", True])
def test_bad_model_calls_are_refused_by_name(value):
    with pytest.raises(ValueError, match="SONOTRACE_MODEL_CALLS"):
        ClientConfig.load({"MODEL_CALLS": value})


def test_model_calls_are_lowered_below_the_threads():
    config = ClientConfig.load({"MODEL_CALLS": "6"})
    assert _leave_threads_free(config, 8).model_calls == 6
    assert _leave_threads_free(config, 6).model_calls == 5
    assert _leave_threads_free(config, 2).model_calls == 1
    assert _leave_threads_free(config, 1).model_calls == 6  # one thread: nothing to keep


def _check_server_body() -> dict:
    """What the browser posts when the Annotate page loads: its health check
    (annotate.check_server), which waited the whole request timeout for an answer."""
    outputs = [(ids.SERVER_ALERT, "children"), (ids.SERVER_STATUS, "children"),
               (ids.SERVER_RECHECK, "max_intervals")]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": ids.PAGE_LOAD, "property": "data", "value": 1}],
        "changedPropIds": [f"{ids.PAGE_LOAD}.data"],
        "state": [{"id": ids.SERVER_RECHECK, "property": "n_intervals", "value": 0}],
    }


def _post(url: str, body: dict, timeout: float) -> tuple[float, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return time.monotonic() - started, response.read().decode()


def _get(url: str, timeout: float) -> tuple[float, int]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return time.monotonic() - started, response.status


def test_a_slow_model_server_leaves_the_client_threads_for_everything_else(
    start_service, free_port, tmp_path
):
    hold, release, asked = threading.Event(), threading.Event(), []
    with serve_http(_held_server(hold, release, asked)) as url:
        base = f"http://127.0.0.1:{free_port}"
        start_service(
            [sys.executable, "-m", "annotation_client", "--host", "127.0.0.1",
             "--port", str(free_port), "--threads", "4"],
            f"{base}/health",
            env={"SONOTRACE_DATA_DIR": str(tmp_path), "SONOTRACE_MODEL_SERVER_URL": url,
                 "SONOTRACE_MODEL_CALLS": "2", "SONOTRACE_REQUEST_TIMEOUT": "20"},
            timeout=60,
        )
        hold.set()
        asked.clear()
        try:
            # Four pages load at once against a server that answers nothing. Their health
            # checks took two model-call slots for the request timeout (the others were
            # told the server is busy): now each page is answered at once, to ask again
            # a second later, and one check, in the worker's own thread, waits for it.
            with ThreadPoolExecutor(4) as pool:
                loads = [pool.submit(_post, base + ROUTE, _check_server_body(), 30)
                         for _ in range(4)]
                answered = [load.result(timeout=10) for load in _first_done(loads, 4, 5)]
            assert all(took < 2 for took, _text in answered), answered
            assert all("server-recheck" in text and "model server" not in text
                       for _took, text in answered), answered
            assert asked == ["/health"]
            # Meanwhile the client answers its own health check and the Saved page.
            took, status = _get(f"{base}/health", 5)
            assert status == 200 and took < 2
            took, text = _post(base + ROUTE, saved_page_body(), 5)
            assert took < 3 and "saved-summary" in text
            # Answered, the check's answer is the next page's.
            release.set()
            deadline = time.monotonic() + 10
            while "model server ready" not in _post(base + ROUTE, _check_server_body(), 5)[1]:
                assert time.monotonic() < deadline, "the late answer never reached a page"
                time.sleep(0.2)
        finally:
            release.set()


def _first_done(futures, count: int, timeout: float = 10):
    """The first ``count`` of ``futures`` to finish, in ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [f for f in futures if f.done()]
        if len(done) >= count:
            return done[:count]
        time.sleep(0.02)
    raise AssertionError(f"only {sum(f.done() for f in futures)} of the calls were answered")


def test_health_checks_of_a_hung_server_take_no_slot_and_one_thread(tmp_path):
    """Each page load's health check held a model-call slot for the request timeout
    (30 s) against a hung server: three page loads left segmentation none. Now the
    worker asks in one thread of its own, and a page waits for it a moment only."""
    from annotation_client import create_app
    from annotation_client._app import get_model_slots

    hold, release, asked = threading.Event(), threading.Event(), []
    hold.set()
    with serve_http(_held_server(hold, release, asked)) as url:
        app = create_app({"MODEL_SERVER_URL": url, "DATA_DIR": tmp_path, "MODEL_CALLS": "2",
                          "REQUEST_TIMEOUT": "30"})
        from annotation_client.pages import annotate  # registered by create_app

        try:
            with app.server.test_request_context(ROUTE, method="POST"):
                for _ in range(3):
                    started = time.monotonic()
                    assert annotate._health() is None  # not answered yet, none before
                    assert time.monotonic() - started < annotate.HEALTH_WAIT_S + 0.5
                assert asked == ["/health"]  # the later ones joined the first
                slots = get_model_slots()
                with slots.held(0), slots.held(0):  # both model-call slots free
                    pass
                release.set()
                deadline = time.monotonic() + 10
                while (answer := annotate._health()) is None or not answer[0]:
                    assert time.monotonic() < deadline, "the check never answered"
                fresh, health, error = answer
                assert health["status"] == "ok" and error is None
        finally:
            release.set()
