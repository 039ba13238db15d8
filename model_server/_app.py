"""The Flask app factory."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider
from PIL import Image

from models.runtime import BACKENDS

from . import _api, _docs, _models
from ._errors import register_error_handlers

access_log = logging.getLogger("model_server.access")

DEFAULTS = {
    # Largest accepted request body in bytes (Flask answers 413 above it).
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    # Largest accepted width * height of an uploaded image or mask, checked from the header.
    "MAX_PIXELS": 25_000_000,
    # Directory of the exported models; None is models.runtime's own default.
    "WEIGHTS_DIR": None,
    # Load and warm the models in a background thread as soon as the app exists.
    "WARMUP": True,
    # Seconds a client may go silent while sending its request (gunicorn only): a
    # stalled upload would otherwise hold a worker until the worker timeout kills it.
    "READ_TIMEOUT": 20,
}

_bomb_guard_lock = threading.Lock()
_largest_limit = 0


def create_app(config: Mapping | None = None) -> Flask:
    """Create the model server app.

    Configuration comes from ``DEFAULTS``, then ``SONOTRACE_*`` environment
    variables (``SONOTRACE_MAX_PIXELS=4000000`` sets ``MAX_PIXELS``), then
    ``config``, a mapping that tests use.

    Parameters
    ----------
    config : mapping, optional
        Overrides, e.g. ``{"MAX_PIXELS": 1000, "WARMUP": False}``.

    Returns
    -------
    flask.Flask
        The app; its models load in a background thread (``WARMUP``) or on
        the first request, once per process.
    """
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("SONOTRACE")
    if config is not None:
        app.config.from_mapping(config)
    _check_config(app.config)
    _set_bomb_guard(app.config["MAX_PIXELS"])
    app.json = StrictJSONProvider(app)
    app.json.sort_keys = False

    register_error_handlers(app)
    models = _models.init_app(app, also_warm=_api.warm_vectorizer)
    _api.init_tasks(app, models)
    app.register_blueprint(_api.bp)
    app.register_blueprint(_docs.bp)
    _install_request_log(app)
    _install_read_timeout(app)
    return app


def _install_read_timeout(app: Flask) -> None:
    @app.before_request
    def _bound_reads():
        # gunicorn hands the client's socket over in the environ; a body read that
        # waits longer than this raises, and _inputs answers 408. The sync worker
        # sets it at accept already, so that slow headers are bounded too.
        client = request.environ.get("gunicorn.socket")
        if client is not None:
            client.settimeout(app.config["READ_TIMEOUT"])


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


def _as_bool(key: str, value) -> bool:
    # from_prefixed_env parses JSON, so only `true`/`false` arrive as bools; "False"
    # or "off" would arrive as non-empty strings, which Python calls true.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"config {key} must be true or false (or yes/no, on/off, 1/0), "
                     f"got {value!r}")


def _check_config(config) -> None:
    config["WARMUP"] = _as_bool("WARMUP", config.get("WARMUP"))
    # The runtime reads the backend from the environment only when the models load, in
    # the background; a typo must stop the server here, not leave it answering 503.
    backend = os.environ.get("SONOTRACE_RUNTIME_BACKEND", "auto")
    if backend not in BACKENDS:
        raise ValueError(f"SONOTRACE_RUNTIME_BACKEND must be one of {', '.join(BACKENDS)}, "
                         f"got {backend!r}")
    for key in ("MAX_PIXELS", "MAX_CONTENT_LENGTH", "READ_TIMEOUT"):
        value = config.get(key)
        if key == "MAX_CONTENT_LENGTH" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"config {key} must be a positive integer, got {value!r}")


def _set_bomb_guard(max_pixels: int) -> None:
    # Pillow's guard is process-wide; with several apps in one process (tests) the
    # largest limit wins, and each app's own header check enforces its smaller one.
    global _largest_limit
    with _bomb_guard_lock:
        _largest_limit = max(_largest_limit, max_pixels)
        Image.MAX_IMAGE_PIXELS = _largest_limit


def _install_request_log(app: Flask) -> None:
    @app.before_request
    def _start_timer():
        g.request_start = time.perf_counter()

    @app.after_request
    def _log_request(response):
        start = g.get("request_start")
        duration = (time.perf_counter() - start) * 1000.0 if start is not None else 0.0
        # Sizes only: the images are patients' and their content never reaches the log.
        access_log.info(
            "%s %s %d %.1fms image=%s bytes=%d",
            request.method,
            request.path,
            response.status_code,
            duration,
            g.get("image_size", "-"),
            request.content_length or 0,
        )
        return response
