"""``vectorizer.offset_mask``: Grow and Shrink, measured in pixels between pixel centres."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label

import vectorizer


def _disc(radius: float, size: int = 201) -> np.ndarray:
    centre = size // 2
    rows, cols = np.mgrid[:size, :size]
    return np.hypot(rows - centre, cols - centre) <= radius


@pytest.mark.parametrize("distance", [3, 7.5, -3, -7.5, 20, -20])
def test_a_disc_stays_a_disc_of_the_radius_moved_by_the_distance(distance):
    grown = vectorizer.offset_mask(_disc(40), distance)
    assert grown.dtype == bool and grown.shape == (201, 201)
    # Round, not octagonal or square: every pixel that differs from the moved disc's
    # lies on its rim (a square element would reach 0.41 * 20 px past it at 45 degrees).
    rows, cols = np.nonzero(grown ^ _disc(40 + distance))
    assert np.all(np.abs(np.hypot(rows - 100, cols - 100) - (40 + distance)) <= 1.0)
    assert abs(grown.sum() - math.pi * (40 + distance) ** 2) < 2 * math.pi * (40 + distance)


def test_straight_edges_move_by_whole_pixels_and_corners_round():
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:50] = True
    grown = vectorizer.offset_mask(mask, 3)
    rows, cols = np.flatnonzero(grown.any(1)), np.flatnonzero(grown.any(0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (17, 42, 27, 52)
    assert grown[17, 40] and not grown[17, 27]  # an edge moved, a corner rounded
    shrunk = vectorizer.offset_mask(mask, -3)
    assert np.array_equal(np.argwhere(shrunk).min(0), [23, 33])
    assert np.array_equal(np.argwhere(shrunk).max(0), [36, 46])
    assert shrunk.sum() == 14 * 14  # a rectangle's corners stay square going in


def test_zero_is_a_copy_and_an_empty_mask_stays_empty():
    mask = _disc(10, 41)
    same = vectorizer.offset_mask(mask, 0)
    assert np.array_equal(same, mask) and same is not mask
    same[0, 0] = True
    assert not mask[0, 0]  # the caller's mask is never written
    assert not vectorizer.offset_mask(np.zeros((30, 30), bool), 5).any()
    assert not vectorizer.offset_mask(np.zeros((30, 30), bool), -5).any()


def test_regions_merge_when_grown_and_vanish_when_shrunk():
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:20] = True
    mask[10:20, 24:34] = True  # four pixels of gap between the two
    assert label(mask).max() == 2
    assert label(vectorizer.offset_mask(mask, 2)).max() == 1
    assert not vectorizer.offset_mask(mask, -5).any()
    assert vectorizer.offset_mask(mask, -4).sum() == 2 * 2 * 2
    # A hole closes as the ring around it grows: its centre is 3.16 px from the ring's
    # nearest pixel centre (1, 3 pixels away).
    ring = _disc(12, 41) & ~_disc(3, 41)
    assert not vectorizer.offset_mask(ring, 3)[20, 20]
    assert vectorizer.offset_mask(ring, 3.2)[20, 20]


def test_the_image_border_is_not_an_edge():
    mask = np.zeros((30, 30), bool)
    mask[:, :10] = True  # a region cut by the left edge of the frame
    shrunk = vectorizer.offset_mask(mask, -2)
    assert shrunk[:, 0].all()  # not pulled in from the border
    assert np.flatnonzero(shrunk.any(0)).max() == 7
    full = np.ones((20, 20), bool)
    assert vectorizer.offset_mask(full, -3).all()
    grown = vectorizer.offset_mask(mask, 50)
    assert grown.all() and grown.shape == (30, 30)  # clipped to the frame


def test_a_small_lesion_in_a_large_frame():
    frame = np.zeros((4096, 4096), bool)
    frame[2000:2040, 3000:3050] = True
    grown = vectorizer.offset_mask(frame, 10)
    assert grown.sum() > frame.sum() and grown[1990, 3020] and not grown[1989, 3020]
    assert not grown[:1900].any()


@pytest.mark.parametrize(
    ("distance", "error", "match"),
    [
        (True, TypeError, "real number"),
        ("2", TypeError, "real number"),
        (None, TypeError, "real number"),
        (float("nan"), ValueError, "finite"),
        (float("inf"), ValueError, "finite"),
        (vectorizer.MAX_OFFSET_PX + 1, ValueError, "within"),
        (-vectorizer.MAX_OFFSET_PX - 1, ValueError, "within"),
    ],
)
def test_a_distance_that_is_no_offset_is_refused(distance, error, match):
    with pytest.raises(error, match=match):
        vectorizer.offset_mask(np.ones((5, 5), bool), distance)


def test_a_mask_that_is_no_mask_is_refused():
    with pytest.raises(ValueError, match="2-D"):
        vectorizer.offset_mask(np.ones((5, 5, 3), bool), 1)
    with pytest.raises(ValueError, match="binary|0/1"):
        vectorizer.offset_mask(np.full((5, 5), 7), 1)


def _by_distance_map(mask: np.ndarray, distance: float) -> np.ndarray:
    """The offset as a distance map of the whole image gives it: the definition."""
    if distance > 0:
        return ndimage.distance_transform_edt(~mask) <= distance
    if mask.all():
        return mask.copy()
    return ndimage.distance_transform_edt(mask) > -distance


@pytest.mark.parametrize("seed", range(12))
def test_it_is_the_distance_maps_offset_exactly(seed):
    # Measured from the edge pixels only, and only where a square of its reach looks:
    # the same pixels, on blobs with holes, islands, thin parts and the frame's border.
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.random((70, 90)), sigma=rng.uniform(1.5, 4))
    mask = noise > np.quantile(noise, rng.uniform(0.3, 0.8))
    for distance in (0.5, 1, 1.5, 2, 2.9, 3.7, 6, 10.25, 25):
        for signed in (distance, -distance):
            got = vectorizer.offset_mask(mask, signed)
            assert np.array_equal(got, _by_distance_map(mask, signed)), (seed, signed)


def test_a_lesion_filling_a_large_frame_costs_no_distance_map():
    import tracemalloc

    frame = _disc(1400, 3001)  # a 3001 x 3001 frame, nearly all lesion
    tracemalloc.start()
    try:
        grown = vectorizer.offset_mask(frame, 32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grown.sum() > frame.sum()
    # A few boolean copies of the window (about 6 bytes a pixel); the distance map's
    # way took about 33 bytes a pixel (300 MB here), a worker's share of memory a click.
    assert peak < 10 * frame.size, f"{peak / 1e6:.0f} MB"
