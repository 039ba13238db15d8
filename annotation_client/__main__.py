"""Serve the annotation client: ``python -m annotation_client --host H --port 8050``.

It runs under gunicorn (threaded workers, so a slow model-server call does not
block other requests). ``--dev`` uses Dash's development server instead.

The options' defaults come from ``SONOTRACE_CLIENT_HOST`` (127.0.0.1),
``SONOTRACE_CLIENT_PORT`` (8050), ``SONOTRACE_CLIENT_WORKERS`` (1),
``SONOTRACE_CLIENT_THREADS`` (8) and ``SONOTRACE_LOG_LEVEL`` (info); a variable
set to an empty value means its default. The app's own settings
(``SONOTRACE_DATA_DIR``...) are checked, and the data folder made, before
gunicorn starts. A refused setting is reported in one line on stderr,
``error: SONOTRACE_...=value: reason``, and the exit status is 2, as for the
client's other commands.

Files and folders the client makes are its user's only (umask 077): the data
folder holds patients' masks and an index of notes and names. The address it is
bound to, when not a wildcard such as 0.0.0.0, is added to
``SONOTRACE_TRUSTED_HOSTS``.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, replace

from vectorizer._settings import (
    DEFAULT_HOST,
    GRACEFUL_TIMEOUT_S,
    AddressRefused,
    ServingOptions,
    argument,
    bind_address,
    check_listen,
    checked,
    note_wildcard,
    parse_at_least_one,
    parse_host,
    parse_log_level,
    parse_port,
    parse_request_threads,
    refuse,
    with_bind_address,
)
from vectorizer._variables import warn_unknown

#: Owner-only files and folders: the annotations, the index, kept uploads, exports.
UMASK = 0o077


@dataclass(frozen=True)
class Options(ServingOptions):
    """How the client is served: the command line, else the environment, else defaults."""

    dev: bool


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False,
        prog="python -m annotation_client", description="SonoTrace annotation client (Dash)."
    )
    # None: the environment's value, read after parsing so that a bad variable is
    # reported by name (and --help works whatever the environment holds).
    parser.add_argument(
        "--host",
        type=argument(parse_host),
        help=f"address to listen on (default {DEFAULT_HOST}, SONOTRACE_CLIENT_HOST)",
    )
    parser.add_argument(
        "--port", type=argument(parse_port), help="port (default 8050, SONOTRACE_CLIENT_PORT)"
    )
    parser.add_argument(
        "--workers",
        type=argument(parse_at_least_one),
        help="gunicorn worker processes (default 1, SONOTRACE_CLIENT_WORKERS); the app "
        "keeps no state in memory, so any number works",
    )
    parser.add_argument(
        "--threads",
        type=argument(parse_request_threads),
        help="request threads per worker, 1 to 256 (default 8, SONOTRACE_CLIENT_THREADS)",
    )
    parser.add_argument("--dev", action="store_true", help="Dash's development server (debug)")
    return parser


def options(argv: list[str] | None = None, environ=None) -> Options:
    """The serving options of ``argv`` (``sys.argv`` by default) and ``environ``.

    Raises
    ------
    SystemExit
        With status 2, from argparse, for a bad command-line option.
    ValueError
        For a bad ``SONOTRACE_CLIENT_*`` or ``SONOTRACE_LOG_LEVEL`` variable.
    """
    # A blank variable means its default, as for the app's own settings (ClientConfig).
    environ = {
        name: text
        for name, text in (os.environ if environ is None else environ).items()
        if text.strip()
    }
    args = _parser().parse_args(argv)

    def pick(given, name: str, text: str, check):
        # A given value is the command line's, checked by argparse already.
        return given if given is not None else checked(name, text, check)

    # Each default spelled environ.get("NAME", "default"): tests/test_readme_config.py
    # finds it there and checks that the README gives the same.
    return Options(
        host=pick(args.host, "SONOTRACE_CLIENT_HOST",
                  environ.get("SONOTRACE_CLIENT_HOST", "127.0.0.1"), parse_host),
        port=pick(args.port, "SONOTRACE_CLIENT_PORT",
                  environ.get("SONOTRACE_CLIENT_PORT", "8050"), parse_port),
        workers=pick(args.workers, "SONOTRACE_CLIENT_WORKERS",
                     environ.get("SONOTRACE_CLIENT_WORKERS", "1"), parse_at_least_one),
        threads=pick(args.threads, "SONOTRACE_CLIENT_THREADS",
                     environ.get("SONOTRACE_CLIENT_THREADS", "8"), parse_request_threads),
        log_level=pick(None, "SONOTRACE_LOG_LEVEL",
                       environ.get("SONOTRACE_LOG_LEVEL", "info"), parse_log_level),
        dev=args.dev,
    )


def write_plain_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answer (``gunicorn.util.write_error``) as the client's.

    gunicorn refuses some requests before the app sees them: a request line over
    its limit (414, a very long address), headers over its limits (431), a malformed
    request (400). Its answer is an HTML page without the headers of every other
    answer; here it is plain text, like the client's other refusals, with them.
    """
    from gunicorn import util

    from annotation_client._app import SECURITY_HEADERS
    from vectorizer._settings import raw_error_answer

    body = (f"{reason}: {mesg}" if mesg else reason).encode("utf-8", "replace") + b"\n"
    util.write_nonblock(sock, raw_error_answer(status_int, reason, "text/plain; charset=utf-8",
                                               body, SECURITY_HEADERS))


def _answer_errors_plainly(_worker) -> None:
    # In the worker, after the fork: gunicorn's workers look write_error up on its util
    # module at each error, and this process serves only this app.
    from gunicorn import util

    util.write_error = write_plain_error


#: gunicorn's access log line (at debug only): address, method, path, status, bytes and
#: time. Not its default's request line, Referer and user agent: worklist paths, patient
#: names in them, travel in the query (``/?open=Doe Jane/...``), and every asset's
#: Referer repeats the page's, so one page open wrote the name some 80 times.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def gunicorn_settings(opts: Options, settings) -> dict:
    """gunicorn's settings for ``opts`` and the app's :class:`ClientConfig` ``settings``."""
    from vectorizer._connections import THREAD_WORKER  # imports gunicorn, as main does

    return {
        "bind": bind_address(opts.host, opts.port),
        "workers": opts.workers,
        # gunicorn's gthread, reading each request within SONOTRACE_READ_TIMEOUT and at
        # a least rate (vectorizer._connections): without, eight uploads dropped
        # half-sent held every thread for ever.
        "worker_class": THREAD_WORKER,
        "threads": opts.threads,
        # A callback may wait for the model server; give it that long and more.
        "timeout": int(settings.request_timeout) + 60,
        # Said here, not left to gunicorn's default: the launcher and docker-compose wait
        # just past it (STOP_GRACE_S) before they kill.
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "accesslog": "-" if opts.log_level == "debug" else None,
        "access_log_format": ACCESS_LOG_FORMAT,
        "loglevel": opts.log_level,
        # The control socket defaults to one path per user: a second client (or any
        # gunicorn 27) on the same machine would take it over. Nothing here uses it.
        "control_socket_disable": True,
        "post_worker_init": _answer_errors_plainly,
    }


def main(argv: list[str] | None = None) -> int:
    try:
        opts = options(argv)
    except ValueError as exc:
        return refuse(exc)
    logging.basicConfig(
        level=opts.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from annotation_client import create_app
    from annotation_client._config import ClientConfig
    from annotation_client._signing import check_key, load_key

    # Before anything is made: the data folder, the index and every save inherit it
    # (gunicorn's workers too).
    os.umask(UMASK)
    try:
        settings = ClientConfig.load()
        # Here, not only in create_app: gunicorn builds the app in each worker, where a
        # refusal would end in "Worker failed to boot" and a traceback per worker.
        settings.check_data_dir()
        check_key()  # a guessable SONOTRACE_SECRET_KEY, likewise once and not per worker
        # The key file made (or a leftover replaced) once before the workers read it, and
        # one that is no key refused in one line.
        load_key(settings.data_dir)
    except (TypeError, ValueError) as exc:
        return refuse(exc)
    warn_unknown(logging.getLogger("annotation_client"))
    settings = replace(settings, trusted_hosts=with_bind_address(settings.trusted_hosts, opts.host))
    if not opts.dev:
        settings = _leave_threads_free(settings, opts.threads)
    note_wildcard(logging.getLogger("annotation_client"), opts.host, settings.trusted_hosts,
                  "browsers")
    if not (os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS")):
        # Not with a socket handed over (a re-exec on USR2, systemd): it is bound. A
        # port in use or a host not this machine's was five seconds of gunicorn's
        # retries and exit 1; now one line naming the setting, and exit 2.
        try:
            check_listen(opts.host, opts.port, host_setting="(--host, SONOTRACE_CLIENT_HOST)",
                         port_setting="(--port, SONOTRACE_CLIENT_PORT)")
        except AddressRefused as exc:
            return refuse(exc)
    _say_if_server_away(settings)
    if opts.dev:
        create_app(settings).run(host=opts.host, port=opts.port, debug=True)
        return 0

    from gunicorn.app.base import BaseApplication

    from annotation_client._database import AnnotationIndex
    from annotation_client._malloc import limit_arenas
    from annotation_client._storage import IndexProbe

    # Here, not only in create_app: gunicorn builds the app in each worker, and an index
    # that cannot be opened was the same ERROR, its whole driver message, once per worker.
    IndexProbe.before_fork(AnnotationIndex(settings.index_url))

    # Before the worker is forked, so that its threads inherit it (see _malloc).
    limit_arenas()

    class _Server(BaseApplication):
        def load_config(self):
            for key, value in gunicorn_settings(opts, settings).items():
                self.cfg.set(key, value)

        def load(self):
            return create_app(settings).server

    _Server().run()
    return 0


def _leave_threads_free(settings, threads: int):
    """``settings`` with fewer model-server calls at once than request ``threads``.

    Model calls as many as the threads could take every one of them while the model
    server is slow, and a save or a page would wait the whole request timeout behind
    them (see ``_server_client.CallSlots``). A setting that would allow it is lowered,
    with a warning, rather than refused: lowering the threads alone must not stop
    a client that started before.
    """
    if settings.model_calls < threads or threads < 2:
        return settings
    calls = threads - 1
    logging.getLogger("annotation_client").warning(
        "SONOTRACE_MODEL_CALLS=%d is not below the %d request threads "
        "(SONOTRACE_CLIENT_THREADS): at most %d model-server calls run at once, so that "
        "saves and pages keep a thread while the model server is slow",
        settings.model_calls, threads, calls)
    return replace(settings, model_calls=calls)


def _say_if_server_away(settings) -> None:
    """Log, once at start, that the model server does not answer (or refuses us).

    Not a reason to stop: under docker-compose or ``make run`` the server may still be
    loading, and the pages say "offline" until it answers. But a wrong
    ``SONOTRACE_MODEL_SERVER_URL``, or a server that does not trust the name the
    client uses for it, is otherwise found only by the first radiologist to open an
    image.
    """
    from annotation_client._server_client import (
        ModelServerClient,
        ModelServerError,
        ModelServerUnavailable,
        ModelServerUnreachable,
    )

    log = logging.getLogger("annotation_client")
    try:
        ModelServerClient(settings.model_server_url, timeout=3.0).health()
    except ModelServerUnreachable as exc:
        # Information, not a warning: started beside it (make run, compose), the server
        # may not listen yet; a wrong URL shows the same way, so it is said.
        log.info("%s Until it answers, the pages show it offline.", exc.logged())
    except ModelServerUnavailable as exc:
        # Answering but not ready: loading its models (HTTP 503), or slow to answer.
        log.info("the model server at %s is not ready yet (%s); the pages say so until it "
                 "is.", settings.model_server_url, exc.logged())
    except ModelServerError as exc:
        log.warning("the model server at %s refused the client's health check: %s",
                    settings.model_server_url, exc.logged())
    except ValueError as exc:  # a URL the settings let through but requests cannot use
        log.warning("the model server URL %s cannot be used: %s",
                    settings.model_server_url, exc)


if __name__ == "__main__":
    raise SystemExit(main())
