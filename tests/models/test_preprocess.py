import numpy as np
import pytest

from models._preprocess import (
    mask_from_array,
    prepare_input,
    resize_prob,
    resize_prob_box,
    resize_prob_window,
    to_grey,
)


def test_to_grey_variants_agree():
    grey = np.arange(100, dtype=np.uint8).reshape(10, 10)
    rgb = np.stack([grey] * 3, -1)
    rgba = np.dstack([rgb, np.full_like(grey, 255)])
    assert np.array_equal(to_grey(grey), grey)
    assert np.array_equal(to_grey(rgb), grey)
    assert np.array_equal(to_grey(rgba), grey)
    assert np.array_equal(to_grey(grey.astype(np.float32) / 255), grey)
    wide = grey.astype(np.uint16) * 600
    g16 = to_grey(wide)
    assert g16.min() == 0 and g16.max() == 255


def test_to_grey_stretches_signed_data_rather_than_clipping_it():
    ramp = np.arange(-128, 128, dtype=np.int16).reshape(16, 16)
    grey = to_grey(ramp)
    # Every step of the ramp stays a step: nothing below 0 is flattened to black.
    assert grey.min() == 0 and grey.max() == 255
    assert np.all(np.diff(grey.ravel().astype(int)) >= 0)
    assert len(np.unique(grey)) == 256
    centred = np.linspace(-1, 1, 100, dtype=np.float32).reshape(10, 10)
    assert np.array_equal(to_grey(centred), to_grey((centred + 1) / 2))


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((10, 10, 2)), np.zeros(5),
                                 np.full((10, 10), "a")])
def test_to_grey_rejects(bad):
    with pytest.raises(ValueError, match="image"):
        to_grey(bad)


def test_prepare_and_resize_back():
    img = np.zeros((60, 90), np.uint8)
    img[:, 45:] = 255
    x = prepare_input(img, 32)
    assert x.shape == (1, 32, 32, 1) and x.dtype == np.float32
    assert x[0, :, :14].max() == 0 and x[0, :, 18:].min() == 1
    back = resize_prob(x[0, ..., 0], 60, 90)
    assert back.shape == (60, 90)
    assert back[:, :40].max() < 0.01 and back[:, 50:].min() > 0.99


@pytest.mark.parametrize("seed", range(6))
def test_resize_window_matches_the_full_resize(seed, smooth_map):
    rng = np.random.default_rng(seed)
    seg = smooth_map(rng)
    # Up- and down-sampling, odd sizes.
    for height, width in ((563, 611), (97, 131), (160, 160), (1201, 83)):
        full = resize_prob(seg, height, width)
        window, (r, c) = resize_prob_window(seg, height, width, 0.5)
        h, w = window.shape
        np.testing.assert_allclose(window, full[r : r + h, c : c + w], atol=1e-5)
        outside = full.copy()
        outside[r : r + h, c : c + w] = 0
        assert outside.max() < 0.5


def test_resize_window_is_empty_when_nothing_reaches_the_floor():
    seg = np.full((160, 160), 0.2, np.float32)
    window, offset = resize_prob_window(seg, 400, 500, 0.5)
    assert window.shape == (0, 0) and offset == (0, 0)
    seg[80, 80] = 0.9
    window, (r, c) = resize_prob_window(seg, 400, 500, 0.5)
    # One hot source pixel of 2.5 x 3.1 output pixels: a small window around it.
    assert 0 < window.shape[0] < 20 and 0 < window.shape[1] < 25
    assert r < 200 < r + window.shape[0] and c < 250 < c + window.shape[1]


def test_resize_prob_box_is_that_part_of_the_full_resize():
    prob = np.random.default_rng(3).random((40, 40)).astype(np.float32)
    full = resize_prob(prob, 123, 301)
    rows, cols = slice(17, 90), slice(0, 55)
    np.testing.assert_allclose(resize_prob_box(prob, 123, 301, rows, cols), full[rows, cols],
                               atol=1e-5)


def test_mask_from_array_reads_what_is_drawn():
    drawn = np.zeros((6, 8), bool)
    drawn[1:4, 2:6] = True
    grey = drawn.astype(np.uint8) * 255
    assert np.array_equal(mask_from_array(grey), drawn)
    assert np.array_equal(mask_from_array(grey[..., None]), drawn)
    red = np.zeros((6, 8, 3), np.uint8)
    red[drawn, 0] = 200
    assert np.array_equal(mask_from_array(red), drawn)
    opaque = np.dstack([red, np.full((6, 8), 255, np.uint8)])
    assert np.array_equal(mask_from_array(opaque), drawn)
    # Drawn in transparency alone: black everywhere, visible where the lesion is.
    alpha_only = np.zeros((6, 8, 4), np.uint8)
    alpha_only[..., 3] = grey
    assert np.array_equal(mask_from_array(alpha_only), drawn)
    # Colour under transparent pixels is not seen.
    hidden = opaque.copy()
    hidden[..., 0] = 200
    hidden[..., 3] = grey
    assert np.array_equal(mask_from_array(hidden), drawn)
    assert np.array_equal(mask_from_array(np.dstack([grey, grey])), drawn)  # grey + alpha
    assert not mask_from_array(np.zeros((6, 8, 4), np.uint8)).any()  # fully transparent
    assert np.array_equal(mask_from_array(drawn * 0.4), drawn)  # soft values count


@pytest.mark.parametrize("bad, reason", [
    (np.full((6, 8), np.nan), "NaN"),
    (np.full((6, 8), "x"), "numbers"),
    (np.zeros((6, 8, 5)), "shape"),
    (np.zeros(6), "shape"),
])
def test_mask_from_array_refuses(bad, reason):
    with pytest.raises(ValueError, match=reason):
        mask_from_array(bad)
