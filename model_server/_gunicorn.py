"""Run the app under gunicorn, programmatically.

Each worker builds its own app and loads its own models after the fork
(no ``preload_app``): inference thread pools do not survive ``fork``, and a
master that never loads a model stays small, so memory is one model copy per
worker and stays flat. /health answers 503 while a worker's models load in
its background thread, and a shared
:class:`~model_server._readiness.ReadinessBoard` makes it 200 only once every
worker is ready. Each worker also writes the weights it loaded there: one respawned
after the weights folder changed would serve another version than its siblings, so
then every worker refuses (/health "error", the model endpoints 503) until a restart.

With one thread per worker (the default) gunicorn runs ``sync`` workers: a
worker takes a connection only when it is idle, so the kernel hands each
request to a free worker. That is what a CPU-bound model wants; inference
within a worker is serialised anyway. With ``threads > 1`` workers are
``gthread``: they accept connections while busy and keep them alive, but one
worker may queue requests while another idles. Either reads each request by
:mod:`vectorizer._connections`' rule (a read timeout, a least rate), which the
annotation client's workers follow too.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from vectorizer._connections import SYNC_WORKER, THREAD_WORKER
from vectorizer._settings import check_listen, raw_error_answer

from ._metrics import prepare_workers, remove_folder, worker_exited
from ._readiness import ReadinessBoard, attach, version_conflict

logger = logging.getLogger(__name__)

#: The package ``python -m`` runs as the server (``model_server``).
PACKAGE = __name__.rpartition(".")[0]


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answer (``gunicorn.util.write_error``) in the API's shape.

    gunicorn refuses some requests before the app sees them: a request line over
    ``limit_request_line`` (414), headers over its limits (431), a malformed request
    (400). Its answer is an HTML page; a client of a JSON API gets
    ``{"error": {"code": status, "message": ...}}`` here as from every other error.
    """
    from ._app import SECURITY_HEADERS  # the headers of every other answer (README)

    message = f"{reason}: {mesg}" if mesg else reason
    body = json.dumps({"error": {"code": status_int, "message": message}}).encode("utf-8")
    util.write_nonblock(sock, raw_error_answer(status_int, reason, "application/json", body,
                                               SECURITY_HEADERS))


def _answer_errors_as_json(_worker) -> None:
    # In the worker, after the fork: gunicorn's workers look write_error up on its util
    # module at each error, and this process serves only this app.
    util.write_error = write_json_error


def check_address(bind: str) -> None:
    """:func:`vectorizer._settings.check_listen` for gunicorn's ``bind`` (``host:port``),
    naming the model server's settings.

    Raises
    ------
    AddressRefused
        Naming the option and variable (host or port) and the reason.
    """
    host, port = util.parse_address(bind)
    check_listen(host, port, host_setting="(--host, SONOTRACE_HOST)",
                 port_setting="(--port, SONOTRACE_PORT)")


#: Interpreter options that take a value (``-W error``, ``-Wdefault``, ``-X dev``).
_VALUED_OPTIONS = "WX"
#: What ends the interpreter's options: a command, a module, (not an option) a script.
_PROGRAM_OPTIONS = "cm"


def interpreter_options(orig_argv: list[str]) -> list[str]:
    """The interpreter's own options in ``orig_argv`` (``sys.orig_argv``), as given.

    ``python -X dev -W error -m model_server --port 5001`` gives
    ``["-X", "dev", "-W", "error"]``: what comes before the module, command or script,
    read by the interpreter's rules (``-bb``, ``-Wdefault``, ``-uX dev``...).

    Parameters
    ----------
    orig_argv : list of str
        The interpreter's command line, the executable first.

    Returns
    -------
    list of str
        Its options, each kept whole (a cluster ending in ``-m`` keeps the flags before
        the ``m``).
    """
    options: list[str] = []
    words = iter(orig_argv[1:])
    for word in words:
        if word == "--check-hash-based-pycs":
            options += [word, next(words, "")]
            continue
        if not word.startswith("-") or word in ("-", "--") or word.startswith("--"):
            break  # a script, stdin, or an option that does not run a server
        for at, letter in enumerate(word[1:], start=1):
            if letter in _PROGRAM_OPTIONS:
                if at > 1:
                    options.append(word[:at])
                return options
            if letter in _VALUED_OPTIONS:
                options.append(word)
                if at == len(word) - 1:  # its value is the next word
                    options.append(next(words, ""))
                break
        else:
            options.append(word)
    return options


class UpgradableArbiter(Arbiter):
    """gunicorn's master, whose binary upgrade (SIGUSR2) runs ``python -m model_server``.

    gunicorn re-executes the master as ``sys.executable`` followed by ``sys.argv``; under
    ``python -m`` ``sys.argv[0]`` is the path of ``model_server/__main__.py``, which run
    as a script has no package: the new master died at its first relative import
    (ImportError) and the old one served on. The new master runs with the interpreter's
    options of the old one (:func:`interpreter_options`). In a container the master is PID 1: the
    container ends with it, the upgraded master too, so USR2 is refused there in the log;
    and where ``SONOTRACE_BINARY_UPGRADE`` is false (``make run``'s launcher, which stops
    everything when the master it started exits, leaving the new one on its own).

    Parameters
    ----------
    app : ModelServerApplication
        The application, as for :class:`gunicorn.arbiter.Arbiter`.
    argv : list of str
        The server's command-line options (without the program), given again to the
        new master.
    upgrade : bool
        Whether USR2 may start a new master (``SONOTRACE_BINARY_UPGRADE``).
    """

    def __init__(self, app, argv: list[str], upgrade: bool = True):
        super().__init__(app)
        self.upgrade = upgrade
        # The working directory gunicorn returns to before the exec is the one the server
        # started in, so ``-m`` finds the package where the first master found it. The
        # interpreter's options too (-X, -W, -O...), which gunicorn's sys.argv lacks.
        self.START_CTX["args"] = [sys.executable, *interpreter_options(sys.orig_argv),
                                  "-m", PACKAGE, *argv]

    def handle_usr2(self) -> None:
        if not self.upgrade:
            self.log.error("USR2 ignored: SONOTRACE_BINARY_UPGRADE is false (make run's "
                           "launcher stops everything when this master exits); restart the "
                           "server instead (README, \"Upgrading in place\")")
            return
        if os.getpid() == 1:
            self.log.error("USR2 ignored: a binary upgrade needs the old master to exit, "
                           "and this master is PID 1 (a container), which ends with it; "
                           "start a new container instead (README, \"Upgrading in place\")")
            return
        super().handle_usr2()


class ModelServerApplication(BaseApplication):
    """A gunicorn application serving ``create_app(app_config)``.

    Parameters
    ----------
    options : dict
        gunicorn settings (``bind``, ``workers``, ``threads``, ``timeout``...).
    app_config : mapping, optional
        Passed to ``create_app`` in each worker.
    argv : list of str, optional
        The command-line options the server was started with, which a binary upgrade
        (SIGUSR2) starts the new master with; default ``sys.argv[1:]``.
    upgrade : bool, optional
        Whether SIGUSR2 may start a new master (``SONOTRACE_BINARY_UPGRADE``).
    """

    def __init__(self, options: dict, app_config: dict | None = None,
                 argv: list[str] | None = None, upgrade: bool = True):
        self.options = dict(options)
        self.app_config = app_config
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.upgrade = upgrade
        self.board = ReadinessBoard(expected=int(self.options.get("workers", 1)))
        super().__init__()

    def load_config(self) -> None:
        threads = int(self.options.get("threads", 1))
        settings = {
            # gunicorn's, reading each request within SONOTRACE_READ_TIMEOUT and at a
            # least rate (vectorizer._connections): a slow client cannot hold a worker.
            "worker_class": THREAD_WORKER if threads > 1 else SYNC_WORKER,
            "preload_app": False,
            "proc_name": "sonotrace-model-server",
            "child_exit": self._child_exit,
            "on_reload": self._reloaded,
            "post_worker_init": _answer_errors_as_json,
            # The control socket defaults to one path per user: a second server on the
            # same machine would take it over. Nothing here uses gunicornc.
            "control_socket_disable": True,
        }
        if os.path.isdir("/dev/shm"):
            # The heartbeat file on tmpfs: a busy disk cannot stall it into a timeout kill.
            settings["worker_tmp_dir"] = "/dev/shm"
        settings.update(self.options)
        for key, value in settings.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key.lower(), value)

    def load(self):
        # Runs in each worker after the fork (preload_app is off).
        from ._app import create_app

        app = create_app(self.app_config)
        attach(app, self.board)
        pid = os.getpid()
        models = app.extensions["sonotrace_models"]
        models.on_ready(lambda: self._ready(pid, models))
        return app

    def _ready(self, pid: int, models) -> None:
        """Put worker ``pid`` on the board with the weights it loaded, and say once (as
        this worker joins) if they are not its siblings'."""
        weights = models.loaded_weights()
        if not self.board.mark_ready(pid, weights):
            return  # retired by a reload meanwhile: it exits, and its models do not count
        conflict = version_conflict(self.board, weights)
        if conflict:
            logger.error("%s. Worker %d loaded %s from %s; until the restart /health, "
                         "/predict and /classify answer 503", conflict, pid,
                         weights.version if weights else "?",
                         os.path.realpath(models.runtime().weights_dir))

    def run(self) -> None:
        """Serve until stopped.

        Raises
        ------
        AddressRefused
            Before anything starts, when the address cannot be listened on.
        """
        bind = self.options.get("bind")
        if isinstance(bind, str) and not (os.environ.get("GUNICORN_FD")
                                          or os.environ.get("LISTEN_FDS")):
            # Not with a socket handed over (a re-exec on USR2, systemd): it is bound.
            check_address(bind)
        # Before the fork: every worker counts its metrics into this folder (_metrics).
        folder = prepare_workers()
        master = os.getpid()
        try:
            # BaseApplication.run, with the master that can re-execute this server.
            UpgradableArbiter(self, self.argv, self.upgrade).run()
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr, flush=True)
            sys.exit(1)
        finally:
            # A worker leaves through here too when it exits (it was forked inside run):
            # only the master's leaving ends the server, and the folder with it.
            if os.getpid() == master:
                remove_folder(folder)

    def _reloaded(self, server) -> None:
        # A graceful reload (SIGHUP) retires every worker it finds, and the new ones
        # load the weights folder as it is now: the retiring ones, which may finish a
        # slow request for up to the graceful timeout, leave the board at once, or the
        # new version (the reason for the reload) was refused as a conflict until they
        # had gone. Retired, not removed: a request they finish, or a warm-up, would put
        # their weights back.
        for pid in list(server.WORKERS):
            self.board.retire(pid)

    def _child_exit(self, server, worker) -> None:
        self.board.remove(worker.pid)
        worker_exited(worker.pid)
