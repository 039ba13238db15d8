"""`make run`'s launcher starts the real server and client together and stops both cleanly."""

from __future__ import annotations

import http.server
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = REPO_ROOT / "scripts" / "run.py"


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose: it holds no port and runs no code.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_rejects_the_same_port_twice():
    result = subprocess.run(
        [sys.executable, str(LAUNCHER), "--server-port", "5999", "--client-port", "5999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "must differ" in result.stderr


@pytest.mark.slow
def test_starts_both_services_and_ctrl_c_stops_both(artifacts_dir):
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    server_port, client_port = ports
    log_path = artifacts_dir / "run.log"
    env = dict(os.environ, SONOTRACE_WORKERS="1", SONOTRACE_DATA_DIR=str(artifacts_dir / "data"))
    with open(log_path, "w") as log:
        launcher = subprocess.Popen(
            [
                sys.executable,
                str(LAUNCHER),
                "--server-port",
                str(server_port),
                "--client-port",
                str(client_port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 240
            urls = {
                "server": f"http://127.0.0.1:{server_port}/health",
                "client": f"http://127.0.0.1:{client_port}/health",
            }
            ready: set[str] = set()
            while time.monotonic() < deadline and ready != set(urls):
                assert launcher.poll() is None, f"launcher exited:\n{log_path.read_text()}"
                ready |= {name for name, url in urls.items() if _status(url) == 200}
                time.sleep(1)
            assert ready == set(urls), f"not healthy: {set(urls) - ready}\n{log_path.read_text()}"
            assert _status(f"http://127.0.0.1:{client_port}/") == 200

            output = log_path.read_text()
            assert f"http://127.0.0.1:{server_port}" in output
            assert f"http://127.0.0.1:{client_port}" in output
            pids = [int(p) for p in re.findall(r"started [a-z ]+ \(pid (\d+)\)", output)]
            assert len(pids) == 2, output

            # gunicorn's binary upgrade is refused under the launcher, which watches the
            # master it started: the new master would have outlived it, alone.
            [master] = re.findall(r"started model server \(pid (\d+)\)", output)
            os.kill(int(master), signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while "USR2 ignored" not in log_path.read_text():
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.5)
            time.sleep(3)  # a new master would have said where it listens by now
            listening = f"Listening at: http://127.0.0.1:{server_port} ("
            assert log_path.read_text().count(listening) == 1
            assert "USR2 ignored: SONOTRACE_BINARY_UPGRADE is false" in log_path.read_text()
            assert _status(f"http://127.0.0.1:{server_port}/health") == 200

            # What a terminal's Ctrl-C sends.
            launcher.send_signal(signal.SIGINT)
            assert launcher.wait(timeout=60) == 0, log_path.read_text()
        finally:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
            # The services run in their own process groups: never leave them behind.
            for pid in re.findall(r"started [a-z ]+ \(pid (\d+)\)", log_path.read_text()):
                if _alive(int(pid)):
                    os.killpg(int(pid), signal.SIGKILL)

    assert not _port_open(server_port), "the model server still listens after Ctrl-C"
    assert not _port_open(client_port), "the annotation client still listens after Ctrl-C"
    assert not [pid for pid in pids if _alive(pid)], "a service process outlived the launcher"
    assert "SonoTrace stopped." in log_path.read_text()


# ----------------------------------------------------------------- fake services, real processes
#
# The launcher itself runs as a real process and gets real signals; only the two services
# are fakes (an HTTP server each, started in a fraction of a second), so that stopping,
# failing and the URLs it builds are checked without loading models. The driver runs the
# launcher's own main() with sys.executable pointing at the fake, which then receives
# exactly the command line the launcher built: "-m model_server --host H --port P".

FAKE_SERVICE = '''
import json, os, socket, sys, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

module, host, port = sys.argv[2], sys.argv[sys.argv.index("--host") + 1], sys.argv[-1]
mode = os.environ.get("FAKE_" + module.upper(), "ok")
# "error-then-ok": how long the error lasts (the server loaded its models on a retry).
error_seconds = float(os.environ.get("FAKE_ERROR_SECONDS", "3"))
started = time.monotonic()
answers = 0
ERROR = {"status": "error", "error": {"code": 503, "message": "models are unavailable: "
                                      "the weights are truncated"}}
LOADING = {"status": "loading", "error": {"code": 503, "message": "..."}}
if os.environ.get("FAKE_ENV_FILE"):  # what the service was given, for the test to read
    with open(os.environ["FAKE_ENV_FILE"] + "." + module, "w") as handle:
        json.dump({k: v for k, v in os.environ.items() if k.startswith("SONOTRACE_")}, handle)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global answers
        answers += 1
        status, body = 200, {"status": "ok"}
        if mode == "error":
            status, body = 503, ERROR
        elif mode == "error-then-ok" and time.monotonic() - started < error_seconds:
            status, body = 503, ERROR
        elif mode == "error-or-loading":  # two workers: one failed, one not ready yet
            status, body = 503, (ERROR if answers % 2 else LOADING)
        elif mode == "loading" and time.monotonic() - started < 2:
            status, body = 503, LOADING
        upstream = os.environ.get("SONOTRACE_MODEL_SERVER_URL")
        if upstream:  # as the real client does: it must reach the server by this URL
            try:
                urllib.request.urlopen(upstream + "/health", timeout=2).close()
            except Exception as exc:
                status, body = 503, {"status": "no model server", "url": upstream, "why": repr(exc)}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in host else socket.AF_INET


Server((host, int(port)), Handler).serve_forever()
'''

DRIVER = '''
import importlib.util, sys

launcher, fake = sys.argv[1], sys.argv[2]
if sys.argv[3] == "--tty":
    import fcntl, termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the terminal of this session, as a shell's
spec = importlib.util.spec_from_file_location("sonotrace_run", launcher)
run = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = run
spec.loader.exec_module(run)
sys.executable = fake
sys.exit(run.main(sys.argv[4:]))
'''


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """An executable standing in for the venv's Python: it runs a fake service."""
    path = tmp_path / "fake-python"
    path.write_text(f"#!{sys.executable}\n{FAKE_SERVICE}")
    path.chmod(0o755)
    return path


def _free_ports(count: int = 2, host: str = "127.0.0.1") -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _can_listen(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _started_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"started [a-z ]+ \(pid (\d+)\)", output)]


def _kill_leftovers(output: str) -> None:
    # The services run in their own process groups: never leave them behind.
    for pid in _started_pids(output):
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)


class _Launch:
    """The launcher run as a process (the driver with fakes, or scripts/run.py itself),
    its stdout and stderr in one file."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None,
                 cwd: Path = REPO_ROOT):
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                args,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process.poll() is None, f"launcher exited:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} in {timeout} s:\n{self.output}"
            time.sleep(0.1)

    def wait(self, timeout: float = 20) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the launcher still runs after {timeout} s:\n{self.output}")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        _kill_leftovers(self.output)


@pytest.fixture
def launch(tmp_path: Path, fake_python: Path):
    """``launch(*run_py_args, fakes=True, env=...)``: the launcher, killed with its
    services at the end of the test whatever happened."""
    launches: list[_Launch] = []

    def start(*args: str, fakes: bool = True, env: dict | None = None,
              cwd: Path = REPO_ROOT) -> _Launch:
        if fakes:
            command = [sys.executable, "-c", DRIVER, str(LAUNCHER), str(fake_python), "-"]
        else:
            command = [sys.executable, str(LAUNCHER)]
        log_path = tmp_path / f"launch-{len(launches)}.log"
        launches.append(_Launch([*command, *args], log_path, env, cwd))
        return launches[-1]

    yield start
    for launched in launches:
        launched.close()


def _port_args(server_port: int, client_port: int, host: str = "127.0.0.1") -> list[str]:
    return ["--host", host, "--server-port", str(server_port), "--client-port", str(client_port)]


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM])
def test_a_stop_signal_stops_both_services(launch, signum):
    # SIGHUP is the terminal or SSH session closing; it used to kill the launcher alone
    # and leave both services running, ports held.
    ports = _free_ports()
    launched = launch(*_port_args(*ports))
    launched.wait_for("SonoTrace is ready")
    pids = _started_pids(launched.output)
    assert len(pids) == 2, launched.output

    launched.process.send_signal(signum)
    assert launched.wait() == 0, launched.output
    assert not [pid for pid in pids if _alive(pid)], launched.output
    assert all(_can_listen("127.0.0.1", port) for port in ports)
    assert launched.output.endswith("SonoTrace stopped.\n"), launched.output


def test_killing_the_launcher_outright_stops_both_services(launch):
    # kill -9 (or the OOM killer) cannot be handled: both services, in sessions of their
    # own, kept running and held their ports, and the next `make run` refused to start
    # (audit helper-503, 3). The kernel now sends each SIGTERM as the launcher dies.
    ports = _free_ports()
    launched = launch(*_port_args(*ports))
    launched.wait_for("SonoTrace is ready")
    pids = _started_pids(launched.output)
    assert len(pids) == 2, launched.output

    launched.process.kill()  # the launcher alone, not its process group
    launched.process.wait()
    deadline = time.monotonic() + 10
    while [pid for pid in pids if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)], launched.output
    assert all(_can_listen("127.0.0.1", port) for port in ports)


def test_relative_folders_are_the_launchers_working_directorys(launch, tmp_path):
    # The services run from the checkout: "reldata" named a folder there, outside every
    # ignore file, though the README says relative to the working directory (503, 5).
    where = tmp_path / "reading-room"
    where.mkdir()
    env_file = tmp_path / "env"
    launched = launch(*_port_args(*_free_ports()), cwd=where, env={
        "FAKE_ENV_FILE": str(env_file), "SONOTRACE_DATA_DIR": "reldata",
        "SONOTRACE_WORKLIST_DIR": "cases/today", "SONOTRACE_WEIGHTS_DIR": "/opt/weights",
    })
    launched.wait_for("SonoTrace is ready")
    for module in ("model_server", "annotation_client"):
        given = json.loads(Path(f"{env_file}.{module}").read_text())
        assert given["SONOTRACE_DATA_DIR"] == str(where / "reldata")
        assert given["SONOTRACE_WORKLIST_DIR"] == str(where / "cases" / "today")
        assert given["SONOTRACE_WEIGHTS_DIR"] == "/opt/weights"  # absolute: as given


def test_closing_the_terminal_stops_both_services(tmp_path, fake_python):
    # The real thing behind SIGHUP: the launcher's controlling terminal hangs up (a pty
    # whose master end closes, as when a terminal window or an SSH session closes).
    ports = _free_ports()
    master, slave = os.openpty()
    launcher = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(LAUNCHER), str(fake_python), "--tty",
         *_port_args(*ports)],
        cwd=REPO_ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 20
        while b"SonoTrace is ready" not in output:
            assert time.monotonic() < deadline, output.decode(errors="replace")
            if select.select([master], [], [], 0.5)[0]:
                output += os.read(master, 65536)
        pids = _started_pids(output.decode())
        assert len(pids) == 2, output

        os.close(master)
        master = None
        launcher.wait(timeout=20)
        assert not [pid for pid in pids if _alive(pid)], "a service outlived its terminal"
        assert all(_can_listen("127.0.0.1", port) for port in ports)
    finally:
        if master is not None:
            os.close(master)
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
        _kill_leftovers(output.decode(errors="replace"))


class _HealthyService(threading.Thread):
    """A program already answering 200 on ``/health`` at a port, as a service left
    running by an earlier launcher does."""

    def __init__(self, port: int):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        super().__init__(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("held", ["model server", "annotation client"])
def test_a_port_in_use_is_refused_before_anything_starts(launch, held):
    # The real launcher and services: with the check missing, the launcher reported the
    # other program "ready" and its own service then exited with "Connection in use".
    server_port, client_port = _free_ports()
    port = server_port if held == "model server" else client_port
    with _HealthyService(port):
        launched = launch(*_port_args(server_port, client_port), fakes=False)
        code = launched.wait(timeout=60)
    output = launched.output
    assert code == 2, output
    assert not re.search(r"^ready:|is ready", output, re.MULTILINE), output
    assert not _started_pids(output), output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith(f"error: cannot start the {held}: port {port} on 127.0.0.1 ")
    assert "already in use" in lines[0]


@pytest.mark.parametrize(("host", "why"), [
    ("foo.invalid", "no address is known for the host name 'foo.invalid'"),
    ("192.0.2.1", "192.0.2.1 is not an address of this machine"),  # TEST-NET-1
])
def test_a_host_that_cannot_be_listened_on_is_named_not_the_ports(launch, host, why):
    # Audit 804 F3: it said "stop that program or choose another port (--server-port...)",
    # though no port helps; the services' own check names --host.
    base = int(os.environ.get("SONOTRACE_TEST_PORT_BASE") or 59000)
    launched = launch(*_port_args(base + 30, base + 31, host=host), fakes=False)
    assert launched.wait(timeout=60) == 2, launched.output
    assert launched.output == (
        f"error: cannot start SonoTrace: cannot listen on {host}: {why} "
        "(--host, make run HOST=...)\n"
    )


def test_both_ports_in_use_are_named(launch):
    ports = _free_ports()
    with _HealthyService(ports[0]), _HealthyService(ports[1]):
        launched = launch(*_port_args(*ports), fakes=False)
        assert launched.wait(timeout=60) == 2
    lines = launched.output.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "cannot start the model server",
        "cannot start the annotation client",
    ], lines


def test_an_empty_log_level_is_unset(launch):
    # The services' rule: SONOTRACE_LOG_LEVEL= is the default, info. It used to be a
    # ValueError traceback. A port in use ends the run before any service starts.
    server_port, client_port = _free_ports()
    with _HealthyService(server_port):
        launched = launch(
            *_port_args(server_port, client_port), fakes=False, env={"SONOTRACE_LOG_LEVEL": ""}
        )
        assert launched.wait(timeout=60) == 2, launched.output
    assert "Traceback" not in launched.output
    assert launched.output.startswith("error: cannot start the model server"), launched.output


def test_a_bad_log_level_is_refused_in_one_line(launch):
    launched = launch(
        *_port_args(*_free_ports()), fakes=False, env={"SONOTRACE_LOG_LEVEL": "verbose"}
    )
    assert launched.wait(timeout=60) == 2, launched.output
    assert launched.output == (
        "error: SONOTRACE_LOG_LEVEL='verbose': must be one of debug, info, warning, error, "
        "critical\n"
    )


MESSAGE = "models are unavailable: the weights are truncated"


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if " sonotrace.run WARNING " in line]


def _stopped_for_error(launched: _Launch) -> str:
    """The output of a launcher that stopped both services for the server's error."""
    output = launched.output
    assert f"error: the model server cannot serve: {MESSAGE}\n" in output, output
    assert output.count(f"error: the model server cannot serve: {MESSAGE}") == 1, output
    pids = _started_pids(output)
    assert len(pids) == 2 and not [pid for pid in pids if _alive(pid)], output
    assert not re.search(r"^ready:|is ready", output, re.MULTILINE), output
    assert output.endswith("SonoTrace stopped.\n"), output
    return output


def _launched_until_stopped(launch, fake: str, grace: int):
    """The launcher run against the fake model server ``fake`` with a load-error grace of
    ``grace`` s, once it has exited with status 1; and the seconds that took."""
    start = time.monotonic()
    launched = launch(
        *_port_args(*_free_ports()),
        env={"FAKE_MODEL_SERVER": fake, "SONOTRACE_LOAD_ERROR_GRACE": str(grace)},
    )
    assert launched.wait(timeout=grace + 20) == 1, launched.output
    return launched, time.monotonic() - start


def test_a_model_server_that_cannot_load_its_models_stops_both(launch):
    # /health 503 {"status": "error"} for good: the launcher used to wait forever,
    # silently; then it stopped at the first such answer, which a retry may take back.
    grace = 3
    launched, elapsed = _launched_until_stopped(launch, "error", grace)
    output = _stopped_for_error(launched)
    # It waited for the server to recover, saying why, once, not at every poll.
    assert elapsed >= grace, f"stopped after {elapsed:.1f} s, before the grace:\n{output}"
    warnings = _warnings(output)
    assert len(warnings) == 1 and MESSAGE in warnings[0], output
    assert "waiting up to 3 s" in warnings[0], output
    assert output.index(warnings[0]) < output.index("error: the model server cannot serve")
    # Within the bound: the grace, a poll, a stop.
    assert elapsed < grace + 15, f"took {elapsed:.1f} s:\n{output}"


def test_an_error_that_clears_keeps_both_serving(launch):
    # The server loads its models on a retry: the launcher must not have stopped it.
    launched = launch(
        *_port_args(*_free_ports()),
        env={"FAKE_MODEL_SERVER": "error-then-ok", "FAKE_ERROR_SECONDS": "3"},
    )
    launched.wait_for("SonoTrace is ready", timeout=30)
    warnings = _warnings(launched.output)
    assert len(warnings) == 1 and MESSAGE in warnings[0], launched.output
    assert "waiting up to 30 s" in warnings[0], launched.output  # the default grace
    time.sleep(1)
    assert launched.process.poll() is None, launched.output
    pids = _started_pids(launched.output)
    assert len(pids) == 2 and all(_alive(pid) for pid in pids), launched.output
    assert "cannot serve:" not in launched.output.replace(warnings[0], "")

    launched.process.send_signal(signal.SIGTERM)
    assert launched.wait() == 0, launched.output


def test_an_error_between_loading_answers_still_ends_within_the_grace(launch):
    # Two workers, one failed for good and one loading, answer in turn: the loading
    # answers must not restart the count, or the launcher would wait forever.
    grace = 3
    launched, elapsed = _launched_until_stopped(launch, "error-or-loading", grace)
    _stopped_for_error(launched)
    assert grace <= elapsed < grace + 15, f"took {elapsed:.1f} s:\n{launched.output}"


def test_no_error_grace_stops_at_the_first_error(launch):
    # --error-grace overrides the environment; 0 is the first error final, as it was.
    launched = launch(
        *_port_args(*_free_ports()),
        "--error-grace",
        "0",
        env={"FAKE_MODEL_SERVER": "error", "SONOTRACE_LOAD_ERROR_GRACE": "60"},
    )
    assert launched.wait(timeout=20) == 1, launched.output
    output = _stopped_for_error(launched)
    assert _warnings(output) == [], output


@pytest.mark.parametrize("value", ["-1", "soon", "2.5"])
def test_a_bad_error_grace_is_refused_in_one_line(launch, value):
    launched = launch(*_port_args(*_free_ports()), env={"SONOTRACE_LOAD_ERROR_GRACE": value})
    assert launched.wait() == 2, launched.output
    assert launched.output.startswith(f"error: SONOTRACE_LOAD_ERROR_GRACE={value!r}: must be a"), (
        launched.output
    )
    assert len(launched.output.splitlines()) == 1, launched.output
    assert not _started_pids(launched.output)


def test_a_model_server_still_loading_is_waited_for(launch):
    launched = launch(*_port_args(*_free_ports()), env={"FAKE_MODEL_SERVER": "loading"})
    launched.wait_for("SonoTrace is ready")
    assert "error" not in launched.output


@pytest.fixture
def ipv6_loopback() -> str:
    try:
        _free_ports(1, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    return "::1"


def test_an_ipv6_host_is_bracketed_in_urls(launch, ipv6_loopback):
    # The fake client answers 200 only once it reaches the model server by the URL the
    # launcher gave it, as the real one needs to: "http://::1:5000" is no URL.
    server_port, client_port = _free_ports(host=ipv6_loopback)
    launched = launch(*_port_args(server_port, client_port, host=ipv6_loopback))
    launched.wait_for("SonoTrace is ready")
    output = launched.output
    assert f"ready: model server at http://[::1]:{server_port}\n" in output
    assert f"SonoTrace is ready: open http://[::1]:{client_port}\n" in output


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_a_wildcard_host_tells_how_other_machines_connect(launch, wildcard, request):
    # The local URL stays, but it is the one address no other machine can use.
    if ":" in wildcard:
        request.getfixturevalue("ipv6_loopback")
    ports = _free_ports()
    launched = launch(*_port_args(*ports, host=wildcard), env={"SONOTRACE_TRUSTED_HOSTS": ""})
    launched.wait_for("other machines")
    time.sleep(0.2)  # the line may be written in parts
    local = "127.0.0.1" if wildcard == "0.0.0.0" else "[::1]"
    lines = launched.output.splitlines()
    ready = lines.index(f"SonoTrace is ready: open http://{local}:{ports[1]}")
    note = lines[ready + 1]
    assert note.startswith(
        f"  other machines: open http://<this machine's name or address>:{ports[1]}, a name "
        "or address listed in SONOTRACE_TRUSTED_HOSTS"
    ), note


def test_the_names_of_trusted_hosts_are_the_urls_for_other_machines(launch):
    ports = _free_ports()
    launched = launch(
        *_port_args(*ports, host="0.0.0.0"),
        env={"SONOTRACE_TRUSTED_HOSTS": "localhost, ws01.hospital.org, 10.0.0.5"},
    )
    launched.wait_for("other machines")
    time.sleep(0.2)
    assert (
        f"  other machines: open http://ws01.hospital.org:{ports[1]} or "
        f"http://10.0.0.5:{ports[1]} (SONOTRACE_TRUSTED_HOSTS)\n"
    ) in launched.output


def test_a_specific_host_needs_no_word_about_other_machines(launch):
    launched = launch(*_port_args(*_free_ports()))
    launched.wait_for("SonoTrace is ready")
    time.sleep(0.2)
    assert "other machines" not in launched.output


def test_truncated_weights_stop_both_real_services(launch, tmp_path):
    # The real model server: its models fail to load, /health says "error" for good.
    weights = tmp_path / "weights"
    shutil.copytree(REPO_ROOT / "models" / "weights", weights)
    unet = weights / "sonotrace_unet.tflite"
    unet.write_bytes(unet.read_bytes()[:4096])
    launched = launch(
        *_port_args(*_free_ports()),
        fakes=False,
        env={
            # The grace after the first "error" is the fakes' to test; this one is short.
            "SONOTRACE_LOAD_ERROR_GRACE": "3",
            "SONOTRACE_WEIGHTS_DIR": str(weights),
            "SONOTRACE_WORKERS": "1",
            "SONOTRACE_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert launched.wait(timeout=180) == 1, launched.output
    output = launched.output
    assert output.count("error: the model server cannot serve: ") == 1, output
    pids = _started_pids(output)
    assert len(pids) == 2 and not [pid for pid in pids if _alive(pid)], output
    assert output.endswith("SonoTrace stopped.\n"), output


def test_the_launcher_waits_past_the_services_own_grace_before_killing():
    # Audit 804 F10: it killed after 15 s services whose gunicorn gives a request in
    # progress 30 s (graceful_timeout) to finish.
    from vectorizer._settings import GRACEFUL_TIMEOUT_S, STOP_GRACE_S

    result = subprocess.run([sys.executable, str(LAUNCHER), "--help"], capture_output=True,
                            text=True, timeout=60, check=True)
    shown = re.search(r"--grace GRACE\s+(.*?)--error-grace", result.stdout, re.DOTALL)
    assert shown is not None, result.stdout
    assert f"(default {STOP_GRACE_S}:" in " ".join(shown.group(1).split())
    assert STOP_GRACE_S > GRACEFUL_TIMEOUT_S


def _launcher_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sonotrace_run_reasons", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_clients_health_error_is_said_by_its_reason_not_its_whole_body():
    # The client's /health names the failing part beside its version and model server
    # URL; the launcher printed the whole body, the reason buried in it.
    reason = _launcher_module()._health_reason
    body = {"status": "error", "service": "annotation_client", "version": "0.1.0",
            "model_server_url": "http://127.0.0.1:5000",
            "index": "the annotation index could not be opened: database is locked"}
    assert reason(body) == "index: the annotation index could not be opened: database is locked"
    body = {"status": "error", "service": "annotation_client", "version": "0.1.0",
            "model_server_url": "http://127.0.0.1:5000", "data_folder": "is read-only"}
    assert reason(body) == "data folder: is read-only"
    # The model server's own message, as before; and an answer of neither kind whole.
    assert reason({"status": "error", "error": {"code": 503, "message": "no weights"}}) == (
        "no weights")
    assert reason({"status": "error", "why": 1}) == '{"status": "error", "why": 1}'
