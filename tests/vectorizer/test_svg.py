"""mask_to_svg: document format, hand-made masks with exact output, edge cases, bad input."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from vectorizer import mask_to_svg, svg_to_mask

SVG_NS = "{http://www.w3.org/2000/svg}"
NUMBER = r"-?\d+(?:\.\d+)?"
# Absolute M, L, C, Z only, with the right number of coordinates after each.
SUBPATH = (
    rf"M{NUMBER} {NUMBER}"
    rf"(?: (?:L{NUMBER} {NUMBER}|C{NUMBER} {NUMBER} {NUMBER} {NUMBER} {NUMBER} {NUMBER}))+ Z"
)
PATH_DATA = re.compile(rf"^{SUBPATH}(?: {SUBPATH})*$")


def _paths(svg: str) -> tuple[ET.Element, list[ET.Element]]:
    root = ET.fromstring(svg)
    assert root.tag == SVG_NS + "svg"
    return root, root.findall(SVG_NS + "path")


def _rect_mask():
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 2:5] = True  # x in [2, 5], y in [1, 3]
    return mask


def test_rectangle_polygon_is_exactly_its_pixel_corners():
    svg = mask_to_svg(_rect_mask(), alphamax=0)
    root, (path,) = _paths(svg)
    assert path.get("d") == "M2 2 L2 1 L5 1 L5 3 L2 3 Z"
    assert path.get("fill-rule") == "evenodd"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("6", "4", "0 0 6 4")


def test_rectangle_with_default_curves_rasterises_to_the_same_pixels():
    mask = _rect_mask()
    svg = mask_to_svg(mask)
    d = _paths(svg)[1][0].get("d")
    assert "C" in d and PATH_DATA.match(d)
    np.testing.assert_array_equal(svg_to_mask(svg), mask)


def test_document_format_for_regions_and_holes():
    mask = np.zeros((40, 60), dtype=bool)
    yy, xx = np.mgrid[:40, :60]
    mask |= (xx - 15) ** 2 + (yy - 20) ** 2 < 12**2
    mask &= ~((xx - 15) ** 2 + (yy - 20) ** 2 < 5**2)  # hole
    mask[14:27, 35:55] = True
    svg = mask_to_svg(mask)
    root, paths = _paths(svg)
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("60", "40", "0 0 60 40")
    assert len(paths) == 2
    for p in paths:
        assert p.get("fill-rule") == "evenodd"
        assert PATH_DATA.match(p.get("d")), p.get("d")
    # Ordered top to bottom: the disc's top (row 8) is above the rectangle's (row 14).
    assert [p.get("d").count("M") for p in paths] == [2, 1]
    np.testing.assert_array_equal(svg_to_mask(svg), mask)


def test_island_inside_a_hole_is_its_own_path():
    mask = np.zeros((30, 30), dtype=bool)
    mask[2:28, 2:28] = True
    mask[8:22, 8:22] = False
    mask[12:18, 12:18] = True
    svg = mask_to_svg(mask)
    paths = _paths(svg)[1]
    assert [p.get("d").count("M") for p in paths] == [2, 1]
    np.testing.assert_array_equal(svg_to_mask(svg), mask)


def test_empty_mask_gives_a_valid_svg_without_paths():
    svg = mask_to_svg(np.zeros((7, 9), dtype=bool))
    root, paths = _paths(svg)
    assert paths == []
    assert (root.get("width"), root.get("height")) == ("9", "7")
    assert not svg_to_mask(svg).any()
    assert svg_to_mask(svg).shape == (7, 9)


def test_full_mask_outline_is_the_image_border():
    mask = np.ones((5, 7), dtype=bool)
    svg = mask_to_svg(mask, alphamax=0)
    (path,) = _paths(svg)[1]
    coords = re.findall(rf"({NUMBER}) ({NUMBER})", path.get("d"))
    corners = {(float(x), float(y)) for x, y in coords}
    assert {(0.0, 0.0), (7.0, 0.0), (7.0, 5.0), (0.0, 5.0)} <= corners
    np.testing.assert_array_equal(svg_to_mask(mask_to_svg(mask)), mask)


def test_lesions_touching_every_border_round_trip():
    yy, xx = np.mgrid[:50, :80]
    mask = (xx - 0) ** 2 + (yy - 0) ** 2 < 15**2  # top-left corner
    mask |= (xx - 79) ** 2 + (yy - 25) ** 2 < 10**2  # right edge
    mask |= (xx - 40) ** 2 / 3 + (yy - 49) ** 2 < 8**2  # bottom edge
    svg = mask_to_svg(mask)
    assert len(_paths(svg)[1]) == 3
    back = svg_to_mask(svg)
    np.testing.assert_array_equal(back, mask)


def test_one_pixel_specks_are_dropped_by_turdsize():
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:15, 5:15] = True
    mask[1, 1] = True  # speck
    mask[18, 2:4] = True  # 2-pixel speck
    mask[9, 9] = False  # pinhole
    default = svg_to_mask(mask_to_svg(mask))
    expected = mask.copy()
    expected[1, 1] = False
    expected[18, 2:4] = False
    expected[9, 9] = True
    np.testing.assert_array_equal(default, expected)
    assert len(_paths(mask_to_svg(mask))[1]) == 1
    # turdsize=0 keeps everything.
    np.testing.assert_array_equal(svg_to_mask(mask_to_svg(mask, turdsize=0)), mask)
    assert len(_paths(mask_to_svg(mask, turdsize=0))[1]) == 3


@pytest.mark.parametrize("shape", [(3, 50), (50, 3), (1, 1), (1, 17), (23, 1)])
def test_non_square_and_thin_images(shape):
    rng = np.random.default_rng(sum(shape))
    mask = rng.random(shape) < 0.6
    svg = mask_to_svg(mask, turdsize=0)
    root = _paths(svg)[0]
    assert (int(root.get("height")), int(root.get("width"))) == shape
    back = svg_to_mask(svg)
    assert back.shape == shape
    np.testing.assert_array_equal(back, mask)


def test_large_4000x3000_image():
    h, w = 3000, 4000
    yy, xx = np.ogrid[:h, :w]
    mask = (xx - 1500) ** 2 + (yy - 1400) ** 2 < 900**2
    mask = mask & ~((xx - 1500) ** 2 + (yy - 1400) ** 2 < 200**2)
    mask = mask | ((xx - 3500) ** 2 / 4 + (yy - 2500) ** 2 < 300**2)
    svg = mask_to_svg(mask)
    root, paths = _paths(svg)
    assert (root.get("width"), root.get("height")) == ("4000", "3000")
    assert len(paths) == 2
    back = svg_to_mask(svg)
    assert back.shape == (h, w)
    diff = int(np.count_nonzero(back ^ mask))
    assert diff <= 1e-5 * mask.sum()


@pytest.mark.parametrize(
    "convert",
    [
        lambda m: m.astype(np.uint8),
        lambda m: m.astype(np.uint8) * 255,
        lambda m: m.astype(np.int64),
        lambda m: m.astype(np.float32),
        lambda m: (m * 255.0).astype(np.float64),
        lambda m: m.tolist(),
        lambda m: np.asfortranarray(m),
        lambda m: np.pad(m, 1)[1:-1:1, 1:-1],
    ],
)
def test_mask_encodings_give_the_same_document(convert):
    mask = _rect_mask()
    mask[0, 0] = True
    assert mask_to_svg(convert(mask), turdsize=0) == mask_to_svg(mask, turdsize=0)


@pytest.mark.parametrize(
    ("mask", "error", "word"),
    [
        (np.zeros((4, 4, 3), dtype=bool), ValueError, "mask"),
        (np.zeros(5, dtype=bool), ValueError, "mask"),
        (np.zeros((0, 5), dtype=bool), ValueError, "mask"),
        (np.full((3, 3), 0.5), ValueError, "mask"),
        (np.array([[0, 2], [1, 0]]), ValueError, "mask"),
        (np.array([[0, 1], [255, 0]]), ValueError, "mask"),
        (np.array([[0.0, np.nan]]), ValueError, "mask"),
        (np.array([[-1, 0]]), ValueError, "mask"),
        ("mask.png", TypeError, "mask"),
        (b"\x89PNG", TypeError, "mask"),
        (np.array([["a", "b"]]), TypeError, "mask"),
        (np.array([[1 + 0j]]), TypeError, "mask"),
        (None, TypeError, "mask"),
    ],
)
def test_bad_masks_are_refused_naming_the_parameter(mask, error, word):
    with pytest.raises(error, match=word):
        mask_to_svg(mask)


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"turdsize": -1}, ValueError, "turdsize"),
        ({"turdsize": 1.5}, TypeError, "turdsize"),
        ({"turdsize": True}, TypeError, "turdsize"),
        ({"alphamax": 2.0}, ValueError, "alphamax"),
        ({"alphamax": -0.1}, ValueError, "alphamax"),
        ({"alphamax": "1"}, TypeError, "alphamax"),
        ({"opttolerance": float("nan")}, ValueError, "opttolerance"),
        ({"opttolerance": -1}, ValueError, "opttolerance"),
    ],
)
def test_bad_parameters_are_refused_naming_them(kwargs, error, word):
    with pytest.raises(error, match=word):
        mask_to_svg(_rect_mask(), **kwargs)


def test_parameters_change_the_outline():
    yy, xx = np.mgrid[:40, :40]
    mask = (xx - 20) ** 2 + (yy - 20) ** 2 < 15**2
    polygon = mask_to_svg(mask, alphamax=0)
    smooth = mask_to_svg(mask, alphamax=1.3)
    assert "C" not in _paths(polygon)[1][0].get("d")
    assert "L" not in _paths(smooth)[1][0].get("d")
    assert mask_to_svg(mask, opttolerance=0).count("C") >= mask_to_svg(mask).count("C")


def test_numbers_are_short_fixed_point():
    from vectorizer._svg import _fmt

    values = np.array([0, -0.0, -0.0001, 2.5, 7, 10, 100.0, 3.14159, -12.3, 1e-9, 4000.25, -10.0])
    assert _fmt(values) == [
        "0", "0", "0", "2.5", "7", "10", "100", "3.142", "-12.3", "0", "4000.25", "-10",
    ]
