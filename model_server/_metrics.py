"""Prometheus metrics of the model server, at ``GET /metrics``.

What an operator graphs and alerts on, in Prometheus' text format:

- ``sonotrace_http_requests_total{endpoint, method, status}``: answers, by route (the
  rule, ``/predict``, a method the route does not take, 405, included; a path no route
  serves counts as ``unmatched``, so a scan of random paths cannot add series);
- ``sonotrace_http_request_duration_seconds{endpoint}``: the time to answer, as the
  access log measures it;
- ``sonotrace_stage_duration_seconds{stage}``: the stages a successful answer's
  ``timing_ms`` reports (``read``, ``decode``, ``segment``, ``classify``, ``encode``...),
  so a slower model can be told from slower uploads;
- ``sonotrace_workers_ready`` and ``sonotrace_workers_expected``: the whole server's
  workers whose models are loaded (what ``/health`` answers 200 on, with no conflict);
- ``sonotrace_weights_conflict``: 1 while the workers hold different weights (loaded,
  ready or not: :func:`~model_server._readiness.version_conflict`), when every model
  request is refused with a 503, even once every worker is ready;
- ``sonotrace_model_info{name, version, backend}``: 1 for the models the answering
  worker serves, once loaded.

Under gunicorn every worker counts into files of one folder (prometheus_client's
multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``): the master makes a fresh folder before
the workers fork, and forgets a worker that exits. So whichever worker answers a scrape
answers for the whole server. ``SONOTRACE_METRICS=false`` leaves the route out (404).
No label holds anything of a request's content: routes, methods, statuses and stage
names only.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ._readiness import version_conflict

log = logging.getLogger(__name__)

#: prometheus_client reads it when first imported: set before a worker imports it.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Set by gunicorn for the new master of a binary upgrade: the old master's pid.
UPGRADE_ENV = "GUNICORN_PID"
#: The methods counted by name.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: Request durations (s): an image segmented in tens of ms, a large DICOM in seconds.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
#: Stage durations (s), from a vectorized mask's ms to a decode of a large file.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def check_folder(environ) -> None:
    """Refuse a ``PROMETHEUS_MULTIPROC_DIR`` the workers could not count into.

    ``python -m model_server`` calls it before gunicorn starts: every answer of a worker
    that cannot write there would lose its count, and a folder that cannot be made
    would stop the server with a traceback.

    Raises
    ------
    ValueError
        Naming the variable: the path is not a folder (or cannot be made one), or it
        cannot be written.
    """
    given = str(environ.get(MULTIPROC_ENV, "") or "").strip()
    if not given:
        return
    try:
        os.makedirs(given, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{MULTIPROC_ENV}={given}: not a folder the server can make "
                         f"({exc.strerror or exc})") from None
    if not os.access(given, os.W_OK | os.X_OK):
        raise ValueError(f"{MULTIPROC_ENV}={given}: the server cannot write in it, and "
                         "its workers count their metrics there")


def prepare_workers() -> str:
    """In gunicorn's master, before the workers fork: the folder they count into.

    A ``PROMETHEUS_MULTIPROC_DIR`` set by the operator (checked by :func:`check_folder`)
    is used, emptied of an earlier run's files (their counts would be added to this
    run's), except by the new master of a binary upgrade (SIGUSR2): the old master's
    workers still count there, and the server's counts go on across the upgrade. Else a
    new temporary folder, removed by :func:`remove_folder` when the server stops.
    """
    given = os.environ.get(MULTIPROC_ENV, "").strip()
    if given:
        os.makedirs(given, exist_ok=True)
        if os.environ.get(UPGRADE_ENV):
            # Emptying it deleted the live old workers' files: their counts vanished
            # from every scrape, and what they counted until they stopped was lost.
            return given
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.unlink(os.path.join(given, name))
        return given
    folder = tempfile.mkdtemp(prefix="sonotrace-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    return folder


def remove_folder(folder: str) -> None:
    """Remove the temporary folder :func:`prepare_workers` made (not one the operator
    named)."""
    if folder.startswith(os.path.join(tempfile.gettempdir(), "sonotrace-metrics-")):
        shutil.rmtree(folder, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: drop the exited worker's live gauges."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


@functools.cache
def _metrics():
    """The process's metrics, made once (every app of a process counts into them)."""
    from prometheus_client import Counter, Histogram

    return {
        "requests": Counter("sonotrace_http_requests", "Answers of the model server.",
                            ["endpoint", "method", "status"]),
        "duration": Histogram("sonotrace_http_request_duration_seconds",
                              "Time to answer a request.", ["endpoint"],
                              buckets=DURATION_BUCKETS),
        "stage": Histogram("sonotrace_stage_duration_seconds",
                           "Time of each stage of an answered request.", ["stage"],
                           buckets=STAGE_BUCKETS),
    }


def install(app: Flask) -> None:
    """Count ``app``'s answers and serve ``GET /metrics`` (unless ``METRICS`` is off)."""
    if not app.config["METRICS"]:
        return
    metrics = _metrics()

    @app.after_request
    def _count(response: Response) -> Response:
        try:
            _record(metrics, response)
        except Exception as exc:  # a count lost is no reason to fail the answer
            _warn_once(exc)
        return response

    @app.get("/metrics")
    def metrics_view():
        from ._errors import ServiceUnavailable
        from ._models import get_models
        from ._readiness import get_readiness

        try:
            return _exposition(get_models(), get_readiness())
        except (OSError, ValueError) as exc:  # the workers' folder gone or unreadable
            log.error("metrics: the counts cannot be read: %s", exc)
            raise ServiceUnavailable("the metrics cannot be read now; the server's log "
                                     "says why") from None


def _record(metrics: dict, response: Response) -> None:
    """Count one answer (see the module docstring)."""
    # The request log's clock (_app._install_request_log): the access line's duration.
    start = g.get("request_start")
    rule = route_label()
    # Any token is a method to HTTP: one a client makes up is "other", not a series.
    method = request.method if request.method in _METHODS else "other"
    metrics["requests"].labels(rule, method, str(response.status_code)).inc()
    if start is not None:
        metrics["duration"].labels(rule).observe(time.perf_counter() - start)
    for stage, ms in (g.get("timings") or {}).items():
        if stage != "total" and isinstance(ms, int | float):
            metrics["stage"].labels(stage).observe(ms / 1000.0)


def route_label() -> str:
    """The current request's route (its rule), else ``unmatched``: the metrics' label and
    the access log's path, never the path as sent (which may carry anything, a
    patient's name included).

    A 405 has no ``url_rule``, but its path is served: a client misconfigured to GET
    ``/predict`` belongs on the ``/predict`` series, where the errors are looked for.
    """
    if request.url_rule is not None:
        return request.url_rule.rule
    refused = request.routing_exception
    if isinstance(refused, MethodNotAllowed) and refused.valid_methods:
        try:
            adapter = current_app.create_url_adapter(request)
            rule, _ = adapter.match(method=refused.valid_methods[0], return_rule=True)
            return rule.rule
        except HTTPException:
            pass
    return "unmatched"


_warned = False


def _warn_once(exc: Exception) -> None:
    # Once per worker: a folder gone would otherwise log every request.
    global _warned
    if not _warned:
        _warned = True
        log.warning("metrics: an answer could not be counted (%s: %s); the answers are "
                    "served all the same", type(exc).__name__, exc)


def _exposition(models, board) -> Response:
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry) + _server_state(models, board)
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)


def _server_state(models, board) -> bytes:
    """The gauges read at scrape time from shared state, in the text format."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    ready = models.ready
    families = [
        GaugeMetricFamily("sonotrace_workers_ready",
                          "Workers whose models are loaded (the whole server).",
                          value=board.count() if board is not None else int(ready)),
        GaugeMetricFamily("sonotrace_workers_expected", "Workers the server runs.",
                          value=board.expected if board is not None else 1),
        GaugeMetricFamily("sonotrace_weights_conflict",
                          "1 while the workers hold different weights (every model "
                          "request is refused until a restart).",
                          value=int(board is not None and version_conflict(board) is not None)),
    ]
    info = models.info() if ready else None
    if isinstance(info, dict):
        family = GaugeMetricFamily("sonotrace_model_info",
                                   "The models the answering worker serves.",
                                   labels=["name", "version", "backend"])
        family.add_metric([str(info.get("name", "")), str(info.get("version", "")),
                           str(info.get("backend", ""))], 1)
        families.append(family)

    class _State:
        def collect(self):
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_State())
    return generate_latest(registry)
