"""Upper bounds of the server's settings, and an address it cannot listen on, stop it at
start in one line with exit status 2 (audit helper-501, findings 3 to 5).

Each value here passed the start check and then failed inside gunicorn: a timeout past
time_t crashed every worker in a loop, more workers than the readiness board holds never
turned /health 200, and an address not of this machine was retried for 5 s, exit 1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model_server import _gunicorn
from model_server.__main__ import main, options
from model_server._gunicorn import check_address
from model_server._readiness import MAX_WORKERS, ReadinessBoard
from vectorizer._settings import MAX_REQUEST_THREADS, AddressRefused

ROOT = Path(__file__).resolve().parents[2]


class _FakeServer:
    """Stands in for gunicorn: main() that gets this far has accepted the settings."""

    started: list = []

    def __init__(self, options, app_config=None, argv=None, upgrade=True):
        self.options = options

    def run(self):
        _FakeServer.started.append(self.options)


@pytest.fixture(autouse=True)
def fake_gunicorn(monkeypatch):
    _FakeServer.started = []
    monkeypatch.setattr(_gunicorn, "ModelServerApplication", _FakeServer)
    for name in list(os.environ):
        if name.startswith("SONOTRACE_"):
            monkeypatch.delenv(name)
    saved = dict(os.environ)  # main() sets the workers' thread variables
    yield _FakeServer.started
    os.environ.clear()
    os.environ.update(saved)


def _refused(environ: dict, capsys, argv=()) -> str:
    assert main(["--port", "61999", *argv], {"SONOTRACE_WARMUP": "off", **environ}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


@pytest.mark.parametrize("raw", ["86401", "20000000000", "99999999999999"])
def test_a_worker_timeout_past_a_day_is_refused(capsys, raw):
    assert _refused({"SONOTRACE_TIMEOUT": raw}, capsys) == (
        f"error: SONOTRACE_TIMEOUT={raw!r}: must be a whole number of seconds from 1 to "
        "86400 (a day)")
    with pytest.raises(SystemExit) as exit_info:
        options(["--timeout", raw], {})
    assert exit_info.value.code == 2
    assert "from 1 to 86400" in capsys.readouterr().err


@pytest.mark.parametrize("raw", ["86401", "9999999999"])
def test_a_read_timeout_past_a_day_is_refused(capsys, raw):
    assert _refused({"SONOTRACE_READ_TIMEOUT": raw, "SONOTRACE_TIMEOUT": "86400"}, capsys) == (
        f"error: SONOTRACE_READ_TIMEOUT={raw!r}: must be a whole number of seconds from 1 "
        "to 86400")


def test_timeouts_of_up_to_a_day_are_taken(fake_gunicorn):
    environ = {"SONOTRACE_TIMEOUT": "86400", "SONOTRACE_READ_TIMEOUT": "86399",
               "SONOTRACE_WARMUP": "off"}
    assert main(["--port", "61999"], environ) == 0
    assert fake_gunicorn[0]["timeout"] == 86400


@pytest.mark.parametrize("raw", [str(MAX_WORKERS + 1), "200", "300"])
def test_more_workers_than_the_readiness_board_holds_are_refused(capsys, raw):
    assert _refused({"SONOTRACE_WORKERS": raw}, capsys) == (
        f"error: SONOTRACE_WORKERS={raw!r}: must be a whole number from 1 to {MAX_WORKERS} "
        "(each worker loads its own copy of the models)")
    with pytest.raises(SystemExit) as exit_info:
        options(["--workers", raw], {})
    assert exit_info.value.code == 2


@pytest.mark.parametrize("raw", [str(MAX_REQUEST_THREADS + 1), "100000"])
def test_more_request_threads_than_a_worker_can_use_are_refused(capsys, raw):
    # Each thread holds a connection and its decoded image: a slip of 100000 for 10
    # would let a burst of connections exhaust memory.
    assert _refused({"SONOTRACE_THREADS": raw}, capsys) == (
        f"error: SONOTRACE_THREADS={raw!r}: must be a whole number from 1 to "
        f"{MAX_REQUEST_THREADS}")
    with pytest.raises(SystemExit) as exit_info:
        options(["--threads", raw], {})
    assert exit_info.value.code == 2


def test_the_most_request_threads_are_taken(fake_gunicorn):
    assert main(["--port", "61999", "--threads", str(MAX_REQUEST_THREADS)],
                {"SONOTRACE_WARMUP": "off"}) == 0
    assert fake_gunicorn[0]["threads"] == MAX_REQUEST_THREADS


def test_the_most_workers_all_fit_on_the_readiness_board(fake_gunicorn):
    assert main(["--port", "61999", "--workers", str(MAX_WORKERS)],
                {"SONOTRACE_WARMUP": "off"}) == 0
    assert fake_gunicorn[0]["workers"] == MAX_WORKERS
    board = ReadinessBoard(expected=MAX_WORKERS)
    for pid in range(1000, 1000 + MAX_WORKERS):
        board.mark_ready(pid)
    assert board.count() == board.expected


def test_a_board_too_small_for_its_workers_is_refused():
    # It dropped the pids past its slots without a word: /health never turned 200.
    with pytest.raises(ValueError, match="at most the 256 slots, got 300"):
        ReadinessBoard(expected=300)


@pytest.fixture
def held_port():
    """A port a listening socket of this test holds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_in_use_is_named(held_port):
    with pytest.raises(AddressRefused) as info:
        check_address(f"127.0.0.1:{held_port}")
    assert str(info.value) == (f"cannot listen on 127.0.0.1:{held_port}: port {held_port} "
                               "is in use by another program (--port, SONOTRACE_PORT)")


@pytest.mark.parametrize(("host", "reason"), [
    ("192.0.2.1", "192.0.2.1 is not an address of this machine"),
    ("no-such-host.invalid", "no address is known for the host name 'no-such-host.invalid'"),
    ("bad host!", "no address is known for the host name 'bad host!'"),
])
def test_a_host_that_cannot_be_listened_on_is_named(host, reason):
    with pytest.raises(AddressRefused) as info:
        check_address(f"{host}:61998")
    assert str(info.value) == f"cannot listen on {host}:61998: {reason} (--host, SONOTRACE_HOST)"


def test_the_tried_address_is_free_again_for_gunicorn():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    check_address(f"127.0.0.1:{port}")
    if _ipv6_loopback():
        check_address(f"[::1]:{port}")
    with socket.socket() as sock:  # as gunicorn binds it, right after the check
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_the_real_command_stops_in_one_line_on_an_address_it_cannot_listen_on(held_port):
    # Before: gunicorn's five retries, a second apart, then "Can't connect" and exit 1.
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port",
         str(held_port), "--workers", "1"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "SONOTRACE_WARMUP": "off"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{held_port}: port {held_port} is in use by "
        "another program (--port, SONOTRACE_PORT)")
    assert "Starting gunicorn" not in done.stderr and "Retrying" not in done.stderr
    assert time.monotonic() - started < 60
