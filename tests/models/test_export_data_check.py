"""The export tunes and scores on the run's own split, and writes strict JSON (audit 803 F2).

Given another ``--data`` (a 7-image test folder), the export was tuned on the one
validation image it happened to hold while its manifest said 127; and a validation
split without a class wrote bare ``NaN`` into ``manifest.json``, which the model
server's strict JSON provider refuses (``/models`` answered 500).
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from models import export, train
from models.evaluate import strict_json


def _strict(text):
    def refuse(word):
        raise ValueError(f"not JSON: {word}")

    return json.loads(text, parse_constant=refuse)


def test_a_data_folder_without_the_runs_validation_images_is_refused(tiny_run, tmp_path):
    root, run = tiny_run
    data = tmp_path / "other"
    shutil.copytree(root, data)
    split = json.loads((run / "split.json").read_text())
    gone = split["val"][0]
    for p in (data / gone.split("/")[0]).glob(gone.split("/")[1] + "*"):
        p.unlink()
    out = tmp_path / "w"
    with pytest.raises(SystemExit, match=(
            rf"lacks 1 of the run's {len(split['val'])} validation images \({re.escape(gone)}.*"
            rf"the run recorded --data {root}")):
        export.main(["--run", str(run), "--data", str(data), "--out", str(out),
                     "--no-litert", "--tta", "off"])
    assert not out.exists()
    # Training images matter for the BatchNorm re-estimation only.
    export.check_data_holds_split(data, [], {"train": ["benign/x"], "val": []}, run,
                                  parts=("val",))
    with pytest.raises(SystemExit, match="lacks 1 of the run's 1 training images"):
        export.check_data_holds_split(data, [], {"train": ["benign/x"], "val": []}, run)


def test_strict_json_writes_null_for_what_cannot_be_computed():
    text = strict_json({"recall": [float("nan"), 0.5], "auc": {"normal": float("inf")}})
    assert _strict(text) == {"recall": [None, 0.5], "auc": {"normal": None}}


def test_a_validation_split_without_a_class_writes_a_strict_manifest(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    data = tmp_path / "lesions"
    shutil.copytree(root, data)
    shutil.rmtree(data / "normal")
    (data / "index.csv").unlink()
    run = tmp_path / "run"
    assert train.main(["--data", str(data), "--out", str(run), "--epochs", "1",
                       "--steps-per-epoch", "1", "--batch-size", "4", "--input-size", "32",
                       "--base-filters", "4", "--verbose", "0", "--val-fraction", "0.34"]) == 0
    out = tmp_path / "w"
    assert export.main(["--run", str(run), "--data", str(data), "--out", str(out),
                        "--card-dir", str(tmp_path / "card"), "--no-litert",
                        "--tta", "off"]) == 0
    manifest = _strict((out / "manifest.json").read_text())
    assert manifest["metrics"]["segmentation"]["normal_predicted_empty"] is None
    _strict((run / "val_metrics.json").read_text())
