"""Serve the annotation client: ``python -m annotation_client --host H --port 8050``.

It runs under gunicorn (threaded workers, so a slow model-server call does not
block other requests). ``--dev`` uses Dash's development server instead.
"""

from __future__ import annotations

import argparse
import logging
import os


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m annotation_client", description="SonoTrace annotation client (Dash)."
    )
    parser.add_argument("--host", default=os.environ.get("SONOTRACE_CLIENT_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("SONOTRACE_CLIENT_PORT", "8050"))
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SONOTRACE_CLIENT_WORKERS", "1")),
        help="gunicorn worker processes (the app keeps no state in memory, so any number works)",
    )
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("SONOTRACE_CLIENT_THREADS", "8"))
    )
    parser.add_argument("--dev", action="store_true", help="Dash's development server (debug)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.port < 65536:
        raise SystemExit("--port must be in 1..65535")
    level = os.environ.get("SONOTRACE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from annotation_client import create_app
    from annotation_client._config import ClientConfig

    settings = ClientConfig.load()
    if args.dev:
        create_app(settings).run(host=args.host, port=args.port, debug=True)
        return 0

    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", max(1, args.workers))
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", max(1, args.threads))
            # A callback may wait for the model server; give it that long and more.
            self.cfg.set("timeout", int(settings.request_timeout) + 60)
            self.cfg.set("accesslog", "-" if level == "DEBUG" else None)
            self.cfg.set("loglevel", level.lower())
            # The control socket defaults to one path per user: a second client (or any
            # gunicorn 27) on the same machine would take it over. Nothing here uses it.
            self.cfg.set("control_socket_disable", True)

        def load(self):
            return create_app(settings).server

    _Server().run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
