"""Unpacking an export trained on a split into run folders, and exporting them again."""

import json

import numpy as np
import pytest

from models import export, unpack
from models.data import load_samples


def test_unpacked_members_export_to_the_same_network_and_figures(tiny_export, synthetic_busi,
                                                                  tmp_path):
    from models.networks import build_from_architecture, load_half_weights

    weights, split_file = tiny_export
    root, _ = synthetic_busi
    runs = unpack.unpack(weights, root, tmp_path / "m")
    assert [r.name for r in runs] == ["m0"]
    # The split drawn again is the run's own, image for image.
    assert json.loads((runs[0] / "split.json").read_text()) == json.loads(split_file.read_text())

    again = tmp_path / "again"
    rc = export.main(["--run", str(runs[0]), "--data", str(root), "--out", str(again),
                      "--card-dir", str(tmp_path / "card"), "--no-litert", "--tta", "off",
                      "--no-recalibrate"])
    assert rc == 0
    first, second = (json.loads((w / "manifest.json").read_text()) for w in (weights, again))
    assert second["architecture"] == first["architecture"]
    nets = []
    for w, m in ((weights, first), (again, second)):
        net = build_from_architecture(m["architecture"])
        load_half_weights(net, w / m["files"]["keras"])
        nets.append(net.get_weights())
    for a, b in zip(*nets, strict=True):
        np.testing.assert_array_equal(a, b)
    assert second["metrics"]["segmentation"] == first["metrics"]["segmentation"]


def test_a_refitted_export_or_another_folder_is_refused(tiny_export, synthetic_busi, tmp_path):
    weights, _ = tiny_export
    root, _ = synthetic_busi
    manifest = json.loads((weights / "manifest.json").read_text())
    refit = {**manifest, "training": {**manifest["training"], "val_images": 0}}
    with pytest.raises(ValueError, match="refitted on every image"):
        unpack.export_split(refit, load_samples(root))
    # Fewer images than it was trained on: the split cannot be the same.
    with pytest.raises(ValueError, match="another data folder"):
        unpack.export_split(manifest, load_samples(root)[:-3])
    with pytest.raises(SystemExit, match="models.unpack: .*no manifest|manifest.json"):
        unpack.main(["--export", str(tmp_path), "--data", str(root), "--out", str(tmp_path / "r")])
