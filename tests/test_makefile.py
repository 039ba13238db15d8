"""`make test` and `.ci/run` fail loudly: no silent pass when pytest runs nothing."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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
    # `make -q install-all` exits 0 only when the stamp of everything `make test` installs
    # is up to date, so the nested make below cannot start a real (slow, apt-touching)
    # install from inside the suite.
    if _make(skip_or_fail, "-q", "install-all").returncode != 0:
        skip_or_fail("run `make install-all` first (its install stamp is missing or stale)")


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


# --------------------------------------------------------------- what run and test install
#
# `make run` installs what running needs only; `make test` everything. Checked from what
# make would run (`make -n`, with a throwaway VENV so that no stamp here counts), then
# from what scripts/install.sh, given that command, would install (DRY_RUN=1: it prints
# its lists and stops before apt and pip).

RUNTIME_EXTRAS = {"server", "client", "postgres"}
#: Debian packages only the tests and benchmarks use; a workstation gets none of them
#: (postgresql is the server, which Debian starts on port 5432 when installed).
TEST_ONLY_PACKAGES = {"chromium", "chromium-driver", "postgresql", "potrace", "docker-compose"}


def _install_command(skip_or_fail, target: str, venv: Path) -> str:
    """The scripts/install.sh line `make -n target` shows for a VENV not installed yet."""
    result = _make(skip_or_fail, "-n", target, f"VENV={venv}")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "scripts/install.sh" in line]
    assert len(lines) == 1, result.stdout
    return lines[0]


def _dry_run(command: str, **env: str) -> dict[str, str]:
    """What install.sh run as ``command`` would install: its DRY_RUN lines as a dict."""
    # An installer that ignores DRY_RUN would create a virtualenv and pip-install every
    # extra into it, here, from the suite (and its pip outlive a timeout).
    if "DRY_RUN" not in (REPO_ROOT / "scripts" / "install.sh").read_text():
        pytest.fail("scripts/install.sh has no DRY_RUN mode: it would install for real")
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO_ROOT,
        env={**os.environ, **env, "DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "dry run: nothing is installed", result.stdout
    return dict(line.split(":", 1) for line in lines[1:])


def _words(text: str) -> set[str]:
    return set(text.replace(",", " ").split())


def _run_command(skip_or_fail, env: dict, *args: str) -> str:
    """The command `make run` would run (install taken as done), under ``env``."""
    if shutil.which("make") is None:
        skip_or_fail("make is not installed")
    result = subprocess.run(
        ["make", "-n", "-o", "install", *args, "run"], cwd=REPO_ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "HOST"}, **env},
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_takes_host_from_the_environment_but_not_tcshs_own_name(skip_or_fail):
    import socket

    assert "--host 127.0.0.1 " in _run_command(skip_or_fail, {})
    assert "--host 0.0.0.0 " in _run_command(skip_or_fail, {"HOST": "0.0.0.0"})
    # tcsh sets HOST to the machine's name in every environment: not a bind address.
    name = socket.gethostname()
    assert "--host 127.0.0.1 " in _run_command(skip_or_fail, {"HOST": name})
    # Said on the command line, it is what was asked for.
    assert f"--host {name} " in _run_command(skip_or_fail, {}, f"HOST={name}")


@pytest.mark.parametrize("target", ["run", "install"])
def test_make_run_installs_the_runtime_only(skip_or_fail, tmp_path, target):
    venv = tmp_path / "venv"
    plan = _dry_run(_install_command(skip_or_fail, target, venv))
    assert _words(plan["extras"]) == RUNTIME_EXTRAS
    # libpotrace-dev: potracecffi has no wheel and is built against it.
    assert _words(plan["apt"]) == {"libpotrace-dev"}
    assert _words(plan["apt --no-install-recommends"]) == set()
    assert plan["venv"].strip() == str(venv)
    assert not venv.exists(), "a dry run created the virtualenv"


@pytest.mark.parametrize("target", ["test", "install-all", "lint", "bench"])
def test_make_test_installs_everything(skip_or_fail, tmp_path, target):
    plan = _dry_run(_install_command(skip_or_fail, target, tmp_path / "venv"))
    assert _words(plan["extras"]) == RUNTIME_EXTRAS | {"train", "test"}
    packages = _words(plan["apt"]) | _words(plan["apt --no-install-recommends"])
    assert packages == {"libpotrace-dev"} | TEST_ONLY_PACKAGES
    # Its recommends are the whole Docker engine.
    assert _words(plan["apt --no-install-recommends"]) == {"docker-compose"}


def test_extras_in_the_shell_do_not_change_what_make_installs(skip_or_fail, tmp_path):
    # A stamp stands for one set of extras whatever the caller's environment holds.
    venv = tmp_path / "venv"
    plan = _dry_run(_install_command(skip_or_fail, "run", venv), EXTRAS="server,test")
    assert _words(plan["extras"]) == RUNTIME_EXTRAS


def test_install_sh_alone_installs_the_runtime(tmp_path):
    plan = _dry_run(f"VENV={tmp_path / 'venv'} scripts/install.sh", EXTRAS="")
    assert _words(plan["extras"]) == RUNTIME_EXTRAS
    assert _words(plan["apt"]) == {"libpotrace-dev"}


def test_install_sh_refuses_an_unknown_extra(tmp_path):
    # Refused before anything is installed, and so a dry run is no different.
    _dry_run(f"VENV={tmp_path / 'v'} scripts/install.sh")
    result = subprocess.run(
        ["scripts/install.sh"],
        cwd=REPO_ROOT,
        env={**os.environ, "EXTRAS": "server,tset", "DRY_RUN": "1", "VENV": str(tmp_path / "v")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: EXTRAS=server,tset: 'tset' is not an extra"), (
        result.stderr
    )
    assert not (tmp_path / "v").exists()


def test_install_sh_installs_a_compiler_where_there_is_none(tmp_path):
    # potracecffi is built from source: a fresh Debian without gcc got a pip build error.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("bash", "dirname", "dpkg-query", "grep", "id"):
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"no {name} here (not Debian?)")
        (tools / name).symlink_to(found)
    plan = _dry_run(
        f"VENV={tmp_path / 'venv'} scripts/install.sh",
        PATH=str(tools),
        PYTHON=os.path.realpath(sys.executable),
    )
    assert {"gcc", "libc6-dev"} <= _words(plan["missing"])
    assert _words(plan["apt"]) == {"libpotrace-dev"}


# ----------------------------------------------------------------------- the two stamps
#
# The Makefile run for real in a copy of the repository whose scripts/install.sh only
# records the EXTRAS it was given: which installs each order of make run / make test
# starts.

STUB_INSTALLER = """#!/usr/bin/env bash
set -euo pipefail
mkdir -p "$VENV"
echo "$EXTRAS" >> "$INSTALL_LOG"
"""


@pytest.fixture
def stub_checkout(tmp_path: Path, skip_or_fail):
    """``make(*args)`` in a copy of the Makefile and pyproject.toml with a recording
    installer; ``installs()`` the EXTRAS of each install run so far."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "Makefile", root)
    shutil.copy(REPO_ROOT / "pyproject.toml", root)
    shutil.copy(REPO_ROOT / "scripts" / "constraints.txt", root / "scripts")
    installer = root / "scripts" / "install.sh"
    installer.write_text(STUB_INSTALLER)
    installer.chmod(0o755)
    log = tmp_path / "installs.log"
    log.touch()

    def make(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", *args],
            cwd=root,
            env={**os.environ, "INSTALL_LOG": str(log)},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def installs() -> list[set[str]]:
        return [_words(line) for line in log.read_text().splitlines()]

    if shutil.which("make") is None:
        skip_or_fail("make is not installed")
    return make, installs


def test_make_run_then_make_test_installs_the_rest(stub_checkout):
    make, installs = stub_checkout
    assert make("install").returncode == 0
    assert installs() == [RUNTIME_EXTRAS]
    assert make("-q", "install").returncode == 0
    # What `make test` needs is not installed yet.
    assert make("-q", "install-all").returncode != 0
    assert make("install-all").returncode == 0
    assert installs() == [RUNTIME_EXTRAS, RUNTIME_EXTRAS | {"train", "test"}]


def test_make_test_then_make_run_installs_nothing_more(stub_checkout):
    make, installs = stub_checkout
    assert make("install-all").returncode == 0
    assert make("-q", "install").returncode == 0, "make run would install again"
    dry = make("-n", "run")
    assert "install.sh" not in dry.stdout, dry.stdout
    assert make("install").returncode == 0
    assert installs() == [RUNTIME_EXTRAS | {"train", "test"}]


def test_a_changed_pyproject_installs_each_set_again(stub_checkout):
    make, installs = stub_checkout
    assert make("install-all").returncode == 0
    assert make("-q", "install").returncode == 0
    assert make("-q", "-W", "pyproject.toml", "install").returncode != 0
    assert make("-q", "-W", "pyproject.toml", "install-all").returncode != 0


# ------------------------------------------------------------------ the constraints file
def _pins(lines) -> dict[str, str]:
    """``{normalised name: version}`` of the ``name==version`` requirements in ``lines``."""
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].split(";", 1)[0].strip().strip('",')
        name, sep, version = line.partition("==")
        if sep:
            pins[re.sub(r"[-_.]+", "-", name.split("[", 1)[0].strip()).lower()] = version.strip()
    return pins


def test_the_constraints_agree_with_every_pin_of_pyproject():
    # Audit 804 F7: only the direct dependencies were pinned. A pin changed in
    # pyproject.toml and not in constraints.txt would fail every install (pip refuses
    # the two), so a stale file is caught here rather than on a fresh machine.
    constraints = (REPO_ROOT / "scripts" / "constraints.txt").read_text().splitlines()
    held = _pins(constraints)
    assert all("==" in line for line in constraints if line and not line.startswith("#"))
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pinned: dict[str, str] = {}
    for group in [project.get("dependencies", []),
                  *project.get("optional-dependencies", {}).values()]:
        pinned.update(_pins(group))
    assert pinned, "pyproject.toml pins nothing"
    wrong = {name: (version, held.get(name)) for name, version in pinned.items()
             if held.get(name) != version}
    assert not wrong, f"pyproject pin vs constraints.txt: {wrong}"


def test_install_sh_and_both_dockerfiles_apply_the_constraints():
    for path in ["scripts/install.sh", "model_server/Dockerfile", "annotation_client/Dockerfile"]:
        text = (REPO_ROOT / path).read_text()
        # Not build-constraints.txt's name, which holds this one's.
        assert "scripts/constraints.txt" in text.split("PIP_CONSTRAINT", 1)[1], path
