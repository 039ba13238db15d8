"""Model-server requests on connections the server kept alive, then closed: sent once
more on a new connection when the server closed one as the request went out, and only
then (a real HTTP server on 127.0.0.1 that closes the connections it is told to)."""

import json
import logging
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from annotation_client import ModelServerClient, ModelServerUnavailable
from annotation_client._server_client import ModelServerDropped

_PNG = b"\x89PNG\r\n\x1a\n"
_ANSWERS = {
    "/health": {"status": "ok"},
    "/predict": {"width": 1, "height": 1, "mask": "AA==", "paths": []},
    "/classify": {"label": "benign",
                  "probabilities": {"normal": 0.1, "benign": 0.7, "malignant": 0.2}},
}


class _KeepsAlive:
    """An HTTP/1.1 server that keeps its connections alive and answers each request as
    ``plan`` says, by (connection, request on it), both counted from 1 in the order
    the server takes them: ``"closed"``, closed on the request's first bytes without an
    answer, as gunicorn closes a connection idle past its keepalive as a request comes
    on it (``"reset"``: with an RST); ``"slow"``, answered after 2 s; a status, refused
    with it; otherwise answered.

    Parameters
    ----------
    plan : dict of (int, int) to str or int
    """

    def __init__(self, plan):
        self.taken = []  # (connection, request on it) of each request, as taken
        lock, connections = threading.Lock(), [0]
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive

            def setup(self):
                super().setup()
                with lock:
                    connections[0] += 1
                    self.number, self.requests = connections[0], 0

            def handle_one_request(self):
                if not self.rfile.peek(1):  # the client closed it
                    self.close_connection = True
                    return
                self.requests += 1
                self.key = (self.number, self.requests)
                with lock:
                    server.taken.append(self.key)
                if plan.get(self.key) in ("closed", "reset"):
                    if plan[self.key] == "reset":  # linger 0: close() sends RST
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                super().handle_one_request()

            def do_GET(self):  # noqa: N802 - http.server's naming
                self._answer()

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                self._answer()

            def _answer(self):
                action = plan.get(self.key)
                if action == "slow":
                    time.sleep(2)
                status = action if isinstance(action, int) else 200
                body = json.dumps(_ANSWERS[self.path.split("?")[0]] if status == 200 else
                                  {"error": {"code": status, "message": "refused"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def _calls(client):
    return {"predict": lambda: client.predict(_PNG, "x.png"),
            "classify": lambda: client.classify(_PNG, "x.png", mask_png=_PNG)}


@pytest.mark.parametrize("call", ["predict", "classify"])
@pytest.mark.parametrize("close", ["closed", "reset"])
def test_a_request_on_a_kept_alive_connection_closed_as_it_went_is_sent_again(call, close):
    """The server closed the connection it had kept alive as the request went out (idle
    past its keepalive, a worker restarting): the radiologist was told the server
    "stopped answering" a request it never read."""
    server = _KeepsAlive({(1, 2): close})
    try:
        client = ModelServerClient(server.url, timeout=5)
        client.health()  # answered on connection 1, kept in the pool
        answer = _calls(client)[call]()
        assert answer["model"] is None  # the answer, checked
        assert server.taken == [(1, 1), (1, 2), (2, 1)]
        # The new connection is the pool's from then on.
        client.health()
        assert server.taken[-1] == (2, 2)
    finally:
        server.close()


class _MeanwhileOnce(logging.Handler):
    """Runs ``meanwhile`` in another thread, to its end, at the first record logged."""

    def __init__(self, meanwhile):
        super().__init__()
        self.meanwhile = meanwhile

    def emit(self, record):
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            other = threading.Thread(target=meanwhile)
            other.start()
            other.join()


def test_it_is_sent_again_on_a_new_connection_not_one_from_the_pool():
    """Between the drop and the second try, another reader's request ends, and puts its
    connection back in the pool, on top: one the server kept alive, and closes as the
    second try would go out on it (a worker restarting closes every connection it
    kept). The second try goes on a connection made for it."""
    server = _KeepsAlive({(1, 2): "closed", (2, 2): "closed"})
    log = logging.getLogger("annotation_client._server_client")
    try:
        client = ModelServerClient(server.url, timeout=5)
        client.health()  # connection 1
        # Logged as the dropped request is about to go again: connection 2 meanwhile.
        handler = _MeanwhileOnce(client.health)
        log.addHandler(handler)
        level = log.level
        log.setLevel(logging.INFO)
        try:
            assert client.predict(_PNG, "x.png")["paths"] == []
        finally:
            log.removeHandler(handler)
            log.setLevel(level)
        assert server.taken == [(1, 1), (1, 2), (2, 1), (3, 1)]
    finally:
        server.close()


@pytest.mark.parametrize(("plan", "error", "taken"), [
    # A new connection closed: the server took the request, and may have died of it (a
    # worker killed mid-request); another worker would take it the same way.
    ({(1, 1): "closed"}, ModelServerDropped, [(1, 1)]),
    ({(1, 1): "reset"}, ModelServerDropped, [(1, 1)]),
    # Sent again, and dropped again: said as dropped, sent no more.
    ({(1, 2): "closed", (2, 1): "closed"}, ModelServerDropped, [(1, 1), (1, 2), (2, 1)]),
    # Not answered in time, or refused, on a kept-alive connection: the server read it.
    ({(1, 2): "slow"}, ModelServerUnavailable, [(1, 1), (1, 2)]),
    ({(1, 2): 503}, ModelServerUnavailable, [(1, 1), (1, 2)]),
], ids=["new-closed", "new-reset", "twice", "slow", "503"])
def test_a_request_the_server_may_have_read_is_not_sent_again(plan, error, taken):
    server = _KeepsAlive(plan)
    try:
        client = ModelServerClient(server.url, timeout=1)
        if (1, 1) not in plan:
            client.health()
        with pytest.raises(error) as caught:
            client.predict(_PNG, "x.png")
        assert type(caught.value) is error
        time.sleep(0.1)  # a request sent again would have come by now
        assert server.taken == taken
    finally:
        server.close()
