"""docker-compose.yml and the two Dockerfiles are valid and build from files that exist.

No Docker engine runs here, so the file is checked by Debian's docker-compose 1.29 (which
validates without an engine) and by reading the YAML and the Dockerfiles directly.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SERVICES = {"model-server": 5000, "annotation-client": 8050}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuations joined and comments dropped."""
    joined, current = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    if current:
        joined.append(current)
    result = []
    for entry in joined:
        keyword, _, args = entry.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def _copy_sources(args: str) -> list[str] | None:
    """Sources of a COPY/ADD instruction, or None when it copies from another stage."""
    if args.startswith("["):
        parts = json.loads(args)
    else:
        parts = shlex.split(args)
    flags = [p for p in parts if p.startswith("--")]
    if any(flag.startswith("--from") for flag in flags):
        return None
    operands = [p for p in parts if not p.startswith("--")]
    assert len(operands) >= 2, f"COPY needs a source and a destination: {args!r}"
    return operands[:-1]


def _dockerignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _ignored(source: str, patterns: list[str]) -> str | None:
    source = source.strip("/").rstrip("/")
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(source, pattern) or fnmatch.fnmatch(source, bare):
            return pattern
    return None


def _service_dockerfiles(compose: dict) -> list[tuple[str, Path, Path]]:
    result = []
    for name in SERVICES:
        build = compose["services"][name]["build"]
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        result.append((name, context, context / build.get("dockerfile", "Dockerfile")))
    return result


def test_docker_compose_config_validates(skip_or_fail):
    binary = shutil.which("docker-compose")
    if binary is None:
        skip_or_fail("docker-compose is not installed (make install-all installs it)")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"


def test_services_build_from_their_own_dockerfile(compose):
    assert set(SERVICES) <= set(compose["services"])
    dockerfiles = _service_dockerfiles(compose)
    for name, context, dockerfile in dockerfiles:
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        assert dockerfile.is_file(), f"{name}: dockerfile {dockerfile} does not exist"
    assert len({dockerfile for _, _, dockerfile in dockerfiles}) == len(SERVICES)


def test_every_copy_source_exists_and_is_not_dockerignored(compose):
    for name, context, dockerfile in _service_dockerfiles(compose):
        patterns = _dockerignore_patterns(context)
        copies = 0
        for keyword, args in _instructions(dockerfile):
            if keyword not in {"COPY", "ADD"}:
                continue
            sources = _copy_sources(args)
            if sources is None:
                continue
            for source in sources:
                copies += 1
                matches = list(context.glob(source.rstrip("/")))
                assert matches, f"{name}: {keyword} source {source!r} not found in {context}"
                hit = _ignored(source, patterns)
                assert hit is None, f"{name}: {source!r} is excluded by .dockerignore {hit!r}"
        assert copies, f"{name}: {dockerfile} copies nothing from the repository"


def test_images_are_python_slim_with_libpotrace(compose):
    for name, _, dockerfile in _service_dockerfiles(compose):
        instructions = _instructions(dockerfile)
        bases = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
        assert bases and bases[-1] == "python:3.11-slim", f"{name}: final stage is {bases}"
        runtime = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
        installs = " ".join(args for keyword, args in runtime if keyword == "RUN")
        assert re.search(r"apt-get install .*\blibpotrace0\b", installs), (
            f"{name}: the runtime stage must apt-get install libpotrace0"
        )


def test_ports_and_healthchecks(compose):
    for name, port in SERVICES.items():
        service = compose["services"][name]
        # Loopback only: neither service authenticates, and the images are patients'.
        assert [str(p) for p in service["ports"]] == [f"127.0.0.1:{port}:{port}"], name
        check = service["healthcheck"]["test"]
        command = " ".join(check) if isinstance(check, list) else check
        assert f"127.0.0.1:{port}/health" in command, f"{name}: healthcheck must GET /health"


def test_services_listen_on_their_port(compose):
    for name, _, dockerfile in _service_dockerfiles(compose):
        port = SERVICES[name]
        cmds = [args for keyword, args in _instructions(dockerfile) if keyword == "CMD"]
        assert cmds, f"{name}: no CMD"
        cmd = json.loads(cmds[-1])
        module = name.replace("-", "_")
        assert cmd[:3] == ["python", "-m", module], f"{name}: CMD {cmd}"
        assert cmd[cmd.index("--port") + 1] == str(port)
        assert cmd[cmd.index("--host") + 1] == "0.0.0.0", f"{name}: must listen beyond loopback"


def test_client_reaches_server_by_service_name(compose):
    client = compose["services"]["annotation-client"]
    env = client["environment"]
    assert env["SONOTRACE_MODEL_SERVER_URL"] == f"http://model-server:{SERVICES['model-server']}"
    depends = client["depends_on"]
    assert "model-server" in depends


def test_annotations_live_in_a_named_volume(compose):
    client = compose["services"]["annotation-client"]
    data_dir = client["environment"]["SONOTRACE_DATA_DIR"]
    named = set(compose.get("volumes") or {})
    mounts = [str(v).split(":") for v in client["volumes"]]
    assert any(src in named and dst == data_dir for src, dst, *_ in mounts), (
        f"SONOTRACE_DATA_DIR={data_dir} must be a named volume, got {client['volumes']}"
    )


def _seconds(duration: str) -> float:
    """A Compose duration (``35s``, ``1m30s``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_stop_waits_past_gunicorns_own_grace(compose, service):
    # Audit 804 F10: Docker's default 10 s killed a request gunicorn would have finished
    # within its 30 s graceful_timeout.
    from vectorizer._settings import GRACEFUL_TIMEOUT_S, STOP_GRACE_S

    grace = compose["services"][service].get("stop_grace_period")
    assert grace is not None, f"{service}: Docker's default 10 s applies"
    assert _seconds(grace) == STOP_GRACE_S > GRACEFUL_TIMEOUT_S


@pytest.mark.parametrize("name", [".env", "docker-compose.override.yml"])
def test_the_files_deployers_put_secrets_in_are_neither_committed_nor_built_in(name):
    # Audit 804 F11: README puts site settings (a database URL with its password) in the
    # override file and speaks of an env file; a commit or an image took them along.
    assert _ignored(name, _dockerignore_patterns(REPO_ROOT)) is not None, ".dockerignore"
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", name], cwd=REPO_ROOT,
                            timeout=60, check=False)
    assert result.returncode == 0, f".gitignore does not ignore {name}"
