"""``python -m annotation_client.prune_uploads``: the retention rule for kept uploads."""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from annotation_client import AnnotationStore
from annotation_client.prune_uploads import main

REPO_ROOT = Path(__file__).resolve().parents[2]


def _upload(store, n, age_days):
    data = b"\x89PNG fake " + bytes([n])
    sha = hashlib.sha256(data).hexdigest()
    store.save(sha, svg="<svg/>", mask_png=b"m", record={}, source=data, source_name="x.png")
    when = time.time() - age_days * 86400
    for path in (store.root / sha).iterdir():
        os.utime(path, (when, when))
    return sha


def test_dry_run_lists_then_the_run_removes(tmp_path, capsys):
    store = AnnotationStore(tmp_path)
    old, new = _upload(store, 1, 40), _upload(store, 2, 3)
    assert main(["--older-than-days", "30", "--data-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would remove {tmp_path / old / 'source.png'}" in out
    assert "would remove 1 kept image copy(ies) not saved for 30 day(s)" in out
    assert store.source_path(old) is not None
    assert main(["--older-than-days", "30", "--data-dir", str(tmp_path)]) == 0
    assert "removed 1 kept image copy(ies)" in capsys.readouterr().out
    assert store.source_path(old) is None and store.source_path(new) is not None
    assert store.versions(old) == [1]


@pytest.mark.parametrize("days", ["-1", "soon", "nan", "inf"])
def test_a_bad_age_is_refused_with_status_2(tmp_path, days, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--older-than-days", days, "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "days" in capsys.readouterr().err


def test_it_reads_the_data_folder_from_the_environment(tmp_path):
    store = AnnotationStore(tmp_path / "data")
    old = _upload(store, 1, 10)
    env = dict(os.environ, SONOTRACE_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [sys.executable, "-m", "annotation_client.prune_uploads", "--older-than-days", "7"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "removed 1 kept image copy(ies)" in done.stdout
    assert store.source_path(old) is None


@pytest.mark.parametrize("name", ["missing", "a file"])
def test_a_data_folder_that_is_not_there_is_refused_with_status_2(tmp_path, name, capsys):
    (tmp_path / "a file").write_text("x")
    assert main(["--older-than-days", "5", "--data-dir", str(tmp_path / name)]) == 2
    captured = capsys.readouterr()
    assert f"error: data_dir: {tmp_path / name} is not a folder" in captured.err
    assert "removed" not in captured.out


def test_it_removes_the_temporary_copies_a_killed_save_left(tmp_path, capsys):
    store = AnnotationStore(tmp_path)
    sha = _upload(store, 1, 0)
    stale = tmp_path / sha / ".source.png.k1l2.tmp"
    stale.write_bytes(b"half an image")
    when = time.time() - 2 * 3600
    os.utime(stale, (when, when))
    assert main(["--older-than-days", "30", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"removed {stale}" in out
    assert "removed 1 temporary file(s) left by interrupted saves" in out
    assert not stale.exists() and store.source_path(sha) is not None
