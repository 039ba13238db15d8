"""HTTP client for the model server's REST API (``/health``, ``/predict``, ``/classify``).

The annotation client reaches the models only through this module. Every failure
becomes a :class:`ModelServerError` with a message fit to show the radiologist;
:class:`ModelServerUnavailable` marks the cases where the server could not be
reached or did not answer in time, so the page can say "work on by hand".
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import logging
import math
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ProtocolError, ReadTimeoutError

logger = logging.getLogger(__name__)

LABELS = ("normal", "benign", "malignant")
#: The header that names a request to the model server, in both services' logs.
REQUEST_ID_HEADER = "X-Request-ID"
#: Longest wait for a connection to the model server, in seconds (less when the
#: request's timeout is shorter): a server that is down is said to be down at once.
CONNECT_TIMEOUT_S = 5.0
#: Longest wait, in seconds, of a /predict or /classify for one of the client's model-call
#: slots (see :class:`CallSlots`) before it is told the server is busy.
SLOT_WAIT_S = 2.0


class ModelServerError(Exception):
    """The model server refused a request or answered something unusable.

    Attributes
    ----------
    message : str
        Human-readable reason (the server's own message when it gave one).
    status : int or None
        HTTP status, when there was a response.
    code : str or None
        The server's error code, e.g. ``"unsupported_media_type"``.
    request_id : str or None
        The ``X-Request-ID`` the request was sent with, which the model server's
        access line gives too (``id=``): the one way to find its side of a failure.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 request_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def logged(self) -> str:
        """What the client's log says of it: the status and code of a refusal, not its text.

        The server's message can quote what the file said (a DICOM header's value, a
        patient's name among them); the person who sent it sees the whole message.
        """
        request = f" [request {self.request_id}]" if self.request_id else ""
        if self.status is None:
            # The client's own words: a timeout, an unusable answer.
            return self.message + request
        # The model server's code is the status again ({"code": 503, ...}): said once.
        named = self.code and str(self.code) != str(self.status)
        return f"HTTP {self.status}" + (f" ({self.code})" if named else "") + request


class ModelServerUnavailable(ModelServerError):
    """The model server is down, still loading, or too slow to answer."""


class ModelServerUnreachable(ModelServerUnavailable):
    """No connection to the model server could be made: it is down, or not there.

    Unlike a slow answer, this is what a later successful health check takes back.
    """


class ModelServerDropped(ModelServerUnreachable):
    """The model server took the request, then closed or reset the connection without
    answering it: the worker answering stopped (killed when out of memory, say), while
    the server may be up. Trying again can work, which "cannot be reached" did not say.

    Like a server that cannot be reached, a later successful health check takes it back
    (the page then segments an untouched image by itself).
    """


# ------------------------------------------------------------------ sending the body
#
# urllib3 sets a connection's socket timeout to the *connect* timeout before it sends a
# request, and to the read timeout only once the request is sent. A body larger than
# the socket buffers (a 10 MB image) waits in send() for the server to read it, which a
# busy server does only when a worker is free: with (5, 30) the upload was cut after
# exactly 5 s and reported as a server that "cannot be reached". Here connecting stays
# bounded by the connect timeout, and sending by the read timeout, as answering is.


class _SendBoundedMixin:
    """A connection whose request is sent under the read timeout (see above)."""

    #: The read timeout of the request being made, set by the pool before it sends.
    send_timeout: float | None = None

    def send(self, data):
        if self.sock is None and self.auto_open:
            self.connect()  # bounded by self.timeout, the connect timeout
        if self.sock is not None:
            self.sock.settimeout(self.send_timeout)
        return super().send(data)


class _HTTPConnection(_SendBoundedMixin, HTTPConnection):
    pass


class _HTTPSConnection(_SendBoundedMixin, HTTPSConnection):
    pass


# ------------------------------------------------------------- kept-alive connections
#
# A pooled connection is one the server kept alive after its last answer, and the server
# closes it when it likes: idle past gunicorn's keepalive (5 s), or as its worker
# restarts. urllib3 drops one already closed when it takes it from the pool, but one
# closed as the request goes out fails it, the request most likely never read. So a
# connection lost before any answer is told apart when it had answered before (urllib3
# calls both "Connection aborted."), and the client sends that request once more on a
# connection made for it (see ModelServerClient._send). A new connection lost is not
# sent again: the server took it, and may have died of it (a worker killed mid-request).


class KeptAliveConnectionLost(ProtocolError):
    """A connection that had answered a request closed or reset before any answer to
    the next one (args: ``("Connection aborted.", the socket's error)``)."""


#: True while a request must be sent on a new connection, not one from the pool.
_NEW_CONNECTION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sonotrace_new_connection", default=False)


class _SendBoundedPoolMixin:
    """A pool of :class:`_SendBoundedMixin` connections; a send that times out is a
    read timeout (urllib3 would call it a broken connection: "cannot be reached"); a
    kept-alive connection lost before its answer is a :class:`KeptAliveConnectionLost`."""

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)
        if _NEW_CONNECTION.get() and conn.sock is not None:
            conn.close()  # it connects again when it sends, as one urllib3 found dropped
            if getattr(conn, "auto_open", 1) == 0:  # a proxy's tunnel: see _get_conn
                conn = self._new_conn()
        return conn

    def _make_request(self, conn, method, url, *args, **kwargs):
        timeout = self._get_timeout(kwargs.get("timeout", self.timeout))
        read = timeout.read_timeout
        # None is no limit; urllib3's "default" sentinel means the socket module's.
        conn.send_timeout = (read if read is None or isinstance(read, int | float)
                             else socket.getdefaulttimeout())
        # A new connection has no socket until it sends (an https one until urllib3
        # validates it, inside this call); a pooled one kept its socket open.
        kept_alive = conn.sock is not None
        try:
            return super()._make_request(conn, method, url, *args, **kwargs)
        except TimeoutError as exc:  # socket.timeout
            # Only sending gets here: urllib3 turns a slow connect or answer into its
            # own ConnectTimeoutError or ReadTimeoutError.
            raise ReadTimeoutError(
                self, url, f"Send timed out. (read timeout={read})") from exc
        except ConnectionError as exc:  # reset, aborted, closed without a status line
            if kept_alive:
                raise KeptAliveConnectionLost("Connection aborted.", exc) from exc
            raise


class _HTTPPool(_SendBoundedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_SendBoundedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class SendBoundedAdapter(HTTPAdapter):
    """A requests adapter whose request bodies are sent under the read timeout."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # not a SOCKS proxy's, which has its own
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


class ModelServerBusy(ModelServerUnavailable):
    """Every one of this client's model-call slots is taken: the call was not sent."""


class CallSlots:
    """At most ``slots`` calls to the model server at once, from one client process.

    A call waits for the model server's answer in one of the worker's request
    threads. Without a bound, a slow server held every thread, and a save, the
    Saved page, the client's own ``/health``, waited behind the model calls for the
    whole request timeout. With fewer slots than threads, the rest stay free.

    Parameters
    ----------
    slots : int
        How many calls may run at once (``SONOTRACE_MODEL_CALLS``).
    """

    def __init__(self, slots: int) -> None:
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError("slots must be a whole number of at least 1")
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)

    @contextlib.contextmanager
    def held(self, wait: float) -> Iterator[None]:
        """A slot for the ``with`` block; after ``wait`` seconds without one,
        :class:`ModelServerBusy`."""
        if not self._free.acquire(timeout=max(float(wait), 0.0)):
            raise ModelServerBusy(
                "The model server is busy with other readers' requests; try again in a "
                "moment.")
        try:
            yield
        finally:
            self._free.release()


class HealthWatch:
    """The model server's ``/health``, asked in a thread of its own, one check at a time.

    A page's health check is a Dash callback, and while one runs the browser holds back
    the page's other callbacks that its own graph links to it (opening a file among
    them, which waits for every callback in flight): against a hung model server, for
    the check's whole timeout. Asked through a watch, a check that takes longer than the
    caller will wait goes on in its thread, and the caller is given the answer before
    it; a check asked while one runs joins it. So at most one thread of the process
    waits for a hung server, and it is neither a request thread nor one of the model
    calls' slots (:class:`CallSlots`): page loads and polls took those from /predict.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: threading.Event | None = None
        self._last: tuple[dict | None, ModelServerError | None] | None = None
        self._at = 0.0  # time.monotonic() of the last answer

    def ask(self, client: ModelServerClient, wait: float, fresh_for: float = 0.0
            ) -> tuple[bool, dict | None, ModelServerError | None] | None:
        """``client.health()``, or the check already running, for at most ``wait`` s;
        with no check running, an answer at most ``fresh_for`` s old is taken as it is.

        Returns
        -------
        (fresh, health, error) or None
            ``fresh`` True: the check answered within ``wait``; ``health`` is its JSON,
            or None with ``error`` the :class:`ModelServerError` it raised. ``fresh``
            False: it still runs, and this is the last answer before it. None: it still
            runs, and no check has answered yet.
        """
        with self._lock:
            check = self._running
            if (check is None and self._last is not None
                    and time.monotonic() - self._at <= fresh_for):
                return (True, *self._last)
            if check is None:
                check = self._running = threading.Event()
                threading.Thread(target=self._check, args=(client, check), daemon=True,
                                 name="sonotrace-health-check").start()
        answered = check.wait(max(float(wait), 0.0))
        with self._lock:
            last = self._last
        return None if last is None else (answered, *last)

    def _check(self, client: ModelServerClient, check: threading.Event) -> None:
        try:
            answer = (client.health(), None)
        except ModelServerError as exc:
            answer = (None, exc)
        except Exception as exc:  # noqa: BLE001 - a thread's failure must not hang the watch
            logger.exception("the model server's health check failed")
            answer = (None, ModelServerError(f"The health check failed: {exc}"))
        with self._lock:
            self._last, self._at = answer, time.monotonic()
            self._running = None
        check.set()


class ModelServerClient:
    """Client for one model server.

    Parameters
    ----------
    base_url : str
        e.g. ``"http://127.0.0.1:5000"``.
    timeout : float, optional
        Seconds to wait for an answer, and for the server to take the request's
        body (connecting gets at most 5 of them).
    session : requests.Session, optional
        For connection reuse; a new one by default. A :class:`SendBoundedAdapter`
        is mounted on it for ``base_url``.
    slots : CallSlots, optional
        Shared by the process's clients: each call takes one of them, and one that
        gets none raises :class:`ModelServerBusy` (a model request after waiting
        :data:`SLOT_WAIT_S` for one, a health check at once). None: no bound.
    """

    def __init__(
        self, base_url: str, timeout: float = 30.0, session: requests.Session | None = None,
        slots: CallSlots | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.session = session or requests.Session()
        self.session.mount(self.base_url + "/", SendBoundedAdapter())
        self.slots = slots

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, slot_wait: float | None = None,
                 **kwargs) -> requests.Response:
        """``_send`` in one of the slots, waited for ``slot_wait`` s (:data:`SLOT_WAIT_S`)."""
        if self.slots is None:
            return self._send(method, path, **kwargs)
        wait = SLOT_WAIT_S if slot_wait is None else slot_wait
        with self.slots.held(min(wait, self.timeout)):
            return self._send(method, path, **kwargs)

    def _send(self, method: str, path: str, *, again_if_dropped: bool = False,
              **kwargs) -> requests.Response:
        """The request, sent once more on a new connection if the kept-alive one it went
        on closed or reset before any answer (with ``again_if_dropped``, if any did).

        Only calls that change nothing on the server come here (``/health``,
        ``/predict``, ``/classify``), so sending one twice is safe. A timeout or an HTTP
        error is not sent again: the server had the request, and answered or is busy.
        """
        url = f"{self.base_url}{path}"
        # Each request named, in both services' logs (the server's access line: id=);
        # sent again, under the same name.
        rid = secrets.token_hex(8)
        kwargs.update(timeout=(min(CONNECT_TIMEOUT_S, self.timeout), self.timeout),
                      headers={REQUEST_ID_HEADER: rid})
        try:
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.ConnectionError as exc:
                if not (_kept_alive_lost(exc) or (again_if_dropped and _dropped(exc))):
                    raise
                logger.info("%s %s [request %s]: the connection closed before its answer; "
                            "sent again on a new one", method, path, rid)
                token = _NEW_CONNECTION.set(True)
                try:
                    response = self.session.request(method, url, **kwargs)
                finally:
                    _NEW_CONNECTION.reset(token)
        except requests.Timeout as exc:
            raise ModelServerUnavailable(
                f"The model server at {self.base_url} did not answer within {self.timeout:g} s.",
                request_id=rid,
            ) from exc
        except requests.ConnectionError as exc:
            if _dropped(exc):
                raise ModelServerDropped(
                    f"The model server at {self.base_url} stopped answering this request "
                    "(the connection closed before its answer); try again.", request_id=rid
                ) from exc
            raise ModelServerUnreachable(
                f"The model server at {self.base_url} cannot be reached.", request_id=rid
            ) from exc
        except requests.RequestException as exc:
            raise ModelServerError(f"Request to the model server failed: {exc}",
                                   request_id=rid) from exc
        if response.status_code >= 400:
            error = self._error(response)
            error.request_id = rid
            raise error
        return response

    def _error(self, response: requests.Response) -> ModelServerError:
        code = None
        message = f"The model server answered HTTP {response.status_code}."
        try:
            error = response.json().get("error", {})
            if isinstance(error, dict):
                code = error.get("code")
                if error.get("message"):
                    message = f"The model server refused the request: {error['message']}"
        except (ValueError, AttributeError):
            pass
        kind = (
            ModelServerUnavailable if response.status_code in (502, 503, 504) else ModelServerError
        )
        if response.status_code == 503 and code is None:
            message = "The model server is starting up (models still loading)."
        return kind(message, status=response.status_code, code=code)

    @staticmethod
    def _json(response: requests.Response) -> dict:
        rid = _request_id(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise ModelServerError("The model server answered with invalid JSON.",
                                   request_id=rid) from exc
        if not isinstance(body, dict):
            raise ModelServerError("The model server answered with unexpected JSON.",
                                   request_id=rid)
        return body

    # ------------------------------------------------------------------ API

    def health(self) -> dict:
        """``GET /health``; returns its JSON when the server is ready.

        It never waits for a slot: a health check is asked every few seconds, and a
        wait would hold a request thread for each.

        A check whose connection closed before its answer, a new connection's too, is
        asked once more on a new one: asking has no effect on the server, and a drop
        says little of it (a kept-alive connection it closed as it was reused, a
        connection it had queued when it stopped listening). The second answer, or
        refusal, is the one given.
        """
        return self._json(self._request("GET", "/health", slot_wait=0,
                                        again_if_dropped=True))

    def predict(
        self,
        image: bytes,
        filename: str = "image",
        *,
        box: Sequence[int] | None = None,
        max_vertices: int = 32,
    ) -> dict:
        """Segment an image: ``POST /predict``.

        Parameters
        ----------
        image : bytes
            The image file (PNG, JPEG or DICOM) as uploaded.
        filename : str, optional
            Its name, sent along for the server's logs and type detection.
        box : (x0, y0, x1, y1), optional
            Restrict the segmentation to this box, in image pixels (x = column).
        max_vertices : int, optional
            Vertex budget per region of the returned paths.

        Returns
        -------
        dict
            The server's answer, checked: ``width``, ``height``, ``mask`` (base64
            PNG), ``svg``, ``paths``, ``regions``, ``pixel_spacing_mm``, ``model``.
        """
        params = {"max_vertices": str(int(max_vertices))}
        if box is not None:
            if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
                raise ValueError("box must be four finite numbers (x0, y0, x1, y1)")
            params["box"] = ",".join(str(int(round(float(v)))) for v in box)
        response = self._request(
            "POST", "/predict", params=params, files=self._image_field(image, filename)
        )
        body, rid = self._json(response), _request_id(response)
        for key in ("width", "height", "mask", "paths"):
            if key not in body:
                raise ModelServerError(f"The model server's /predict answer lacks {key!r}.",
                                       request_id=rid)
        if not isinstance(body["paths"], list) or not all(
            isinstance(p, str) for p in body["paths"]
        ):
            raise ModelServerError("The model server's /predict paths are not strings.",
                                   request_id=rid)
        try:
            base64.b64decode(body["mask"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise ModelServerError("The model server's mask is not base64.",
                                   request_id=rid) from exc
        body.setdefault("pixel_spacing_mm", None)
        body.setdefault("model", None)
        body.setdefault("regions", [])
        return body

    def classify(
        self, image: bytes, filename: str = "image", mask_png: bytes | None = None
    ) -> dict:
        """Classify an image as normal, benign or malignant: ``POST /classify``.

        Parameters
        ----------
        image : bytes
            The image file as uploaded.
        filename : str, optional
            Its name.
        mask_png : bytes, optional
            The corrected lesion mask (8-bit 0/255 PNG, the image's size).

        Returns
        -------
        dict
            ``label``, ``probabilities`` (the three labels, summing to 1) and ``model``.
        """
        files = self._image_field(image, filename)
        if mask_png is not None:
            if not isinstance(mask_png, bytes):
                raise TypeError("mask_png must be bytes")
            files["mask"] = ("mask.png", mask_png, "image/png")
        response = self._request("POST", "/classify", files=files)
        body, rid = self._json(response), _request_id(response)
        probabilities = body.get("probabilities")
        if body.get("label") not in LABELS or not isinstance(probabilities, dict):
            raise ModelServerError("The model server's /classify answer is incomplete.",
                                   request_id=rid)
        try:
            body["probabilities"] = {k: float(probabilities[k]) for k in LABELS}
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelServerError("The model server's probabilities are incomplete.",
                                   request_id=rid) from exc
        body.setdefault("model", None)
        return body

    @staticmethod
    def _image_field(image: bytes, filename: str) -> dict:
        if not isinstance(image, bytes | bytearray) or not image:
            raise ValueError("image must be non-empty bytes")
        if not isinstance(filename, str):
            raise TypeError("filename must be a str")
        return {"image": (filename or "image", bytes(image), guess_mime(bytes(image)))}


def _dropped(exc: requests.ConnectionError) -> bool:
    """Whether ``exc`` is a connection lost while the request was sent or answered (a
    reset, or closed without an answer), not one that could not be made.

    urllib3 gives a connection it could not make (refused, no route, a name it cannot
    resolve) as the reason of a ``MaxRetryError``, and one lost once made as a
    ``ProtocolError`` ("Connection aborted."), which requests passes on as it is.
    """
    return bool(exc.args) and isinstance(exc.args[0], ProtocolError)


def _kept_alive_lost(exc: requests.ConnectionError) -> bool:
    """Whether ``exc`` is a kept-alive connection lost before its answer (see
    :class:`KeptAliveConnectionLost`): the request can be sent again."""
    return bool(exc.args) and isinstance(exc.args[0], KeptAliveConnectionLost)


def guess_mime(data: bytes) -> str:
    """The MIME type of an image file from its first bytes (PNG, JPEG or DICOM)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[128:132] == b"DICM":
        return "application/dicom"
    return "application/octet-stream"


def _request_id(response: requests.Response) -> str | None:
    """The ``X-Request-ID`` a response's request was sent with (see ``_request``)."""
    request = getattr(response, "request", None)
    headers = getattr(request, "headers", None) or {}
    return headers.get(REQUEST_ID_HEADER)
