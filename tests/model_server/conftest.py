"""Fixtures for the model server tests: one real app (real models) for the session.

``app`` is created once with the real ``models.runtime`` and waits until its
background warm-up has loaded the models, so every test runs against ready
models without reloading them. ``client`` is Flask's test client.
"""

from __future__ import annotations

import time

import pytest

from model_server import create_app

LOAD_TIMEOUT = 180.0


def wait_ready(app, timeout: float = LOAD_TIMEOUT) -> None:
    models = app.extensions["sonotrace_models"]
    deadline = time.monotonic() + timeout
    while not models.ready:
        if time.monotonic() > deadline:
            raise RuntimeError(f"models not ready after {timeout:.0f} s: {models.state}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def app():
    app = create_app({"TESTING": True})
    wait_ready(app)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def runtime(app):
    """The very runtime the app uses (to compare the API with the bare model)."""
    return app.extensions["sonotrace_models"].runtime()
