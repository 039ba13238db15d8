"""The export never replaces a folder by accident nor leaves one half written (no training)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from models import export


def _digests(folder):
    """``{relative path: sha256}`` of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_is_required_and_the_shipped_folder_needs_replace_shipped(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    missing = str(tmp_path / "no-such-run")
    # No --out: argparse refuses (exit 2) before anything is read or written.
    with pytest.raises(SystemExit) as exc:
        export.main(["--run", missing, "--data", str(root)])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err
    # The shipped folder, however it is spelled, only with --replace-shipped.
    for spelled in (export.SHIPPED, export.SHIPPED / ".." / "weights"):
        with pytest.raises(SystemExit, match="--replace-shipped"):
            export.main(["--run", missing, "--data", str(root), "--out", str(spelled)])
    # With the flag the export goes on (and here stops at the missing run).
    with pytest.raises(SystemExit, match="no such checkpoint"):
        export.main(["--run", missing, "--data", str(root), "--out", str(export.SHIPPED),
                     "--replace-shipped"])


def test_a_failed_export_leaves_the_folder_as_it_was(tiny_run, tiny_export, tmp_path,
                                                      monkeypatch):
    root, run = tiny_run
    weights, _ = tiny_export
    out = tmp_path / "release"
    shutil.copytree(weights, out)
    (out / "NOTES.txt").write_text("kept\n")
    before = _digests(out)

    def fail(*args, **kwargs):
        raise RuntimeError("tuning fell over")

    monkeypatch.setattr(export, "tune_export", fail)
    with pytest.raises(RuntimeError, match="fell over"):
        export.main(["--run", str(run), "--data", str(root), "--out", str(out),
                     "--card-dir", str(tmp_path / "card"), "--no-litert", "--tta", "off"])
    assert _digests(out) == before
    # No staging folder is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]


def test_an_export_into_a_folder_replaces_its_files_and_keeps_foreign_ones(tiny_run, tiny_export,
                                                                          tmp_path):
    root, run = tiny_run
    weights, _ = tiny_export
    out = tmp_path / "release"
    shutil.copytree(weights, out)
    (out / "NOTES.txt").write_text("kept\n")
    # A lesion classifier from an earlier export: this one has none, so it goes.
    (out / "lesion_classifier.keras").write_bytes(b"old")
    assert export.main(["--run", str(run), "--data", str(root), "--out", str(out),
                        "--card-dir", str(tmp_path / "card"), "--no-litert", "--tta", "off",
                        "--version", "again"]) == 0
    assert (out / "NOTES.txt").read_text() == "kept\n"
    assert not (out / "lesion_classifier.keras").exists()
    assert '"again"' in (out / "manifest.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card", "release"]


def test_the_card_figures_go_beside_the_export_unless_card_dir_is_given(tiny_run, tmp_path):
    root, run = tiny_run
    card = sorted(export.SHIPPED.parent.glob("*.png"))
    before = {p.name: p.read_bytes() for p in card}
    out = tmp_path / "candidate"
    assert export.main(["--run", str(run), "--data", str(root), "--out", str(out),
                        "--no-litert", "--tta", "off", "--version", "t"]) == 0
    # The shipped model card's figures are not the candidate's.
    assert {p.name: p.read_bytes() for p in card} == before
    for png in ("confusion_matrix.png", "calibration.png", "learning_curves.png"):
        assert (out / png).exists(), png


def test_a_card_dir_that_is_the_out_folder_keeps_its_figures(tiny_run, tiny_export, tmp_path):
    # Audit 902 F1: the README's own examples pass --card-dir equal to --out; the plots
    # were written into --out, then went with the old folder the swap replaced.
    root, run = tiny_run
    weights, _ = tiny_export
    out = tmp_path / "twin"
    shutil.copytree(weights, out)  # an earlier export there, as on a second run
    assert export.main(["--run", str(run), "--data", str(root), "--out", str(out),
                        "--card-dir", str(out) + "/", "--no-litert", "--tta", "off",
                        "--version", "t2"]) == 0
    for png in ("confusion_matrix.png", "calibration.png", "learning_curves.png"):
        assert (out / png).exists(), png
    assert '"t2"' in (out / "manifest.json").read_text()
    # And a --card-dir inside --out (audit 916 F9): the figures are not swapped away, and
    # the learning curves find their folder.
    assert export.main(["--run", str(run), "--data", str(root), "--out", str(out),
                        "--card-dir", str(out / "card"), "--no-litert", "--tta", "off",
                        "--version", "t3"]) == 0
    for png in ("confusion_matrix.png", "calibration.png", "learning_curves.png"):
        assert (out / "card" / png).exists(), png


def test_a_run_without_train_info_is_exported_at_its_own_size_or_refused(tiny_run, tmp_path):
    root, run = tiny_run
    killed = tmp_path / "killed"
    shutil.copytree(run, killed)
    (killed / "train_info.json").unlink()
    out = tmp_path / "w"
    # tiny_run is 32 px and 4 filters, not the 160 px and 16 filters of the defaults.
    assert export.main(["--run", str(killed), "--data", str(root), "--out", str(out),
                        "--no-litert", "--tta", "off", "--version", "t"]) == 0
    arch = json.loads((out / "manifest.json").read_text())["architecture"]
    assert (arch["input_size"], arch["base_filters"]) == (32, 4)
    # A bare weights file does not say its input size: refused when nothing else does.
    bare = tmp_path / "bare"
    (bare / "backup").mkdir(parents=True)
    shutil.copy(killed / "split.json", bare / "split.json")
    (bare / "backup" / "latest.weights.h5").write_bytes(b"not read")
    with pytest.raises(SystemExit, match="input size"):
        export.main(["--run", str(bare), "--data", str(root), "--out", str(tmp_path / "w2"),
                     "--checkpoint", "backup/latest.weights.h5", "--no-litert"])
    assert not (tmp_path / "w2").exists()


def test_the_manifest_records_the_data_folder_and_image_count_used(tiny_run, tiny_export):
    root, _ = tiny_run
    weights, _ = tiny_export
    training = json.loads((weights / "manifest.json").read_text())["training"]
    assert training["data_folder"] == root.name
    assert training["data_images"] == 18
    assert training["data"] == f"{root.name}: 18 images"
    assert "BUSI" not in training["data"]


def test_the_default_version_is_the_time_of_export(tiny_run, tmp_path):
    import re

    root, run = tiny_run
    out = tmp_path / "w"
    assert export.main(["--run", str(run), "--data", str(root), "--out", str(out),
                        "--no-litert", "--tta", "off", "--no-recalibrate"]) == 0
    version = json.loads((out / "manifest.json").read_text())["version"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d{6}Z", version), version


def test_an_export_through_a_symlink_replaces_the_folder_it_names_and_keeps_the_link(
        tiny_run, tiny_export, tmp_path):
    root, run = tiny_run
    weights, _ = tiny_export
    release = tmp_path / "2026-12-03"
    shutil.copytree(weights, release)
    current = tmp_path / "current"
    current.symlink_to(release.name)
    assert export.main(["--run", str(run), "--data", str(root), "--out", str(current),
                        "--card-dir", str(tmp_path / "card"), "--no-litert", "--tta", "off",
                        "--version", "through-link"]) == 0
    assert current.is_symlink() and current.resolve() == release.resolve()
    assert '"through-link"' in (release / "manifest.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-12-03", "card", "current"]


def test_the_swapped_in_folder_keeps_the_permissions_of_the_one_it_replaces(tiny_export, tmp_path):
    import os
    import stat

    weights, _ = tiny_export
    fresh = tmp_path / "fresh"
    stage = export.open_stage(fresh)
    umask = os.umask(0)
    os.umask(umask)
    # Not mkdtemp's private 0700: a server running as another user must read it.
    assert stat.S_IMODE(stage.stat().st_mode) == 0o777 & ~umask
    old = tmp_path / "old"
    shutil.copytree(weights, old)
    old.chmod(0o750)
    assert stat.S_IMODE(export.open_stage(old).stat().st_mode) == 0o750


def _folder(path, text):
    path.mkdir()
    (path / "manifest.json").write_text(text)
    return path


def test_a_kill_during_the_swap_leaves_a_whole_release_at_out(tmp_path, monkeypatch):
    out, stage = _folder(tmp_path / "weights", "old"), _folder(tmp_path / "stage", "new")

    def killed(self, target):  # a kill at the first rename, where two renames were used
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "rename", killed)
    export.swap_in(stage, out)  # one exchange: no rename to be killed between
    assert (out / "manifest.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]


def test_where_the_system_cannot_exchange_two_renames_still_swap(tmp_path, monkeypatch):
    out, stage = _folder(tmp_path / "weights", "old"), _folder(tmp_path / "stage", "new")
    monkeypatch.setattr(export, "_exchange", lambda a, b: False)
    export.swap_in(stage, out)
    assert (out / "manifest.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]
    fresh = _folder(tmp_path / "stage2", "first")
    export.swap_in(fresh, tmp_path / "new-out")  # nothing to replace
    assert (tmp_path / "new-out" / "manifest.json").read_text() == "first"


def test_an_exchange_that_fails_says_why_and_changes_nothing(tmp_path):
    out, stage = _folder(tmp_path / "weights", "old"), tmp_path / "missing"
    with pytest.raises(OSError):
        export.swap_in(stage, out)
    assert (out / "manifest.json").read_text() == "old"


def test_an_out_that_cannot_be_replaced_is_refused_before_anything_is_written(tmp_path):
    # Audit 709, F6: a file was swapped out (left renamed beside it, then a traceback),
    # a mount point gave a raw "Device or resource busy" traceback.
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(SystemExit, match="is a file, not a folder"):
        export.check_out(afile, replace_shipped=False)
    with pytest.raises(SystemExit, match="is a mount point"):
        export.check_out("/", replace_shipped=False)
    export.check_out(tmp_path / "new", replace_shipped=False)
    assert afile.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_the_swap_through_a_link_replaces_the_folder_it_names_and_keeps_the_link(tmp_path):
    # Audit 805 F8: check_out let a linked --out through, then swap_in renamed the link
    # away, put a folder in its place and died on rmtree(link), leaving
    # .current.replaced-PID behind.
    import os

    release = tmp_path / "r1"
    release.mkdir()
    (release / "manifest.json").write_text("{}")
    (release / "notes.txt").write_text("keep")
    current = tmp_path / "current"
    os.symlink("r1", current)
    export.check_out(current, False)
    stage = export.open_stage(current)
    (stage / "manifest.json").write_text('{"new": 1}')
    export.swap_in(stage, current)
    assert current.is_symlink() and os.readlink(current) == "r1"
    assert (release / "manifest.json").read_text() == '{"new": 1}'
    assert (release / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "r1"]


def test_a_link_that_loops_is_refused_up_front(tmp_path):
    import os

    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(SystemExit, match="link that cannot be followed"):
        export.check_out(tmp_path / "loop", False)
