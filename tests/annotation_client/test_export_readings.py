"""Which reading of an image the export takes, and how it names what it leaves out
(audit 818 F2, F3)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from test_export import _image, _save

from annotation_client import AnnotationStore
from annotation_client._export import export_busi
from annotation_client.export import main
from models.data import load_samples, read_mask


@pytest.fixture
def study(tmp_path):
    """A worklist of one image, ``study/a.png``, that Dr Ada read as benign (v1)."""
    worklist, store = tmp_path / "worklist", AnnotationStore(tmp_path / "data")
    grey = np.arange(80, dtype=np.uint8).reshape(8, 10) * 3
    lesion = np.zeros((8, 10), bool)
    lesion[2:6, 2:8] = True
    data = _image(worklist / "study" / "a.png", grey)
    sha = _save(store, data, label="benign", mask=lesion, worklist_path="study/a.png")
    return {"worklist": worklist, "data": tmp_path / "data", "store": store, "bytes": data,
            "sha": sha, "lesion": lesion}


def _index(out):
    with open(out / "index.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_an_outline_saved_without_a_label_does_not_drop_a_labelled_reading(
        study, tmp_path, capsys, monkeypatch):
    # Dr D opened the image Dr Ada had labelled and saved an outline alone: the image is
    # read (the progress counts it), and Dr Ada's labelled reading is what is exported.
    grown = np.zeros((8, 10), bool)
    grown[1:7, 1:9] = True
    _save(study["store"], study["bytes"], label=None, mask=grown, worklist_path="study/a.png",
          annotator="Dr D", day=2)
    report = export_busi(study["data"], study["worklist"], tmp_path / "direct")
    assert report.exported == {"normal": 0, "benign": 1, "malignant": 0}
    assert report.skipped == []
    assert report.fallbacks == [(
        "study/a.png", "exported v001 by Dr Ada, its newest version with a final label; "
        "passed over, without one: v002 by Dr D")]
    (row,) = _index(tmp_path / "direct")
    assert (row["version"], row["annotator"], row["readers"]) == ("1", "Dr Ada", "1")
    (sample,) = load_samples(tmp_path / "direct")
    assert np.array_equal(read_mask(sample.mask_paths, (8, 10)), study["lesion"])  # v1's
    # The command line says so, naming the case.
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(study["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(study["worklist"]))
    assert main(["--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "exported 1 image(s)" in printed
    assert ("older version of study/a.png: exported v001 by Dr Ada, its newest version with "
            "a final label; passed over, without one: v002 by Dr D") in printed
    assert "skipped" not in printed and "left out" not in printed


def test_an_image_no_reader_labelled_is_named_by_its_case_and_counted(
        study, tmp_path, capsys, monkeypatch):
    store, worklist = study["store"], study["worklist"]
    other = _image(worklist / "study" / "b.png", np.arange(80, dtype=np.uint8).reshape(8, 10) + 9)
    sha_b = _save(store, other, label=None, mask=study["lesion"], worklist_path="study/b.png")
    _save(store, other, label=None, mask=study["lesion"], worklist_path="study/b.png",
          annotator="Dr D", day=2)
    upload = _save(store, b"uploaded bytes", label="benign", mask=study["lesion"],
                   worklist_path=None)  # "x", kept nowhere: left out for another reason
    report = export_busi(study["data"], worklist, tmp_path / "direct")
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    assert reasons[sha_b] == "no final label in any of its 2 versions (the latest: v002 by Dr D)"
    assert report.cases == {str(store.folder(sha_b)): "study/b.png",
                            str(store.folder(upload)): "x (uploaded)"}
    assert report.skipped_why == {"with no final label": 1, "for other reasons": 1}
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(study["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(worklist))
    assert main(["--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (f"skipped study/b.png ({store.folder(sha_b)}): no final label in any of its 2 "
            "versions (the latest: v002 by Dr D)") in lines
    assert any(line.startswith(f"skipped x (uploaded) ({store.folder(upload)}): uploaded,")
               for line in lines)
    assert lines[-1] == ("left out 2 image(s), each listed above: 1 for other reasons, "
                         "1 with no final label")


def test_a_normal_reading_with_an_outline_is_left_out_and_said(study, tmp_path, capsys,
                                                               monkeypatch):
    # Dr C read the image as normal but left an outline drawn (the page's yellow Check
    # lets it be saved): BUSI's normal images have empty masks, so exported as it is the
    # image would be scored both as a lesion and as a normal image.
    store, worklist = study["store"], study["worklist"]
    _save(store, study["bytes"], label="normal", mask=study["lesion"],
          worklist_path="study/a.png", annotator="Dr C", day=2)
    clear = _image(worklist / "study" / "n.png", np.arange(80, dtype=np.uint8).reshape(8, 10) * 2)
    _save(store, clear, label="normal", mask=np.zeros((8, 10), bool),
          worklist_path="study/n.png")  # a normal reading without an outline: exported
    report = export_busi(study["data"], worklist, tmp_path / "direct")
    assert report.exported == {"normal": 1, "benign": 0, "malignant": 0}
    reasons = {where.rsplit("/", 1)[-1]: why for where, why in report.skipped}
    why = ("v002 by Dr C is labelled normal but outlines 24 px: a normal image's mask is "
           "empty in BUSI's layout, so which one is the reading cannot be told (revise its "
           "label or its outline to export it)")
    assert reasons == {study["sha"]: why}
    assert report.cases == {str(store.folder(study["sha"])): "study/a.png"}
    assert report.skipped_why == {"labelled normal with an outline": 1}
    (sample,) = load_samples(tmp_path / "direct")
    assert sample.class_name == "normal" and not read_mask(sample.mask_paths, (8, 10)).any()
    assert study["sha"] not in {row["sha256"] for row in _index(tmp_path / "direct")}
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(study["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(worklist))
    assert main(["--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"skipped study/a.png ({store.folder(study['sha'])}): {why}" in lines
    assert lines[-1] == "left out 1 image(s), each listed above: 1 labelled normal with an outline"


def test_a_lesion_reading_with_no_outline_is_exported_without_a_mask_file(
        study, tmp_path, capsys, monkeypatch):
    # Dr M read the image as malignant but drew no outline: its label is a reading the
    # classifier can learn and be scored on, but an empty mask file beside it would say
    # "no lesion here" of an image read as a lesion, and train the U-Net so.
    store, worklist = study["store"], study["worklist"]
    _save(store, study["bytes"], label="malignant", mask=np.zeros((8, 10), bool),
          worklist_path="study/a.png", annotator="Dr M", day=2)
    report = export_busi(study["data"], worklist, tmp_path / "direct")
    assert report.exported == {"normal": 0, "benign": 0, "malignant": 1}
    assert report.skipped == []
    what = ("v002 by Dr M is labelled malignant but outlines nothing: exported without a "
            "mask file, so models.evaluate scores its label only and models.train leaves it "
            "out (draw its outline to export it with one)")
    assert report.unoutlined == [("malignant/malignant (1).png", what)]
    out = tmp_path / "direct"
    assert (out / "malignant" / "malignant (1).png").is_file()
    assert not (out / "malignant" / "malignant (1)_mask.png").exists()
    (row,) = _index(out)
    assert row["masks"] == "0"
    # The models' loader sees a lesion without a mask: left out of training, scored for
    # its label only.
    (sample,) = load_samples(out)
    assert sample.class_name == "malignant" and sample.mask_paths == []
    assert sample.listed_masks == 0
    monkeypatch.setenv("SONOTRACE_DATA_DIR", str(study["data"]))
    monkeypatch.setenv("SONOTRACE_WORKLIST_DIR", str(worklist))
    assert main(["--out", str(tmp_path / "out")]) == 0
    assert f"no mask for malignant/malignant (1).png: {what}" in capsys.readouterr().out
