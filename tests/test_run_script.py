"""`make run`'s launcher starts the real server and client together and stops both cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
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
