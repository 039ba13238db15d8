"""measure_regions: exact values on hand-made masks, units, connectivity, bad input."""

import math

import numpy as np
import pytest
from skimage.measure import label, regionprops

from vectorizer import measure_regions

KEYS = {
    "area_px", "perimeter_px", "bbox", "width_px", "height_px", "max_diameter_px",
    "max_diameter_endpoints", "perpendicular_diameter_px", "perpendicular_diameter_endpoints",
    "centroid",
}
MM_KEYS = {
    "area_mm2", "perimeter_mm", "max_diameter_mm", "perpendicular_diameter_mm", "width_mm",
    "height_mm", "max_diameter_mm_endpoints", "perpendicular_diameter_mm_endpoints",
}


def test_rectangle_exact_values():
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 1:5] = True  # x in [1, 5], y in [1, 3]
    (r,) = measure_regions(mask)
    assert set(r) == KEYS
    assert r["area_px"] == 8
    assert r["bbox"] == [1, 1, 5, 3]
    assert (r["width_px"], r["height_px"]) == (4, 2)
    assert r["max_diameter_px"] == pytest.approx(math.hypot(4, 2))
    assert sorted(map(tuple, r["max_diameter_endpoints"])) in (
        [(1.0, 1.0), (5.0, 3.0)], [(1.0, 3.0), (5.0, 1.0)],
    )
    assert r["centroid"] == [3.0, 2.0]
    # A smooth outline inside the 12-pixel staircase, rounding the corners.
    assert 8 < r["perimeter_px"] < 12


def test_perpendicular_diameter_of_a_rectangle_crosses_its_middle():
    # 4 x 2 pixels: the long axis is a diagonal (length d = sqrt(20)); the longest chord
    # perpendicular to it runs through the centre (3, 2) from the top edge to the bottom
    # one, and is h * d / w = 2 * sqrt(20) / 4 long.
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 1:5] = True
    (r,) = measure_regions(mask)
    assert r["perpendicular_diameter_px"] == pytest.approx(2 * math.hypot(4, 2) / 4)
    ends = np.array(r["perpendicular_diameter_endpoints"])
    assert ends.mean(axis=0) == pytest.approx([3, 2])
    assert sorted(ends[:, 1]) == pytest.approx([1, 3])  # on the top and bottom edges
    (px, py), (qx, qy) = r["max_diameter_endpoints"]
    assert (ends[1] - ends[0]) @ (qx - px, qy - py) == pytest.approx(0, abs=1e-9)


def test_perpendicular_diameter_of_a_square_is_its_other_diagonal():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:6, 2:6] = True
    (r,) = measure_regions(mask)
    assert r["max_diameter_px"] == pytest.approx(4 * math.sqrt(2))
    assert r["perpendicular_diameter_px"] == pytest.approx(4 * math.sqrt(2))
    assert sorted(map(tuple, np.round(r["perpendicular_diameter_endpoints"], 9))) in (
        [(2.0, 6.0), (6.0, 2.0)], [(2.0, 2.0), (6.0, 6.0)],
    )


def test_ellipse_long_and_perpendicular_axes():
    yy, xx = np.mgrid[:300, :300] + 0.5
    mask = ((xx - 150) / 100) ** 2 + ((yy - 150) / 40) ** 2 < 1
    (r,) = measure_regions(mask, pixel_spacing=(0.1, 0.1))
    assert r["max_diameter_px"] == pytest.approx(200, abs=1.5)
    assert r["perpendicular_diameter_px"] == pytest.approx(80, abs=1.5)
    assert r["perpendicular_diameter_mm"] == pytest.approx(0.1 * r["perpendicular_diameter_px"])
    # Drawn across the middle, not at one end of the flat stretch.
    ends = np.array(r["perpendicular_diameter_endpoints"])
    assert ends.mean(axis=0) == pytest.approx([150, 150], abs=2)


def test_a_one_pixel_line_has_a_perpendicular_diameter_of_about_one():
    mask = np.zeros((3, 9), dtype=bool)
    mask[1, 1:8] = True  # 7 x 1: the hull is the bar itself
    (r,) = measure_regions(mask)
    assert r["perpendicular_diameter_px"] == pytest.approx(math.hypot(7, 1) / 7)


def test_single_pixel():
    mask = np.zeros((3, 3), dtype=bool)
    mask[2, 0] = True
    (r,) = measure_regions(mask)
    assert r["area_px"] == 1 and r["bbox"] == [0, 2, 1, 3]
    assert r["max_diameter_px"] == pytest.approx(math.sqrt(2))
    assert r["centroid"] == [0.5, 2.5]
    assert 2.5 < r["perimeter_px"] < 4


def test_disc_perimeter_follows_the_smooth_outline_not_the_staircase():
    yy, xx = np.mgrid[:200, :200]
    mask = np.hypot(xx + 0.5 - 100, yy + 0.5 - 100) < 60
    (r,) = measure_regions(mask)
    assert r["perimeter_px"] == pytest.approx(2 * math.pi * 60, rel=0.01)
    assert r["area_px"] == mask.sum()
    assert r["max_diameter_px"] == pytest.approx(120, abs=1.5)
    assert r["centroid"] == pytest.approx([100, 100], abs=0.01)


def test_pixel_spacing_in_millimetres():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:6, 1:9] = True  # 4 rows x 8 columns
    (r,) = measure_regions(mask, pixel_spacing=(0.5, 0.25))
    assert set(r) == KEYS | MM_KEYS
    assert r["area_mm2"] == pytest.approx(32 * 0.5 * 0.25)
    assert r["width_mm"] == pytest.approx(8 * 0.25)
    assert r["height_mm"] == pytest.approx(4 * 0.5)
    assert r["max_diameter_mm"] == pytest.approx(math.hypot(8 * 0.25, 4 * 0.5))
    # 8 x 4 pixels but 2 x 2 mm: perpendicular in mm is the square's other diagonal,
    # not the pixel rectangle's chord (4 * sqrt(80) / 8 px) scaled.
    assert r["perpendicular_diameter_px"] == pytest.approx(4 * math.hypot(8, 4) / 8)
    assert r["perpendicular_diameter_mm"] == pytest.approx(2 * math.sqrt(2))
    # The mm chords' ends, in pixels: measured at the spacing, they are the mm figures.
    for key in ("max_diameter", "perpendicular_diameter"):
        (x0, y0), (x1, y1) = r[f"{key}_mm_endpoints"]
        assert math.hypot((x1 - x0) * 0.25, (y1 - y0) * 0.5) == pytest.approx(r[f"{key}_mm"])
    # The square's other diagonal: from corner to corner of the 8 x 4 pixel box.
    ends = sorted(map(tuple, np.round(r["perpendicular_diameter_mm_endpoints"], 9)))
    assert ends in ([(1, 6), (9, 2)], [(1, 2), (9, 6)])
    assert ends != sorted(map(tuple, np.round(r["max_diameter_mm_endpoints"], 9)))
    # Perimeter scales per axis: horizontal edges by 0.25, vertical ones by 0.5.
    iso = measure_regions(mask, pixel_spacing=(0.5, 0.5))[0]
    assert iso["perimeter_mm"] == pytest.approx(0.5 * r["perimeter_px"])
    assert 0.25 * r["perimeter_px"] < r["perimeter_mm"] < 0.5 * r["perimeter_px"]


def test_longest_chord_in_millimetres_may_join_other_points():
    # A plus sign: in pixels both bars are 9 long; in mm the horizontal bar wins.
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, :] = True
    mask[:, 4] = True
    (r,) = measure_regions(mask, pixel_spacing=(1.0, 3.0))
    assert r["max_diameter_mm"] == pytest.approx(math.hypot(27, 1))


def test_regions_are_8_connected_and_ordered_top_left_first():
    mask = np.zeros((12, 12), dtype=bool)
    mask[6:8, 0:2] = True  # lower left
    mask[1, 9] = mask[2, 10] = True  # diagonal pair: one region
    mask[1:3, 3:5] = True  # same top row, further left
    regions = measure_regions(mask)
    assert [r["bbox"] for r in regions] == [[3, 1, 5, 3], [9, 1, 11, 3], [0, 6, 2, 8]]
    assert [r["area_px"] for r in regions] == [4, 2, 4]


def test_holes_are_not_area_but_add_perimeter():
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:35, 5:35] = True
    solid = measure_regions(mask)[0]
    mask[15:25, 15:25] = False
    (holed,) = measure_regions(mask)
    assert holed["area_px"] == 900 - 100
    assert holed["perimeter_px"] > solid["perimeter_px"] + 30
    assert holed["bbox"] == solid["bbox"]


def test_agrees_with_skimage_regionprops_on_random_masks():
    rng = np.random.default_rng(7)
    for _ in range(10):
        mask = rng.random((30, 41)) < 0.3
        ours = measure_regions(mask)
        props = sorted(regionprops(label(mask, connectivity=2)), key=lambda p: p.bbox[:2])
        assert len(ours) == len(props)
        for r, p in zip(ours, props, strict=True):
            r0, c0, r1, c1 = p.bbox
            assert r["bbox"] == [c0, r0, c1, r1]
            assert r["area_px"] == p.area
            assert r["centroid"] == pytest.approx([p.centroid[1] + 0.5, p.centroid[0] + 0.5])
            assert r["max_diameter_px"] >= max(r["width_px"], r["height_px"])
            assert r["max_diameter_px"] <= math.hypot(r["width_px"], r["height_px"]) + 1e-9


def test_empty_and_full_masks():
    assert measure_regions(np.zeros((5, 5), dtype=np.uint8)) == []
    (r,) = measure_regions(np.full((5, 8), 255, dtype=np.uint8))
    assert r["area_px"] == 40 and r["bbox"] == [0, 0, 8, 5]


@pytest.mark.parametrize(
    ("spacing", "error"),
    [
        ((0, 1), ValueError),
        ((1, -1), ValueError),
        ((1, float("nan")), ValueError),
        ((1, float("inf")), ValueError),
        ((1e200, 1e200), ValueError),
        ((0.1, 10.5), ValueError),
        ((1, 2, 3), ValueError),
        ((1,), ValueError),
        ("0.5", TypeError),
        (0.5, TypeError),
        ((1, "2"), TypeError),
        ((True, 1), TypeError),
        ({0.1, 0.2}, TypeError),  # unordered: row and column could swap
        ({"row": 0.1, "col": 0.2}, TypeError),
    ],
)
def test_bad_pixel_spacing_is_refused_naming_it(spacing, error):
    with pytest.raises(error, match="pixel_spacing"):
        measure_regions(np.ones((3, 3), dtype=bool), pixel_spacing=spacing)


def test_spacing_up_to_the_limit_is_measured_finite():
    from vectorizer import MAX_PIXEL_SPACING_MM

    (r,) = measure_regions(np.ones((3, 3), dtype=bool),
                           pixel_spacing=(MAX_PIXEL_SPACING_MM, MAX_PIXEL_SPACING_MM))
    assert r["area_mm2"] == pytest.approx(9 * MAX_PIXEL_SPACING_MM**2)


def test_spacing_has_a_lower_bound_too():
    # 1e-320 mm per pixel was taken, and every area came out 0.0.
    from vectorizer import MIN_PIXEL_SPACING_MM, is_plausible_spacing

    square = np.ones((3, 3), dtype=bool)
    for spacing in ((1e-320, 1e-320), (0.1, 1e-300), (0.0009, 0.1)):
        assert not is_plausible_spacing(*spacing)
        with pytest.raises(ValueError, match="pixel_spacing values must be at least 0.001 mm"):
            measure_regions(square, pixel_spacing=spacing)
    assert is_plausible_spacing(MIN_PIXEL_SPACING_MM, MIN_PIXEL_SPACING_MM)
    (r,) = measure_regions(square, pixel_spacing=(MIN_PIXEL_SPACING_MM, MIN_PIXEL_SPACING_MM))
    assert r["area_mm2"] == pytest.approx(9e-6)


def test_bad_mask_is_refused():
    with pytest.raises(ValueError, match="mask"):
        measure_regions(np.ones((3, 3, 1)))
    with pytest.raises(ValueError, match="mask"):
        measure_regions(np.array([[0, 0.4]]))


def test_measurements_are_plain_json_values():
    """The server returns measure_regions' output as JSON without converting it."""
    import json

    mask = np.zeros((40, 50), bool)
    mask[3:19, 4:25] = True
    mask[25:38, 30:48] = True
    mask[28:32, 35:40] = False
    for spacing in (None, (0.1, 0.2)):
        regions = measure_regions(mask, pixel_spacing=spacing)
        assert len(regions) == 2
        assert json.loads(json.dumps(regions)) == regions


@pytest.mark.parametrize(
    ("row", "col", "plausible"),
    [(0.1, 0.1, True), (10.0, 0.05, True), (10.5, 0.1, False), (0.0, 0.1, False),
     (-0.1, 0.1, False), (float("nan"), 0.1, False), (0.1, float("inf"), False)],
)
def test_is_plausible_spacing_agrees_with_what_measure_regions_accepts(row, col, plausible):
    from vectorizer import is_plausible_spacing

    assert is_plausible_spacing(row, col) is plausible
    mask = np.ones((3, 3), dtype=bool)
    if plausible:
        assert measure_regions(mask, pixel_spacing=(row, col))[0]["area_mm2"] > 0
    else:
        with pytest.raises(ValueError, match="pixel_spacing"):
            measure_regions(mask, pixel_spacing=(row, col))


def test_measure_lesion_is_measure_regions_for_one_region_and_spans_its_pieces():
    from vectorizer import measure_lesion

    one = np.zeros((30, 40), bool)
    one[5:20, 3:30] = True
    one[12, 10:14] = False  # a hole
    assert measure_lesion(one, (0.1, 0.2)) == measure_regions(one, (0.1, 0.2))[0]
    assert measure_lesion(np.zeros((5, 5), bool)) is None
    # Two pieces of one lesion: their pixels together, their common hull's chords.
    two = np.zeros((30, 40), bool)
    two[5:10, 2:8] = True
    two[20:25, 30:38] = True
    pieces = measure_regions(two)
    lesion = measure_lesion(two)
    assert lesion["area_px"] == sum(p["area_px"] for p in pieces) == 70
    assert lesion["bbox"] == [2, 5, 38, 25]
    assert lesion["max_diameter_px"] == pytest.approx(np.hypot(36, 20))
    assert lesion["max_diameter_px"] > max(p["max_diameter_px"] for p in pieces)
    assert lesion["perimeter_px"] == pytest.approx(sum(p["perimeter_px"] for p in pieces))
    assert lesion["centroid"] == pytest.approx(
        [float(np.mean(np.nonzero(two)[1])) + 0.5, float(np.mean(np.nonzero(two)[0])) + 0.5])


def test_measure_lesion_of_a_cut_out_mask_gives_the_image_coordinates_of_its_origin():
    from vectorizer import measure_lesion

    image = np.zeros((60, 80), bool)
    image[25:40, 33:70] = True
    image[30, 40:45] = False
    image[45:50, 50:60] = True  # a second piece
    # Cut at any box holding the pixels: measured as on the whole image.
    for top, left in ((25, 33), (20, 30), (0, 0)):
        cut = image[top:55, left:75]
        assert (measure_lesion(cut, (0.1, 0.2), origin=(top, left))
                == measure_lesion(image, (0.1, 0.2)))
    assert measure_lesion(np.zeros((3, 3), bool), origin=(5, 5)) is None
    for origin, error in (((1,), TypeError), ((1.5, 2), TypeError), ((True, 0), TypeError),
                          ("12", TypeError), ((-1, 0), ValueError)):
        with pytest.raises(error, match="origin"):
            measure_lesion(image, origin=origin)
