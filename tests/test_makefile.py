"""`make test` and `.ci/run` fail loudly: no silent pass when pytest runs nothing."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _make(skip_or_fail, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        skip_or_fail("make is not installed")
    return subprocess.run(
        ["make", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _require_installed(skip_or_fail) -> None:
    # `make -q install` exits 0 only when the install stamp is up to date, so the nested
    # make below cannot start a real (slow, apt-touching) install from inside the suite.
    if _make(skip_or_fail, "-q", "install").returncode != 0:
        skip_or_fail("run `make install` first (the install stamp is missing or stale)")


def test_ci_entry_point_runs_make_test_strictly():
    ci = REPO_ROOT / ".ci" / "run"
    assert ci.stat().st_mode & stat.S_IXUSR, ".ci/run must be executable"
    text = ci.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert "make test" in text
    result = subprocess.run(["bash", "-n", str(ci)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_install_script_is_valid_bash():
    script = REPO_ROOT / "scripts" / "install.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_make_test_installs_first_then_runs_pytest_from_the_venv(skip_or_fail):
    result = _make(skip_or_fail, "-n", "-W", "pyproject.toml", "test")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    install = next(i for i, line in enumerate(lines) if "scripts/install.sh" in line)
    pytest_line = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert install < pytest_line
    assert lines[pytest_line].startswith(".venv/bin/python")


def test_make_test_fails_when_no_test_is_collected(skip_or_fail):
    _require_installed(skip_or_fail)
    result = _make(
        skip_or_fail,
        "test",
        "PYTEST_ARGS=tests/test_makefile.py -k no_test_has_this_name -p no:cacheprovider -q",
    )
    assert "deselected" in result.stdout
    assert result.returncode != 0, "pytest's exit 5 (no tests ran) must fail make test"
