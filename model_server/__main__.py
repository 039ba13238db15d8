"""``python -m model_server``: run the production server (gunicorn).

Defaults come from ``SONOTRACE_HOST``, ``SONOTRACE_PORT``,
``SONOTRACE_WORKERS``, ``SONOTRACE_THREADS``, ``SONOTRACE_TIMEOUT`` and
``SONOTRACE_NUM_THREADS`` (inference threads per worker, read by
``models.runtime``); the app's own settings (``SONOTRACE_MAX_PIXELS``...) are
read by ``create_app`` in each worker.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise SystemExit(f"error: {name} must be an integer, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model_server",
        description="Serve the SonoTrace REST API (segmentation, classification, vectorizing).",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("SONOTRACE_HOST", "127.0.0.1"),
        help="address to bind (default 127.0.0.1, SONOTRACE_HOST)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env_int("SONOTRACE_PORT", 5000),
        help="port (default 5000, SONOTRACE_PORT)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_env_int("SONOTRACE_WORKERS", 2),
        help="worker processes, each with its own models (default 2, SONOTRACE_WORKERS)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=_env_int("SONOTRACE_THREADS", 1),
        help="request threads per worker (default 1, SONOTRACE_THREADS); 1 runs gunicorn's "
        "sync workers, more runs gthread workers",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=_env_int("SONOTRACE_TIMEOUT", 120),
        help="seconds before a silent worker is restarted (default 120, SONOTRACE_TIMEOUT)",
    )
    parser.add_argument(
        "--model-threads",
        type=int,
        default=_env_int("SONOTRACE_NUM_THREADS", 0),
        help="inference threads per worker; 0 = CPU count / workers (SONOTRACE_NUM_THREADS)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("SONOTRACE_LOG_LEVEL", "info"),
        help="debug, info, warning or error (default info, SONOTRACE_LOG_LEVEL)",
    )
    return parser


def thread_environment(model_threads: int, workers: int, cpu_count: int | None) -> dict[str, str]:
    """Environment capping the inference threads of each worker.

    Workers share the machine's cores: ``workers`` processes that each run a
    thread pool sized for all cores oversubscribe the CPU and throughput
    drops, so each gets ``cpu_count // workers`` threads unless
    ``model_threads`` says otherwise. ``SONOTRACE_NUM_THREADS`` is read by
    ``models.runtime`` (LiteRT); the others cap TensorFlow and OpenMP pools
    for the Keras backend.
    """
    if model_threads <= 0:
        model_threads = max(1, (cpu_count or 1) // max(1, workers))
    return {
        "SONOTRACE_NUM_THREADS": str(model_threads),
        "TF_NUM_INTRAOP_THREADS": str(model_threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": str(model_threads),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("port", "workers", "threads", "timeout"):
        if getattr(args, name) < (0 if name == "port" else 1):
            raise SystemExit(f"error: --{name} must be positive")
    read_timeout = _env_int("SONOTRACE_READ_TIMEOUT", 20)
    if read_timeout >= args.timeout:
        # Otherwise gunicorn kills a worker held by a silent client before its read gives
        # up: the very outage the read timeout is there to prevent.
        raise SystemExit(
            f"error: SONOTRACE_READ_TIMEOUT ({read_timeout} s) must be shorter than "
            f"--timeout ({args.timeout} s)"
        )
    if args.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise SystemExit(f"error: unknown --log-level {args.log_level!r}")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Set before any worker loads a model (workers inherit the environment); the command
    # line wins over the environment for the inference threads.
    threads_env = thread_environment(args.model_threads, args.workers, os.cpu_count())
    for key, value in threads_env.items():
        if key == "SONOTRACE_NUM_THREADS":
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)

    from ._gunicorn import ModelServerApplication

    host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
    options = {
        "bind": f"{host}:{args.port}",
        "workers": args.workers,
        "threads": args.threads,
        "timeout": args.timeout,
        "graceful_timeout": 30,
        "keepalive": 5,
        "loglevel": args.log_level,
        "errorlog": "-",
    }
    ModelServerApplication(options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
