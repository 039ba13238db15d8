"""The perturbations on tiny hand-made images, and the robustness report on real BUSI images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import robustness
from models.robustness import (
    PERTURBATIONS,
    brightness,
    compare,
    contrast,
    crop_borders,
    down_up,
    flip_horizontal,
    gamma,
    jpeg,
    paired_interval,
    rescale,
    speckle,
)

BY_NAME = {p.name: p for p in PERTURBATIONS}
RAMP = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)  # 0..230, every value distinct


# -- photometric ----------------------------------------------------------------------
def test_brightness_scales_rounds_and_clips_at_255():
    img = np.array([[0, 10, 100], [200, 212, 213]], np.uint8)
    assert brightness(img, 1.2).tolist() == [[0, 12, 120], [240, 254, 255]]
    assert brightness(img, 0.8).tolist() == [[0, 8, 80], [160, 170, 170]]  # 169.6, 170.4


def test_contrast_is_about_the_mean():
    img = np.array([[40, 80], [120, 160]], np.uint8)  # mean 100
    assert contrast(img, 0.5).tolist() == [[70, 90], [110, 130]]
    assert contrast(img, 1.25).tolist() == [[25, 75], [125, 175]]
    assert contrast(np.array([[0, 250]], np.uint8), 1.25).tolist() == [[0, 255]]  # clipped


def test_contrast_of_a_flat_image_changes_nothing():
    img = np.full((3, 5), 77, np.uint8)
    assert np.array_equal(contrast(img, 1.25), img)


def test_gamma_keeps_black_and_white_and_bends_the_middle():
    img = np.array([[0, 64, 128, 255]], np.uint8)
    # 255 * (64/255) ** 0.8 = 84.4, (128/255) ** 0.8 -> 146.9; ** 1.25 -> 45.3, 107.7
    assert gamma(img, 0.8).tolist() == [[0, 84, 147, 255]]
    assert gamma(img, 1.25).tolist() == [[0, 45, 108, 255]]
    assert np.array_equal(gamma(RAMP, 1.0), RAMP)


def test_speckle_is_seeded_multiplicative_and_mean_preserving():
    img = np.full((200, 300), 100, np.uint8)
    a, b = speckle(img, 0.25, seed=3), speckle(img, 0.25, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, speckle(img, 0.25, seed=4))
    assert abs(a.mean() - 100) < 1.0 and abs(a.std() - 25) < 1.0
    assert not speckle(np.zeros((5, 5), np.uint8), 0.25).any()  # black stays black


def test_jpeg_is_deterministic_and_changes_fine_texture():
    img = ((np.indices((32, 32)).sum(0) % 2) * 200 + 20).astype(np.uint8)  # checkerboard
    a = jpeg(img, 40)
    assert np.array_equal(a, jpeg(img, 40))
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.abs(a.astype(int) - img).mean() > 5
    flat = np.full((16, 16), 90, np.uint8)
    assert np.abs(jpeg(flat, 40).astype(int) - 90).max() <= 1


def test_half_resolution_keeps_the_size_and_a_flat_image():
    img = np.full((7, 9), 123, np.uint8)
    assert np.array_equal(down_up(img, 0.5), img)
    stripes = np.tile(np.array([0, 255], np.uint8), (8, 8))  # one-pixel stripes blur away
    out = down_up(stripes, 0.5)
    assert out.shape == (8, 16) and out.std() < stripes.std() / 4


@pytest.mark.parametrize("shape, factor, expected", [
    ((4, 6), 1.5, (6, 9)), ((10, 21), 1.5, (15, 32)), ((5, 5), 0.5, (2, 2)), ((3, 3), 0.1, (1, 1)),
])
def test_rescale_shapes(shape, factor, expected):
    assert rescale(np.zeros(shape, np.uint8), factor).shape == expected


def test_rescale_nearest_repeats_pixels():
    img = np.array([[0, 255], [255, 0]], np.uint8)
    out = rescale(img, 2.0, resample="nearest")
    assert out.tolist() == [[0, 0, 255, 255], [0, 0, 255, 255],
                            [255, 255, 0, 0], [255, 255, 0, 0]]


def test_flip_mirrors_columns_only():
    img = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    assert flip_horizontal(img).tolist() == [[3, 2, 1], [6, 5, 4]]
    assert np.array_equal(flip_horizontal(flip_horizontal(RAMP)), RAMP)


def test_crop_cuts_the_same_fraction_off_every_edge():
    img = np.arange(200, dtype=np.uint8).reshape(10, 20)
    out = crop_borders(img, 0.1)  # 1 row at top and bottom, 2 columns at each side
    assert out.shape == (8, 16)
    assert out[0, 0] == 22 and out[-1, -1] == 177
    assert np.array_equal(crop_borders(img, 0.0), img)


@pytest.mark.parametrize("p", PERTURBATIONS, ids=lambda p: p.name)
def test_every_perturbation_gives_uint8_and_leaves_its_input(p):
    img = np.random.default_rng(0).integers(0, 256, (40, 60), dtype=np.uint8)
    before = img.copy()
    out, mask = p.apply(img, np.zeros(img.shape, bool))
    assert out.dtype == np.uint8 and out.ndim == 2
    assert mask.dtype == bool and mask.shape == out.shape and not mask.any()
    assert np.array_equal(img, before)
    again, _ = p.apply(img, np.zeros(img.shape, bool))
    assert np.array_equal(out, again)  # deterministic, the noise too
    expected = {"resize1.5": (60, 90), "crop10": (32, 48)}.get(p.name, img.shape)
    assert out.shape == expected


def test_the_report_runs_every_kind_of_difference_the_card_lists():
    assert list(BY_NAME) == [
        "brightness+20", "brightness-20", "contrast0.8", "contrast1.25", "gamma0.8", "gamma1.25",
        "speckle0.25", "jpeg40", "half-res", "resize1.5", "hflip", "crop10",
    ]
    geometric = {p.name for p in PERTURBATIONS if p.mask_fn is not None}
    assert geometric == {"resize1.5", "hflip", "crop10"}


# -- the mask moves with the image -----------------------------------------------------
def _dark_rectangle(h, w, rows, cols):
    mask = np.zeros((h, w), bool)
    mask[rows, cols] = True
    return np.where(mask, 0, 255).astype(np.uint8), mask


@pytest.mark.parametrize("name", ["hflip", "crop10", "resize1.5"])
def test_geometric_perturbations_move_the_mask_with_the_image(name):
    img, mask = _dark_rectangle(20, 30, slice(2, 6), slice(4, 12))
    out, moved = BY_NAME[name].apply(img, mask)
    assert moved.shape == out.shape
    assert np.array_equal(out < 128, moved)


def test_geometric_masks_exactly():
    img, mask = _dark_rectangle(20, 30, slice(2, 6), slice(4, 12))
    _, flipped = BY_NAME["hflip"].apply(img, mask)
    assert np.array_equal(np.argwhere(flipped.any(0)).ravel(), np.arange(18, 26))
    _, cropped = BY_NAME["crop10"].apply(img, mask)  # 2 rows and 3 columns off each edge
    assert cropped.shape == (16, 24)
    assert np.array_equal(np.argwhere(cropped.any(1)).ravel(), np.arange(0, 4))
    assert np.array_equal(np.argwhere(cropped.any(0)).ravel(), np.arange(1, 9))
    _, bigger = BY_NAME["resize1.5"].apply(img, mask)  # nearest: row i takes floor(i / 1.5)
    assert bigger.shape == (30, 45)
    assert np.array_equal(np.argwhere(bigger.any(1)).ravel(), np.arange(3, 9))
    assert set(np.unique(bigger)) == {False, True}


def test_a_lesion_at_the_edge_is_cut_off_with_the_border():
    img, mask = _dark_rectangle(20, 30, slice(0, 2), slice(0, 3))
    out, cropped = BY_NAME["crop10"].apply(img, mask)
    assert not cropped.any() and (out >= 128).all()


@pytest.mark.parametrize("name", ["brightness+20", "jpeg40", "half-res", "speckle0.25"])
def test_photometric_perturbations_keep_the_mask(name):
    img, mask = _dark_rectangle(16, 16, slice(3, 9), slice(5, 11))
    _, kept = BY_NAME[name].apply(img, mask)
    assert np.array_equal(kept, mask) and kept is not mask


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda x: brightness(x, 1.2), lambda x: contrast(x, 0.8), lambda x: gamma(x, 0.8),
    lambda x: speckle(x, 0.25), lambda x: jpeg(x, 40), lambda x: rescale(x, 1.5),
    lambda x: down_up(x, 0.5), flip_horizontal, lambda x: crop_borders(x, 0.1),
])
def test_every_perturbation_refuses_bad_images(fn):
    with pytest.raises(TypeError, match="image"):
        fn(np.zeros((8, 8), np.float32))
    with pytest.raises(TypeError, match="image"):
        fn([[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="image"):
        fn(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="image"):
        fn(np.zeros((0, 8), np.uint8))


@pytest.mark.parametrize("call, error, name", [
    (lambda x: brightness(x, 0), ValueError, "factor"),
    (lambda x: brightness(x, -1.2), ValueError, "factor"),
    (lambda x: brightness(x, "1.2"), TypeError, "factor"),
    (lambda x: contrast(x, float("nan")), ValueError, "factor"),
    (lambda x: gamma(x, 0.0), ValueError, "exponent"),
    (lambda x: speckle(x, 0.0), ValueError, "sigma"),
    (lambda x: speckle(x, 0.25, seed=1.5), TypeError, "seed"),
    (lambda x: jpeg(x, 0), ValueError, "quality"),
    (lambda x: jpeg(x, 96), ValueError, "quality"),
    (lambda x: jpeg(x, 40.0), TypeError, "quality"),
    (lambda x: rescale(x, 0), ValueError, "factor"),
    (lambda x: rescale(x, 1.5, resample="bicubic"), ValueError, "resample"),
    (lambda x: down_up(x, 1.5), ValueError, "factor"),
    (lambda x: crop_borders(x, 0.5), ValueError, "fraction"),
    (lambda x: crop_borders(x, -0.1), ValueError, "fraction"),
    (lambda x: crop_borders(np.zeros((2, 2), np.uint8), 0.4), ValueError, "fraction"),
])
def test_bad_parameters_are_refused_by_name(call, error, name):
    with pytest.raises(error, match=name):
        call(np.zeros((10, 10), np.uint8))


def test_apply_refuses_a_mask_of_another_size():
    with pytest.raises(ValueError, match="mask"):
        BY_NAME["hflip"].apply(np.zeros((10, 10), np.uint8), np.zeros((10, 11), bool))


# -- the report ------------------------------------------------------------------------
def _result(rows, dice, accuracy):
    return {
        "segmentation": {"mean_dice": dice, "n_lesion_images": 2, "normal_predicted_empty": 1.0},
        "classification": {"accuracy": accuracy, "macro_f1": 0.5, "ece": 0.1,
                           "recall": {"malignant": 1.0},
                           "confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
        "per_image": rows,
    }


def _row(image, true, pred, lesion, dice):
    return {"image": image, "true_class": true, "pred_class": pred, "lesion": lesion,
            "dice": dice}


def test_compare_pairs_images_by_name():
    base = _result([_row("b/1", "benign", "benign", True, 0.8),
                    _row("m/1", "malignant", "malignant", True, 0.6),
                    _row("n/1", "normal", "normal", False, 1.0)], 0.7, 1.0)
    pert = _result([_row("n/1", "normal", "benign", False, 1.0),
                    _row("m/1", "malignant", "malignant", True, 0.5),
                    _row("b/1", "benign", "benign", True, 0.7)], 0.6, 2 / 3)
    ch = compare(base, pert)
    assert ch["class_changed"] == 1
    assert ch["delta"]["mean_dice"] == pytest.approx(-0.1)
    assert ch["delta"]["accuracy"] == pytest.approx(-1 / 3)
    assert ch["delta_dice_95"] == [-0.1, -0.1]  # both lesions lost exactly 0.1
    lo, hi = ch["delta_accuracy_95"]
    assert -1.0 <= lo <= -1 / 3 <= hi <= 0.0


def test_paired_interval_without_pairs_is_none():
    assert paired_interval([]) is None


# -- end to end on real images ---------------------------------------------------------
def test_cli_on_three_busi_images(busi_dir, tmp_path, capsys):
    """Shipped weights (in-sample on BUSI: this checks the plumbing, not the figures)."""
    names = ["normal/normal (1)", "benign/benign (102)", "malignant/malignant (1)"]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "val": names}))
    out = tmp_path / "robustness.json"
    rc = robustness.main(["--data", str(busi_dir), "--split", str(split), "--subset", "val",
                          "--backend", "litert", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    names_run = [c["name"] for c in report["conditions"]]
    assert names_run == ["none", *BY_NAME]
    for c in report["conditions"]:
        assert c["name"] in printed
        s = c["summary"]
        assert c["result"]["n_images"] == 3
        for key in ("mean_dice", "normal_empty", "accuracy", "macro_f1", "malignant_recall",
                    "ece"):
            assert 0.0 <= s[key] <= 1.0, (c["name"], key)
        assert s["n_lesion_images"] == 2
        if c["name"] != "none":
            ch = c["change"]
            for key, value in ch["delta"].items():
                assert -1.0 <= value <= 1.0 or key == "n_lesion_images", (c["name"], key)
            assert 0 <= ch["class_changed"] <= 3
            lo, hi = ch["delta_dice_95"]
            assert -1.0 <= lo <= hi <= 1.0


def test_cli_writes_strict_json_with_null_for_what_cannot_be_computed(busi_dir, tmp_path):
    # With no normal image the share predicted empty cannot be computed: it was written
    # as the bare word NaN, which strict JSON parsers (a browser's, jq's) refuse.
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "val": ["benign/benign (102)"]}))
    out = tmp_path / "robustness.json"
    assert robustness.main(["--data", str(busi_dir), "--split", str(split), "--subset", "val",
                            "--backend", "litert", "--perturb", "hflip",
                            "--json", str(out)]) == 0

    def refuse(word):
        raise ValueError(f"not strict JSON: {word}")

    report = json.loads(out.read_text(), parse_constant=refuse)
    assert report["conditions"][0]["summary"]["normal_empty"] is None


def test_cli_runs_only_the_perturbations_asked_for(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    out = tmp_path / "r.json"
    rc = robustness.main(["--data", str(root), "--perturb", "hflip", "jpeg40",
                          "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert [c["name"] for c in report["conditions"]] == ["none", "jpeg40", "hflip"]


def test_cli_refuses_an_unknown_perturbation(tmp_path):
    with pytest.raises(SystemExit) as exc:
        robustness.main(["--data", str(tmp_path), "--perturb", "blur"])
    assert exc.value.code == 2


def test_help_lists_every_perturbation(capsys):
    # argparse %-formats help texts, and the descriptions hold "20 %": --help crashed.
    with pytest.raises(SystemExit) as info:
        robustness.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "crop10: smaller field of view: 10 % of height" in out
