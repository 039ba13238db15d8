"""The lesion classifier end to end: train a step or two, export beside the U-Net, serve."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import export, train_lesion
from models.data import read_image, read_mask
from models.runtime import Runtime, mix_malignant_odds, recalibrate


@pytest.fixture(scope="module")
def lesion_run(tiny_run, tmp_path_factory):
    """Two tiny epochs on the lesions of :func:`tiny_run`'s split."""
    root, _ = tiny_run
    out = tmp_path_factory.mktemp("lesion")
    rc = train_lesion.main([
        "--data", str(root), "--out", str(out), "--epochs", "2", "--steps-per-epoch", "2",
        "--batch-size", "4", "--crop-size", "32", "--filters", "4", "8", "--verbose", "0",
        "--val-fraction", "0.34", "--seed", "42",
    ])
    assert rc == 0
    return out


def test_training_keeps_the_lesions_of_the_unets_split(tiny_run, lesion_run):
    _, run = tiny_run
    unet = json.loads((run / "split.json").read_text())
    own = json.loads((lesion_run / "split.json").read_text())
    assert own["val"] and own["train"]
    assert set(own["val"]) == {n for n in unet["val"] if not n.startswith("normal/")}
    assert set(own["train"]) == {n for n in unet["train"] if not n.startswith("normal/")}
    for name in ("final.keras", "history.csv", "learning_curves.png", "train_info.json"):
        assert (lesion_run / name).exists(), name
    header = (lesion_run / "history.csv").read_text().splitlines()[0]
    assert "val_auc" in header and "val_loss" in header
    assert (lesion_run / "backup").is_dir()


def test_resume_continues_the_run(tiny_run, lesion_run, tmp_path):
    import shutil

    root, _ = tiny_run
    out = tmp_path / "les"
    shutil.copytree(lesion_run, out)
    rc = train_lesion.main([
        "--data", str(root), "--out", str(out), "--epochs", "3", "--steps-per-epoch", "2",
        "--batch-size", "4", "--crop-size", "32", "--filters", "4", "8", "--verbose", "0",
        "--val-fraction", "0.34", "--seed", "42", "--resume",
    ])
    assert rc == 0
    rows = (out / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]  # epoch 3 appended only


def test_refit_on_every_lesion(tiny_run, tmp_path):
    root, _ = tiny_run
    out = tmp_path / "refit"
    rc = train_lesion.main([
        "--data", str(root), "--out", str(out), "--epochs", "1", "--steps-per-epoch", "1",
        "--batch-size", "4", "--crop-size", "32", "--filters", "4", "--verbose", "0",
        "--val-fraction", "0",
    ])
    assert rc == 0
    split = json.loads((out / "split.json").read_text())
    assert split["val"] == [] and len(split["train"]) == 12  # every lesion, no normal
    info = json.loads((out / "train_info.json").read_text())
    assert info["val_images"] == 0 and info["train_images"] == 12
    assert (out / "learning_curves.png").stat().st_size > 0 and (out / "final.keras").exists()


def test_patience_without_validation_is_refused(tiny_run, tmp_path):
    root, _ = tiny_run
    with pytest.raises(SystemExit):
        train_lesion.main(["--data", str(root), "--out", str(tmp_path / "x"),
                           "--val-fraction", "0", "--patience", "3"])


@pytest.fixture(scope="module")
def exported(tiny_run, lesion_run, tmp_path_factory):
    """:func:`tiny_run` exported with and without the lesion classifier (Keras and LiteRT files)."""
    root, run = tiny_run
    plain, both = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("both")
    card = tmp_path_factory.mktemp("card")
    common = ["--run", str(run), "--data", str(root), "--card-dir", str(card),
              "--version", "t", "--tta", "off", "--no-recalibrate"]
    # Both with LiteRT: the export tunes the temperature through it, so they share one.
    assert export.main([*common, "--out", str(plain)]) == 0
    assert export.main([*common, "--out", str(both), "--lesion-run", str(lesion_run),
                        "--lesion-weight", "0.5"]) == 0
    assert (card / "learning_curves_lesion.png").stat().st_size > 0
    return root, plain, both


def _lesion_image(root):
    path = root / "malignant" / "malignant (5).png"
    grey = read_image(path)
    return grey, read_mask([root / "malignant" / "malignant (5)_mask.png"], grey.shape)


def test_export_records_the_lesion_classifier(exported):
    _, _, both = exported
    spec = json.loads((both / "manifest.json").read_text())["lesion_classifier"]
    assert spec["weight"] == 0.5 and spec["crop_size"] == 32 and spec["members"] == 1
    for f in spec["files"].values():
        assert (both / f).stat().st_size > 0
    manifest = json.loads((both / "manifest.json").read_text())
    cls = manifest["metrics"]["classification"]
    # Calibration is reported for the blend that is served, and for the head alone.
    assert 0 <= cls["ece_crossfit_2fold"] <= 1 and "ece_crossfit_2fold_unet_head" in cls
    draws = cls["ece_crossfit_2fold_5_draws"]
    assert draws["min"] <= cls["ece_crossfit_2fold"] == draws["mean"] <= draws["max"]
    # The blend has its own temperature; without a lesion classifier there is nothing to fit.
    # fit_temperature searches 0.25 to 8 and refines by 5 % either side of the best.
    assert 0.25 * 0.95 <= manifest["blend_temperature"] <= 8 * 1.05
    plain = json.loads((exported[1] / "manifest.json").read_text())
    assert plain["blend_temperature"] == 1.0


def test_runtime_blends_only_benign_and_malignant(exported):
    root, plain, both = exported
    grey, mask = _lesion_image(root)
    a = Runtime(plain, backend="keras").classify(grey, mask=mask)
    rt = Runtime(both, backend="keras").load()
    b = rt.classify(grey, mask=mask)
    assert rt.info()["lesion_classifier"] is True
    assert sum(b.values()) == pytest.approx(1.0)
    # Same temperature and head: the lesion classifier splits the head's P(lesion), then
    # the blend's own temperature tempers the result.
    temp = json.loads((both / "manifest.json").read_text())["temperature"]
    assert temp == json.loads((plain / "manifest.json").read_text())["temperature"]
    mixed = mix_malignant_odds(a, rt.lesion_odds(grey, mask=mask), 0.5)
    assert mixed["normal"] == a["normal"] and mixed["malignant"] != pytest.approx(a["malignant"])
    assert b == pytest.approx(recalibrate(mixed, rt.blend_temperature), abs=1e-6)
    # An empty outline leaves nothing to crop: the head's answer stands, tempered alike.
    empty = np.zeros_like(mask)
    head = Runtime(plain, backend="keras").classify(grey, mask=empty)
    assert rt.classify(grey, mask=empty) == pytest.approx(
        recalibrate(head, rt.blend_temperature), abs=1e-6)


def test_lesion_odds_follow_the_outline(exported):
    root, plain, both = exported
    grey, mask = _lesion_image(root)
    rt = Runtime(both, backend="keras")
    odds = rt.lesion_odds(grey, mask=mask)
    assert isinstance(odds, float) and np.isfinite(odds)
    shifted = np.roll(mask, grey.shape[1] // 3, axis=1)  # another place, another crop
    assert rt.lesion_odds(grey, mask=shifted) != pytest.approx(odds, abs=1e-6)
    assert rt.lesion_odds(grey, mask=np.zeros_like(mask)) is None
    assert Runtime(plain, backend="keras").lesion_odds(grey, mask=mask) is None
    with pytest.raises(ValueError, match="mask"):
        rt.lesion_odds(grey, mask=np.ones((4, 4), bool))


def test_litert_and_keras_lesion_classifiers_agree(exported):
    root, _, both = exported
    grey, mask = _lesion_image(root)
    lite = Runtime(both, backend="litert").load()
    assert lite.backend_used == "litert"
    k, t = Runtime(both, backend="keras").classify(grey, mask=mask), lite.classify(grey, mask=mask)
    for c in k:
        assert t[c] == pytest.approx(k[c], abs=0.01)


def test_export_refuses_a_lesion_run_on_another_split(tiny_run, lesion_run, tmp_path):
    import shutil

    root, run = tiny_run
    other = tmp_path / "other"
    shutil.copytree(lesion_run, other)
    split = json.loads((other / "split.json").read_text())
    split["train"], split["val"] = split["train"][:-1], split["val"] + split["train"][-1:]
    (other / "split.json").write_text(json.dumps(split))
    with pytest.raises(SystemExit, match="split"):
        export.main(["--run", str(run), "--data", str(root), "--out", str(tmp_path / "w"),
                     "--lesion-run", str(other), "--no-litert"])
    with pytest.raises(SystemExit, match="lesion-weight"):
        export.main(["--run", str(run), "--data", str(root), "--out", str(tmp_path / "w"),
                     "--lesion-run", str(lesion_run), "--lesion-weight", "1.5", "--no-litert"])
