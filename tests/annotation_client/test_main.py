"""``python -m annotation_client`` serves the app with gunicorn."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from annotation_client import ClientConfig
from annotation_client.__main__ import gunicorn_settings, main, options
from annotation_client._app import BOOTSTRAP_CSS


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8", "replace")


def test_the_command_serves_health_page_and_local_css(
    start_service, free_port, tmp_path, artifacts_dir
):
    base = f"http://127.0.0.1:{free_port}"
    start_service(
        [
            sys.executable,
            "-m",
            "annotation_client",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port),
        ],
        f"{base}/health",
        env={
            "SONOTRACE_DATA_DIR": str(tmp_path),
            "SONOTRACE_MODEL_SERVER_URL": "http://127.0.0.1:9",
        },
        timeout=60,
    )
    status, body = _get(f"{base}/health")
    assert status == 200
    assert json.loads(body)["model_server_url"] == "http://127.0.0.1:9"
    status, html = _get(f"{base}/learn")
    assert status == 200 and "_dash-config" in html
    status, css = _get(base + BOOTSTRAP_CSS)
    assert status == 200 and ".navbar" in css
    # What gunicorn refuses before the app sees it: plain text with the headers of every
    # other answer, not its HTML page without them.
    for refused, code in ((base + "/learn?q=" + "x" * 6000, 414),
                          (base + "/health", 431)):
        extra = {f"X-Extra-{i}": "1" for i in range(120)} if code == 431 else {}
        request = urllib.request.Request(refused, headers=extra)
        with pytest.raises(urllib.error.HTTPError) as refusal:
            urllib.request.urlopen(request, timeout=10)
        assert refusal.value.code == code
        assert refusal.value.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert refusal.value.headers["X-Frame-Options"] == "DENY"
        assert "<" not in refusal.value.read().decode()
    assert _get(f"{base}/health")[0] == 200
    # gunicorn 27's control socket is one path per user: a second client would take it.
    log = next(artifacts_dir.glob("service-*.log")).read_text()
    assert "Control socket" not in log
    # The model server it was given is not there: said once, at start, not found later.
    assert log.count("The model server at http://127.0.0.1:9 cannot be reached.") == 1, log


def test_gunicorns_own_refusals_are_plain_text_with_the_security_headers():
    import socket

    from annotation_client.__main__ import write_plain_error
    from annotation_client._app import SECURITY_HEADERS

    ours, theirs = socket.socketpair()
    with ours, theirs:
        write_plain_error(ours, 431, "Request Header Fields Too Large", "Limit 100")
        ours.close()
        raw = b""
        while chunk := theirs.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert body == b"Request Header Fields Too Large: Limit 100\n"
    assert f"Content-Length: {len(body)}".encode() in lines
    for name, value in SECURITY_HEADERS.items():
        assert f"{name}: {value}".encode() in lines, name


@pytest.fixture
def environ(monkeypatch, tmp_path):
    """``os.environ`` without the shell's SONOTRACE_* settings, the data folder in tmp_path.

    A server that would start fails the test at once: a setting let through must not
    leave ``main()`` serving until the run times out.
    """
    import dash
    from gunicorn.app.base import BaseApplication

    def serve(*args, **kwargs):
        pytest.fail("main() started serving instead of refusing the setting")

    monkeypatch.setattr(BaseApplication, "run", serve)
    monkeypatch.setattr(dash.Dash, "run", serve)
    for name in list(os.environ):
        if name.startswith("SONOTRACE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


@pytest.mark.parametrize("host", ["", "   "])
def test_an_empty_host_variable_listens_on_loopback_only(environ, host):
    # The client serves patients' images without a sign-in: "" must not become every
    # interface, as gunicorn takes an empty host.
    environ.setenv("SONOTRACE_CLIENT_HOST", host)
    opts = options([])
    assert opts.host == "127.0.0.1"
    assert gunicorn_settings(opts, ClientConfig())["bind"] == "127.0.0.1:8050"


def test_gunicorn_gives_requests_in_progress_the_grace_the_launcher_waits_past(environ):
    # Audit 804 F10: the client relied on gunicorn's default; the launcher and
    # docker-compose wait STOP_GRACE_S, just past it.
    from vectorizer._settings import GRACEFUL_TIMEOUT_S, STOP_GRACE_S

    settings = gunicorn_settings(options([]), ClientConfig())
    assert settings["graceful_timeout"] == GRACEFUL_TIMEOUT_S < STOP_GRACE_S


def test_an_ipv6_host_is_bound_in_brackets(environ):
    # Unbracketed, gunicorn reads "::1:8050" as a host without a port.
    opts = options(["--host", "::1"])
    assert gunicorn_settings(opts, ClientConfig())["bind"] == "[::1]:8050"


def test_an_empty_host_option_is_refused(environ, capsys):
    with pytest.raises(SystemExit) as refused:
        options(["--host", ""])
    assert refused.value.code == 2
    assert "argument --host: must not be empty" in capsys.readouterr().err


def test_blank_variables_mean_the_defaults(environ):
    for name in ("CLIENT_PORT", "CLIENT_WORKERS", "CLIENT_THREADS", "LOG_LEVEL"):
        environ.setenv(f"SONOTRACE_{name}", " ")
    opts = options([])
    assert (opts.port, opts.workers, opts.threads, opts.log_level) == (8050, 1, 8, "info")
    settings = gunicorn_settings(opts, ClientConfig())
    assert (settings["workers"], settings["threads"], settings["loglevel"]) == (1, 8, "info")


def test_the_variables_are_read_and_the_command_line_wins(environ):
    environ.setenv("SONOTRACE_CLIENT_HOST", "10.0.0.5")
    environ.setenv("SONOTRACE_CLIENT_PORT", "9000")
    environ.setenv("SONOTRACE_CLIENT_WORKERS", "3")
    environ.setenv("SONOTRACE_CLIENT_THREADS", "4")
    environ.setenv("SONOTRACE_LOG_LEVEL", "Debug")
    opts = options([])
    assert (opts.host, opts.port, opts.workers, opts.threads) == ("10.0.0.5", 9000, 3, 4)
    settings = gunicorn_settings(opts, ClientConfig(request_timeout=2.5))
    assert settings["bind"] == "10.0.0.5:9000" and settings["loglevel"] == "debug"
    assert settings["timeout"] == 62 and settings["accesslog"] == "-"
    opts = options(["--host", "0.0.0.0", "--port", "8051", "--workers", "2", "--threads", "1"])
    assert (opts.host, opts.port, opts.workers, opts.threads) == ("0.0.0.0", 8051, 2, 1)


def test_the_access_log_names_no_query_referer_or_user(environ):
    # A worklist path (a patient's name) travels in the query, and every asset's
    # Referer repeats the page's address: gunicorn's default line logged both.
    import datetime as dt
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    environ.setenv("SONOTRACE_LOG_LEVEL", "debug")
    settings = gunicorn_settings(options([]), ClientConfig())
    config = Config()
    config.set("access_log_format", settings["access_log_format"])
    request = {"REQUEST_METHOD": "GET", "RAW_URI": "/?open=Doe%20Jane/DOE_MRN1.png",
               "PATH_INFO": "/", "QUERY_STRING": "open=Doe%20Jane/DOE_MRN1.png",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.9",
               "HTTP_REFERER": "http://ws/?open=Doe%20Jane/DOE_MRN1.png",
               "HTTP_USER_AGENT": "Mozilla/5.0", "REMOTE_USER": "dr.doe"}
    response = SimpleNamespace(status="200 OK", sent=512, headers=[])
    logger = Logger(config)
    atoms = logger.atoms(response, [], request, dt.timedelta(milliseconds=12))
    line = config.access_log_format % atoms
    assert line == '10.0.0.9 "GET /" 200 512 12ms'
    assert "Doe" not in line and "MRN" not in line and "dr.doe" not in line


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("SONOTRACE_CLIENT_PORT", "abc", "must be a whole number"),
        ("SONOTRACE_CLIENT_PORT", "0", "from 1 to 65535"),
        ("SONOTRACE_CLIENT_PORT", "65536", "from 1 to 65535"),
        ("SONOTRACE_CLIENT_WORKERS", "abc", "must be a whole number"),
        ("SONOTRACE_CLIENT_WORKERS", "0", "at least 1"),
        ("SONOTRACE_CLIENT_THREADS", "-2", "at least 1"),
        ("SONOTRACE_LOG_LEVEL", "verbose", "must be one of debug, info, warning"),
        # The client's own settings, read by ClientConfig.
        ("SONOTRACE_MAX_PIXELS", "abc", "must be a whole number of pixels"),
        ("SONOTRACE_REQUEST_TIMEOUT", "inf", "seconds from 0.1 to 3600"),
        ("SONOTRACE_MAX_UPLOAD_MB", "inf", "MB from 0.01 to 1024"),
        ("SONOTRACE_MODEL_SERVER_URL", "http://", "must name a host"),
        ("SONOTRACE_DATA_DIR", "/proc/nope", "is not a writable folder"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it_and_exit_status_2(
    environ, capsys, name, value, reason
):
    environ.setenv(name, value)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {name}={value!r}")
    assert reason in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--port", "0"], "argument --port: must be a port number from 1 to 65535, not '0'"),
        (["--port", "x"], "argument --port: must be a whole number, not 'x'"),
        (["--workers", "0"], "argument --workers: must be a whole number of at least 1"),
        (["--threads", "-1"], "argument --threads: must be a whole number of at least 1"),
        (["--threads", "257"], "argument --threads: must be a whole number from 1 to 256"),
    ],
)
def test_a_bad_option_is_refused_by_name(environ, capsys, args, reason):
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2
    assert reason in capsys.readouterr().err


def test_a_data_folder_that_is_a_file_stops_the_start(environ, capsys, tmp_path):
    (tmp_path / "data").write_text("not a folder")
    assert main([]) == 2
    assert capsys.readouterr().err == (
        f"error: SONOTRACE_DATA_DIR={str(tmp_path / 'data')!r} is not a writable folder: "
        "it exists and is not a folder\n"
    )


def test_a_guessable_secret_key_stops_the_start_without_repeating_it(environ, capsys):
    environ.setenv("SONOTRACE_SECRET_KEY", "hospital2026")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: SONOTRACE_SECRET_KEY") and err.count("\n") == 1
    assert "secrets.token_urlsafe" in err and "hospital2026" not in err


def test_a_key_file_that_holds_no_key_stops_the_start(environ, capsys, tmp_path, free_port):
    # In one line, once, not "Worker failed to boot" and a traceback per worker.
    from annotation_client._signing import KEY_FILE

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / KEY_FILE).write_bytes(b"x" * 40)
    assert main(["--port", str(free_port)]) == 2  # refused before the port is tried
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'data' / KEY_FILE} holds 40 bytes, not a "
                          "32-byte signing key") and err.count("\n") == 1


@pytest.mark.parametrize(
    "setting", ["SONOTRACE_MAX_UPLOAD_MB=inf", "SONOTRACE_DATA_DIR=/proc/nope"]
)
def test_the_command_prints_no_traceback(tmp_path, setting):
    name, value = setting.split("=", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONOTRACE_")}
    env |= {"SONOTRACE_DATA_DIR": str(tmp_path / "data"), name: value}
    result = subprocess.run(
        [sys.executable, "-m", "annotation_client", "--port", "9"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {name}={value!r}")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_a_misspelt_variable_is_warned_of_at_start(environ, caplog, tmp_path):
    # SONOTRACE_DATADIR (for DATA_DIR) saved under the default folder without a word.
    from gunicorn.app.base import BaseApplication

    from annotation_client import __main__ as launcher

    started = []
    environ.setattr(BaseApplication, "run", lambda self: started.append(True))
    environ.setattr(launcher, "_say_if_server_away", lambda settings: None)
    environ.setenv("SONOTRACE_DATADIR", str(tmp_path / "meant"))
    with caplog.at_level("WARNING", logger="annotation_client"):
        assert main([]) == 0
    assert started == [True]
    assert ("SONOTRACE_DATADIR is not a SonoTrace setting and is ignored (did you mean "
            "SONOTRACE_DATA_DIR?)") in caplog.text


def test_a_port_in_use_is_one_line_naming_it_and_exit_status_2(environ, capsys):
    # gunicorn retried for five seconds and exited 1 with "Can't connect" (helper-501, 4,
    # for the model server; the client's command behaved the same).
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: cannot listen on 127.0.0.1:{port}: port {port} is in use by "
                   "another program (--port, SONOTRACE_CLIENT_PORT)\n")


def test_a_host_that_is_not_this_machines_is_one_line_naming_it(environ, capsys):
    assert main(["--host", "192.0.2.1", "--port", "8050"]) == 2  # TEST-NET-1
    assert capsys.readouterr().err == (
        "error: cannot listen on 192.0.2.1:8050: 192.0.2.1 is not an address of this "
        "machine (--host, SONOTRACE_CLIENT_HOST)\n")


def test_an_index_that_cannot_be_opened_is_logged_once_not_once_per_worker(
        free_port, tmp_path, psycopg_installed):
    # gunicorn builds the app in each worker, and each one logged the index's ERROR with
    # its whole driver message: three workers, three times the same lines.
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("SONOTRACE_")}
    env.update({
        "SONOTRACE_DATA_DIR": str(tmp_path / "data"),
        "SONOTRACE_MODEL_SERVER_URL": "http://127.0.0.1:9",
        # A socket folder with no server in it: refused at once, as a server that is down.
        "SONOTRACE_DATABASE_URL": f"postgresql+psycopg://sonotrace@/x?host={tmp_path}",
    })
    log = tmp_path / "client.log"
    with open(log, "wb") as out:
        client = subprocess.Popen(
            [sys.executable, "-m", "annotation_client", "--host", "127.0.0.1", "--port",
             str(free_port), "--workers", "3"], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        for _ in range(1200):  # until each worker has built its app
            if log.read_text().count("INFO annotation_client._app: annotation client:") == 3:
                break
            assert client.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        os.killpg(client.pid, signal.SIGTERM)
        client.wait(timeout=60)
    said = log.read_text()
    assert said.count("ERROR annotation_client._storage: annotation index") == 1, said
    assert said.count("could not be opened: (psycopg.OperationalError)") == 1, said
    assert said.count("unavailable, as logged before this worker started (pid ") == 3, said
