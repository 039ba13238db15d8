"""Upper bounds of the server's settings, and an address it cannot listen on, stop it at
start in one line with exit status 2 (audit helper-501, findings 3 to 5).

Each value here passed the start check and then failed inside gunicorn: a timeout past
time_t crashed every worker in a loop, more workers than the readiness board holds never
turned /health 200, and an address not of this machine was retried for 5 s, exit 1.
"""

from __future__ import annotations

import os

import pytest

from model_server import _gunicorn
from model_server.__main__ import main, options
from model_server._readiness import MAX_WORKERS, ReadinessBoard


class _FakeServer:
    """Stands in for gunicorn: main() that gets this far has accepted the settings."""

    started: list = []

    def __init__(self, options, app_config=None):
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
