"""mask_to_paths where a mask pinches: every region is still a valid polygon with holes.

A pinch is where a region's outline touches itself: two parts of an 8-connected
region joined only by a pixel corner or a chain of them (noisy AI masks, hand edits),
or a hole meeting its outer ring or another hole at a corner. Traced as it is, such an
outline passes through one point twice (or, simplified, crosses itself there), which
shapely calls invalid: its predicates and overlays are then unreliable.
"""

import os
import re

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from vectorizer import mask_to_paths, measure_regions, svg_to_mask
from vectorizer._polygons import signed_area

NUMBER = r"-?\d+(?:\.\d+)?"
UNLIMITED = 100_000  # a budget no ring here reaches: the traced outline itself

SETTINGS = settings(
    max_examples=int(os.environ.get("SONOTRACE_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _rings(path: str) -> list[np.ndarray]:
    return [np.array(re.findall(rf"({NUMBER}),({NUMBER})", sub), dtype=float)
            for sub in re.findall(r"M[^M]*", path)]


def _components(mask: np.ndarray) -> int:
    return ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))[1]


def _assert_valid(paths: list[str], budget: int | None = None) -> list[shapely.Polygon]:
    """Each path one valid polygon with holes (outer ring first, clockwise on screen;
    holes counter-clockwise), no two of them intersecting."""
    polygons = []
    for path in paths:
        outer, *holes = _rings(path)
        polygon = shapely.Polygon(outer, holes)
        assert polygon.is_valid, (budget, shapely.is_valid_reason(polygon), path)
        assert signed_area(outer) > 0, path
        assert all(signed_area(hole) < 0 for hole in holes), path
        polygons.append(polygon)
    for i, a in enumerate(polygons):
        for b in polygons[i + 1:]:
            assert not a.intersects(b), (budget, paths)
    return polygons


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


def _disc(shape, cx, cy, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 < r**2


def _two_squares_at_a_corner() -> np.ndarray:
    m = np.zeros((30, 30), dtype=bool)
    m[5:15, 5:15] = True
    m[15:25, 15:25] = True  # meets the first only at the corner (15, 15)
    return m


def _discs_at_a_corner() -> np.ndarray:
    # Two round lesions whose pixels touch at one corner, as in a noisy AI mask.
    m = _disc((60, 60), 20, 20, 10)
    return m | np.roll(_disc((60, 60), 40, 40, 10), (-5, -5), axis=(0, 1))


def _diagonal_crack() -> np.ndarray:
    # An eraser stroke one pixel wide drawn diagonally across a region: the two sides
    # still touch at the corners between the stroke's pixels, each a one-pixel hole.
    m = np.zeros((30, 30), dtype=bool)
    m[5:25, 5:25] = True
    for i in range(20):
        m[5 + i, 24 - i] = False
    return m


def _blocks(pattern: list[str], size: int) -> np.ndarray:
    cells = np.array([[c == "#" for c in row] for row in pattern])
    return np.pad(np.kron(cells, np.ones((size, size), dtype=bool)), 3)


def _hole_meeting_the_outer_ring() -> np.ndarray:
    # Four blocks around a hole, each meeting the next at a corner: the hole's four
    # corners meet the background outside, which cuts the region's interior in four in
    # shapely's eyes if the rings are left touching there.
    return _blocks([".#.", "#.#", ".#."], 5)


def _pinhole_among_pinches() -> np.ndarray:
    # A one-pixel hole whose rim is joined at pixel corners on three sides.
    return _blocks(["##..", "#.##", ".#..", ".#.."], 1)


# name: (mask, turdsize); the one-pixel holes are kept with turdsize 0.
PINCHES = {
    "two squares at a corner": (_two_squares_at_a_corner, 2),
    "discs at a corner": (_discs_at_a_corner, 0),
    "diagonal crack": (_diagonal_crack, 0),
    "hole meeting the outer ring": (_hole_meeting_the_outer_ring, 2),
    "pinhole among pinches": (_pinhole_among_pinches, 0),
}


@pytest.mark.parametrize("name", list(PINCHES))
def test_pinched_outlines_are_valid_polygons(name):
    make, turdsize = PINCHES[name]
    mask = make()
    assert _components(mask) == len(measure_regions(mask))
    for budget in (4, 8, 16, 32, 64, UNLIMITED):
        paths = mask_to_paths(mask, max_vertices=budget, turdsize=turdsize)
        _assert_valid(paths, budget)
        # Still one path per 8-connected region, as measure_regions counts them (the
        # server pairs regions[i] with paths[i]): a pinch does not split a region.
        assert len(paths) == _components(mask), budget
    # Pulling the outline apart at a pinch changes no pixel.
    np.testing.assert_array_equal(svg_to_mask(paths, shape=mask.shape), mask)


def test_a_corner_pinch_keeps_one_ring_and_both_parts():
    mask = _two_squares_at_a_corner()
    (path,) = mask_to_paths(mask, max_vertices=32)
    (ring,) = _rings(path)
    polygon = shapely.Polygon(ring)
    assert polygon.is_valid, shapely.is_valid_reason(polygon)
    # Both squares, joined by a neck a tenth of a pixel wide at their common corner.
    assert polygon.area == pytest.approx(200, abs=5)
    assert polygon.contains(shapely.Point(15, 15))
    np.testing.assert_array_equal(svg_to_mask([path], shape=mask.shape), mask)


def test_a_hole_meeting_the_outer_ring_stays_a_hole():
    mask = _hole_meeting_the_outer_ring()
    (path,) = mask_to_paths(mask, max_vertices=32)
    outer, *holes = _rings(path)
    assert len(holes) == 1
    polygon = shapely.Polygon(outer, holes)
    assert polygon.is_valid, shapely.is_valid_reason(polygon)
    assert polygon.area == pytest.approx(4 * 25, abs=2)
    assert shapely.Polygon(outer).contains(shapely.Polygon(holes[0]))


def _noisy_lesion(seed: int) -> np.ndarray:
    # A lesion with salt-and-pepper noise along its edge, as a thresholded AI mask.
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:120, :140]
    angle = np.arctan2(yy - 60, xx - 70)
    lesion = np.hypot(yy - 60, xx - 70) < 40 + 6 * np.sin(3 * angle + seed)
    edge = ndimage.binary_dilation(lesion ^ ndimage.binary_erosion(lesion), iterations=3)
    return lesion ^ (edge & (rng.random(lesion.shape) < 0.15))


@pytest.mark.parametrize("budget", [8, 32, 128])
def test_noisy_lesions_give_valid_polygons(budget):
    for seed in range(20):
        mask = _noisy_lesion(seed)
        paths = mask_to_paths(mask, max_vertices=budget)
        _assert_valid(paths, budget)
        assert _iou(svg_to_mask(paths, shape=mask.shape), mask) > 0.85


def test_small_holes_are_not_turned_inside_out():
    # Fitted with four vertices, the outline of a hole of three pixels turned over: a
    # valid polygon, but a hole running the way outer rings do, which non-zero filling
    # (and any reader trusting the orientation) takes for an island.
    mask = np.array([[int(c) for c in row] for row in (
        "10011111101", "11010110101", "00001111011", "11111111111", "11111101101",
        "11110111101", "10011101111", "01111100111", "11111111111", "11111110101",
    )], dtype=bool)
    for budget in (3, 4, 5):
        _assert_valid(mask_to_paths(mask, max_vertices=budget, turdsize=0), budget)


@SETTINGS
@given(
    hnp.arrays(np.bool_, st.tuples(st.integers(1, 14), st.integers(1, 14))),
    st.sampled_from([3, 4, 8, 16, 32, 64, UNLIMITED]),
)
def test_random_pixel_fields_give_valid_polygons(mask, budget):
    # Random pixels pinch everywhere: diagonal touches, holes at corners, necks.
    paths = mask_to_paths(mask, max_vertices=budget, turdsize=0)
    _assert_valid(paths, budget)
    assert len(paths) == _components(mask)
    if budget == UNLIMITED:
        # Joined at its pinches, the traced outline still keeps every pixel.
        np.testing.assert_array_equal(svg_to_mask(paths, shape=mask.shape), mask)
