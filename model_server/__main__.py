"""``python -m model_server``: run the production server (gunicorn).

The options' defaults come from ``SONOTRACE_HOST`` (127.0.0.1),
``SONOTRACE_PORT`` (5000), ``SONOTRACE_WORKERS`` (2), ``SONOTRACE_THREADS``
(1), ``SONOTRACE_TIMEOUT`` (120), ``SONOTRACE_NUM_THREADS`` (inference threads
per worker, 0 or unset: cores / workers) and ``SONOTRACE_LOG_LEVEL`` (info); a
variable set to an empty value means its default. The app's own settings
(``SONOTRACE_MAX_PIXELS``...) are read and checked here too, before gunicorn
starts, and again by ``create_app`` in each worker. A refused setting is
reported in one line on stderr, ``error: SONOTRACE_...=value: reason``, and the
exit status is 2, as for a bad option. The address the server is bound to, when
not a wildcard such as 0.0.0.0, is added to ``SONOTRACE_TRUSTED_HOSTS``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from vectorizer._settings import (
    DEFAULT_HOST,
    ServingOptions,
    argument,
    bind_address,
    from_env,
    note_wildcard,
    parse_at_least_one,
    parse_host,
    parse_log_level,
    parse_port,
    parse_request_threads,
    parse_whole,
    refuse,
    with_bind_address,
)
from vectorizer._variables import warn_unknown

from ._app import MAX_NUM_THREADS as MAX_MODEL_THREADS
from ._app import MAX_TIMEOUT, app_settings
from ._cpus import usable_cpus
from ._metrics import check_folder as check_metrics_folder
from ._readiness import MAX_WORKERS

log = logging.getLogger("model_server")

PROG = "python -m model_server"


def _model_threads(text: str) -> int:
    number = parse_whole(text)
    if not 0 <= number <= MAX_MODEL_THREADS:
        # Negative numbers used to mean "automatic" too, without a word.
        raise ValueError(
            f"must be a whole number from 1 to {MAX_MODEL_THREADS}, or 0 for cores / workers"
        )
    return number


def _timeout(text: str) -> int:
    number = parse_at_least_one(text)
    if number > MAX_TIMEOUT:
        # gunicorn passes it to select() as it is: 2e10 crashed every worker at boot, in
        # a loop of respawns, while the master kept listening.
        raise ValueError(f"must be a whole number of seconds from 1 to {MAX_TIMEOUT} (a day)")
    return number


def _workers(text: str) -> int:
    number = parse_at_least_one(text)
    if number > MAX_WORKERS:
        # The readiness board holds so many: past it /health could never be 200.
        raise ValueError(f"must be a whole number from 1 to {MAX_WORKERS} (each worker "
                         "loads its own copy of the models)")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False,
        prog=PROG,
        description="Serve the SonoTrace REST API (segmentation, classification, vectorizing).",
    )
    # No defaults here: None is "the environment's value", read after parsing so that a
    # bad variable is reported by its name (and --help works whatever it holds).
    parser.add_argument(
        "--host",
        type=argument(parse_host),
        help=f"address to bind (default {DEFAULT_HOST}, SONOTRACE_HOST); 0.0.0.0 for every "
        "network",
    )
    parser.add_argument(
        "--port", type=argument(parse_port), help="port, 1 to 65535 (default 5000, SONOTRACE_PORT)"
    )
    parser.add_argument(
        "--workers",
        type=argument(_workers),
        help=f"worker processes, each with its own models, 1 to {MAX_WORKERS} (default 2, "
        "SONOTRACE_WORKERS)",
    )
    parser.add_argument(
        "--threads",
        type=argument(parse_request_threads),
        help="request threads per worker, 1 to 256 (default 1, SONOTRACE_THREADS); 1 runs "
        "gunicorn's sync workers, more runs gthread workers",
    )
    parser.add_argument(
        "--timeout",
        type=argument(_timeout),
        help=f"seconds before a silent worker is restarted, 1 to {MAX_TIMEOUT} (default 120, "
        "SONOTRACE_TIMEOUT)",
    )
    parser.add_argument(
        "--model-threads",
        type=argument(_model_threads),
        help=f"inference threads per worker, 1 to {MAX_MODEL_THREADS}; 0 (the default) = CPU "
        "count / workers (SONOTRACE_NUM_THREADS)",
    )
    parser.add_argument(
        "--log-level",
        type=argument(parse_log_level),
        help="debug, info, warning, error or critical (default info, SONOTRACE_LOG_LEVEL)",
    )
    return parser


@dataclass(frozen=True)
class Options(ServingOptions):
    """How the server is run: the command line, else the environment, else defaults."""

    timeout: int
    model_threads: int


def options(argv: list[str] | None = None, environ: Mapping | None = None) -> Options:
    """The serving options of ``argv`` (``sys.argv`` by default) and ``environ``.

    Raises
    ------
    SystemExit
        With status 2, from argparse, for a bad command-line option.
    ValueError
        For a bad ``SONOTRACE_*`` variable, naming it.
    """
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)

    def pick(given, name, check, default):
        return given if given is not None else from_env(name, check, default, environ)

    return Options(
        host=pick(args.host, "SONOTRACE_HOST", parse_host, DEFAULT_HOST),
        port=pick(args.port, "SONOTRACE_PORT", parse_port, 5000),
        workers=pick(args.workers, "SONOTRACE_WORKERS", _workers, 2),
        threads=pick(args.threads, "SONOTRACE_THREADS", parse_request_threads, 1),
        timeout=pick(args.timeout, "SONOTRACE_TIMEOUT", _timeout, 120),
        model_threads=pick(args.model_threads, "SONOTRACE_NUM_THREADS", _model_threads, 0),
        log_level=pick(args.log_level, "SONOTRACE_LOG_LEVEL", parse_log_level, "info"),
    )


def thread_environment(model_threads: int, workers: int, cpu_count: int | None) -> dict[str, str]:
    """Environment capping the inference threads of each worker.

    Workers share the machine's cores: ``workers`` processes that each run a
    thread pool sized for all cores oversubscribe the CPU and throughput
    drops, so each gets ``cpu_count // workers`` threads unless
    ``model_threads`` (1 or more) says otherwise. ``SONOTRACE_NUM_THREADS``
    is read by the app (for ``models.runtime``, LiteRT); the others cap
    TensorFlow and OpenMP pools for the Keras backend.
    """
    if model_threads < 0:
        raise ValueError(f"model_threads must be 0 (automatic) or more, got {model_threads}")
    if model_threads == 0:
        model_threads = min(MAX_MODEL_THREADS, max(1, (cpu_count or 1) // max(1, workers)))
    return {
        "SONOTRACE_NUM_THREADS": str(model_threads),
        "TF_NUM_INTRAOP_THREADS": str(model_threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": str(model_threads),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def main(argv: list[str] | None = None, environ: Mapping | None = None) -> int:
    """Check every setting, then run gunicorn; 2 (and one line on stderr) if one is bad.

    ``environ`` is the environment to read the settings from (``os.environ`` by
    default); the workers get the checked settings, and inherit ``os.environ``.
    """
    environ = os.environ if environ is None else environ
    try:
        opts = options(argv, environ)
        # The CPUs this process may use: in a container with a CPU limit, not the host's.
        threads_env = thread_environment(opts.model_threads, opts.workers, usable_cpus())
        # The workers' own check, here, with the thread count the workers will see: in a
        # worker a refusal is a traceback and "Worker failed to boot", once per worker.
        settings = app_settings(environ={**environ, **threads_env})
        if settings["METRICS"]:
            check_metrics_folder(environ)
        if settings["READ_TIMEOUT"] >= opts.timeout:
            # Otherwise gunicorn kills a worker held by a silent client before its read
            # gives up: the very outage the read timeout is there to prevent.
            raise ValueError(
                f"SONOTRACE_READ_TIMEOUT={settings['READ_TIMEOUT']}: must be shorter than the "
                f"worker timeout, {opts.timeout} s (--timeout, SONOTRACE_TIMEOUT)"
            )
    except ValueError as exc:
        return refuse(exc)
    logging.basicConfig(
        level=opts.log_level.upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    warn_unknown(log, environ)
    settings["TRUSTED_HOSTS"] = with_bind_address(settings["TRUSTED_HOSTS"], opts.host)
    note_wildcard(log, opts.host, settings["TRUSTED_HOSTS"], "clients")
    # Set before any worker loads a model (workers inherit the environment); the command
    # line wins over the environment for the inference threads.
    for key, value in threads_env.items():
        if key == "SONOTRACE_NUM_THREADS":
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)

    from vectorizer._settings import GRACEFUL_TIMEOUT_S, AddressRefused

    from ._gunicorn import ModelServerApplication

    gunicorn_options = {
        "bind": bind_address(opts.host, opts.port),
        "workers": opts.workers,
        "threads": opts.threads,
        "timeout": opts.timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "keepalive": 5,
        "loglevel": opts.log_level,
        "errorlog": "-",
    }
    # The checked settings, so that the workers run with exactly what was checked here.
    try:
        ModelServerApplication(gunicorn_options, app_config=settings, argv=argv,
                               upgrade=settings["BINARY_UPGRADE"]).run()
    except AddressRefused as exc:  # tried before gunicorn binds: see check_address
        return refuse(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
