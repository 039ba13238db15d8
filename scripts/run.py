"""Run the model server and the annotation client together in the foreground.

``make run`` calls this with the virtualenv's Python. Before starting anything it
checks ``SONOTRACE_LOG_LEVEL``, ``SONOTRACE_LOAD_ERROR_GRACE`` and that both ports can
be listened on; a refusal is
one line on stderr, ``error: ...``, and the exit status is 2, as the services do for a
bad setting. Both services start in their own process groups, so that one Ctrl-C
(SIGINT), a SIGTERM, a SIGQUIT (Ctrl-\\) or the terminal or SSH session closing
(SIGHUP) reaches this launcher only; it then stops the client, then the server, each
with SIGTERM and, after a grace period, SIGKILL; on Linux the kernel sends each
service SIGTERM if the launcher itself is killed (``kill -9``). A relative
``SONOTRACE_DATA_DIR``, ``SONOTRACE_WORKLIST_DIR`` or ``SONOTRACE_WEIGHTS_DIR`` is made
absolute against the working directory the launcher was started in, since the services
run from the checkout. If either service exits by itself, the
other is stopped too and the launcher exits non-zero. The same happens when the model
server's ``/health`` says ``"error"`` (its models could not be loaded) and still says so
``--error-grace`` seconds later (``SONOTRACE_LOAD_ERROR_GRACE``, default 30) without
having been ready in between: the server tries a failed load again on the next request,
or in a respawned worker, so an error during warm-up is not always final. Meanwhile a
WARNING gives the server's reason.

Uses the standard library, and ``vectorizer._settings`` for the rules the services
apply to the same settings.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder is on sys.path, not the repository: add it, so
# that the launcher applies the services' own setting rules rather than a copy of them.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from vectorizer._settings import (  # noqa: E402 - needs the sys.path entry above
    LOOPBACK_HOSTS,
    STOP_GRACE_S,
    WILDCARDS,
    argument,
    bind_address,
    from_env,
    parse_host,
    parse_log_level,
    parse_port,
    parse_whole,
    refuse,
    trusted_hosts,
)

log = logging.getLogger("sonotrace.run")

#: Seconds a service's ``/health`` may say ``"error"`` before both are stopped, unless
#: ``--error-grace`` or ``SONOTRACE_LOAD_ERROR_GRACE`` says otherwise. Long enough for a
#: request, or a respawned worker, to load the models again after a failure that does not
#: last (a weights file being replaced, memory short during warm-up); short enough that
#: missing weights are reported while the radiologist still watches the terminal.
DEFAULT_ERROR_GRACE = 30

#: Ctrl-C, kill, the terminal or SSH session closing, Ctrl-\: each stops both services.
#: The services run in sessions of their own, so the terminal's SIGHUP never reaches
#: them: left unhandled here, it killed the launcher and orphaned both, ports held.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

#: Folders the services read from the environment. They run from the checkout, so a
#: relative value is made absolute against the launcher's working directory first, as
#: the README says ("relative to the working directory"): it named a folder in the
#: checkout, outside every ignore file, where patient data do not belong.
PATH_VARIABLES = ("SONOTRACE_DATA_DIR", "SONOTRACE_WORKLIST_DIR", "SONOTRACE_WEIGHTS_DIR")

#: Linux's prctl option that sends a signal to a process when its parent dies.
_PR_SET_PDEATHSIG = 1


def absolute_paths(environ: Mapping[str, str], cwd: str) -> dict[str, str]:
    """The :data:`PATH_VARIABLES` set to a relative path in ``environ``, made absolute
    against ``cwd`` (``~`` expanded first); blank ones are left to the services."""
    paths = {}
    for name in PATH_VARIABLES:
        value = environ.get(name)
        if value is None or not value.strip():
            continue
        expanded = os.path.expanduser(value)
        if not os.path.isabs(expanded):
            paths[name] = os.path.join(cwd, expanded)
    return paths


def _stop_with_launcher():
    """A ``preexec_fn`` that has the kernel send the service SIGTERM when the launcher
    dies, however it dies (``kill -9``, the OOM killer): it runs each service in a
    session of its own, so nothing else would stop them, and both kept their ports.
    None where ``prctl`` is not available (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    launcher = os.getpid()

    def in_the_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != launcher:  # it died between the fork and the prctl
            os._exit(1)

    return in_the_child


class ServiceFailed(Exception):
    """A service's ``/health`` says it cannot serve: ``{"status": "error", ...}``."""


@dataclass
class Service:
    """One service: its command, where it listens and the URL it answers at.

    Attributes
    ----------
    name : str
        For messages: "model server", "annotation client".
    args : list of str
        The command that runs it in the foreground.
    url : str
        ``http://host:port`` as a browser or the other service reaches it.
    host, port : str, int
        The address it binds (``--host``) and its port.
    port_option : str
        The launcher's option for ``port``, named when the port cannot be used.
    env : dict
        Variables set for it on top of the launcher's environment.
    """

    name: str
    args: list[str]
    url: str
    host: str = "127.0.0.1"
    port: int = 0
    port_option: str = ""
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    ready: bool = False
    #: When ``/health`` first said "error" (``time.monotonic()``); None if it never did.
    failing_since: float | None = None
    #: The last reason warned about, so that a poll every half second is not a warning.
    failure_warned: str | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(absolute_paths(os.environ, os.getcwd()))
        env.update(self.env)
        self.process = subprocess.Popen(
            self.args, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_stop_with_launcher(),
        )
        log.info("started %s (pid %d): %s", self.name, self.process.pid, " ".join(self.args))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        """Whether ``/health`` answers 200; False while it is unreachable or loading.

        Raises
        ------
        ServiceFailed
            With the service's message, when ``/health`` answers ``"status": "error"``
            (the model server whose models failed to load: it would answer 503 forever).
        """
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except urllib.error.HTTPError as exc:
            with exc:
                body = _json_object(exc)
            if body.get("status") == "error":
                raise ServiceFailed(_health_reason(body)) from None
            return False
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def failed_for_good(self, reason: str, grace: float) -> bool:
        """Note a ``/health`` "error"; whether it is final: ``grace`` s after the first.

        The service was never ready in between (once ready it is polled no more); a
        "loading" answer between two errors does not restart the count, or two workers,
        one failed and one loading, answering in turn would be waited for forever.

        Parameters
        ----------
        reason : str
            The service's message, warned about (once per distinct message) while the
            launcher waits.
        grace : float
            Seconds from the first "error" answer; 0 makes the first one final.

        Returns
        -------
        bool
            True once ``grace`` seconds have passed since the first "error": stop.
        """
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        waited = now - self.failing_since
        if waited >= grace:
            return True
        if reason != self.failure_warned:
            self.failure_warned = reason
            log.warning(
                "the %s cannot serve yet: %s; waiting up to %.0f s more for it to recover "
                "(--error-grace, SONOTRACE_LOAD_ERROR_GRACE)",
                self.name, reason, grace - waited,
            )
        return False

    def port_problem(self) -> str | None:
        """Why this service could not listen on its host and port, in words naming the
        option to change (the port's, or HOST's); None if it can."""
        problem = _listen_problem(self.host, self.port)
        if problem is None:
            return None
        reason, of_host = problem
        if of_host:
            # Not a port another program holds: no other port helps (audit 804 F3). Both
            # services bind the one host, so the line is the same for each.
            return f"cannot start SonoTrace: cannot listen on {self.host}: {reason}"
        return (
            f"cannot start the {self.name}: port {self.port} on {self.host} {reason}: stop "
            f"that program or choose another port ({self.port_option})"
        )

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


#: What the annotation client's ``/health`` names as the reason it cannot serve.
CLIENT_REASONS = {"data_folder": "data folder", "index": "index"}


def _health_reason(body: dict) -> str:
    """The reason a ``/health`` answer of ``"status": "error"`` gives, in one line.

    The model server says it in ``error.message``; the annotation client names the part
    that fails (``data_folder`` or ``index``) beside its version and server URL, which
    are no reason: printed whole, they buried it.
    """
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    said = [f"{name}: {body[key]}" for key, name in CLIENT_REASONS.items()
            if isinstance(body.get(key), str)]
    return "; ".join(said) or json.dumps(body)


def _json_object(response) -> dict:
    try:
        body = json.loads(response.read(65536))
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


#: How a refusal of the host names its setting: both services bind the launcher's host.
HOST_SETTING = "(--host, make run HOST=...)"


def _listen_problem(host: str, port: int) -> tuple[str, bool] | None:
    """Why ``host``:``port`` cannot be listened on, and whether the host is at fault
    (a name that does not resolve, an address that is not this machine's) rather than
    the port; None if it can."""
    # Bound as gunicorn binds (an IPv6 family for an address with a colon, SO_REUSEADDR),
    # so that the answer is gunicorn's: a port in TIME_WAIT after a stop is free, one a
    # program listens on is not. Checked before anything starts: otherwise a service
    # left running answered /health in place of the one being started, which was
    # reported ready and then exited with "Connection in use".
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
    except socket.gaierror:
        # Worded as the services' own check words it (vectorizer._settings.check_listen).
        return f"no address is known for the host name {address!r} {HOST_SETTING}", True
    except (UnicodeError, TypeError):  # a name the resolver cannot even encode
        return f"{address!r} is not a host name {HOST_SETTING}", True
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return "is already in use by another program (a SonoTrace left running?)", False
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"{address} is not an address of this machine {HOST_SETTING}", True
        return f"cannot be listened on ({exc.strerror or exc})", False
    return None


class _Stop(Exception):
    """Raised from the signal handler to leave the wait loop at once."""


class _StopSignals:
    """Turns :data:`STOP_SIGNALS` into :class:`_Stop`, held back while a service starts.

    Raised inside ``Popen`` once the child exists but before its pid is kept, a
    ``_Stop`` would leave that child running with no one to stop it.
    """

    def __init__(self) -> None:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        self._holding = False
        self._pending: str | None = None

    def _handle(self, signum, frame):  # noqa: ARG002 - signal handler signature
        name = signal.Signals(signum).name
        if self._holding:
            self._pending = self._pending or name
            return
        raise _Stop(name)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending is not None:
            raise _Stop(self._pending)

    def ignore(self) -> None:
        # A second Ctrl-C, or the SIGHUP that follows a closed terminal's SIGCONT, while
        # stopping must not leave orphans behind.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def parse_seconds(text: str) -> int:
    """The whole number of seconds ``text`` states, 0 or more.

    Raises
    ------
    ValueError
        When ``text`` is not a whole number, or is negative.
    """
    number = parse_whole(text)
    if number < 0:
        raise ValueError("must be a whole number of seconds, 0 or more")
    return number


def _say(text: str, stream=None) -> None:
    # After SIGHUP the terminal is gone and writing to it fails (EIO): that must not
    # stop the launcher from stopping the services.
    with contextlib.suppress(OSError):
        print(text, file=stream or sys.stdout, flush=True)


def _url(host: str, port: int) -> str:
    """The URL of a service bound to ``host``: a wildcard as this machine's loopback."""
    if host in WILDCARDS:
        # Not a host a browser or the client can connect to; a service bound to "::"
        # surely answers on ::1, and one bound to 0.0.0.0 on 127.0.0.1.
        host = "::1" if ":" in host else "127.0.0.1"
    # bind_address: an IPv6 literal in brackets, "http://[::1]:5000", in a URL as in a bind.
    return f"http://{bind_address(host, port)}"


def build_services(host: str, server_port: int, client_port: int) -> list[Service]:
    server_url = _url(host, server_port)
    client_url = _url(host, client_port)
    python = sys.executable
    server = Service(
        "model server",
        [python, "-m", "model_server", "--host", host, "--port", str(server_port)],
        server_url,
        host=host,
        port=server_port,
        port_option="--server-port, make run SERVER_PORT=...",
        # This launcher watches the master it started: a binary upgrade's new master
        # would outlive it, alone, once the old one stopped (README "Upgrading in place").
        env={"SONOTRACE_BINARY_UPGRADE": "false"},
    )
    client = Service(
        "annotation client",
        [python, "-m", "annotation_client", "--host", host, "--port", str(client_port)],
        client_url,
        host=host,
        port=client_port,
        port_option="--client-port, make run CLIENT_PORT=...",
        # The client must talk to the server started here, whatever the shell had set.
        env={"SONOTRACE_MODEL_SERVER_URL": server_url},
    )
    return [server, client]


def elsewhere(host: str, client_port: int, environ: Mapping) -> list[str]:
    """What to tell about other machines: nothing unless ``host`` is a wildcard.

    Bound to every network, the client is reached from elsewhere by this machine's
    name or address, and it answers only names of ``SONOTRACE_TRUSTED_HOSTS`` (the
    URL printed for this machine, a loopback address, is one no other can use).

    Returns
    -------
    list of str
        Lines to print after the local URL.
    """
    if host not in WILDCARDS:
        return []
    try:
        listed = from_env("SONOTRACE_TRUSTED_HOSTS", trusted_hosts, (), environ)
    except ValueError:  # the services refuse it, in their own words
        listed = ()
    listed = [name for name in listed if name not in LOOPBACK_HOSTS]
    names = [name for name in listed if name != "*" and not name.startswith(".")]
    if names:
        urls = " or ".join(f"http://{bind_address(name, client_port)}" for name in names)
        return [f"  other machines: open {urls} (SONOTRACE_TRUSTED_HOSTS)"]
    if "*" in listed:
        now = "it is *: any name is answered"
    elif listed:
        now = f"now {', '.join(listed)}"
    else:
        now = "it lists none yet: only this machine's own browser is answered"
    return [
        f"  other machines: open http://<this machine's name or address>:{client_port}, a "
        f"name or address listed in SONOTRACE_TRUSTED_HOSTS ({now})"
    ]


def run(
    services: list[Service],
    grace: float = STOP_GRACE_S,
    notes: Sequence[str] = (),
    error_grace: float = DEFAULT_ERROR_GRACE,
) -> int:
    """Start every service, report when each is ready, and stop them all on a signal.

    Parameters
    ----------
    services : list of Service
        Started in this order, stopped in the reverse.
    grace : float
        Seconds each has to stop after SIGTERM before SIGKILL.
    notes : sequence of str
        Lines printed after the "ready" line (:func:`elsewhere`).
    error_grace : float
        Seconds a service not yet ready may answer ``/health`` with ``"error"`` before
        both are stopped (:meth:`Service.failed_for_good`).

    Returns
    -------
    int
        0 after a stop signal; non-zero when a service exited or failed by itself.
    """
    signals = _StopSignals()
    try:
        for service in services:
            with signals.held():
                service.start()
        _say("SonoTrace is starting (Ctrl-C stops both services):")
        for service in services:
            _say(f"  {service.name:<18} {service.url}")
        while True:
            for service in services:
                code = service.process.poll()
                if code is not None:
                    log.error("%s exited with code %d", service.name, code)
                    return code or 1
                if service.ready:
                    continue
                try:
                    healthy = service.healthy()
                except ServiceFailed as exc:
                    if not service.failed_for_good(str(exc), error_grace):
                        continue
                    # Printed, not logged: the reason must show whatever the log level.
                    _say(f"error: the {service.name} cannot serve: {exc}", sys.stderr)
                    return 1
                # Alive after the answer too: the answer is then this process's own.
                if healthy and service.alive():
                    service.ready = True
                    _say(f"ready: {service.name} at {service.url}")
                    if all(s.ready for s in services):
                        _say(f"SonoTrace is ready: open {services[-1].url}")
                        for note in notes:
                            _say(note)
            time.sleep(0.5)
    except _Stop as stop:
        log.info("%s received: stopping", stop)
        return 0
    finally:
        signals.ignore()
        for service in reversed(services):
            service.stop(grace)
        signals.restore()
        _say("SonoTrace stopped.")


def main(argv: list[str] | None = None) -> int:
    """Check the options, ``SONOTRACE_LOG_LEVEL`` and the ports, then :func:`run`.

    Returns
    -------
    int
        2, after one line on stderr, for a refused setting or a port that cannot be
        listened on; else what :func:`run` returns.
    """
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host",
        type=argument(parse_host),
        default="127.0.0.1",
        help="bind address of both services",
    )
    parser.add_argument("--server-port", type=argument(parse_port), default=5000)
    parser.add_argument("--client-port", type=argument(parse_port), default=8050)
    parser.add_argument(
        "--grace", type=float, default=STOP_GRACE_S,
        help="seconds to wait for a clean stop before killing (default %(default)s: just past "
             "the services' own grace for requests in progress)"
    )
    parser.add_argument(
        "--error-grace",
        type=argument(parse_seconds),
        default=None,
        help="seconds the model server's /health may say \"error\" (its models failed to "
        "load: it tries again) before both services are stopped; 0 stops at once "
        f"(default SONOTRACE_LOAD_ERROR_GRACE, else {DEFAULT_ERROR_GRACE})",
    )
    args = parser.parse_args(argv)
    if args.server_port == args.client_port:
        parser.error("--server-port and --client-port must differ")
    try:
        # The services' rule: empty is unset, and a bad value is refused by its name.
        level = from_env("SONOTRACE_LOG_LEVEL", parse_log_level, "info", os.environ)
        error_grace = args.error_grace
        if error_grace is None:
            error_grace = from_env(
                "SONOTRACE_LOAD_ERROR_GRACE", parse_seconds, DEFAULT_ERROR_GRACE, os.environ
            )
    except ValueError as exc:
        return refuse(exc)
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    services = build_services(args.host, args.server_port, args.client_port)
    # A host at fault is the same line for both services: said once.
    problems = list(dict.fromkeys(
        problem for service in services if (problem := service.port_problem())
    ))
    for problem in problems:
        status = refuse(ValueError(problem))
    if problems:
        return status
    notes = elsewhere(args.host, args.client_port, os.environ)
    return run(services, args.grace, notes, error_grace)


if __name__ == "__main__":
    sys.exit(main())
