"""Run the model server and the annotation client together in the foreground.

``make run`` calls this with the virtualenv's Python. Both services start in their own
process groups so that one Ctrl-C (SIGINT) or a SIGTERM reaches this launcher only; it
then stops the client, then the server, each with SIGTERM and, after a grace period,
SIGKILL. If either service exits by itself, the other is stopped too and the launcher
exits non-zero.

Uses the standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("sonotrace.run")


@dataclass
class Service:
    name: str
    args: list[str]
    url: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    ready: bool = False

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.env)
        self.process = subprocess.Popen(
            self.args, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.info("started %s (pid %d): %s", self.name, self.process.pid, " ".join(self.args))

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self, grace: float) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        log.info("stopping %s (pid %d)", self.name, process.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s: killing it", self.name, grace)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _Stop(Exception):
    """Raised from the signal handler to leave the wait loop at once."""


def _on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Stop(signal.Signals(signum).name)


def _public_host(host: str) -> str:
    # A wildcard bind address is not something a browser or the client can connect to.
    return "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host


def build_services(host: str, server_port: int, client_port: int) -> list[Service]:
    server_url = f"http://{_public_host(host)}:{server_port}"
    client_url = f"http://{_public_host(host)}:{client_port}"
    python = sys.executable
    server = Service(
        "model server",
        [python, "-m", "model_server", "--host", host, "--port", str(server_port)],
        server_url,
    )
    client = Service(
        "annotation client",
        [python, "-m", "annotation_client", "--host", host, "--port", str(client_port)],
        client_url,
        # The client must talk to the server started here, whatever the shell had set.
        env={"SONOTRACE_MODEL_SERVER_URL": server_url},
    )
    return [server, client]


def run(services: list[Service], grace: float = 15.0) -> int:
    """Start every service, report when each is ready, and stop them all on a signal."""
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        for service in services:
            service.start()
        print("SonoTrace is starting (Ctrl-C stops both services):", flush=True)
        for service in services:
            print(f"  {service.name:<18} {service.url}", flush=True)
        while True:
            for service in services:
                code = service.process.poll()
                if code is not None:
                    log.error("%s exited with code %d", service.name, code)
                    return code or 1
                if not service.ready and service.healthy():
                    service.ready = True
                    print(f"ready: {service.name} at {service.url}", flush=True)
                    if all(s.ready for s in services):
                        print(f"SonoTrace is ready: open {services[-1].url}", flush=True)
            time.sleep(0.5)
    except _Stop as stop:
        log.info("%s received: stopping", stop)
        return exit_code
    finally:
        # A second Ctrl-C while stopping must not leave orphans behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for service in reversed(services):
            service.stop(grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("SonoTrace stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address of both services")
    parser.add_argument("--server-port", type=int, default=5000)
    parser.add_argument("--client-port", type=int, default=8050)
    parser.add_argument(
        "--grace", type=float, default=15.0, help="seconds to wait for a clean stop"
    )
    args = parser.parse_args(argv)
    if args.server_port == args.client_port:
        parser.error("--server-port and --client-port must differ")
    logging.basicConfig(
        level=os.environ.get("SONOTRACE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return run(build_services(args.host, args.server_port, args.client_port), args.grace)


if __name__ == "__main__":
    sys.exit(main())
