"""The shared fixtures start real processes and fail loudly when they cannot, and the
markers follow the fixtures a test uses."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest


def test_free_port_can_be_bound(free_port):
    assert 1024 <= free_port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", free_port))


def test_start_service_waits_for_health_and_stops_at_teardown(
    start_service, free_port, artifacts_dir, tmp_path
):
    (tmp_path / "health").write_text("ok")
    url = f"http://127.0.0.1:{free_port}"
    process = start_service(
        [
            sys.executable,
            "-m",
            "http.server",
            str(free_port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path),
        ],
        f"{url}/health",
        env={"SONOTRACE_EXAMPLE": "1"},
        timeout=30,
    )
    assert process.poll() is None
    with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
        assert response.status == 200
    logs = list(artifacts_dir.glob("service-*.log"))
    assert logs, "the service log must be kept in the test's artifacts folder"


def test_start_service_reports_a_process_that_dies(start_service, free_port):
    with pytest.raises(RuntimeError, match="exited with code 3"):
        start_service(
            [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
            f"http://127.0.0.1:{free_port}/health",
            timeout=30,
        )


def test_start_service_gives_up_after_timeout(start_service, free_port):
    with pytest.raises(RuntimeError, match="did not answer 200"):
        start_service(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            f"http://127.0.0.1:{free_port}/health",
            timeout=2,
        )


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception),
                                             ("", pytest.skip.Exception)])
def test_skip_or_fail_fails_under_ci_and_skips_elsewhere(skip_or_fail, monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="missing tool"):
        skip_or_fail("missing tool")


def _collected(*args: str) -> list[str]:
    """Test ids pytest collects from the index's tests with ``args`` (no test runs)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/annotation_client/test_database.py", *args],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_postgres_marker_follows_the_server_fixtures():
    every = _collected()
    marked = _collected("-m", "postgres")
    unmarked = _collected("-m", "not postgres")
    assert sorted(marked + unmarked) == sorted(every)
    # The db_url variants on the server (ids "[postgresql]", "[postgresql-...]"), and the
    # tests that ask for the server directly; not URLs that merely name PostgreSQL.
    on_server = re.compile(r"\[(postgresql|sqlite)[\]-]")
    variants = [t for t in every if (m := on_server.search(t)) and m.group(1) == "postgresql"]
    assert variants and set(variants) <= set(marked)
    assert any("stops_and_comes_back" in t for t in marked)
    assert not set(variants) & set(unmarked)
    assert not any("stops_and_comes_back" in t for t in unmarked)
    assert any(on_server.search(t) for t in unmarked)  # the SQLite variants
    assert not any("[sqlite" in t for t in marked)
    assert any("postgresql+psycopg2://" in t for t in unmarked)  # a URL, no server
