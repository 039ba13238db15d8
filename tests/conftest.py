"""Shared pytest fixtures for the whole SonoTrace suite.

Fixtures
--------
busi_dir
    ``pathlib.Path`` of the BUSI data set (``../shared/busi`` beside the repository,
    or ``SONOTRACE_BUSI_DIR``). Tests that use it are skipped with a clear reason when
    it is absent; under ``CI`` they fail instead, because CI has the data and must run them.
free_port
    An unused TCP port on 127.0.0.1.
start_service
    Factory ``start_service(args, health_url, env=None, timeout=120) -> Popen``: starts a
    real process, waits until ``health_url`` answers 200 and stops it at teardown.
    Its output is kept in ``test-artifacts/<test>/``.
live_model_server
    Session-scoped base URL (``http://127.0.0.1:PORT``) of a real
    ``python -m model_server`` process, started once and waited on via ``/health``.
artifacts_dir
    ``test-artifacts/<test name>/`` for screenshots and logs.
methods_listed_unsorted
    Makes werkzeug's 405 list a route's methods in reverse sorted order, one order its
    set of them may take in a server's start.

Browser tests use dash[testing]'s ``dash_duo`` / ``dash_thread_server``. This file
configures them for headless Debian chromium (``pytest_setup_options``) and saves a
screenshot plus the browser console of every failing browser test into
``test-artifacts/<test>/``. Mark browser tests ``@pytest.mark.browser``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_ROOT = REPO_ROOT / "test-artifacts"

CHROMIUM_BINARY = os.environ.get("SONOTRACE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER_BINARY = os.environ.get("SONOTRACE_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    # Bootstrap turns on smooth scrolling unless the user asks for less motion. A
    # scroll then runs on for ~250 ms after the focus change or link that set it off,
    # and a click computed meanwhile lands where the element no longer is (a CI flake
    # of test_unsaved_work_is_not_lost_without_asking: "not clickable at point
    # (329, -68)"). With reduced motion every scroll is done when it returns.
    "--force-prefers-reduced-motion",
)

_BROWSER_FIXTURES = ("dash_duo", "dash_br", "dash_duo_mp")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _safe_name(name: str) -> str:
    """File-system friendly version of a test name (parametrize ids included)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150] or "test"


# --------------------------------------------------------------------------- pytest hooks


def pytest_configure(config: pytest.Config) -> None:
    # CI machines and this sandbox have no display: dash[testing] must always run headless
    # unless a developer explicitly asks to watch the browser.
    if hasattr(config.option, "headless") and not _truthy(os.environ.get("SONOTRACE_HEADED")):
        config.option.headless = True
    # selenium 4.2 has no selenium-manager: it looks for `chromedriver` on PATH, so put the
    # Debian driver's folder first to be sure it is the one matching /usr/bin/chromium.
    driver_dir = str(Path(CHROMEDRIVER_BINARY).parent)
    path = os.environ.get("PATH", "")
    if driver_dir not in path.split(os.pathsep):
        os.environ["PATH"] = driver_dir + os.pathsep + path
    # dash[testing] serves each test's app on the next of a fixed run of ports (58050,
    # 58051, ...), the same in every pytest process: two runs at once on one machine
    # would open each other's apps. A second run is given another start.
    base = os.environ.get("SONOTRACE_TEST_PORT_BASE")
    if base:
        from dash.testing.application_runners import BaseDashRunner

        BaseDashRunner._next_port = int(base)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Markers follow the fixtures, so `-m "not browser"` / `-m "not busi"` select reliably.
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & set(_BROWSER_FIXTURES) and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)
        if "busi_dir" in names and item.get_closest_marker("busi") is None:
            item.add_marker(pytest.mark.busi)
        # The index tests' `db_url` asks for the server only when its parameter is
        # "postgresql", so that parameter counts as well as the fixtures themselves.
        callspec = getattr(item, "callspec", None)
        on_postgres = names & {"postgres", "postgres_url"} or (
            callspec is not None and callspec.params.get("db_url") == "postgresql"
        )
        if on_postgres and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)


def pytest_setup_options():
    """Chrome options for dash[testing]'s webdriver (hook defined by dash.testing)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM_BINARY
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    return options


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for name in _BROWSER_FIXTURES:
        browser = funcargs.get(name)
        if browser is None:
            continue
        target = ARTIFACTS_ROOT / _safe_name(item.name)
        target.mkdir(parents=True, exist_ok=True)
        # A failure report must never be replaced by an error from the screenshot itself.
        try:
            browser.driver.save_screenshot(str(target / f"{name}-failure.png"))
            (target / f"{name}-page.html").write_text(browser.driver.page_source)
            logs = browser.driver.get_log("browser")
            (target / f"{name}-console.log").write_text(
                "\n".join(f"{e.get('level')} {e.get('message')}" for e in logs)
            )
        except Exception as exc:
            (target / f"{name}-screenshot-error.txt").write_text(repr(exc))
        report.sections.append(("browser artifacts", f"saved in {target}"))


# --------------------------------------------------------------------------- plain fixtures


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    """``test-artifacts/<test name>/``, created on demand and emptied of earlier runs."""
    path = ARTIFACTS_ROOT / _safe_name(request.node.name)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def methods_listed_unsorted(monkeypatch: pytest.MonkeyPatch) -> None:
    """werkzeug's 405 lists a route's methods in reverse sorted order.

    It lists them from a set, whose order is that of the process's hash seed: the
    ``Allow`` header an error handler wrote from it changed with each start.
    """
    import werkzeug.routing.map
    from werkzeug.exceptions import MethodNotAllowed

    class Unsorted(MethodNotAllowed):
        def __init__(self, valid_methods=None, *args, **kwargs):
            super().__init__(sorted(valid_methods or (), reverse=True), *args, **kwargs)

    monkeypatch.setattr(werkzeug.routing.map, "MethodNotAllowed", Unsorted)


def _find_busi_dir() -> Path:
    configured = os.environ.get("SONOTRACE_BUSI_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "busi").resolve()


@pytest.fixture(scope="session")
def busi_dir() -> Path:
    """The BUSI data set folder (``<class>/<class> (N).png`` and ``_mask.png`` files)."""
    path = _find_busi_dir()
    if (path / "benign").is_dir() or (path / "index.csv").is_file():
        return path
    reason = (
        f"BUSI data set not found at {path} (expected ../shared/busi beside the repository, "
        "or set SONOTRACE_BUSI_DIR)"
    )
    _skip_or_fail(reason)


def _skip_or_fail(reason: str):
    if _truthy(os.environ.get("CI")):
        pytest.fail(f"{reason}; CI has everything the suite needs, so it must run this test",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def skip_or_fail():
    """``skip_or_fail(reason)``: skip on a developer's machine, fail under ``CI``.

    CI installs everything (``make test`` runs ``make install-all`` first), so a
    missing tool or data set there is a broken install, not a reason to skip.
    """
    return _skip_or_fail


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    return _unused_port()


# --------------------------------------------------------------------------- real processes


def _http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a service and its children (it runs in its own process group)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


class _ServiceStarter:
    """Starts real processes, waits for their health check and stops them all at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        self._logs: list = []

    def __call__(
        self,
        args: list[str],
        health_url: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.Popen:
        if not isinstance(args, list | tuple) or not args:
            raise TypeError("args must be a non-empty list of strings")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        program = _safe_name(Path(str(args[0])).name)
        log_path = self.log_dir / f"service-{len(self.processes)}-{program}.log"
        full_env = dict(os.environ)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if env:
            full_env.update(env)
        log = open(log_path, "wb")  # closed in close(), after the process has stopped
        self._logs.append(log)
        log.write(f"$ {' '.join(map(str, args))}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [str(a) for a in args],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)

        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"service {args!r} exited with code {process.returncode} before "
                    f"{health_url} answered; log {log_path}:\n{_tail(log_path)}"
                )
            status = _http_status(health_url)
            if status == 200:
                return process
            time.sleep(0.5)
        _stop(process)
        raise RuntimeError(
            f"service {args!r}: {health_url} did not answer 200 within {timeout:.0f} s "
            f"(last status {status}); log {log_path}:\n{_tail(log_path)}"
        )

    def close(self) -> None:
        for process in reversed(self.processes):
            _stop(process)
        for log in self._logs:
            log.close()


@pytest.fixture
def start_service(artifacts_dir: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Factory starting a real process and waiting until its health URL answers 200.

    ``start_service(args, health_url, env=None, timeout=120) -> subprocess.Popen``.
    ``env`` is added to the current environment. The process runs from the repository
    root in its own process group, and is terminated (then killed) at teardown.
    """
    starter = _ServiceStarter(artifacts_dir)
    try:
        yield starter
    finally:
        starter.close()


def model_server_env(**extra: str) -> dict[str, str]:
    """Environment for a model server started by the tests."""
    env = {"SONOTRACE_LOG_LEVEL": "INFO", "SONOTRACE_WORKERS": "1"}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def live_model_server() -> Iterator[str]:
    """Base URL of a real ``python -m model_server`` process, shared by the session.

    Loading the TensorFlow models takes a while on a small machine, so the process is
    given up to ``SONOTRACE_TEST_SERVER_TIMEOUT`` seconds (default 180) to answer
    ``GET /health`` with 200.
    """
    port = _unused_port()
    starter = _ServiceStarter(ARTIFACTS_ROOT / "live_model_server")
    base_url = f"http://127.0.0.1:{port}"
    try:
        starter(
            [sys.executable, "-m", "model_server", "--host", "127.0.0.1", "--port", str(port)],
            f"{base_url}/health",
            env=model_server_env(),
            timeout=float(os.environ.get("SONOTRACE_TEST_SERVER_TIMEOUT", "180")),
        )
        yield base_url
    finally:
        starter.close()
