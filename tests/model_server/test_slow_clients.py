"""Slow and stalled clients against the real server (``python -m model_server``): each
request is read within the read timeout and at a least rate (vectorizer._connections),
under sync workers and gthread alike, and the worker takes the next request."""

from __future__ import annotations

import io
import json
import re
import socket
import sys

import numpy as np
import pytest
from PIL import Image
from slow_senders import body_trickle, header_trickle, paced_post, probe


def _uncompressed_mask_png() -> bytes:
    # A real mask, stored without compression so that it is large enough to take a
    # few seconds at a modest rate (about 24 kB).
    mask = np.zeros((120, 200), np.uint8)
    mask[30:90, 40:160] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


@pytest.mark.parametrize("threads", ["1", "2"], ids=["sync", "gthread"])
def test_slow_and_stalled_requests_end_within_the_bound_and_the_worker_serves_on(
    start_service, free_port, artifacts_dir, threads
):
    # /vectorize and the docs need no model: none is loaded (WARMUP off, /health 503).
    start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "1", "--threads", threads, "--timeout", "30"],
        f"http://127.0.0.1:{free_port}/openapi.json",
        env={"SONOTRACE_WARMUP": "false", "SONOTRACE_LOG_LEVEL": "INFO",
             "SONOTRACE_READ_TIMEOUT": "2"},
    )
    # Every request thread taken by a client sending a byte every 0.2 s: each beats the
    # 2 s read timeout, which alone let them hold the worker until the arbiter killed
    # it at --timeout (sync), or for ever (gthread, which had no read timeout at all).
    slots = int(threads)
    trickles = [header_trickle(free_port) for _ in range(slots)] + [
        body_trickle(free_port, "/vectorize", "image/png") for _ in range(slots)]
    status, took = probe(free_port, timeout=20)
    assert status == 503  # /health answers, "loading": no model was asked for
    assert took < 8, f"/health waited {took:.1f} s behind the slow clients"
    for trickle in trickles[:slots]:
        answer, _, ended = trickle.outcome()
        assert answer is None and ended is not None and ended < 8  # closed, no answer
    for trickle in trickles[slots:]:
        answer, body, ended = trickle.outcome()
        assert answer == 408 and ended < 8
        assert re.fullmatch(r"the request came too slowly: \d+ bytes in [\d.]+ s, under 500 "
                            r"bytes/s after the first 2 s",
                            json.loads(body)["error"]["message"]), body

    # A whole upload at 8 kB/s (16 times the least rate) for about three times the grace,
    # chunked: read whole, and logged with the bytes read (a chunked body declares none).
    mask = _uncompressed_mask_png()
    answer, body, took = paced_post(free_port, "/vectorize", "image/png", mask, 8000,
                                    chunked=True)
    assert answer == 200, body
    assert took > 2.5
    assert json.loads(body)["paths"]

    # A request line with a space in its query: gunicorn's refusal no longer quotes it.
    with socket.create_connection(("127.0.0.1", free_port), timeout=10) as sock:
        sock.sendall(b"GET /health?patient=Jane Doe&mrn=12345 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")

    assert probe(free_port)[0] == 503
    log = next(artifacts_dir.glob("service-*.log")).read_text()
    assert re.search(rf"POST /vectorize 200 [\d.]+ms image=200x120 bytes={len(mask)} ", log)
    assert len(re.findall(r"closed a connection: the request's headers came too slowly", log)
               ) == slots
    assert "Invalid request from ip=127.0.0.1: Invalid HTTP Version (" in log
    assert "Doe" not in log
    assert "WORKER TIMEOUT" not in log
    assert "Traceback" not in log
