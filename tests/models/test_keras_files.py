"""An export's networks as standard ``.keras`` files (``models.keras_files``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.data import load_samples, read_image, read_mask
from models.keras_files import main, write_keras_files
from models.runtime import Runtime


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("keras") / "export"
    manifest = write_keras_files(Runtime().weights_dir, out)
    return out, manifest


def test_each_network_is_a_keras_file_plain_keras_opens(converted):
    import keras

    import models.networks  # noqa: F401  (registers the custom layers)

    out, manifest = converted
    names = [manifest["files"]["keras"], manifest["lesion_classifier"]["files"]["keras"],
             manifest["refiner"]["files"]["keras"]]
    assert names == ["sonotrace_unet.keras", "lesion_classifier.keras", "lesion_refiner.keras"]
    shipped = json.loads((Runtime().weights_dir / "manifest.json").read_text())
    counts = {"sonotrace_unet.keras": 4_365_672, "lesion_classifier.keras": 553_489,
              "lesion_refiner.keras": 213_765}
    for name in names:
        model = keras.models.load_model(out / name, compile=False)
        assert model.count_params() == counts[name]
    # The LiteRT files come along, and the manifest names what is in the folder.
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert {p.name for p in out.iterdir()} == {"manifest.json", *names} | {
        manifest["files"]["litert"], manifest["lesion_classifier"]["files"]["litert"],
        manifest["refiner"]["files"]["litert"]}
    assert manifest["version"] == shipped["version"]
    assert manifest["files"]["litert"] == shipped["files"]["litert"]


def test_the_keras_files_serve_the_same_answers_as_the_shipped_weights(converted, busi_dir):
    out, _ = converted
    sample = next(x for x in load_samples(busi_dir) if x.name == "benign (102)")
    grey = read_image(sample.image_path)
    truth = read_mask(sample.mask_paths, grey.shape)
    from_npz, from_keras = Runtime(backend="keras"), Runtime(out, backend="keras")
    np.testing.assert_allclose(from_keras.segment(grey), from_npz.segment(grey), atol=1e-5)
    assert np.array_equal(from_keras.predict_mask(grey), from_npz.predict_mask(grey))
    for mask in (None, truth):
        a, b = from_keras.classify(grey, mask=mask), from_npz.classify(grey, mask=mask)
        assert max(abs(a[c] - b[c]) for c in a) < 1e-5


def test_a_folder_that_is_not_empty_or_not_an_export_is_refused(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "taken")])
    assert "is not an empty folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no manifest.json"):
        write_keras_files(tmp_path, tmp_path / "out")
