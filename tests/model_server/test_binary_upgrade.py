"""gunicorn's binary upgrade (SIGUSR2) of ``python -m model_server``: real processes,
real signals."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from server_samples import png_bytes, speckle_image

pytestmark = pytest.mark.slow


def _log(artifacts_dir: Path) -> str:
    return next(artifacts_dir.glob("service-*.log")).read_text(errors="replace")


def _wait_for(condition, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.5)
    return found


def _serves_the_models(base: str) -> None:
    health = requests.get(f"{base}/health", timeout=30)
    assert health.status_code == 200, health.text
    response = requests.post(f"{base}/predict", timeout=60, files={
        "image": ("a.png", png_bytes(speckle_image(80, 100)), "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["model"]["version"] == health.json()["model"]["version"]


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # ProcessLookupError once it has gone (it is not our child)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)


def _upgrade(old: subprocess.Popen, artifacts_dir: Path) -> int:
    """Send USR2 to the master ``old`` (one worker); the new master's pid, once its
    worker serves."""
    old.send_signal(signal.SIGUSR2)
    new = int(_wait_for(
        lambda: next((pid for pid in re.findall(r"Listening at: \S+ \((\d+)\)",
                                                _log(artifacts_dir))
                      if int(pid) != old.pid), None),
        f"no new master after USR2:\n{_log(artifacts_dir)[-3000:]}"))
    try:
        # The line comes once the worker is ready (_models), so /health is 200 after it.
        _wait_for(lambda: len(re.findall(r"models warmed up", _log(artifacts_dir))) == 2,
                  f"the new master's worker never loaded the models:\n"
                  f"{_log(artifacts_dir)[-3000:]}")
    except AssertionError:
        _stop_pid(new)
        raise
    return new


def _predictions(base: str) -> float:
    metrics = requests.get(f"{base}/metrics", timeout=30).text
    (value,) = re.findall(r'^sonotrace_http_requests_total\{endpoint="/predict",'
                          r'method="POST",status="200"\} (\S+)$', metrics, flags=re.MULTILINE)
    return float(value)


def test_usr2_starts_a_new_master_that_serves_on_after_the_old_one_stops(
    start_service, free_port, artifacts_dir
):
    # Before: gunicorn re-executed `python .../model_server/__main__.py`, a script without
    # its package, which died of "attempted relative import with no known parent package"
    # while the old master served on.
    base = f"http://127.0.0.1:{free_port}"
    old = start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "1"],
        f"{base}/health", env={"SONOTRACE_LOG_LEVEL": "INFO"}, timeout=180,
    )
    new = _upgrade(old, artifacts_dir)
    try:
        _serves_the_models(base)  # both masters serve meanwhile, on the one socket

        old.send_signal(signal.SIGTERM)
        assert old.wait(timeout=60) == 0
        _wait_for(lambda: "Master has been promoted." in _log(artifacts_dir),
                  "the new master was not promoted")
        for _ in range(3):
            _serves_the_models(base)
        log = _log(artifacts_dir)
        assert "Traceback" not in log
        assert "ImportError" not in log
        assert re.search(rf"\[{new}\] \[INFO\] Starting gunicorn", log)
    finally:
        _stop_pid(new)


def _child(pid: int) -> int | None:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else None


def test_usr2_is_refused_in_the_log_when_the_master_is_pid_1(
    start_service, free_port, artifacts_dir
):
    # A container's first process: the container (and the upgraded master in it) ends
    # when it exits, so an upgrade could only take the server down.
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-fp", "--mount-proc", "true"],
                                         capture_output=True).returncode != 0:
        pytest.skip("needs util-linux's unshare and the right to make a PID namespace")
    base = f"http://127.0.0.1:{free_port}"
    outer = start_service(
        [unshare, "-fp", "--mount-proc", sys.executable, "-m", "model_server", "--host",
         "127.0.0.1", "--port", str(free_port), "--workers", "1"],
        f"{base}/health", env={"SONOTRACE_LOG_LEVEL": "INFO"}, timeout=180,
    )
    assert f"Listening at: http://127.0.0.1:{free_port} (1)" in _log(artifacts_dir)
    os.kill(_child(outer.pid), signal.SIGUSR2)
    _wait_for(lambda: "USR2 ignored" in _log(artifacts_dir), "USR2 was not refused", timeout=60)
    time.sleep(3)  # a re-executed master would have said "Starting gunicorn" by now
    log = _log(artifacts_dir)
    assert log.count("Starting gunicorn") == 1
    assert ("USR2 ignored: a binary upgrade needs the old master to exit, and this master "
            "is PID 1 (a container), which ends with it; start a new container instead"
            in log)
    _serves_the_models(base)


def test_an_upgrade_keeps_the_interpreter_options_and_the_operators_metrics_counts(
    start_service, free_port, artifacts_dir, tmp_path
):
    # Before: the new master ran `python -m model_server ...` without the old one's -X and
    # -W options, and emptied the operator's PROMETHEUS_MULTIPROC_DIR before forking its
    # workers: the live old worker's counts vanished from every scrape, for good.
    base = f"http://127.0.0.1:{free_port}"
    flags = ["-X", "faulthandler", "-W", "ignore::DeprecationWarning"]
    server = ["-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
              "--workers", "1"]
    folder = tmp_path / "metrics"
    old = start_service(
        [sys.executable, *flags, *server], f"{base}/health",
        env={"SONOTRACE_LOG_LEVEL": "INFO", "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        timeout=180,
    )
    for _ in range(2):
        _serves_the_models(base)
    new = _upgrade(old, artifacts_dir)
    try:
        command = Path(f"/proc/{new}/cmdline").read_bytes().split(b"\0")[:-1]
        assert [word.decode() for word in command] == [sys.executable, *flags, *server]
        for _ in range(3):
            _serves_the_models(base)  # by either master's worker
        assert _predictions(base) == 5  # whichever master's worker answers the scrape

        old.send_signal(signal.SIGTERM)
        assert old.wait(timeout=60) == 0
        _wait_for(lambda: "Master has been promoted." in _log(artifacts_dir),
                  "the new master was not promoted")
        assert _predictions(base) == 5  # the old worker's counts outlive it
        _serves_the_models(base)
        assert _predictions(base) == 6
        assert "Traceback" not in _log(artifacts_dir)
    finally:
        _stop_pid(new)
