"""The outline refiner end to end: train a step or two, export beside the U-Net, serve."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy import ndimage

from models import export, train_refine
from models.data import read_image
from models.lesion_crop import lesion_box
from models.runtime import Runtime

TINY = ["--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "4", "--crop-size", "32",
        "--filters", "4", "8", "--verbose", "0", "--seed", "42"]


@pytest.fixture(scope="module")
def refine_run(tiny_run, tmp_path_factory):
    """Two tiny epochs on the lesions of :func:`tiny_run`'s split."""
    root, _ = tiny_run
    out = tmp_path_factory.mktemp("refine")
    assert train_refine.main(["--data", str(root), "--out", str(out), *TINY,
                              "--val-fraction", "0.34"]) == 0
    return out


def test_training_keeps_the_lesions_of_the_unets_split(tiny_run, refine_run):
    _, run = tiny_run
    unet = json.loads((run / "split.json").read_text())
    own = json.loads((refine_run / "split.json").read_text())
    assert own["val"] and own["train"]
    assert set(own["val"]) == {n for n in unet["val"] if not n.startswith("normal/")}
    assert set(own["train"]) == {n for n in unet["train"] if not n.startswith("normal/")}
    for name in ("final.keras", "history.csv", "learning_curves.png", "train_info.json"):
        assert (refine_run / name).exists(), name
    header = (refine_run / "history.csv").read_text().splitlines()[0]
    assert "val_dice" in header and "val_loss" in header
    info = json.loads((refine_run / "train_info.json").read_text())
    assert info["crop_size"] == 32 and info["filters"] == [4, 8]


def test_resume_continues_the_run(tiny_run, refine_run, tmp_path):
    root, _ = tiny_run
    out = tmp_path / "ref"
    shutil.copytree(refine_run, out)
    args = ["--data", str(root), "--out", str(out), *TINY, "--val-fraction", "0.34", "--resume"]
    args[args.index("--epochs") + 1] = "3"
    assert train_refine.main(args) == 0
    rows = (out / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]  # epoch 3 appended only


def test_refit_on_every_lesion(tiny_run, tmp_path):
    root, _ = tiny_run
    out = tmp_path / "refit"
    assert train_refine.main(["--data", str(root), "--out", str(out), *TINY,
                              "--val-fraction", "0"]) == 0
    split = json.loads((out / "split.json").read_text())
    assert split["val"] == [] and len(split["train"]) == 12  # every lesion, no normal
    assert (out / "learning_curves.png").stat().st_size > 0


def test_squares_follow_the_true_outline(tiny_run):
    from models.data import load_samples

    root, _ = tiny_run
    lesions = [s for s in load_samples(root) if s.class_name != "normal"][:3]
    sq = train_refine.load_squares(lesions, 24, 0.5)
    assert sq.shape == (3, 24, 24, 2) and sq.dtype == np.float32
    image, mask = sq[..., 0], sq[..., 1]
    assert 0.0 <= image.min() and image.max() <= 1.0
    # The lesion fills the middle of its square (side = 2 x its longer side) ...
    assert (mask[:, 10:14, 10:14] > 0.5).mean() > 0.5
    # ... and never the corners.
    assert mask[:, :2, :2].max() < 0.5


def test_augmented_squares_keep_the_mask_binary_and_the_image_in_range(tiny_run):
    import tensorflow as tf

    from models.data import load_samples

    root, _ = tiny_run
    lesions = [s for s in load_samples(root) if s.class_name != "normal"][:4]
    ctx = train_refine.load_squares(lesions, 48, 1.0)
    tf.random.set_seed(0)
    img, msk = train_refine.augment_squares(tf.constant(ctx), 24, 0.6)
    img, msk = img.numpy(), msk.numpy()
    assert img.shape == msk.shape == (4, 24, 24, 1)
    assert set(np.unique(msk)) <= {0.0, 1.0} and msk.sum() > 0
    assert img.min() >= 0.0 and img.max() <= 1.0


@pytest.fixture(scope="module")
def exported(tiny_run, refine_run, tmp_path_factory):
    """:func:`tiny_run` exported without and with the refiner (weights 1 and 0)."""
    root, run = tiny_run
    card = tmp_path_factory.mktemp("card")
    common = ["--run", str(run), "--data", str(root), "--card-dir", str(card),
              "--version", "t", "--tta", "off", "--no-recalibrate"]
    outs = {}
    for key, extra in (("plain", []),
                       ("one", ["--refine-run", str(refine_run), "--refine-weight", "1"]),
                       ("zero", ["--refine-run", str(refine_run), "--refine-weight", "0"])):
        outs[key] = tmp_path_factory.mktemp(key)
        assert export.main([*common, "--out", str(outs[key]), *extra]) == 0
    assert (card / "learning_curves_refiner.png").stat().st_size > 0
    return root, outs


def _image(root):
    return read_image(root / "malignant" / "malignant (5).png")


# A low threshold and no gate, so that the tiny U-Net outlines something to refine.
LOOSE = {"threshold": 0.05, "normal_gate": 2.0, "min_area_frac": 0.0, "keep_relative": 0.0}


def test_export_records_the_refiner(exported):
    _, outs = exported
    manifest = json.loads((outs["one"] / "manifest.json").read_text())
    spec = manifest["refiner"]
    assert spec["weight"] == 1.0 and spec["crop_size"] == 32 and spec["filters"] == [4, 8]
    assert set(spec["files"]) == {"keras", "litert"}
    for f in spec["files"].values():
        assert (outs["one"] / f).stat().st_size > 0
    assert "refiner" not in json.loads((outs["plain"] / "manifest.json").read_text())
    assert Runtime(outs["one"], backend="keras").info()["refiner"] is True
    assert Runtime(outs["plain"], backend="keras").info()["refiner"] is False


def test_refined_outline_stays_in_the_square_of_the_first(exported):
    root, outs = exported
    grey = _image(root)
    # The tiny U-Net's top tenth as the first outline, so that it is neither empty nor everything.
    cut = float(np.quantile(Runtime(outs["plain"], backend="keras").segment(grey), 0.9))
    loose = {**LOOSE, "threshold": cut}
    first = Runtime(outs["plain"], backend="keras", postprocess=loose).predict_mask(grey)
    assert 0 < first.mean() < 0.5
    refined = Runtime(outs["one"], backend="keras", postprocess=loose).predict_mask(grey)
    # Each region of the first outline gets its own square.
    margin = json.loads((outs["one"] / "manifest.json").read_text())["refiner"]["margin"]
    labels, n = ndimage.label(first, structure=np.ones((3, 3), bool))
    square = np.zeros_like(first)
    for i in range(1, n + 1):
        x0, y0, x1, y1 = lesion_box(labels == i, margin)
        square[max(0, y0):y1, max(0, x0):x1] = True
    assert not refined[~square].any()
    # A refiner sure of lesion everywhere fills the square (as far as the image goes) ...
    rt = Runtime(outs["one"], backend="keras", postprocess=loose).load()
    rt._refiner = lambda crop: np.ones(crop.shape[1:3], np.float32)
    np.testing.assert_array_equal(rt.predict_mask(grey), square)
    # ... and one that sees no lesion leaves the first outline: the gate, not the
    # refiner, decides whether there is a lesion.
    rt = Runtime(outs["one"], backend="keras", postprocess=loose).load()
    rt._refiner = lambda crop: np.zeros(crop.shape[1:3], np.float32)
    np.testing.assert_array_equal(rt.predict_mask(grey), first)
    # Weight 0 keeps the U-Net's map: the outline is the first one.
    kept = Runtime(outs["zero"], backend="keras", postprocess=loose).predict_mask(grey)
    np.testing.assert_array_equal(kept, first)


def test_nothing_to_refine_on_an_empty_outline(exported):
    root, outs = exported
    grey = _image(root)
    empty = {**LOOSE, "min_confidence": 1.01}  # no outline is that sure
    assert not Runtime(outs["one"], backend="keras", postprocess=empty).predict_mask(grey).any()


def test_litert_and_keras_refiners_agree(exported):
    _, outs = exported
    lite = Runtime(outs["one"], backend="litert").load()
    keras_rt = Runtime(outs["one"], backend="keras").load()
    assert lite.backend_used == "litert"
    crop = np.random.default_rng(1).random((1, 32, 32, 1)).astype(np.float32)
    a, b = keras_rt._refiner(crop), lite._refiner(crop)
    assert a.shape == b.shape == (32, 32)
    np.testing.assert_allclose(a, b, atol=0.01)


def test_export_refuses_a_refiner_on_another_split_or_weight(tiny_run, refine_run, tmp_path):
    root, run = tiny_run
    other = tmp_path / "other"
    shutil.copytree(refine_run, other)
    split = json.loads((other / "split.json").read_text())
    split["train"], split["val"] = split["train"][:-1], split["val"] + split["train"][-1:]
    (other / "split.json").write_text(json.dumps(split))
    base = ["--run", str(run), "--data", str(root), "--out", str(tmp_path / "w"), "--no-litert"]
    with pytest.raises(SystemExit, match="split"):
        export.main([*base, "--refine-run", str(other)])
    with pytest.raises(SystemExit, match="refine-weight"):
        export.main([*base, "--refine-run", str(refine_run), "--refine-weight", "-0.1"])


def test_each_region_is_redrawn_in_its_own_square(exported):
    root, outs = exported
    grey = _image(root)
    rt = Runtime(outs["one"], backend="keras", postprocess=LOOSE).load()
    rt._refiner = lambda crop: np.ones(crop.shape[1:3], np.float32)
    h, w = grey.shape
    regions = [(slice(5, 10), slice(5, 10)), (slice(h - 12, h - 6), slice(w - 14, w - 8))]
    first = np.zeros(grey.shape, bool)
    expected = np.zeros(grey.shape, bool)
    for rows, cols in regions:  # two small regions in opposite corners
        first[rows, cols] = True
        part = np.zeros(grey.shape, bool)
        part[rows, cols] = True
        x0, y0, x1, y1 = lesion_box(part, rt.refiner_spec["margin"])
        expected[max(0, y0):y1, max(0, x0):x1] = True
    served = rt._refine(grey, lambda inside: np.full(grey.shape, 0.5, np.float32)[inside],
                        first, rt.settings)
    # Two squares, not one spanning the image between them.
    np.testing.assert_array_equal(served, expected)
    assert not served[h // 2, w // 2]


def test_outline_in_a_users_box_is_refined_and_stays_in_the_box(exported):
    root, outs = exported
    grey = _image(root)
    h, w = grey.shape
    box = (w // 4, h // 4, w // 2, h // 2)
    x0, y0, x1, y1 = box
    in_box = np.zeros(grey.shape, bool)
    in_box[y0:y1, x0:x1] = True
    # The U-Net's outline in the box, as it is without a refiner.
    first = Runtime(outs["plain"], backend="keras", postprocess=LOOSE).predict_mask(grey, box=box)
    assert first.any() and not first[~in_box].any()
    # A refiner sure of lesion everywhere fills each region's square, cut at the box:
    # the user's box bounds the outline.
    rt = Runtime(outs["one"], backend="keras", postprocess=LOOSE).load()
    rt._refiner = lambda crop: np.ones(crop.shape[1:3], np.float32)
    labels, n = ndimage.label(first, structure=np.ones((3, 3), bool))
    square = np.zeros_like(first)
    for i in range(1, n + 1):
        sx0, sy0, sx1, sy1 = lesion_box(labels == i, rt.refiner_spec["margin"])
        square[max(0, sy0):sy1, max(0, sx0):sx1] = True
    np.testing.assert_array_equal(rt.predict_mask(grey, box=box), square & in_box)
    # One that sees no lesion leaves the U-Net's outline: the user said there is one.
    rt._refiner = lambda crop: np.zeros(crop.shape[1:3], np.float32)
    np.testing.assert_array_equal(rt.predict_mask(grey, box=box), first)
    # Weight 0 keeps the U-Net's map.
    zero = Runtime(outs["zero"], backend="keras", postprocess=LOOSE)
    np.testing.assert_array_equal(zero.predict_mask(grey, box=box), first)
