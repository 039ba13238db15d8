"""The lesion crop and the blend of the two classifiers' log-odds."""

from __future__ import annotations

import numpy as np
import pytest

from models.lesion_crop import lesion_box, lesion_crop
from models.runtime import mix_malignant_odds


def test_box_is_a_square_around_the_mask_with_margin():
    mask = np.zeros((100, 200), bool)
    mask[40:60, 50:90] = True  # 20 rows x 40 cols, centre (50, 70)
    x0, y0, x1, y1 = lesion_box(mask, margin=0.25)
    assert x1 - x0 == y1 - y0 == 60  # 40 x (1 + 2 x 0.25)
    assert (x0 + x1) / 2 == pytest.approx(70, abs=0.5)
    assert (y0 + y1) / 2 == pytest.approx(50, abs=0.5)


def test_empty_mask_has_no_box_or_crop():
    grey = np.full((50, 50), 100, np.uint8)
    assert lesion_box(np.zeros((50, 50), bool)) is None
    assert lesion_crop(grey, np.zeros((50, 50), bool)) is None


def test_crop_centres_the_lesion_and_keeps_context():
    grey = np.full((300, 400), 200, np.uint8)
    mask = np.zeros(grey.shape, bool)
    mask[100:160, 200:260] = True
    grey[mask] = 20  # a dark lesion on bright tissue
    crop = lesion_crop(grey, mask, size=64, margin=0.5)
    assert crop.shape == (64, 64) and crop.dtype == np.float32
    # Lesion in the middle half, tissue in the margin: 60 px of lesion in a 120 px square.
    assert crop[24:40, 24:40].max() < 0.15
    assert crop[:10].min() > 0.7 and crop[:, -10:].min() > 0.7


def test_crop_pads_with_black_outside_the_image():
    grey = np.full((100, 100), 255, np.uint8)
    mask = np.zeros(grey.shape, bool)
    mask[:20, :20] = True  # in the top-left corner: the square reaches off the image
    crop = lesion_crop(grey, mask, size=40, margin=0.5)
    assert crop[:5, :5].max() == 0.0  # outside: black
    assert crop[-5:, -5:].min() == 1.0  # inside: the image


def test_one_pixel_lesion_still_gives_a_crop():
    grey = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)
    mask = np.zeros(grey.shape, bool)
    mask[30, 30] = True
    crop = lesion_crop(grey, mask, size=16)
    assert crop.shape == (16, 16) and np.isfinite(crop).all()


PROBS = {"normal": 0.2, "benign": 0.6, "malignant": 0.2}


def test_weight_zero_keeps_the_head():
    out = mix_malignant_odds(PROBS, 5.0, 0.0)
    assert out == pytest.approx(PROBS)


def test_lesion_odds_move_benign_and_malignant_only():
    out = mix_malignant_odds(PROBS, 0.0, 1.0)
    assert out["normal"] == pytest.approx(0.2)
    assert out["benign"] == pytest.approx(0.4) and out["malignant"] == pytest.approx(0.4)
    half = mix_malignant_odds(PROBS, np.log(3.0), 0.5)  # head says 1:3, classifier 3:1
    assert half["benign"] == pytest.approx(half["malignant"])
    sure = mix_malignant_odds(PROBS, 1e4, 1.0)  # no overflow on extreme odds
    assert sure["malignant"] == pytest.approx(0.8) and sum(sure.values()) == pytest.approx(1.0)


def test_recalibrate_tempers_every_class_and_keeps_the_ranking():
    from models.runtime import recalibrate

    assert recalibrate(PROBS, 1.0) == PROBS
    sharp, soft = recalibrate(PROBS, 0.5), recalibrate(PROBS, 2.0)
    # p ** 2 normalised: 0.04, 0.36, 0.04 over 0.44.
    assert sharp == pytest.approx({"normal": 0.04 / 0.44, "benign": 0.36 / 0.44,
                                   "malignant": 0.04 / 0.44})
    assert soft["benign"] < PROBS["benign"] < sharp["benign"]
    for out in (sharp, soft):
        assert sum(out.values()) == pytest.approx(1.0)
        assert max(out, key=out.get) == "benign"
    # A zero probability stays (almost) zero instead of raising.
    assert recalibrate({"a": 0.0, "b": 1.0}, 0.7)["a"] < 1e-12
