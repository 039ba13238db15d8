import xml.etree.ElementTree as ET

import numpy as np
import pytest

from annotation_client import _shapes as s

SQUARE = "M2,1L6,1L6,4L2,4Z"


# --------------------------------------------------------------------------- parsing


def test_parse_plotly_and_vectorizer_path_styles():
    assert s.parse_path(SQUARE) == [[(2, 1), (6, 1), (6, 4), (2, 4)]]
    assert s.parse_path("M 2 1 L 6 1 L 6 4 L 2 4 Z") == s.parse_path(SQUARE)
    # Implicit linetos after M, relative commands, H and V, first vertex repeated.
    assert s.parse_path("M0,0 4,0 v3 h-4 L0,0 Z") == [[(0, 0), (4, 0), (4, 3), (0, 3)]]
    assert s.parse_path("m1,1 l2,0 l0,2 z") == [[(1, 1), (3, 1), (3, 3)]]
    two = s.parse_path("M0,0L9,0L9,9L0,9Z M3,3L6,3L6,6L3,6Z")
    assert len(two) == 2 and two[1][0] == (3, 3)
    assert s.parse_path("M1.5,-2e1L3,4L0,0Z")[0][0] == (1.5, -20.0)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("M0,0 C1,1 2,2 3,3 Z", ValueError),
        ("L1,1 L2,2", ValueError),
        ("M0,0 L1", ValueError),
        ("M0,0 L1,1 <script>", ValueError),
        (None, TypeError),
    ],
)
def test_parse_rejects_what_it_cannot_honour(path, error):
    with pytest.raises(error):
        s.parse_path(path)


def test_format_path_round_trips():
    polygons = [[(0.5, 1.25), (10, 1), (10.125, 7)], [(2, 2), (3, 2), (3, 3)]]
    text = s.format_path(polygons)
    assert text == "M0.5,1.25L10,1L10.125,7ZM2,2L3,2L3,3Z"
    assert s.parse_path(text) == polygons


def test_region_and_vertex_counts():
    assert s.is_region(SQUARE)
    assert not s.is_region("M0,0L5,5Z")
    assert not s.is_region("M0,0L5,5L0,0Z")
    assert not s.is_region("garbage")
    assert s.vertex_count([SQUARE, "M0,0L1,0L1,1Z"]) == 7


# --------------------------------------------------------------------------- plotly edits


def test_a_dragged_vertex_replaces_that_region_only():
    paths = [SQUARE, "M10,10L12,10L12,12Z"]
    moved = "M2,1L7,0L6,4L2,4Z"
    edit = s.apply_relayout(paths, {"shapes[0].path": moved})
    assert edit.paths == [moved, paths[1]]
    assert edit.boxes == []


def test_zoom_pan_and_unknown_keys_are_not_edits():
    assert s.apply_relayout([SQUARE], {"xaxis.range[0]": 3, "xaxis.range[1]": 9}).paths is None
    assert s.apply_relayout([SQUARE], {"dragmode": "pan"}).paths is None
    assert s.apply_relayout([SQUARE], {"autosize": True}).paths is None
    assert s.apply_relayout([SQUARE], None).paths is None
    assert s.apply_relayout([SQUARE], {"shapes[5].path": SQUARE}).paths is None


def test_a_drawn_region_is_added_and_a_drawn_rectangle_is_a_box():
    drawn = "M20,20L30,20L25,28Z"
    shapes = [
        {"type": "path", "path": SQUARE},
        {"type": "path", "path": drawn},
        {"type": "rect", "x0": 9.5, "y0": 20, "x1": 1.2, "y1": 3},
    ]
    edit = s.apply_relayout([SQUARE], {"shapes": shapes})
    assert edit.paths == [SQUARE, drawn]
    assert edit.boxes == [(1.2, 3.0, 9.5, 20.0)]


def test_erasing_leaves_the_remaining_regions():
    edit = s.apply_relayout(
        [SQUARE, "M0,0L1,0L1,1Z"], {"shapes": [{"type": "path", "path": SQUARE}]}
    )
    assert edit.paths == [SQUARE]
    assert s.apply_relayout([SQUARE], {"shapes": []}).paths == []


def test_a_region_dragged_flat_is_dropped():
    edit = s.apply_relayout([SQUARE, "M0,0L1,0L1,1Z"], {"shapes[1].path": "M0,0L1,0Z"})
    assert edit.paths == [SQUARE]


def test_same_geometry_ignores_how_numbers_are_written():
    plotly_style = "M2.0000000000000004,1L6,1L6,4.000000000000001L2,4Z"
    assert s.same_geometry([SQUARE], [plotly_style])
    assert s.same_geometry([SQUARE], ["M 2 1 L 6 1 L 6 4 L 2 4 Z"])
    assert not s.same_geometry([SQUARE], ["M2,1L6,1L6,4.5L2,4Z"])
    assert not s.same_geometry([SQUARE], ["M2,1L6,1L6,4Z"])
    assert not s.same_geometry([SQUARE], [SQUARE, SQUARE])
    assert s.same_geometry([], [])


def test_clip_box_snaps_outward_and_clips():
    assert s.clip_box((1.2, 3.7, 9.5, 20.0), 8, 10) == (1, 3, 8, 10)
    assert s.clip_box((9.5, 20, 1.2, 3.7), 100, 100) == (1, 3, 10, 20)
    assert s.clip_box((-5, -5, 0.5, 40), 100, 100) is None  # under 2 px wide
    assert s.clip_box((200, 200, 300, 300), 100, 100) is None
    with pytest.raises(ValueError, match="box"):
        s.clip_box((1, 2, 3), 10, 10)


# --------------------------------------------------------------------------- SVG and masks


def test_svg_is_image_sized_with_one_evenodd_path_per_region():
    svg = s.paths_to_svg([SQUARE, "M0,0L1,0L1,1Z"], 8, 6)
    root = ET.fromstring(svg)
    assert root.get("width") == "8" and root.get("height") == "6"
    assert root.get("viewBox") == "0 0 8 6"
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    assert [p.get("d") for p in paths] == [SQUARE, "M0,0L1,0L1,1Z"]
    assert {p.get("fill-rule") for p in paths} == {"evenodd"}
    with pytest.raises(ValueError, match="width"):
        s.paths_to_svg([], 0, 5)
    with pytest.raises(TypeError, match="paths"):
        s.paths_to_svg(SQUARE, 8, 6)


def test_paths_to_mask_covers_exactly_the_pixels_inside():
    mask = s.paths_to_mask([SQUARE], (6, 8))
    expected = np.zeros((6, 8), bool)
    expected[1:4, 2:6] = True  # pixel (r, c) covers x in [c, c+1], y in [r, r+1]
    np.testing.assert_array_equal(mask, expected)


def test_a_hole_is_a_subpath_filled_evenodd():
    ring = "M0,0L8,0L8,8L0,8ZM2,2L6,2L6,6L2,6Z"
    mask = s.paths_to_mask([ring], (8, 8))
    assert mask.sum() == 64 - 16
    assert not mask[2:6, 2:6].any()


def test_empty_and_degenerate_outlines_give_an_empty_mask():
    assert not s.paths_to_mask([], (5, 7)).any()
    assert s.paths_to_mask(["M0,0L3,3Z"], (5, 7)).shape == (5, 7)
    with pytest.raises(ValueError, match="shape"):
        s.paths_to_mask([SQUARE], (6,))


def test_vectorizer_paths_round_trip_through_shapes():
    import vectorizer

    yy, xx = np.mgrid[0:80, 0:100]
    mask = ((xx - 45) / 30.0) ** 2 + ((yy - 40) / 20.0) ** 2 <= 1.0
    paths = vectorizer.mask_to_paths(mask, max_vertices=64)
    back = s.paths_to_mask(paths, mask.shape)
    inter = np.logical_and(mask, back).sum()
    assert inter / np.logical_or(mask, back).sum() > 0.95
