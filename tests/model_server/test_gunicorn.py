"""The production launcher: gunicorn workers, shared readiness, thread caps."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import socket
import sys
import time

import pytest
import requests
from server_samples import png_bytes, speckle_image
from weight_releases import another_release, shipped_weights, switch_link

from model_server.__main__ import build_parser, options, thread_environment
from model_server._readiness import LoadedWeights, ReadinessBoard, attach, version_conflict


def _mark(board: ReadinessBoard, weights: LoadedWeights | None = None) -> None:
    board.mark_ready(os.getpid(), weights)


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


def test_a_graceful_reload_takes_the_retiring_workers_off_the_board_at_once():
    # Audit 917 F1: a retiring worker finishing a slow request stayed on the board until
    # the master reaped it (up to the graceful timeout), so the new workers' new version
    # (the reason for the reload) was refused as a conflict meanwhile.
    from types import SimpleNamespace

    from model_server._gunicorn import ModelServerApplication

    board = ReadinessBoard(expected=2)
    for pid in (101, 102):
        board.mark_ready(pid, LoadedWeights("2026-12-03.10", "a1" * 32))
    holder = SimpleNamespace(board=board)
    ModelServerApplication._reloaded(holder, SimpleNamespace(WORKERS={101: None, 102: None}))
    assert board.count() == 0
    board.mark_ready(201, LoadedWeights("2027-01-01.1", "b2" * 32))
    assert version_conflict(board) is None
    # A retiring worker finishing a request, or its warm-up, does not put its old weights
    # back until it exits (then its pid is free again).
    assert not board.mark_loaded(101, LoadedWeights("2026-12-03.10", "a1" * 32))
    assert not board.mark_ready(102, LoadedWeights("2026-12-03.10", "a1" * 32))
    assert version_conflict(board) is None
    assert board.count() == 1
    board.remove(101)
    assert board.mark_ready(101, LoadedWeights("2027-01-01.1", "b2" * 32))
    assert board.count() == 2


def _respawned_worker(board: ReadinessBoard, weights_dir: str, answers) -> None:
    # A worker started after the weights changed, asked before its warm-up has ended.
    from model_server._app import create_app

    app = create_app({"TESTING": True, "WARMUP": False, "WEIGHTS_DIR": weights_dir})
    attach(app, board)
    client = app.test_client()
    data = png_bytes(speckle_image(80, 100))
    predict = client.post("/predict", data=data, content_type="image/png")
    health = client.get("/health")
    answers.put((predict.status_code, health.status_code, health.get_json()["status"],
                 board.count()))


def test_once_a_worker_not_yet_ready_refuses_its_ready_sibling_refuses_too(tmp_path):
    # The flaky test_a_worker_respawned_...: the respawned worker had loaded the new
    # weights and, still warming up, answered 503 "error" against its sibling's weights
    # on the board; its sibling, seeing only its own weights there until that warm-up
    # ended, answered /predict 200 (and /health "loading") meanwhile.
    from model_server._app import create_app

    board = ReadinessBoard(expected=2)
    app = create_app({"TESTING": True, "WARMUP": False})  # the shipped weights
    attach(app, board)
    models = app.extensions["sonotrace_models"]
    models.runtime()
    board.mark_ready(os.getpid(), models.loaded_weights())
    other = another_release(tmp_path / "release-2", "2027-01-01.1")

    fork = multiprocessing.get_context("fork")
    answers = fork.Queue()
    child = fork.Process(target=_respawned_worker, args=(board, str(other), answers))
    child.start()
    predict, health, status, ready = answers.get(timeout=120)
    child.join(timeout=30)
    assert (predict, health, status, ready) == (503, 503, "error", 1)

    # The child stands for a live worker: its weights stay on the board.
    client = app.test_client()
    data = png_bytes(speckle_image(80, 100))
    response = client.post("/predict", data=data, content_type="image/png")
    assert response.status_code == 503
    assert "2027-01-01.1" in response.get_json()["error"]["message"]
    assert client.get("/health").get_json()["status"] == "error"
    board.remove(child.pid)  # it exited: this worker serves again
    assert client.post("/predict", data=data, content_type="image/png").status_code == 200


def test_the_board_names_both_versions_when_workers_loaded_different_weights():
    # Audit 904 F2. Before: the board held pids only, so a worker respawned after the
    # weights folder changed served another version beside its sibling, unnoticed.
    old = LoadedWeights("2026-12-03.10", "a1" * 32)
    new = LoadedWeights("2026-12-02.9", "b2" * 32)
    board = ReadinessBoard(expected=2)
    board.mark_ready(os.getpid(), old)
    assert board.weights() == [old]
    assert version_conflict(board) is None
    assert version_conflict(board, old) is None
    # The respawned worker, another process, loaded the folder as it is now.
    child = multiprocessing.get_context("fork").Process(target=_mark, args=(board, new))
    child.start()
    child.join(timeout=30)
    assert board.count() == 2
    assert board.weights() == [old, new]
    assert version_conflict(board) == (
        "the weights changed under a running server: its workers loaded model versions "
        "2026-12-02.9 and 2026-12-03.10; restart it"
    )
    board.remove(child.pid)
    assert board.weights() == [old]
    assert version_conflict(board) is None
    # A worker's own models count before it is ready (a request loads them).
    assert "2026-12-02.9 and 2026-12-03.10" in version_conflict(board, new)
    # Two exports given one version are told apart by their manifests.
    same = LoadedWeights("2026-12-03.10", "C3" * 32)
    assert version_conflict(board, same) == (
        "the weights changed under a running server: its workers loaded model versions "
        "2026-12-03.10 (manifest sha256 a1a1a1a1a1a1a1a1...) and "
        "2026-12-03.10 (manifest sha256 c3c3c3c3c3c3c3c3...); restart it"
    )


def test_thread_environment_splits_cores_between_workers():
    assert thread_environment(0, 2, 2)["SONOTRACE_NUM_THREADS"] == "1"
    assert thread_environment(0, 1, 4)["SONOTRACE_NUM_THREADS"] == "4"
    assert thread_environment(0, 8, 2)["SONOTRACE_NUM_THREADS"] == "1"
    env = thread_environment(3, 2, 2)
    assert env["SONOTRACE_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "3"


def test_a_read_timeout_as_long_as_the_worker_timeout_stops_the_server(monkeypatch, capsys):
    from model_server.__main__ import main

    monkeypatch.setenv("SONOTRACE_READ_TIMEOUT", "30")
    assert main(["--timeout", "30"]) == 2
    assert capsys.readouterr().err == (
        "error: SONOTRACE_READ_TIMEOUT=30: must be shorter than the worker timeout, 30 s "
        "(--timeout, SONOTRACE_TIMEOUT)\n"
    )


def test_cli_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SONOTRACE_WORKERS", "3")
    monkeypatch.setenv("SONOTRACE_THREADS", "5")
    opts = options(["--port", "6001"])
    assert (opts.workers, opts.threads, opts.port, opts.host) == (3, 5, 6001, "127.0.0.1")
    assert options(["--workers", "1"]).workers == 1


def test_every_option_names_the_variable_that_sets_its_default():
    # --help is where someone running the server by hand looks for the environment's name.
    for action in build_parser()._actions:
        if action.dest != "help":
            assert "SONOTRACE_" in action.help, action.option_strings


@pytest.mark.slow
def test_two_worker_server_is_healthy_only_when_both_are_ready(
    start_service, free_port, artifacts_dir
):
    base = f"http://127.0.0.1:{free_port}"
    start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "2", "--threads", "1"],
        f"{base}/health",
        env={
            "SONOTRACE_LOG_LEVEL": "INFO",
            "SONOTRACE_READ_TIMEOUT": "2",
            "SONOTRACE_MAX_CONTENT_LENGTH": "300000",
        },
        timeout=180,
    )
    health = requests.get(f"{base}/health", timeout=30)
    assert health.status_code == 200
    assert health.json()["workers"] == {"ready": 2, "expected": 2}

    # Two uploads that stop after 4 bytes of their body, and one request whose headers
    # never end: without a read timeout they hold both sync workers until the arbiter
    # kills them (120 s), and the predictions below time out.
    stalled = [_stalled_upload(free_port) for _ in range(2)]
    slow_headers = socket.create_connection(("127.0.0.1", free_port), timeout=30)
    slow_headers.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    data = png_bytes(speckle_image(80, 100))
    for _ in range(4):
        response = requests.post(
            f"{base}/predict", files={"image": ("a.png", data, "image/png")}, timeout=60
        )
        assert response.status_code == 200
    assert time.monotonic() - started < 60
    for conn in stalled:
        status, body = _response(conn)
        assert status == 408
        assert body["error"]["message"] == "the request body stalled: no data for 2 s"
    assert slow_headers.recv(1024) == b""  # closed without an answer

    # A chunked body has no Content-Length to refuse up front: it is cut off at the
    # limit, and must still be a 413 rather than served truncated.
    def chunks():
        yield data
        for _ in range(40):
            yield b"\0" * 10_000

    over = requests.post(
        f"{base}/predict", data=chunks(), headers={"Content-Type": "image/png"}, timeout=60
    )
    assert over.status_code == 413
    assert "larger than the limit of 300000 bytes" in over.json()["error"]["message"]
    under = requests.post(
        f"{base}/predict", data=iter([data]), headers={"Content-Type": "image/png"}, timeout=60
    )
    assert under.status_code == 200

    # What gunicorn refuses before the app sees it is JSON too, not its HTML page.
    long_line = requests.post(f"{base}/predict?box=" + "1," * 3000, data=data, timeout=30)
    assert long_line.status_code == 414
    assert long_line.headers["Content-Type"] == "application/json"
    assert long_line.json()["error"]["code"] == 414
    assert long_line.json()["error"]["message"].startswith("URI Too Long: ")
    many = {f"X-Extra-{i}": "1" for i in range(120)}
    headers = requests.get(f"{base}/health", headers=many, timeout=30)
    assert headers.status_code == 431
    assert headers.json()["error"]["code"] == 431
    assert requests.get(f"{base}/health", timeout=30).status_code == 200

    def log_text() -> str:
        return next(artifacts_dir.glob("service-*.log")).read_text()

    log = log_text()
    assert "Using worker: vectorizer._connections.GuardedSyncWorker" in log
    assert "WORKER TIMEOUT" not in log
    assert "Traceback" not in log
    assert "closed a connection whose request did not arrive within the read timeout" in log
    assert len(re.findall(r"POST /predict 200 [\d.]+ms image=100x80", log)) == 5
    booted = set(re.findall(r"Booting worker with pid: (\d+)", log))
    assert len(booted) == 2

    # /metrics answers for the whole server, whichever worker serves the scrape: the
    # workers count into one folder (prometheus_client's multiprocess mode).
    for _ in range(4):
        metrics = requests.get(f"{base}/metrics", timeout=30).text
        assert _sample(metrics, "sonotrace_http_requests_total",
                       'endpoint="/predict",method="POST",status="200"') == 5
        assert _sample(metrics, "sonotrace_http_requests_total",
                       'endpoint="/predict",method="POST",status="413"') == 1
        assert _sample(metrics, "sonotrace_stage_duration_seconds_count",
                       'stage="segment"') == 5
        assert _sample(metrics, "sonotrace_workers_ready") == 2
        assert _sample(metrics, "sonotrace_workers_expected") == 2
        assert re.search(r'^sonotrace_model_info\{backend="(litert|keras)",name="[^"]+",'
                         r'version="[^"]+"\} 1\.0$', metrics, flags=re.MULTILINE)

    # A worker that exits (SIGTERM; gunicorn sends SIGABRT at its timeout) is replaced,
    # and the server goes on: the exiting worker left the metrics folder to the master.
    os.kill(int(sorted(booted)[0]), signal.SIGTERM)
    wait_until = time.monotonic() + 120
    while len(set(re.findall(r"Booting worker with pid: (\d+)", log_text()))) < 3:
        assert time.monotonic() < wait_until, "no worker was booted in its place"
        time.sleep(0.5)
    while requests.get(f"{base}/health", timeout=30).status_code != 200:
        assert time.monotonic() < wait_until, "the new worker never got ready"
        time.sleep(0.5)
    for _ in range(4):
        assert requests.post(f"{base}/predict", files={"image": ("a.png", data, "image/png")},
                             timeout=60).status_code == 200
        metrics = requests.get(f"{base}/metrics", timeout=30)
        assert metrics.status_code == 200
        assert _sample(metrics.text, "sonotrace_workers_ready") == 2
    assert "Traceback" not in log_text()


@pytest.mark.slow
def test_a_worker_respawned_after_the_weights_changed_stops_the_server_serving(
    start_service, free_port, artifacts_dir, tmp_path
):
    # Audit 904 F2. Before: after the release link was switched and one worker was
    # killed (as gunicorn's timeout or the OOM killer does), the server answered with
    # two model versions, and /health said "ok" with whichever worker answered.
    shipped, version = shipped_weights()
    other = another_release(tmp_path / "release-2", "2027-01-01.1")
    link = tmp_path / "weights"
    link.symlink_to(shipped, target_is_directory=True)
    base = f"http://127.0.0.1:{free_port}"
    master = start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "2", "--threads", "1"],
        f"{base}/health",
        env={"SONOTRACE_LOG_LEVEL": "INFO", "SONOTRACE_WEIGHTS_DIR": str(link)},
        timeout=180,
    )
    assert requests.get(f"{base}/health", timeout=30).json()["model"]["version"] == version

    def log_text() -> str:
        return next(artifacts_dir.glob("service-*.log")).read_text()

    booted = sorted(set(re.findall(r"Booting worker with pid: (\d+)", log_text())))
    assert len(booted) == 2
    # A release switch: a new link renamed over the old one.
    switch_link(link, other)
    os.kill(int(booted[0]), signal.SIGKILL)

    expected = ("the weights changed under a running server: its workers loaded model "
                f"versions {version} and 2027-01-01.1; restart it")
    deadline = time.monotonic() + 180
    while (health := requests.get(f"{base}/health", timeout=30)).json()["status"] != "error":
        assert health.json()["status"] in ("ok", "loading"), health.json()
        assert time.monotonic() < deadline, "/health never said that the workers disagree"
        time.sleep(0.5)
    data = png_bytes(speckle_image(80, 100))
    seen = set()
    # Either worker may answer each request: every answer is the same refusal.
    for _ in range(4):
        health = requests.get(f"{base}/health", timeout=30)
        assert health.status_code == 503
        assert health.json()["status"] == "error"
        assert health.json()["error"]["message"] == expected
        seen.add(health.json()["model"]["version"])
        for path in ("/predict", "/classify"):
            response = requests.post(f"{base}{path}",
                                     files={"image": ("a.png", data, "image/png")}, timeout=60)
            assert response.status_code == 503, path
            assert response.json()["error"]["message"] == expected
            assert "X-Model-Version" not in response.headers
    assert seen <= {version, "2027-01-01.1"}

    # The refusals begin with the respawned worker's first answer; the ERROR line and its
    # count among the ready workers come when its warm-up ends, which may be later.
    def said() -> list[str]:
        return re.findall(r"ERROR model_server\._gunicorn: " + re.escape(expected)
                          + r"\. Worker \d+ loaded 2027-01-01\.1 from (\S+);", log_text())

    deadline = time.monotonic() + 180
    while not said():
        assert time.monotonic() < deadline, log_text()[-3000:]
        time.sleep(0.5)
    assert said() == [str(other.resolve())], log_text()[-3000:]
    # /metrics says so too: every worker is ready, yet nothing is served (audit 917 F2).
    metrics = requests.get(f"{base}/metrics", timeout=30).text
    assert _sample(metrics, "sonotrace_weights_conflict") == 1
    assert _sample(metrics, "sonotrace_workers_ready") == 2

    # A graceful reload is a restart: the retiring workers leave the board at once, and
    # the new ones serve the new version (audit 917 F1: refused as a conflict until the
    # old ones had gone, up to the graceful timeout).
    master.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 180
    while (health := requests.get(f"{base}/health", timeout=30)).status_code != 200:
        assert time.monotonic() < deadline, f"no new version after the reload: {health.json()}"
        time.sleep(0.5)
    assert health.json()["model"]["version"] == "2027-01-01.1"
    assert _sample(requests.get(f"{base}/metrics", timeout=30).text,
                   "sonotrace_weights_conflict") == 0
    assert len(re.findall(r"ERROR model_server\._gunicorn: ", log_text())) == 1
    assert "Traceback" not in log_text()


def _sample(text: str, name: str, labels: str | None = None) -> float:
    """The value of one sample of a Prometheus text exposition."""
    selector = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "")
    (value,) = re.findall(rf"^{selector} (\S+)$", text, flags=re.MULTILINE)
    return float(value)


def test_gunicorns_own_refusals_are_json():
    from model_server._gunicorn import write_json_error

    ours, theirs = socket.socketpair()
    with ours, theirs:
        write_json_error(ours, 414, "URI Too Long", "Request Line is too large (6008 > 4094)")
        ours.close()
        raw = b""
        while chunk := theirs.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 414 URI Too Long"
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {"error": {"code": 414, "message": (
        "URI Too Long: Request Line is too large (6008 > 4094)")}}
    # The headers the README promises on every answer, these too.
    from model_server._app import SECURITY_HEADERS

    for name, value in SECURITY_HEADERS.items():
        assert f"{name}: {value}".encode() in head.split(b"\r\n"), name


def _stalled_upload(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall(
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        b"Content-Length: 100000\r\n\r\n\x89PNG"
    )
    return conn


def _response(conn: socket.socket) -> tuple[int, dict]:
    raw = b""
    while chunk := conn.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)



MALFORMED_CHUNKED = {
    "size-not-hex": (b"zz\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
    "no-crlf-after-data": (b"3\r\nabcXY0\r\n\r\n", "invalid chunk terminator"),
    "bad-trailer": (b"3\r\nabc\r\n0\r\nbad trailer line\r\n\r\n", "invalid http header"),
}


def test_a_malformed_chunked_body_is_400_under_gunicorn(start_service, free_port, artifacts_dir):
    # gunicorn parses the chunked framing as the app reads the body, and its errors got
    # past werkzeug: a 500 with a traceback in the log. The models are not needed to
    # read a body, so they are not loaded (/openapi.json answers without them).
    start_service(
        [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(free_port),
         "--workers", "1"],
        f"http://127.0.0.1:{free_port}/openapi.json",
        env={"SONOTRACE_WARMUP": "false", "SONOTRACE_LOG_LEVEL": "INFO"},
    )
    for chunks, says in MALFORMED_CHUNKED.values():
        for content_type in ("image/png", "multipart/form-data; boundary=b0undary",
                             "application/x-www-form-urlencoded"):
            conn = socket.create_connection(("127.0.0.1", free_port), timeout=30)
            with conn:
                conn.sendall(
                    b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                    b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + chunks
                )
                status, body = _response(conn)
            assert status == 400, (content_type, body)
            assert body["error"]["code"] == 400
            message = body["error"]["message"]
            assert message.startswith("malformed chunked request body: "), message
            assert says in message.lower()
    def log_text() -> str:
        return next(artifacts_dir.glob("service-*.log")).read_text()

    log = log_text()
    assert "Traceback" not in log
    assert len(re.findall(r"POST /predict 400 ", log)) == 9


@pytest.mark.parametrize(("orig_argv", "kept"), [
    (["py", "-m", "model_server", "--port", "5001"], []),
    (["py", "-X", "dev", "-W", "error", "-m", "model_server", "-X"], ["-X", "dev", "-W", "error"]),
    (["py", "-Wdefault", "-OO", "-Bm", "model_server"], ["-Wdefault", "-OO", "-B"]),
    (["py", "-uX", "importtime", "-bbmmodel_server"], ["-uX", "importtime", "-bb"]),
    (["py", "--check-hash-based-pycs", "never", "-I", "serve.py", "-O"],
     ["--check-hash-based-pycs", "never", "-I"]),
    (["py", "-c", "from model_server.__main__ import main; main()", "-O"], []),
])
def test_a_binary_upgrade_keeps_the_interpreters_options(orig_argv, kept):
    # Before, the new master ran without them (-X, -W...): gunicorn re-executes sys.argv,
    # which holds none.
    from model_server._gunicorn import interpreter_options

    assert interpreter_options(orig_argv) == kept
