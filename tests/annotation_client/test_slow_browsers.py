"""Slow and stalled browsers against the real client (``python -m annotation_client``):
each request is read within SONOTRACE_READ_TIMEOUT and at a least rate
(vectorizer._connections), so a few dropped uploads no longer freeze every thread."""

from __future__ import annotations

import json
import re
import socket
import sys

from slow_senders import body_trickle, header_trickle, paced_post, probe

CALLBACKS = "/_dash-update-component"


def test_slow_and_stalled_requests_end_within_the_bound_and_the_threads_serve_on(
    start_service, free_port, tmp_path, artifacts_dir
):
    start_service(
        [sys.executable, "-m", "annotation_client", "--host", "127.0.0.1",
         "--port", str(free_port), "--threads", "2"],
        f"http://127.0.0.1:{free_port}/health",
        env={"SONOTRACE_DATA_DIR": str(tmp_path), "SONOTRACE_READ_TIMEOUT": "2",
             "SONOTRACE_MODEL_SERVER_URL": "http://127.0.0.1:9"},
        timeout=60,
    )
    # Both request threads taken, twice over, by browsers sending a byte every 0.2 s
    # (headers that never end; a callback's body): gthread had no read timeout, and
    # they held the threads for as long as they kept sending.
    trickles = [header_trickle(free_port) for _ in range(2)] + [
        body_trickle(free_port, CALLBACKS, "application/json") for _ in range(2)]
    status, took = probe(free_port, timeout=20)
    assert status == 200
    assert took < 8, f"/health waited {took:.1f} s behind the slow browsers"
    for trickle in trickles[:2]:
        answer, _, ended = trickle.outcome()
        assert answer is None and ended is not None and ended < 8  # closed, no answer
    for trickle in trickles[2:]:
        answer, body, ended = trickle.outcome()
        assert answer == 408 and ended < 8
        assert re.fullmatch(rb"Request Timeout: the request came too slowly: \d+ bytes in "
                            rb"[\d.]+ s, under 500 bytes/s after the first 2 s\n", body), body

    # A callback body of 24 kB at 8 kB/s (16 times the least rate), three times the
    # grace: read whole and judged (a made-up callback, 400), not cut off.
    padded = json.dumps({"output": "nowhere.children", "pad": "x" * 24_000}).encode()
    answer, body, took = paced_post(free_port, CALLBACKS, "application/json", padded, 8000)
    assert took > 2.5
    assert answer == 400, body
    assert json.loads(body)["error"]["code"] == "bad_callback_request"

    # An address typed with a space (a patient's name in the worklist path): gunicorn's
    # refusal no longer quotes it into the log.
    with socket.create_connection(("127.0.0.1", free_port), timeout=10) as sock:
        sock.sendall(b"GET /?open=Doe^Jane 1970.dcm HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")

    assert probe(free_port)[0] == 200
    log = next(artifacts_dir.glob("service-*.log")).read_text()
    assert len(re.findall(r"closed a connection: the request's headers came too slowly",
                          log)) == 2
    assert len(re.findall(r"a POST /_dash-update-component from 127\.0\.0\.1 ended: the "
                          r"request came too slowly", log)) == 2
    assert "Invalid request from ip=127.0.0.1: Invalid HTTP Version (" in log
    assert "1970.dcm" not in log and "Jane" not in log
    assert "Traceback" not in log
