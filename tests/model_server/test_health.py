"""Model loading: /health 503 until ready then 200, lazy thread-safe loading, load failures."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from server_samples import png_bytes, speckle_image

from model_server import create_app


@pytest.fixture
def weights_copy(tmp_path: Path) -> str:
    """The shipped weights under another path, so the app gets a fresh, unloaded runtime."""
    from models.runtime import DEFAULT_WEIGHTS_DIR

    link = tmp_path / "weights"
    link.symlink_to(Path(DEFAULT_WEIGHTS_DIR).resolve(), target_is_directory=True)
    return str(link)


def test_background_warmup_turns_health_from_503_to_200(weights_copy):
    app = create_app({"WEIGHTS_DIR": weights_copy})
    client = app.test_client()
    statuses, bodies = [], []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = client.get("/health")
        statuses.append(response.status_code)
        bodies.append(response.get_json())
        if response.status_code == 200:
            break
        time.sleep(0.01)
    assert statuses[0] == 503, "health must not be 200 before the models are loaded"
    assert statuses[-1] == 200
    assert set(statuses[:-1]) == {503}
    assert bodies[0]["status"] == "loading" and bodies[0]["error"]["code"] == 503
    assert bodies[-1]["status"] == "ok" and bodies[-1]["model"]["name"]


def test_the_warmed_up_line_is_logged_once_the_worker_serves(weights_copy):
    # The binary upgrade test waits for it, then asks /health: the line came before the
    # worker counted itself ready, so under load that /health could be a 503 "loading".
    from model_server._models import ModelHolder

    holder = ModelHolder(weights_copy)
    seen = []
    holder.on_ready(lambda: seen.append("ready callback"))

    class Witness(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("models warmed up in"):
                seen.append(("logged", holder.ready, list(seen)))

    witness = Witness()
    logger = logging.getLogger("model_server._models")
    logger.addHandler(witness)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        holder.start_warmup()
        holder._warmup_thread.join(timeout=120)
    finally:
        logger.removeHandler(witness)
        logger.setLevel(old_level)
    assert seen == ["ready callback", ("logged", True, ["ready callback"])]


def test_without_warmup_first_request_loads_lazily_once(weights_copy, caplog):
    caplog.set_level(logging.INFO, logger="model_server._models")
    app = create_app({"WEIGHTS_DIR": weights_copy, "WARMUP": False})
    client = app.test_client()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    data = png_bytes(speckle_image(64, 80))
    statuses = []

    def predict():
        local = app.test_client()
        statuses.append(local.post("/predict", data=data, content_type="image/png").status_code)

    threads = [threading.Thread(target=predict) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [200] * 4
    loads = [r for r in caplog.records if r.getMessage().startswith("models loaded in")]
    assert len(loads) == 1, "concurrent first requests must share one load"
    assert client.get("/health").status_code == 200


def test_weights_that_fail_to_load_are_503_not_500(tmp_path):
    # A manifest without its model files passes the check at start (a missing folder or
    # manifest is refused there: test_server_settings.py) and fails when the models load.
    from models.runtime import DEFAULT_WEIGHTS_DIR

    (tmp_path / "manifest.json").write_bytes((Path(DEFAULT_WEIGHTS_DIR) / "manifest.json")
                                             .read_bytes())
    app = create_app({"WEIGHTS_DIR": str(tmp_path), "WARMUP": False})
    client = app.test_client()
    data = png_bytes(speckle_image(64, 64))
    response = client.post("/predict", data=data, content_type="image/png")
    assert response.status_code == 503
    assert "sonotrace_unet" in response.get_json()["error"]["message"]
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["status"] == "error"
    assert client.get("/models").status_code == 503
    # Input checks still answer before the models are needed.
    assert client.post("/predict", data=b"text", content_type="image/png").status_code == 415


def _wait_until_settled(app, timeout: float = 120.0) -> str:
    models = app.extensions["sonotrace_models"]
    thread = models._warmup_thread
    deadline = time.monotonic() + timeout
    while models.state == "loading" and (thread is None or thread.is_alive()):
        assert time.monotonic() < deadline, "the warm-up did not end"
        time.sleep(0.02)
    if thread is not None:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return models.state


def test_a_failed_warm_up_leaves_health_503_error_and_the_models_503(weights_copy, monkeypatch):
    # Before: the models counted as warm in a `finally`, so /health said 200 "ok" while
    # every model request was a 500 (as with SONOTRACE_NUM_THREADS=100000).
    from models.runtime import Runtime

    def broken(self, *args, **kwargs):
        raise RuntimeError("cannot create 100000 threads")

    monkeypatch.setattr(Runtime, "classify", broken)
    app = create_app({"WEIGHTS_DIR": weights_copy})
    assert _wait_until_settled(app) == "error"
    client = app.test_client()
    health = client.get("/health")
    assert health.status_code == 503
    body = health.get_json()
    assert body["status"] == "error"
    assert body["error"]["message"] == (
        "the warm-up inference failed: RuntimeError: cannot create 100000 threads"
    )
    data = png_bytes(speckle_image(64, 80))
    for path in ("/predict", "/classify"):
        response = client.post(path, data=data, content_type="image/png")
        assert response.status_code == 503, path
        assert "the warm-up inference failed" in response.get_json()["error"]["message"]
    assert client.get("/models").status_code == 503
    assert client.get("/health").status_code == 503


def _failing_first_loads(monkeypatch, failures: int) -> list[int]:
    """Make ``Runtime.load`` raise for its first ``failures`` calls (the runtime calls it
    again, as a no-op, before each use); returns the call log."""
    from models.runtime import Runtime

    calls: list[int] = []
    real_load = Runtime.load

    def load(self, *args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise OSError("weights share not mounted yet")
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(Runtime, "load", load)
    return calls


def _health_until_ok(client, timeout: float) -> list[str]:
    statuses = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses.append(client.get("/health").get_json()["status"])
        if statuses[-1] == "ok":
            break
        time.sleep(0.02)
    return statuses


def test_an_idle_server_loads_again_by_itself_after_a_failed_load(
        weights_copy, monkeypatch, caplog):
    # Before: the warm-up gave up after one failure and only a model request tried
    # again, so an idle server stayed "error" and the launcher stopped it.
    from model_server import _models

    monkeypatch.setattr(_models, "RETRY_FIRST_SECONDS", 0.05)
    caplog.set_level(logging.INFO, logger="model_server._models")
    _failing_first_loads(monkeypatch, failures=3)
    app = create_app({"WEIGHTS_DIR": weights_copy})
    client = app.test_client()
    statuses = _health_until_ok(client, timeout=120)
    assert statuses[-1] == "ok", statuses[-5:]
    assert "error" in statuses, "the failed loads must show on /health meanwhile"
    failures = [r for r in caplog.records if r.getMessage().startswith("loading the models")]
    # The same cause three times: one traceback, then one line each.
    assert [r.exc_info is not None for r in failures] == [True, False, False]
    assert "weights share not mounted yet" in failures[-1].getMessage()


def test_a_request_that_loads_the_models_ends_the_warm_ups_wait(weights_copy, monkeypatch):
    from model_server import _models

    monkeypatch.setattr(_models, "RETRY_FIRST_SECONDS", 600.0)
    _failing_first_loads(monkeypatch, failures=1)
    app = create_app({"WEIGHTS_DIR": weights_copy})
    assert _wait_for_state(app, "error") == "error"
    client = app.test_client()
    response = client.post("/predict", data=png_bytes(speckle_image(64, 80)),
                           content_type="image/png")
    assert response.status_code == 200
    # Ready once the warm-up has run its inference, not after its 600 s wait.
    assert _health_until_ok(client, timeout=60)[-1] == "ok"


def _wait_for_state(app, state: str, timeout: float = 120.0) -> str:
    models = app.extensions["sonotrace_models"]
    deadline = time.monotonic() + timeout
    while models.state != state and time.monotonic() < deadline:
        time.sleep(0.02)
    return models.state


@pytest.mark.parametrize("name", ["lesion_refiner.tflite", "lesion_classifier.tflite"])
def test_models_that_load_only_partly_stay_503_until_all_load(tmp_path, monkeypatch, name):
    # Audit 804 F2. Before: the U-Net loaded, the refiner (or lesion classifier) failed,
    # and the retry reused the half-loaded runtime, so /health said 200 "ok" with model
    # name and version null and the server answered without the failed model.
    import shutil

    from model_server import _models
    from models.runtime import DEFAULT_WEIGHTS_DIR

    monkeypatch.setattr(_models, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(_models, "RETRY_MAX_SECONDS", 0.05)
    weights = tmp_path / "weights"
    shutil.copytree(DEFAULT_WEIGHTS_DIR, weights)
    (weights / name).unlink()
    app = create_app({"WEIGHTS_DIR": str(weights), "RUNTIME_BACKEND": "litert"})
    client = app.test_client()
    loads: list[int] = []
    real_load = _models.ModelHolder._load_locked

    def counted(self):
        loads.append(1)
        return real_load(self)

    monkeypatch.setattr(_models.ModelHolder, "_load_locked", counted)
    deadline = time.monotonic() + 60
    # Until the first load and two retries have failed, or the server calls itself ready.
    while len(loads) < 3 and client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "the warm-up did not retry"
        time.sleep(0.02)
    health = client.get("/health")
    assert health.status_code == 503
    body = health.get_json()
    assert body["status"] == "error" and body["model"] is None
    assert name in body["error"]["message"]
    data = png_bytes(speckle_image(64, 80))
    for path in ("/predict", "/classify"):
        response = client.post(path, data=data, content_type="image/png")
        assert response.status_code == 503, path
        assert name in response.get_json()["error"]["message"]
    assert client.get("/models").status_code == 503

    shutil.copy(Path(DEFAULT_WEIGHTS_DIR) / name, weights / name)
    assert _health_until_ok(client, timeout=60)[-1] == "ok"
    model = client.get("/health").get_json()["model"]
    assert model["lesion_classifier"] and model["refiner"]
    assert model["name"] and model["version"]


def test_a_worker_whose_sibling_loaded_other_weights_refuses_to_serve(app):
    # Audit 904 F2. Before: each worker answered from its own models, so after the
    # weights folder changed and one worker was respawned, the server served two
    # versions and /health said "ok". Here the board holds a sibling's other version.
    from model_server._readiness import LoadedWeights, ReadinessBoard, attach

    worker = create_app({"TESTING": True})  # the session's models, already loaded
    own = worker.extensions["sonotrace_models"].loaded_weights()
    assert own.version == app.extensions["sonotrace_models"].info()["version"]
    assert len(own.digest) == 16
    board = ReadinessBoard(expected=2)
    attach(worker, board)
    board.mark_ready(1, own)
    board.mark_ready(2, own)
    client = worker.test_client()
    assert client.get("/health").status_code == 200

    board.mark_ready(2, LoadedWeights("2027-01-01.1", "0" * 64))
    expected = ("the weights changed under a running server: its workers loaded model "
                f"versions {own.version} and 2027-01-01.1; restart it")
    health = client.get("/health")
    assert health.status_code == 503
    body = health.get_json()
    assert body["status"] == "error"
    assert body["error"] == {"code": 503, "message": expected}
    assert body["workers"] == {"ready": 2, "expected": 2}
    data = png_bytes(speckle_image(64, 80))
    for path in ("/predict", "/classify"):
        response = client.post(path, data=data, content_type="image/png")
        assert response.status_code == 503, path
        assert response.get_json()["error"]["message"] == expected
        assert response.headers["Retry-After"]
    # Bad input is still told as such; the models' own description still answers.
    assert client.post("/predict", data=b"text", content_type="image/png").status_code == 415
    assert client.get("/models").status_code == 200

    # The sibling gone (replaced by one that loads this worker's weights), it serves again.
    board.mark_ready(2, own)
    assert client.get("/health").status_code == 200
    assert client.post("/predict", data=data, content_type="image/png").status_code == 200
