"""The refiner's square: crop, paste back and blend, with a hand-made network."""

from __future__ import annotations

import numpy as np
import pytest

from models.lesion_crop import lesion_box
from models.lesion_refine import crop_square, paste_square, refine_map


def test_crop_of_a_uint8_image_is_scaled_and_a_float_map_is_not():
    grey = np.full((60, 80), 255, np.uint8)
    grey[20:40, 30:50] = 0
    box = (20, 10, 60, 50)  # 40 x 40 around the dark square
    img = crop_square(grey, box, 20)
    assert img.shape == (20, 20) and img.dtype == np.float32
    assert img[8:12, 8:12].max() == 0.0 and img[0, 0] == 1.0
    prob = np.zeros((60, 80), np.float32)
    prob[20:40, 30:50] = 0.8
    m = crop_square(prob, box, 20)
    assert m[10, 10] == pytest.approx(0.8) and m[0, 0] == 0.0


def test_crop_outside_the_image_is_zero():
    grey = np.full((30, 30), 200, np.uint8)
    img = crop_square(grey, (-30, -30, 30, 30), 12)  # the image is the bottom-right quarter
    assert img[:5, :5].max() == 0.0
    assert img[-5:, -5:].min() == pytest.approx(200 / 255)


def test_paste_puts_the_crop_back_where_it_was_cut():
    prob = np.zeros((50, 70), np.float32)
    prob[10:30, 40:60] = 1.0
    box = (35, 5, 65, 35)
    crop = crop_square(prob, box, 30)  # same size: no resampling blur
    back, (rows, cols) = paste_square(crop, box, prob.shape)
    assert (rows, cols) == (slice(5, 35), slice(35, 65))
    np.testing.assert_allclose(back, prob, atol=1e-6)


def test_paste_clips_a_square_that_leaves_the_image():
    crop = np.ones((8, 8), np.float32)
    back, (rows, cols) = paste_square(crop, (-4, 36, 12, 52), (40, 40))
    assert (rows, cols) == (slice(36, 40), slice(0, 12))
    assert back.sum() == 4 * 12 and back[36:, :12].min() == 1.0


def _dark_lesion():
    grey = np.full((120, 160), 180, np.uint8)
    yy, xx = np.mgrid[:120, :160]
    truth = (yy - 60) ** 2 / 30**2 + (xx - 80) ** 2 / 40**2 <= 1
    grey[truth] = 30
    return grey, truth


def _threshold_net(crop):
    """A stand-in refiner: dark is lesion. ``(1, S, S, 1)`` -> ``(S, S)``."""
    assert crop.shape[0] == 1 and crop.shape[-1] == 1 and crop.dtype == np.float32
    return (crop[0, ..., 0] < 0.4).astype(np.float32)


def test_refine_redraws_a_too_small_outline_inside_its_square():
    grey, truth = _dark_lesion()
    first = np.zeros_like(truth)
    first[50:70, 65:95] = True  # the middle of the lesion only
    coarse = first.astype(np.float32) * 0.9
    out = refine_map(grey, first, coarse, _threshold_net, size=64, margin=0.4, weight=1.0)
    # The square is 30 x 1.8 = 54 px wide: the lesion (80 x 60) is redrawn within it.
    x0, y0, x1, y1 = lesion_box(first, 0.4)
    inside = np.zeros_like(truth)
    inside[y0:y1, x0:x1] = True
    agree = ((out >= 0.5) == truth)[inside].mean()
    assert agree > 0.95
    assert (out >= 0.5).sum() > 2 * first.sum()
    # Outside the square the U-Net's map is left as it was.
    np.testing.assert_array_equal(out[~inside], coarse[~inside])


def test_weight_blends_the_two_maps():
    grey, truth = _dark_lesion()
    first = truth.copy()
    coarse = np.where(truth, 0.6, 0.0).astype(np.float32)
    half = refine_map(grey, first, coarse, _threshold_net, size=64, weight=0.5)
    none = refine_map(grey, first, coarse, _threshold_net, size=64, weight=0.0)
    np.testing.assert_allclose(none, coarse)
    assert half[60, 80] == pytest.approx(0.8, abs=0.01)  # (0.6 + 1.0) / 2, deep inside


def test_empty_outline_leaves_the_map_untouched():
    grey, _ = _dark_lesion()
    coarse = np.random.default_rng(0).random(grey.shape).astype(np.float32)
    out = refine_map(grey, np.zeros(grey.shape, bool), coarse, _threshold_net)
    assert out is coarse


def test_the_refined_window_is_the_blend_and_holds_only_the_image_part():
    """A square around a large lesion reaches far past a 25-megapixel image: the window
    must not keep the whole resampled square alive (it did, as a view), and the blend
    must be the same float32 values as ``(1 - w) * coarse + w * fine``."""
    from PIL import Image

    from models.lesion_refine import _STRIP_ROWS, refine_window, square_window

    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (700, 900), dtype=np.uint8)
    crop_prob = rng.random((64, 64), dtype=np.float32)
    box = (-150, -260, 1050, 940)  # 1200 x 1200, past every side of the image
    window, inside = square_window(crop_prob, box, grey.shape)
    assert inside == (slice(0, 700), slice(0, 900))
    assert window.shape == (700, 900) and window.base is None
    full = np.asarray(Image.fromarray(crop_prob, mode="F").resize((1200, 1200),
                                                                  Image.BILINEAR))
    assert np.array_equal(window, full[260:960, 150:1050])  # strips join exactly
    assert window.shape[0] > _STRIP_ROWS
    coarse = rng.random(window.shape, dtype=np.float32)
    blend, at = refine_window(grey, box, coarse, lambda crop: crop_prob, size=32, weight=0.3)
    assert at == inside
    assert blend.dtype == np.float32
    assert np.array_equal(blend, (1.0 - 0.3) * coarse + 0.3 * window)
