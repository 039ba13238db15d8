"""The Flask app factory."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from PIL import Image

from models.runtime import BACKENDS

# SONOTRACE_TRUSTED_HOSTS is parsed and matched exactly as the annotation client does.
from vectorizer._settings import (
    check_max_pixels,
    cross_site,
    host_is_trusted,
    trusted_hosts,
    untrusted_host_hint,
)

from . import _api, _docs, _metrics, _models
from ._errors import ApiError, BadRequest, register_error_handlers

log = logging.getLogger(__name__)
access_log = logging.getLogger("model_server.access")

#: Most inference threads per worker: well past where more threads stop helping a
#: model this size on any machine, and far below where creating them fails
#: (100000 broke the warm-up's first inference).
MAX_NUM_THREADS = 64
#: Longest timeout in seconds (SONOTRACE_TIMEOUT, SONOTRACE_READ_TIMEOUT): a day is past
#: any wait worth having, and far below where the timeouts overflow (about 1.8e10 s
#: crashed every worker in select(), and a read timeout of 1e10 every connection).
MAX_TIMEOUT = 24 * 60 * 60

DEFAULTS = {
    # Largest accepted request body in bytes (Flask answers 413 above it).
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    # Largest accepted width * height of an uploaded image or mask, checked from the header.
    "MAX_PIXELS": 25_000_000,
    # Directory of the exported models; None is the weights shipped in models/weights.
    "WEIGHTS_DIR": None,
    # Load and warm the models in a background thread as soon as the app exists.
    "WARMUP": True,
    # Seconds a client may go silent while sending its request, and the grace before
    # it must keep up a least rate (gunicorn only, vectorizer._connections): a stalled
    # or trickling upload would otherwise hold a worker until the worker timeout kills it.
    "READ_TIMEOUT": 20,
    # models.runtime's backend: auto (LiteRT when the export has it), litert or keras.
    "RUNTIME_BACKEND": "auto",
    # Inference threads per worker; python -m model_server sets SONOTRACE_NUM_THREADS
    # to cores / workers, so this is the default of an app created otherwise only.
    "NUM_THREADS": 2,
    # Host names (ports ignored) the server answers to, separated by commas; "*" is any.
    # A page that rebinds its own name to 127.0.0.1 sends that name as Host, so only the
    # names the server is really reached by may pass (python -m model_server adds the
    # address it is bound to, when that is not a wildcard).
    "TRUSTED_HOSTS": "localhost,127.0.0.1,::1",
    # Serve Prometheus metrics at GET /metrics (see _metrics).
    "METRICS": True,
    # Whether kill -USR2 of gunicorn's master starts a new master (a binary upgrade,
    # _gunicorn.UpgradableArbiter); false: refused in the log. make run's launcher sets
    # it false, as it watches the master it started.
    "BINARY_UPGRADE": True,
}

#: Headers on every answer (a view's own value wins): no page may frame the docs, a
#: JSON answer is never sniffed into HTML, and no URL leaks to another site. The docs
#: page loads only its own files (static/docs.*) and fetches this server, so the policy
#: can be that strict.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

#: Where create_app keeps the checked SONOTRACE_TRUSTED_HOSTS (not Flask's TRUSTED_HOSTS).
HOSTS_KEY = "SONOTRACE_TRUSTED_HOSTS"

_bomb_guard_lock = threading.Lock()
_largest_limit = 0


def create_app(config: Mapping | None = None) -> Flask:
    """Create the model server app.

    Settings come from ``DEFAULTS``, then the ``SONOTRACE_<KEY>`` environment
    variable of each of its keys (``SONOTRACE_MAX_PIXELS=4000000`` sets
    ``MAX_PIXELS``; other ``SONOTRACE_*`` variables are not read), then
    ``config``, a mapping that tests use; see :func:`app_settings`.

    Parameters
    ----------
    config : mapping, optional
        Overrides, e.g. ``{"MAX_PIXELS": 1000, "WARMUP": False}``.

    Returns
    -------
    flask.Flask
        The app; its models load in a background thread (``WARMUP``) or on
        the first request, once per process.

    Raises
    ------
    ValueError
        For a bad setting, naming its ``SONOTRACE_`` variable.
    """
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config.from_mapping(app_settings(config))
    # Flask has a TRUSTED_HOSTS of its own, checked through werkzeug, which cannot match
    # an IPv6 literal such as ::1: the list moves to this app's key, checked by
    # _install_host_check.
    app.config[HOSTS_KEY] = app.config["TRUSTED_HOSTS"]
    app.config["TRUSTED_HOSTS"] = None
    _set_bomb_guard(app.config["MAX_PIXELS"])
    app.json = StrictJSONProvider(app)
    app.json.sort_keys = False

    register_error_handlers(app)
    _install_host_check(app)
    _install_security_headers(app)
    models = _models.init_app(app, also_warm=_api.warm_vectorizer)
    _api.init_tasks(app, models)
    app.register_blueprint(_api.bp)
    app.register_blueprint(_docs.bp)
    _install_request_log(app)
    _metrics.install(app)
    return app


def app_settings(config: Mapping | None = None, environ: Mapping | None = None) -> dict:
    """The app's settings, checked: ``DEFAULTS``, then ``environ``, then ``config``.

    ``python -m model_server`` calls it before gunicorn starts, so that a bad
    variable stops the server with one line instead of a traceback in every
    worker; :func:`create_app` calls it again in each worker.

    Parameters
    ----------
    config : mapping, optional
        Overrides of the environment (and other Flask settings, e.g. ``TESTING``).
    environ : mapping, optional
        The environment; ``os.environ`` by default. Only ``SONOTRACE_<KEY>`` for
        the keys of ``DEFAULTS`` is read, and an empty one counts as unset: the
        variables of a shared env file meant for the annotation client
        (``SONOTRACE_SECRET_KEY``) must not change how this Flask app behaves.

    Returns
    -------
    dict
        Every key of ``DEFAULTS`` (converted: integers, a bool, a folder or
        None) and those of ``config``.

    Raises
    ------
    ValueError
        For a bad setting, naming its ``SONOTRACE_`` variable and the value.
    """
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        text = environ.get(f"SONOTRACE_{key}")
        if text is not None and text.strip() != "":
            settings[key] = text
    if config is not None:
        settings.update(config)
    _check_config(settings)
    return settings


def _install_host_check(app: Flask) -> None:
    trusted = app.config[HOSTS_KEY]

    def check_host():
        host = request.headers.get("Host")
        if host is None and _is_loopback(request.remote_addr):
            # HTTP/1.0 may leave Host out (a load balancer's health check, say). No
            # browser does, so no web page can reach the server this way, and the peer
            # is this machine: it is answered as if it had named localhost.
            pass
        elif host is None:
            log.warning("refused a request from %s without a Host header",
                        request.remote_addr)
            raise BadRequest("the request has no Host header (HTTP/1.0 lets it be left "
                             "out): send one naming this server, a name in "
                             "SONOTRACE_TRUSTED_HOSTS")
        elif not host_is_trusted(host, trusted):
            # Said in the log too, with who asked: the access line alone ("GET /health
            # 400") left an operator guessing why a deployment's client was refused.
            log.warning("refused a request from %s for the host %r: not in "
                        "SONOTRACE_TRUSTED_HOSTS", request.remote_addr, host[:200])
            raise BadRequest(
                f"this server does not answer to the host {host[:200]!r}"
                + untrusted_host_hint(host)
            )
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # A web page the radiologist opens could otherwise keep the models busy with
            # POSTs it cannot even read the answers of; the client and curl send no
            # Origin or Sec-Fetch-Site, and this server's own pages are same-origin.
            reason = cross_site(request.headers)
            if reason is not None:
                log.warning("refused a %s %s from %s: %s", request.method, request.path,
                            request.remote_addr, reason)
                raise ApiError(f"forbidden: {reason}", status=403)

    # First of all the hooks, so nothing (not even the request log's timer) runs for a
    # request whose Host is not this server's. Not Flask's TRUSTED_HOSTS: a refusal
    # there becomes the routing error, raised only after the before_request hooks ran.
    app.before_request_funcs.setdefault(None, []).insert(0, check_host)


def _is_loopback(address: str | None) -> bool:
    """Whether a peer's address is this machine's (127.0.0.0/8, ::1, IPv4-mapped too)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:  # a Unix socket's peer has no IP address
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _install_security_headers(app: Flask) -> None:
    @app.after_request
    def _add_security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, refusing NaN and Infinity.

    ``json.dumps`` writes them as the bare words ``NaN`` and ``Infinity``,
    which are not JSON: a client's parser fails on the whole body. A
    non-finite number in a response is a server bug, so it raises
    ``ValueError`` here and the catch-all handler answers a JSON 500.
    """

    def dumps(self, obj, **kwargs) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


def _refuse(key: str, value, reason: str) -> ValueError:
    # Named by the variable whichever way the value came (environment or config
    # mapping): that is the name someone deploying the server knows.
    return ValueError(f"SONOTRACE_{key}={value!r}: {reason}")


def _as_bool(key: str, value) -> bool:
    # Environment values are text: "False" or "off" would be non-empty strings, which
    # Python calls true.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise _refuse(key, value, "must be true or false (or yes/no, on/off, 1/0)")


def _whole_number(key: str, value, low: int, high: int | None = None, unit: str = "") -> int:
    """``value`` (an int, or text from the environment) as an int from low to high."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    wanted = f"a whole number{unit} from {low} to {high}" if high else (
        f"a whole number{unit} of at least {low}")
    if number is None or number < low or (high is not None and number > high):
        raise _refuse(key, value, f"must be {wanted}")
    return number


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _weights_dir(value) -> str | None:
    """The weights folder, checked now: a bad one would leave every worker answering
    503 with a traceback in the log, however long it runs."""
    if value is None or str(value).strip() == "":
        # Empty means unset, as for every variable: the shipped weights.
        return None
    folder = Path(str(value).strip())
    if not folder.exists():
        raise _refuse("WEIGHTS_DIR", str(value), "no such folder")
    if not folder.is_dir():
        raise _refuse("WEIGHTS_DIR", str(value), "not a folder (models.export writes one)")
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise _refuse("WEIGHTS_DIR", str(value),
                      "no manifest.json in it: not a folder written by models.export")
    try:
        json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _refuse("WEIGHTS_DIR", str(value),
                      f"its manifest.json cannot be read: {exc}") from None
    return str(folder)


def _check_config(config) -> None:
    """Check and convert the settings of ``DEFAULTS`` in ``config``, in place.

    Raises
    ------
    ValueError
        Naming the setting's ``SONOTRACE_`` variable and its value.
    """
    config["WARMUP"] = _as_bool("WARMUP", config.get("WARMUP"))
    config["METRICS"] = _as_bool("METRICS", config.get("METRICS"))
    config["BINARY_UPGRADE"] = _as_bool("BINARY_UPGRADE", config.get("BINARY_UPGRADE"))
    # The runtime reads its backend only when the models load, in the background; a typo
    # must stop the server here, not leave it answering 503.
    backend = config.get("RUNTIME_BACKEND")
    backend = backend.strip() if isinstance(backend, str) else backend
    if backend not in BACKENDS:
        raise _refuse("RUNTIME_BACKEND", config.get("RUNTIME_BACKEND"),
                      f"must be one of {', '.join(BACKENDS)}")
    config["RUNTIME_BACKEND"] = backend
    max_pixels = _whole_number("MAX_PIXELS", config.get("MAX_PIXELS"), 1)
    try:
        config["MAX_PIXELS"] = check_max_pixels(max_pixels)
    except ValueError as exc:
        raise _refuse("MAX_PIXELS", config.get("MAX_PIXELS"), str(exc)) from None
    config["READ_TIMEOUT"] = _whole_number(
        "READ_TIMEOUT", config.get("READ_TIMEOUT"), 1, MAX_TIMEOUT, unit=" of seconds")
    # No "no limit" (Flask's None): a body is held in memory whole, so the limit is what
    # one request may cost, and above the machine's memory it would limit nothing.
    limit = _whole_number("MAX_CONTENT_LENGTH", config.get("MAX_CONTENT_LENGTH"), 1,
                          unit=" of bytes")
    memory = _physical_memory()
    if memory is not None and limit > memory:
        raise _refuse("MAX_CONTENT_LENGTH", config.get("MAX_CONTENT_LENGTH"),
                      f"more than this machine's memory ({memory} bytes), which must hold "
                      "a request's body whole")
    config["MAX_CONTENT_LENGTH"] = limit
    # 0 or empty is not saying, as for python -m model_server (which says cores /
    # workers): the default of an app created otherwise.
    threads = config.get("NUM_THREADS")
    if threads in (0, None) or (isinstance(threads, str) and threads.strip() in ("", "0")):
        threads = DEFAULTS["NUM_THREADS"]
    config["NUM_THREADS"] = _whole_number("NUM_THREADS", threads, 1, MAX_NUM_THREADS)
    config["WEIGHTS_DIR"] = _weights_dir(config.get("WEIGHTS_DIR"))
    try:
        config["TRUSTED_HOSTS"] = trusted_hosts(config.get("TRUSTED_HOSTS"))
    except ValueError as exc:
        raise _refuse("TRUSTED_HOSTS", config.get("TRUSTED_HOSTS"), str(exc)) from None


def _set_bomb_guard(max_pixels: int) -> None:
    # Pillow's guard is process-wide; with several apps in one process (tests) the
    # largest limit wins, and each app's own header check enforces its smaller one.
    global _largest_limit
    with _bomb_guard_lock:
        _largest_limit = max(_largest_limit, max_pixels)
        Image.MAX_IMAGE_PIXELS = _largest_limit


#: A caller's request id taken as it is: a short token, nothing a log line could be
#: forged with (no blank, no line break, no quote).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


#: Where the WSGI environ keeps the request body's :class:`_CountingInput`.
BODY_KEY = "sonotrace.body"


class _CountingInput:
    """A request's ``wsgi.input``, counting the bytes the app reads of it.

    A chunked upload declares no Content-Length, so the access log's ``bytes=`` was 0
    for it, a 70 MB one refused at the limit included; the bytes read are what came.
    """

    def __init__(self, stream):
        self._stream = stream
        self.count = 0

    def read(self, *args) -> bytes:
        data = self._stream.read(*args)
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, *args) -> bytes:
        line = self._stream.readline(*args)
        self.count += len(line)
        return line

    def readlines(self, *args) -> list[bytes]:
        lines = self._stream.readlines(*args)
        self.count += sum(map(len, lines))
        return lines

    def __iter__(self):
        for line in self._stream:
            self.count += len(line)
            yield line


def _body_received(request) -> int:
    """Bytes of the request's body the server received, as its socket counted them, up
    to its Content-Length; 0 when unknown (not under gunicorn, or chunked: the socket's
    count would hold the chunks' framing too).

    A read that a stall ends (408) raises, so the bytes that came before it were never
    returned to the app to be counted (audit 802 F8).
    """
    length = request.content_length
    received = getattr(request.environ.get("gunicorn.socket"), "body_received", None)
    if length is None or not isinstance(received, int):
        return 0
    return min(received, length)


def _install_request_log(app: Flask) -> None:
    wsgi_app = app.wsgi_app

    def counting_body(environ, start_response):
        # Before Flask builds the request, whose stream wraps wsgi.input once.
        environ["wsgi.input"] = environ[BODY_KEY] = _CountingInput(environ["wsgi.input"])
        return wsgi_app(environ, start_response)

    app.wsgi_app = counting_body

    @app.before_request
    def _start_timer():
        g.request_start = time.perf_counter()

    @app.after_request
    def _log_request(response):
        start = g.get("request_start")
        duration = (time.perf_counter() - start) * 1000.0 if start is not None else 0.0
        # The caller's id (the annotation client sends one with each request, and logs
        # it with a failure), else one of our own: either way, answered and logged. Read
        # here, not before the request: a request refused for its Host never gets there.
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        response.headers["X-Request-ID"] = request_id
        # Sizes only: the images are patients' and their content never reaches the log.
        # The body's bytes as read (a chunked one declares none; one refused unread, 0).
        body = request.environ.get(BODY_KEY)
        size = body.count if body is not None else request.content_length or 0
        if response.status_code == 408:  # the stalled read's bytes were never returned
            size = max(size, _body_received(request))
        access_log.info(
            "%s %s %d %.1fms image=%s bytes=%d from=%s id=%s",
            request.method,
            # The route, not the path as sent: "/nope Doe Jane" was logged as given.
            _metrics.route_label(),
            response.status_code,
            duration,
            g.get("image_size", "-"),
            size,
            request.remote_addr or "-",
            request_id,
        )
        return response
