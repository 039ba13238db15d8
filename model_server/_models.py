"""The process-wide model runtime, registered on the app like flaskr's database.

``init_app(app)`` attaches a :class:`ModelHolder` to the app and, unless
``WARMUP`` is false, starts a background thread that loads the models and
runs one tiny inference so that ``/health`` turns from 503 to 200 only when a
request would be served at full speed. Views call ``get_models().runtime()``,
which loads the models on first use if the warm-up has not finished (the
request then waits instead of failing). A load that fails (weights on a share that
is not mounted yet, a file being replaced) is tried again by the warm-up thread, after
5 s and then twice as long each time up to a minute, and by every model request
meanwhile, so a server recovers by itself once the cause is gone, with or without
traffic. If the models load but the warm-up's
inference fails (too many threads, say), they are broken in this process:
``/health`` stays 503 ``"error"`` and the model endpoints answer 503 with the
reason, rather than 200 and then a 500 per request.

There is one holder, hence one ``models.runtime.Runtime``, per process,
weights directory, backend and thread count, however many apps are created
(tests create several).
Nothing is imported from TensorFlow until the first load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np
from flask import Flask, current_app

from ._errors import ServiceUnavailable
from ._readiness import LoadedWeights

logger = logging.getLogger(__name__)

EXTENSION_KEY = "sonotrace_models"

#: Seconds the warm-up waits before loading again after a failed load, and the longest
#: wait (each wait doubles); a request's own load attempt wakes it early when it works.
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 60.0

_holders: dict[tuple, ModelHolder] = {}
_holders_lock = threading.Lock()


class ModelHolder:
    """Lazily loads one ``models.runtime.Runtime`` and tracks its readiness.

    Parameters
    ----------
    weights_dir : str or None
        Passed to ``Runtime(weights_dir=...)``; None is the shipped weights.
    backend : str, optional
        Passed to ``Runtime(backend=...)``; None uses the runtime's default.
    num_threads : int, optional
        Passed to ``Runtime(num_threads=...)``; None uses the runtime's default.
    """

    def __init__(self, weights_dir: str | None = None, backend: str | None = None,
                 num_threads: int | None = None):
        self.weights_dir = weights_dir
        self.backend = backend
        self.num_threads = num_threads
        self._runtime = None
        self._lock = threading.Lock()
        self._warmup_thread: threading.Thread | None = None
        self._warm = False
        self._error: str | None = None
        # Set for good when the loaded models fail the warm-up's inference.
        self._warmup_error: str | None = None
        # Set when a load succeeds, so that a warm-up waiting to retry goes on at once.
        self._loaded = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self.load_seconds: float | None = None

    # -- state -----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the models are loaded and (when a warm-up runs) warmed up."""
        runtime = self._runtime
        if runtime is None or not runtime.ready or self._warmup_error is not None:
            return False
        return self._warm or self._warmup_thread is None

    @property
    def state(self) -> str:
        """``"ready"``, ``"loading"`` or ``"error"`` (the last load attempt or the
        warm-up failed)."""
        if self.ready:
            return "ready"
        return "error" if self.error else "loading"

    @property
    def error(self) -> str | None:
        """Why the models cannot serve, or None."""
        return self._warmup_error or self._error

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the models are ready (now, if they already are)."""
        with self._lock:
            if not self.ready:
                self._callbacks.append(callback)
                return
        callback()

    # -- loading ---------------------------------------------------------------------

    def runtime(self):
        """Return the loaded runtime, loading it first if needed (thread-safe).

        Raises
        ------
        ServiceUnavailable
            If the models cannot be loaded, or failed the warm-up (503, with the
            reason).
        """
        if self._warmup_error is not None:
            raise ServiceUnavailable(
                f"models are unavailable: {self._warmup_error}", headers={"Retry-After": "10"}
            )
        runtime = self._runtime
        if runtime is not None and runtime.ready:
            return runtime
        with self._lock:
            if self._runtime is None or not self._runtime.ready:
                self._load_locked()
            runtime = self._runtime
        self._fire_if_ready()
        return runtime

    def _load_locked(self) -> None:
        start = time.perf_counter()
        try:
            from models.runtime import DEFAULT_WEIGHTS_DIR, Runtime

            if self._runtime is None:
                # Everything explicit: the app has read and checked the environment, and
                # the runtime would read SONOTRACE_WEIGHTS_DIR and the rest again unchecked.
                self._runtime = Runtime(weights_dir=self.weights_dir or DEFAULT_WEIGHTS_DIR,
                                        backend=self.backend, num_threads=self.num_threads)
            self._runtime.load()
        except Exception as exc:
            # Runtime.load keeps nothing of a load that failed part-way: the next attempt
            # loads everything again. The message takes the runtime's notes: which file
            # failed to load, and from where.
            notes = "".join(f" ({note})" for note in getattr(exc, "__notes__", ()))
            error = f"{type(exc).__name__}: {exc}{notes}"
            if error == self._error:
                # Retried every minute while the cause lasts: the traceback once is enough.
                logger.warning("loading the models failed again: %s", error)
            else:
                logger.exception("loading the models failed")
            self._error = error
            raise ServiceUnavailable(
                f"models are unavailable: {self._error}", headers={"Retry-After": "10"}
            ) from exc
        self._error = None
        self._loaded.set()
        self.load_seconds = time.perf_counter() - start
        logger.info("models loaded in %.1f s", self.load_seconds)

    def start_warmup(self, also: Callable[[], None] | None = None) -> None:
        """Start the background load-and-warm-up thread (once per holder).

        ``also`` runs after the models' warm-up and before they count as
        ready (the app uses it to warm the vectorizer).
        """
        with self._lock:
            if self._warmup_thread is not None:
                return
            self._warmup_thread = threading.Thread(
                target=self._warmup, args=(also,), name="sonotrace-warmup", daemon=True
            )
        self._warmup_thread.start()

    def _warmup(self, also: Callable[[], None] | None) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                runtime = self.runtime()
                break
            except Exception:
                # Not loaded (logged, and the reason kept in self._error for /health).
                # Waiting for a request to retry would leave an idle server failed for
                # good, and a launcher or orchestrator gives up on it.
                logger.warning("the warm-up could not load the models; trying again in %.0f s "
                               "(model requests try again meanwhile)", delay)
                self._loaded.wait(delay)
                delay = min(2 * delay, RETRY_MAX_SECONDS)
        try:
            start = time.perf_counter()
            # One small inference of each model builds the graphs and allocates the
            # buffers, so that the first real request costs what every later one costs.
            rng = np.random.default_rng(0)
            image = rng.integers(0, 256, size=(96, 128), dtype=np.uint8)
            mask = runtime.predict_mask(image)
            runtime.classify(image, mask=mask)
            if also is not None:
                also()
        except Exception as exc:
            # Loaded models that cannot run this tiny image cannot run a request either;
            # counting them warm made /health 200 while every request was a 500.
            self._warmup_error = f"the warm-up inference failed: {type(exc).__name__}: {exc}"
            logger.exception("model warm-up failed; this worker answers 503 until restarted")
            return
        seconds = time.perf_counter() - start
        self._warm = True
        self._fire_if_ready()
        # Said once the readiness callbacks have run: "warmed up" means this worker
        # serves (under gunicorn it is on the readiness board), which is what an operator
        # or a test reading the log waits for; before, a /health right after the line
        # could still be a 503 "loading".
        logger.info("models warmed up in %.1f s", seconds)

    def _fire_if_ready(self) -> None:
        if not self.ready:
            return
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("readiness callback failed")

    def loaded_weights(self) -> LoadedWeights | None:
        """Which export this process loaded (version, manifest digest), or None yet."""
        runtime = self._runtime
        if runtime is None or not runtime.ready or not runtime.manifest_sha256:
            return None
        return LoadedWeights(str(runtime.manifest.get("version")), runtime.manifest_sha256)

    def info(self) -> dict | None:
        """``runtime.info()`` once loaded, else None."""
        runtime = self._runtime
        if runtime is None or not runtime.ready:
            return None
        return runtime.info()


def holder_for(weights_dir: str | None, backend: str | None = None,
               num_threads: int | None = None) -> ModelHolder:
    """The process-wide holder for these runtime settings (created on first use)."""
    weights = str(weights_dir) if weights_dir is not None else None
    key = (weights, backend, num_threads)
    with _holders_lock:
        holder = _holders.get(key)
        if holder is None:
            holder = _holders[key] = ModelHolder(weights, backend, num_threads)
        return holder


def init_app(app: Flask, also_warm: Callable[[], None] | None = None) -> ModelHolder:
    """Attach the process's model holder to ``app`` and start the warm-up thread.

    ``also_warm`` is run by the warm-up thread after the models (see
    :meth:`ModelHolder.start_warmup`).
    """
    holder = holder_for(app.config.get("WEIGHTS_DIR"), app.config.get("RUNTIME_BACKEND"),
                        app.config.get("NUM_THREADS"))
    app.extensions[EXTENSION_KEY] = holder
    if app.config.get("WARMUP", True):
        holder.start_warmup(also_warm)
    return holder


def get_models() -> ModelHolder:
    """The model holder of the current app."""
    return current_app.extensions[EXTENSION_KEY]
