"""The production launcher: gunicorn workers, shared readiness, thread caps."""

from __future__ import annotations

import multiprocessing
import os
import re
import sys

import pytest
import requests
from server_samples import png_bytes, speckle_image

from model_server.__main__ import build_parser, thread_environment
from model_server._readiness import ReadinessBoard


def _mark(board: ReadinessBoard) -> None:
    board.mark_ready(os.getpid())


def test_readiness_board_is_shared_across_fork():
    board = ReadinessBoard(expected=2)
    assert board.count() == 0
    child = multiprocessing.get_context("fork").Process(target=_mark, args=(board,))
    child.start()
    child.join(timeout=30)
    assert board.count() == 1
    board.mark_ready(os.getpid())
    board.mark_ready(os.getpid())  # idempotent
    assert board.count() == 2
    board.remove(child.pid)
    assert board.count() == 1
    with pytest.raises(ValueError, match="expected"):
        ReadinessBoard(expected=0)


def test_thread_environment_splits_cores_between_workers():
    assert thread_environment(0, 2, 2)["SONOTRACE_NUM_THREADS"] == "1"
    assert thread_environment(0, 1, 4)["SONOTRACE_NUM_THREADS"] == "4"
    assert thread_environment(0, 8, 2)["SONOTRACE_NUM_THREADS"] == "1"
    env = thread_environment(3, 2, 2)
    assert env["SONOTRACE_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "3"


def test_cli_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SONOTRACE_WORKERS", "3")
    monkeypatch.setenv("SONOTRACE_THREADS", "5")
    args = build_parser().parse_args(["--port", "6001"])
    assert (args.workers, args.threads, args.port, args.host) == (3, 5, 6001, "127.0.0.1")
    args = build_parser().parse_args(["--workers", "1"])
    assert args.workers == 1


@pytest.mark.slow
def test_two_worker_server_is_healthy_only_when_both_are_ready(
    start_service, free_port, artifacts_dir
):
    base = f"http://127.0.0.1:{free_port}"
    start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "2", "--threads", "1"],
        f"{base}/health",
        env={"SONOTRACE_LOG_LEVEL": "INFO"},
        timeout=180,
    )
    health = requests.get(f"{base}/health", timeout=30)
    assert health.status_code == 200
    assert health.json()["workers"] == {"ready": 2, "expected": 2}
    data = png_bytes(speckle_image(80, 100))
    for _ in range(4):
        response = requests.post(
            f"{base}/predict", files={"image": ("a.png", data, "image/png")}, timeout=60
        )
        assert response.status_code == 200
    log = next(artifacts_dir.glob("service-*.log")).read_text()
    assert "Using worker: sync" in log
    assert len(re.findall(r"POST /predict 200 [\d.]+ms image=100x80", log)) == 4
    booted = set(re.findall(r"Booting worker with pid: (\d+)", log))
    assert len(booted) == 2
