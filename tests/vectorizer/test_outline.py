"""outline_mask: the server's three answers in one call, as the three functions give them."""

import numpy as np
import pytest

from vectorizer import (
    MAX_OUTLINES,
    mask_to_paths,
    mask_to_svg,
    measure_regions,
    outline_mask,
)
from vectorizer._outline import despeckle
from vectorizer._trace import count_outlines


def _reference_despeckle(mask, max_pixels):
    """Specks dropped by scikit-image, as the server did before outline_mask."""
    from skimage import morphology

    padded = np.pad(mask, 1)
    padded = morphology.remove_small_objects(padded, max_size=max_pixels, connectivity=2)
    padded = morphology.remove_small_holes(padded, max_size=max_pixels, connectivity=1)
    return padded[1:-1, 1:-1]


def _masks():
    """Masks with specks, pinholes, a speck inside a hole, regions touching the
    border and at corners, and noise: what despeckling and counting can get wrong."""
    lesion = np.zeros((40, 50), bool)
    lesion[5:30, 8:40] = True
    lesion[10:12, 12] = False            # a two-pixel pinhole: filled
    lesion[15:19, 20:24] = False         # a real hole
    lesion[16, 21] = True                # a speck inside it: dropped
    lesion[35, 45] = True                # a speck outside: dropped
    lesion[36:38, 46] = True             # a two-pixel speck at its corner: one region, dropped
    yield lesion
    edge = np.zeros((20, 20), bool)
    edge[0:10, 0:10] = True              # touches the border
    edge[10:14, 10:14] = True            # corner-touching: one 8-connected region
    edge[19, 19] = True
    yield edge
    yield np.zeros((7, 9), bool)
    yield np.ones((5, 5), bool)
    only_specks = np.zeros((10, 10), bool)
    only_specks[2, 2] = only_specks[7, 7] = True
    yield only_specks
    rng = np.random.default_rng(7)
    for _ in range(60):
        h, w = rng.integers(1, 40, 2)
        yield rng.random((h, w)) < rng.uniform(0.1, 0.9)


@pytest.mark.parametrize("mask", list(_masks()))
def test_despeckle_drops_what_scikit_image_drops_and_counts_the_outlines(mask):
    cleaned, outlines = despeckle(mask, 2)
    assert np.array_equal(cleaned, _reference_despeckle(mask, 2))
    assert outlines == count_outlines(cleaned, 0) == count_outlines(cleaned, 2)


@pytest.mark.parametrize("mask", list(_masks()))
def test_outline_mask_equals_the_three_functions_on_the_despeckled_mask(mask):
    out = outline_mask(mask, 12, pixel_spacing=(0.2, 0.3))
    cleaned = _reference_despeckle(mask, 2)
    assert np.array_equal(out.mask, cleaned)
    assert out.svg == mask_to_svg(cleaned)
    assert out.paths == mask_to_paths(cleaned, 12)
    assert out.regions == measure_regions(cleaned, pixel_spacing=(0.2, 0.3))
    assert len(out.regions) == len(out.paths)


def test_outline_mask_leaves_its_input_alone():
    mask = np.zeros((10, 10), bool)
    mask[2:6, 2:6] = True
    mask[8, 8] = True
    before = mask.copy()
    out = outline_mask(mask)
    assert np.array_equal(mask, before)
    assert not out.mask[8, 8]


def test_too_many_outlines_are_refused_as_measure_regions_refuses_them():
    # A grid of 3x3 blocks, more than MAX_OUTLINES of them, none a speck.
    side = int(np.ceil(np.sqrt(MAX_OUTLINES + 1))) * 4
    mask = np.zeros((side, side), bool)
    for r in range(0, side, 4):
        for c in range(0, side, 4):
            mask[r : r + 3, c : c + 3] = True
    n = count_outlines(mask, 2)
    assert n > MAX_OUTLINES
    with pytest.raises(ValueError) as expected:
        measure_regions(mask)
    with pytest.raises(ValueError) as got:
        outline_mask(mask)
    assert str(got.value) == str(expected.value)
    assert f"mask has {n} outlines" in str(got.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"max_vertices": 2}, ValueError, "max_vertices"),
        ({"turdsize": -1}, ValueError, "turdsize"),
        ({"pixel_spacing": (0.1,)}, ValueError, "pixel_spacing"),
        ({"pixel_spacing": "0.1"}, TypeError, "pixel_spacing"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, error, words):
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    with pytest.raises(error, match=words):
        outline_mask(mask, **kwargs)


def test_with_two_bad_parameters_the_spacing_is_named_as_measuring_first_names_it():
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    with pytest.raises(ValueError, match="pixel_spacing"):
        outline_mask(mask, 2, pixel_spacing=(0.0, 0.1))


def test_a_mask_that_is_not_binary_is_refused():
    with pytest.raises(ValueError, match="mask"):
        outline_mask(np.full((4, 4), 7, np.uint8))
