"""Clients that send slowly, on real sockets, for the tests of both services' workers.

Import it by name (``from slow_senders import Trickle``), as ``image_samples``.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time


class Trickle:
    """A connection that sends ``head`` at once, then ``drip`` every ``interval`` seconds
    until the service answers or closes it, for ``seconds`` at most.

    Started on creation; :meth:`outcome` waits for it.
    """

    def __init__(self, port: int, head: bytes, drip: bytes = b"x", interval: float = 0.2,
                 seconds: float = 30.0):
        self.answer: bytes | None = None  # None: never answered (closed, or still open)
        self.closed = False
        self.took: float | None = None
        self._thread = threading.Thread(
            target=self._run, args=(port, head, drip, interval, seconds), daemon=True)
        self._thread.start()

    def _run(self, port, head, drip, interval, seconds):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head)
            while time.monotonic() - started < seconds:
                readable, _, _ = select.select([sock], [], [], interval)
                if readable:
                    self.answer = _read_all(sock) or None
                    self.closed = True
                    self.took = time.monotonic() - started
                    return
                try:
                    sock.sendall(drip)
                except OSError:
                    self.closed = True
                    self.took = time.monotonic() - started
                    return

    def outcome(self, timeout: float = 60.0) -> tuple[int | None, bytes, float | None]:
        """``(status, body, seconds)`` of the answer; status None when there was none."""
        self._thread.join(timeout)
        if not self.answer:
            return None, b"", self.took
        head, _, body = self.answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), body, self.took


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:  # reset by a service that closed with our drip unread
        pass
    return data


def header_trickle(port: int, **kwargs) -> Trickle:
    """A request whose headers never end: a header line a byte at a time."""
    return Trickle(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", drip=b"X", **kwargs)


def body_trickle(port: int, path: str, content_type: str, **kwargs) -> Trickle:
    """A POST of 100,000 bytes whose body comes a byte at a time."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Content-Length: 100000\r\n\r\n").encode()
    return Trickle(port, head, **kwargs)


def probe(port: int, path: str = "/health", timeout: float = 30.0) -> tuple[int, float]:
    """``(status, seconds)`` of a GET by another client."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


def paced_post(port: int, path: str, content_type: str, body: bytes, rate: int,
               chunked: bool = False) -> tuple[int, bytes, float]:
    """POST ``body`` at ``rate`` bytes a second (a tenth of it every 0.1 s), as a slow
    but steady link sends it; ``(status, answer body, seconds)``."""
    framing = ("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"{framing}\r\nConnection: close\r\n\r\n").encode()
    step = max(1, rate // 10)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for offset in range(0, len(body), step):
            piece = body[offset : offset + step]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            time.sleep(0.1)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        answer = _read_all(sock)
    head, _, rest = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest, time.monotonic() - started
