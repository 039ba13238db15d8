"""The benchmark scripts in ``bench/`` run to the end on a small sample.

``make bench`` is not part of ``make test`` (it takes minutes and wants a quiet machine),
so without these runs a change to the code a benchmark calls can break the benchmark
unnoticed until the next time someone measures: that happened to ``bench/client.py``
when ``_measurements.summarize`` began to take the outlines themselves. These runs use
the smallest sample each script accepts and check that its figures were produced, not
their values, which depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.busi


def _run(script: str, *args: str, busi_dir: Path, timeout: float = 300) -> str:
    env = {**os.environ, "SONOTRACE_BUSI_DIR": str(busi_dir)}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_client_bench_runs(busi_dir, tmp_path):
    out = tmp_path / "client.json"
    _run("client.py", "--images", "2", "--versions", "20", "--json", str(out), busi_dir=busi_dir)
    figures = json.loads(out.read_text())
    for action in ("open", "edit", "signing", "measure", "density", "save"):
        assert _positive(figures[action]["p50"]), action
    assert figures["index"], "the index figures are missing"
    for outlines in ("one", "few"):
        lesions = figures["lesions"][outlines]
        assert _positive(lesions["p50"]) and _positive(lesions["ratio"]), outlines


def test_vectorizer_bench_runs(busi_dir, tmp_path):
    out = tmp_path / "vectorizer.json"
    _run("vectorizer.py", "--busi", str(busi_dir), "--limit", "3", "--repeats", "1",
         "--json", str(out), busi_dir=busi_dir)
    figures = json.loads(out.read_text())
    assert figures["masks"] == 3
    # The round trip through potrace and back is this project's own accuracy claim.
    assert figures["rt"]["min"] > 0.99
    assert _positive(figures["t_trace"]) and _positive(figures["t_raster"])


def test_models_bench_runs(busi_dir):
    stdout = _run("models.py", "--data", str(busi_dir), "--n", "3", busi_dir=busi_dir)
    assert "keras: segment+classify median" in stdout
    assert "litert: segment+classify median" in stdout
    assert "target <= 100 ms:" in stdout


def test_server_bench_runs(busi_dir, tmp_path):
    out = tmp_path / "server.json"
    # 33 images is the fewest the script accepts with two workers (no answer from a cache).
    _run("server.py", "--images", "33", "--rounds", "1", "--requests", "8",
         "--json", str(out), busi_dir=busi_dir)
    figures = json.loads(out.read_text())
    reliability = figures["reliability"]
    assert reliability["5xx"] == 0 and reliability["connection_errors"] == 0
    assert reliability["good_ok"] + reliability["bad_ok"] == reliability["requests"]
    assert _positive(figures["overhead"]["ratio"])
