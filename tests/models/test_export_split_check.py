"""tune, evaluate and robustness refuse a --split that is not the export's own (no training)."""

from __future__ import annotations

import json

import pytest

from models import evaluate, robustness, tune


@pytest.fixture
def other_split(tiny_export, tmp_path):
    """The export's split with one validation and one training image swapped."""
    _, split = tiny_export
    own = json.loads(split.read_text())
    train, val = list(own["train"]), list(own["val"])
    train[0], val[0] = val[0], train[0]
    path = tmp_path / "other_split.json"
    path.write_text(json.dumps({"train": train, "val": val}))
    return path


@pytest.mark.parametrize("tool", ["tune", "evaluate", "robustness"])
def test_a_split_that_is_not_the_exports_own_is_refused(tool, synthetic_busi, tiny_export,
                                                        other_split, capsys):
    root, _ = synthetic_busi
    weights, _ = tiny_export
    before = (weights / "manifest.json").read_text()
    common = ["--data", str(root), "--weights", str(weights), "--split", str(other_split)]
    if tool == "tune":
        rc = tune.main(common + ["--tta", "off"])
    elif tool == "evaluate":
        rc = evaluate.main(common + ["--backend", "keras"])
    else:
        rc = robustness.main(common + ["--backend", "keras", "--perturb", "hflip"])
    assert rc == 2
    assert "is not the split these weights were trained on" in capsys.readouterr().err
    assert (weights / "manifest.json").read_text() == before


def test_check_export_split_by_digest_by_drawing_it_again_or_by_size(synthetic_busi, tiny_export,
                                                                      other_split):
    root, _ = synthetic_busi
    weights, split = tiny_export
    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["training"]["split_sha256"] == evaluate.split_digest(
        json.loads(split.read_text()))
    assert evaluate.check_export_split(manifest, split, root) is None
    assert evaluate.check_export_split(manifest, other_split, root)
    # An export from before the digest: the split is drawn again from its record.
    del manifest["training"]["split_sha256"]
    assert evaluate.check_export_split(manifest, split, root) is None
    assert evaluate.check_export_split(manifest, other_split, root)
    # No seed recorded: only the size can be checked.
    manifest["training"]["args"] = {}
    assert evaluate.check_export_split(manifest, other_split, root) is None
    half = json.loads(split.read_text())
    half["val"] = half["val"][:1]
    other_split.write_text(json.dumps(half))
    assert "val" in evaluate.check_export_split(manifest, other_split, root)
    # A refit has no held-out images to protect: left to the callers' notes.
    manifest["training"]["validated_twin"] = {"version": "x"}
    assert evaluate.check_export_split(manifest, other_split, root) is None
