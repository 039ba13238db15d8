"""The access log's ``bytes=`` of a 408 counts the body bytes that came before the stall
(audit 802 F8: ``bytes=0`` after 1000 bytes), against the real server."""

from __future__ import annotations

import re
import socket
import sys
import time

import pytest


@pytest.mark.parametrize("threads", ["1", "2"], ids=["sync", "gthread"])
def test_a_stalled_body_is_logged_with_the_bytes_that_came(
    start_service, free_port, artifacts_dir, threads
):
    start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "1", "--threads", threads, "--timeout", "30"],
        f"http://127.0.0.1:{free_port}/openapi.json",
        env={"SONOTRACE_WARMUP": "false", "SONOTRACE_LOG_LEVEL": "INFO",
             "SONOTRACE_READ_TIMEOUT": "2"},
    )
    head = (b"POST /vectorize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            b"Content-Length: 5000\r\n\r\n")
    with socket.create_connection(("127.0.0.1", free_port), timeout=20) as sock:
        sock.sendall(head + b"\x89PNG\r\n\x1a\n" + bytes(592))  # 600 with the headers
        time.sleep(0.3)
        sock.sendall(bytes(400))  # then 400 more, then nothing
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    log = next(artifacts_dir.glob("service-*.log"))
    deadline = time.monotonic() + 10
    while "POST /vectorize 408" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert re.search(r"POST /vectorize 408 [\d.]+ms image=- bytes=1000 ", log.read_text())
