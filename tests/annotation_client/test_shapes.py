import xml.etree.ElementTree as ET

import numpy as np
import pytest

import vectorizer
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
    # Drawn out and back along a line: three distinct vertices, no area.
    assert not s.is_region("M0,0L5,5L10,10L4,4Z")
    assert s.is_region("M0,0L5,5L10,10L4,5Z")
    assert not s.is_region("garbage")
    assert s.vertex_count([SQUARE, "M0,0L1,0L1,1Z"]) == 7


def test_a_symmetric_bow_tie_is_a_region_and_is_filled():
    # Its two loops' signed areas cancel, but Chromium fills both, and so must the page's
    # mask, or a vertex dragged across the outline makes the lesion vanish on save.
    bow_tie = "M20,20L80,80L80,20L20,80Z"
    assert s.is_region(bow_tie)
    mask = s.paths_to_mask([bow_tie], (100, 100))
    assert mask.sum() == vectorizer.svg_to_mask([bow_tie], shape=(100, 100)).sum() > 1500
    # A path retraced over a bend crosses itself too, but encloses nothing.
    assert not s.is_region("M0,0L10,0L20,5L10,0Z")
    # Nor does a square traced round and back again: the even-odd rule fills nothing.
    round_and_back = "M0,0L40,0L40,40L0,40L0,0L0,40L40,40L40,0Z"
    assert not vectorizer.svg_to_mask([round_and_back], shape=(50, 50)).any()
    assert not s.is_region(round_and_back)


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
    # Only plotly's own key: not one with a line break after it, which "$" would let by.
    moved = "M1,1L5,1L5,5Z"
    assert s.apply_relayout([SQUARE], {"shapes[0].path\n": moved}).paths is None


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


def test_a_drawn_stroke_enclosing_nothing_is_dropped_and_counted():
    shapes = [{"type": "path", "path": SQUARE}, {"type": "path", "path": "M2,2L9,9L3,3Z"}]
    edit = s.apply_relayout([SQUARE], {"shapes": shapes})
    assert edit.paths == [SQUARE] and edit.dropped == 1
    assert s.apply_relayout([SQUARE], {"shapes": shapes[:1]}).dropped == 0


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


def test_paths_to_svg_closes_a_hand_drawn_region_as_the_ais_are():
    # Plotly's Draw region reports its path without the closing Z.
    drawn = "M2,1L6,1L6,4L2,4"
    svg = s.paths_to_svg([drawn, "M0,0L4,0L4,3 M1,1L2,1L2,2Z", SQUARE], 8, 6)
    paths = ET.fromstring(svg).findall("{http://www.w3.org/2000/svg}path")
    assert [p.get("d") for p in paths] == [drawn + "Z", "M0,0L4,0L4,3ZM1,1L2,1L2,2Z", SQUARE]
    # The same region as before: closing changes no pixel, and it reads back closed.
    assert (s.paths_to_mask([drawn], (6, 8)) == s.paths_to_mask([drawn + "Z"], (6, 8))).all()
    assert s.svg_to_paths(svg, 8, 6)[0] == SQUARE


def _saved_mask(paths, shape):
    """The mask a save rasterises: the saved SVG document's."""
    svg = s.paths_to_svg(paths, shape[1], shape[0])
    return np.asarray(vectorizer.svg_to_mask(svg, shape=shape), dtype=bool)


def test_a_line_right_after_a_closepath_starts_at_the_closed_subpaths_first_vertex():
    # SVG (and the vectorizer, which rasterises the mask) starts the second triangle at
    # (0, 0); parse_path started it at (0, 30), a line with no area, so the outline it
    # measured, compared and drew lost the second triangle's 225 pixels, and a saved SVG
    # holding such a path was refused as "not written by this client".
    path = "M0,0L30,0L30,30ZL0,30L15,36Z"
    assert s.parse_path(path) == [[(0, 0), (30, 0), (30, 30)], [(0, 0), (0, 30), (15, 36)]]
    assert s.parse_path("M0,0L30,0L30,30Zv30h15z")[1] == [(0, 0), (0, 30), (15, 30)]
    drawn = s.paths_to_mask([path], (50, 50))
    assert drawn.sum() > 450
    redrawn = s.paths_to_mask([s.format_path(s.parse_path(path))], (50, 50))
    np.testing.assert_array_equal(redrawn, drawn)
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50" '
           f'viewBox="0 0 50 50"><path d="{path}" fill-rule="evenodd"/></svg>')
    np.testing.assert_array_equal(s.paths_to_mask(s.svg_to_paths(svg, 50, 50), (50, 50)), drawn)


def test_a_relative_move_after_an_open_subpath_is_saved_where_it_is_drawn():
    # "m" moves from the open subpath's last vertex, (20, 20): the Z the save adds before
    # it moved the second square to start from (0, 0), 10 px up and left of where the
    # page drew and measured it.
    path = "M0,0L20,0L20,20m5,5l10,0l0,10l-10,0"
    drawn = s.paths_to_mask([path], (50, 50))
    assert drawn[25:35, 25:35].all()
    np.testing.assert_array_equal(_saved_mask([path], (50, 50)), drawn)
    assert s.close_subpaths(path) == "M0,0L20,0L20,20ZM25,25L35,25L35,35L25,35Z"
    # Closed, or absolute, the path is kept as written.
    for kept in ("M0,0L20,0L20,20Zm5,5l10,0l0,10Z", "M0,0L20,0L20,20ZM25,25l10,0l0,10Z"):
        assert s.close_subpaths(kept) == kept


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

    yy, xx = np.mgrid[0:80, 0:100]
    mask = ((xx - 45) / 30.0) ** 2 + ((yy - 40) / 20.0) ** 2 <= 1.0
    paths = vectorizer.mask_to_paths(mask, max_vertices=64)
    back = s.paths_to_mask(paths, mask.shape)
    inter = np.logical_and(mask, back).sum()
    assert inter / np.logical_or(mask, back).sum() > 0.95


# --------------------------------------------------------------------------- SVG back to paths

# An 8 x 6 image: a ring (outer square with a square hole) at fractional coordinates,
# and a triangle. Both written as format_path writes them, so a round trip is exact.
RING = "M0.5,0.25L7.5,0.25L7.5,5.75L0.5,5.75ZM2.125,2L4,2L4,3.5L2.125,3.5Z"
TRIANGLE = "M1,1L3,1L2,2.5Z"
SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def test_svg_to_paths_reads_back_what_paths_to_svg_wrote():
    svg = s.paths_to_svg([RING, TRIANGLE], 8, 6)
    assert s.svg_to_paths(svg, 8, 6) == [RING, TRIANGLE]
    # The hole is still a hole: the same pixels as the paths saved.
    ring = s.svg_to_paths(svg, 8, 6)[0]
    expected = np.ones((6, 8), bool)
    expected[:, 0] = False  # pixel centres x = 0.5 are on the outer edge x = 0.5
    expected[2, 2:4] = False  # the hole: x in [2.125, 4], y in [2, 3.5]
    np.testing.assert_array_equal(s.paths_to_mask([ring], (6, 8)), expected)


def test_svg_to_paths_writes_paths_as_format_path_does():
    # Plotly's spacing, a repeated first vertex and relative commands come back
    # in the editor's own absolute form.
    svg = s.paths_to_svg(["M 2 1 L 6 1 L 6 4 L 2 4 Z", "m1,1 l2,0 l0,2 z", "M0,0H4V3L0,0Z"], 8, 6)
    assert s.svg_to_paths(svg, 8, 6) == [SQUARE, "M1,1L3,1L3,3Z", "M0,0L4,0L4,3Z"]


def test_an_svg_without_regions_gives_no_paths():
    assert s.svg_to_paths(s.paths_to_svg([], 8, 6), 8, 6) == []
    assert s.svg_to_paths(f'<svg {SVG_NS} width="8" height="6"></svg>', 8, 6) == []


@pytest.mark.parametrize("svg", ["not xml", "", f'<svg {SVG_NS} width="8" height="6">'])
def test_svg_to_paths_refuses_text_that_is_not_xml(svg):
    with pytest.raises(ValueError, match="the SVG cannot be parsed"):
        s.svg_to_paths(svg, 8, 6)


@pytest.mark.parametrize(("width", "height"), [(9, 6), (8, 7), (6, 8)])
def test_svg_to_paths_refuses_an_svg_of_another_size(width, height):
    svg = s.paths_to_svg([TRIANGLE], 8, 6)
    with pytest.raises(ValueError, match=f"sized 8x6, the image {width}x{height}"):
        s.svg_to_paths(svg, width, height)


def test_svg_to_paths_refuses_an_svg_with_no_size():
    # svgelements sizes an <svg> without width and height at 1000 x 1000.
    with pytest.raises(ValueError, match="the image 8x6"):
        s.svg_to_paths(f'<svg {SVG_NS}><path d="{TRIANGLE}"/></svg>', 8, 6)


@pytest.mark.parametrize(
    ("d", "command"),
    [
        ("M0,0 C1,1 2,2 3,3 Z", "C"),
        ("M0,0 Q1,1 3,3 Z", "Q"),
        ("M0,0 A1,1 0 0 1 3,3 Z", "A"),
    ],
)
def test_svg_to_paths_refuses_curves(d, command):
    svg = f'<svg {SVG_NS} width="8" height="6"><path d="{TRIANGLE}"/><path d="{d}"/></svg>'
    with pytest.raises(ValueError, match=f"unsupported content '{command}'"):
        s.svg_to_paths(svg, 8, 6)


@pytest.mark.parametrize("svg", [None, 7, ["<svg/>"]])
def test_svg_to_paths_takes_only_text_or_bytes(svg):
    with pytest.raises(TypeError, match="svg must be a str or bytes"):
        s.svg_to_paths(svg, 8, 6)


# The page's reader and the export's (vectorizer.svg_to_mask) read a file the client did
# not write the same way, or the page refuses it (audit helper-502, 4).
_HEAD = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 20 20">'
_RING = "M2,2 L18,2 L18,18 L2,18 Z M6,6 L14,6 L14,14 L6,14 Z"  # both clockwise


def test_a_saved_svg_in_utf16_opens_as_the_export_reads_it():
    text = ('<?xml version="1.0" encoding="UTF-16"?>'
            + s.paths_to_svg([TRIANGLE], 8, 6).replace("\n", ""))
    assert s.svg_to_paths(text.encode("utf-16"), 8, 6) == s.svg_to_paths(
        s.paths_to_svg([TRIANGLE], 8, 6), 8, 6)


@pytest.mark.parametrize("body", [
    f'<path d="{_RING}"/>',  # nonzero: the export fills the inner square, the page not
    f'<symbol id="a"><path d="{_RING}" fill-rule="evenodd"/></symbol>',  # not drawn
    f'<path d="{_RING}" fill-rule="evenodd" visibility="hidden"/>'
    '<path d="M1,1 L3,1 L3,3 Z" fill-rule="evenodd"/>',
])
def test_a_saved_svg_drawn_otherwise_than_the_editor_fills_it_is_refused(body):
    svg = f"{_HEAD}{body}</svg>"
    with pytest.raises(ValueError, match="otherwise than the SVG draws them"):
        s.svg_to_paths(svg, 20, 20)
    # The same ring filled even-odd is what the editor shows: it opens.
    assert s.svg_to_paths(f'{_HEAD}<path d="{_RING}" fill-rule="evenodd"/></svg>', 20, 20)


@pytest.mark.parametrize("view_box", ["0 0 0 0", "0 0 -20 8", "0 0 nan 8"])
def test_a_saved_svg_with_a_view_box_the_export_refuses_is_refused(view_box):
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" '
           f'viewBox="{view_box}"><path d="{_RING}" fill-rule="evenodd"/></svg>')
    with pytest.raises(ValueError, match="cannot be (drawn|parsed)"):
        s.svg_to_paths(svg, 20, 20)


def test_a_saved_svg_larger_than_the_export_reads_is_refused_before_parsing():
    big = _HEAD + "".join(f'<path d="M{i % 19},0 L{i % 19 + 1},0 L{i % 19},1 Z"/>'
                          for i in range(12_000)) + "</svg>"
    assert len(big) > s.MAX_PATH_CHARS
    with pytest.raises(ValueError, match="bytes long; an outline's SVG is at most"):
        s.svg_to_paths(big, 20, 20)


def test_svg_to_paths_checks_the_image_size_it_is_given():
    svg = s.paths_to_svg([TRIANGLE], 8, 6)
    with pytest.raises(ValueError, match="width"):
        s.svg_to_paths(svg, 0, 6)
    with pytest.raises(TypeError, match="height"):
        s.svg_to_paths(svg, 8, 6.0)


@pytest.mark.parametrize("text", [
    "<html><body>Not found</body></html>",  # an HTML error page saved in place of the SVG
    f'<html><svg {SVG_NS} width="8" height="6"><path d="{TRIANGLE}"/></svg></html>',
    '<h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:p>gone</h:p></h:html>',
])
def test_svg_to_paths_refuses_xml_that_is_not_an_svg(text):
    # Said as such, not "'SVGElement' object has no attribute 'width'" (audit 801 F9).
    with pytest.raises(ValueError, match="^the file is not an SVG document: its outermost "
                                         "element is <html>, not <svg>$"):
        s.svg_to_paths(text, 8, 6)


def test_svg_to_paths_refuses_corrupt_path_data():
    d = "M0,0L4,0L4,4L0,4Z garbage M1,1L2,1L2,2Z"
    svg = f'<svg {SVG_NS} width="8" height="6"><path d="{d}"/></svg>'
    with pytest.raises(ValueError):
        s.svg_to_paths(svg, 8, 6)


def test_svg_to_paths_refuses_a_shape_it_would_drop():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="8">'
        '<path d="M1,1L4,1L4,4Z"/><rect x="5" y="5" width="2" height="2"/></svg>'
    )
    with pytest.raises(ValueError, match="<rect>"):
        s.svg_to_paths(svg, 10, 8)


def test_svg_to_paths_drops_paths_that_enclose_nothing():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="8">'
        '<path d="M1,1L4,1L4,4Z"/><path d="M2,2"/><path d="M1,1L5,5Z"/></svg>'
    )
    assert s.svg_to_paths(svg, 10, 8) == ["M1,1L4,1L4,4Z"]


def _use_bomb(levels: int) -> str:
    """Nested groups each holding two <use> of the one before: 2**levels paths."""
    body = f'<defs><path id="p0" d="{TRIANGLE}"/>'
    for i in range(1, levels + 1):
        body += f'<g id="p{i}"><use href="#p{i - 1}"/><use href="#p{i - 1}"/></g>'
    return f'<svg {SVG_NS} width="8" height="6">{body}</defs><use href="#p{levels}"/></svg>'


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("svg", "reason"),
    [
        # 16 levels took svgelements a minute and 1.2 GB before anything could count.
        (_use_bomb(16), "refer to each other more than 8 deep"),
        # A <use> of its own group: "maximum recursion depth exceeded", after a while.
        (f'<svg {SVG_NS} width="8" height="6"><g id="a"><use href="#a"/>'
         f'<path d="{TRIANGLE}"/></g></svg>', "reference cycle"),
    ],
)
def test_svg_to_paths_refuses_use_that_expands_without_bound(svg, reason):
    # A saved SVG copied in from elsewhere is read from the data directory.
    with pytest.raises(ValueError, match=f"the SVG cannot be parsed .*{reason}"):
        s.svg_to_paths(svg, 8, 6)


def test_svg_to_paths_still_reads_a_modest_use():
    svg = (f'<svg {SVG_NS} width="8" height="6"><defs><path id="t" d="{TRIANGLE}"/></defs>'
           '<use href="#t"/></svg>')
    assert s.svg_to_paths(svg, 8, 6) == [TRIANGLE]


def test_svg_to_paths_refuses_a_nested_svg_with_a_viewbox():
    # svgelements would scale its paths about the wrong origin: misplaced, not refused.
    svg = (f'<svg {SVG_NS} width="8" height="6"><svg x="1" y="1" width="4" height="4" '
           f'viewBox="0 0 2 2"><path d="{TRIANGLE}"/></svg></svg>')
    with pytest.raises(ValueError, match="nested <svg> element with a viewBox"):
        s.svg_to_paths(svg, 8, 6)


# A save writes the editor's numbers as plotly gives them (paths_to_svg) and its mask is
# that SVG rasterised; reading the file back must not move them (audit 801 F1).
_W, _H = 200, 150
_NEAR_CENTRES = "M10.4996,20L60.25,20L60.25,120L10.4996,120Z"  # 0.0004 px off x = 10.5


@pytest.mark.parametrize("paths", [
    [_NEAR_CENTRES],  # rounded, 100 pixels differed: refused as "not written by this client"
    # Below the refusal threshold, loaded covering 2 pixels other than the saved mask.
    ["M10.4996,20L12.25,20L12.25,22L10.4996,22ZM100.2,50L160.7,50L160.7,140L100.2,140Z"],
    # As plotly writes a dragged vertex: every digit of a double, and an exponent.
    ["M30.499612345678912,40.50000000000001L120.25,1e-7L150.5,99.49990000000001Z"],
])
def test_a_saved_outline_reloads_to_exactly_the_pixels_of_its_saved_mask(paths):
    svg = s.paths_to_svg(paths, _W, _H)
    saved = vectorizer.svg_to_mask(svg)  # the save's vNNN_mask.png
    again = s.svg_to_paths(svg, _W, _H)
    assert s.same_geometry(again, paths, tolerance=0)
    np.testing.assert_array_equal(s.paths_to_mask(again, (_H, _W)), saved)


def test_format_path_exact_writes_the_shortest_digits_of_each_float():
    polygon = [(10.4996, 0.1 + 0.2), (1e-7, -0.0), (120.0, 1e7)]
    text = s.format_path([polygon], exact=True)
    assert text == "M10.4996,0.30000000000000004L0.0000001,0L120,10000000Z"
    assert s.parse_path(text) == [polygon]
    assert s.format_path([polygon]) == "M10.5,0.3L0,0L120,10000000Z"  # rounded, as before


def test_an_svg_read_back_keeps_the_numbers_its_transform_gives():
    # Not only the file's own text: svgelements places a transformed path, and the
    # outline is what it placed, in full.
    svg = (f'<svg {SVG_NS} width="{_W}" height="{_H}"><g transform="translate(0.0004,0)">'
           f'<path d="M10.5,20L60.25,20L60.25,120L10.5,120Z" fill-rule="evenodd"/></g></svg>')
    (path,) = s.svg_to_paths(svg, _W, _H)
    assert s.parse_path(path)[0][0] == (10.5 + 0.0004, 20.0)
    np.testing.assert_array_equal(s.paths_to_mask([path], (_H, _W)),
                                  vectorizer.svg_to_mask(svg))


# Inkscape saves a document in mm units with width and height in mm over a viewBox in
# pixels; svgelements converts them at 96 dpi with rounding (audit 801 F2).
@pytest.mark.parametrize(("w", "h"), [(40, 30), (562, 471), (1000, 800)])
@pytest.mark.parametrize("digits", [4, 6, 8])
def test_an_outline_resaved_in_mm_opens_as_the_export_reads_it(w, h, digits):
    svg = (f'<svg {SVG_NS} width="{w * 25.4 / 96:.{digits}f}mm" '
           f'height="{h * 25.4 / 96:.{digits}f}mm" viewBox="0 0 {w} {h}"><g id="layer1">'
           '<path style="fill:#ffffff;fill-rule:evenodd" d="m 5,5 h 20 v 20 h -20 z"/></g></svg>')
    (path,) = s.svg_to_paths(svg, w, h)
    np.testing.assert_array_equal(s.paths_to_mask([path], (h, w)), vectorizer.svg_to_mask(svg))


@pytest.mark.parametrize(("written", "opens"), [
    ("8.0009", True), ("8.002", False), ("8.4", False), ("2.1167mm", True), ("2.2mm", False),
])
def test_svg_to_paths_sizes_a_document_by_the_exports_rule(written, opens):
    # One rule for both readers: the page opens what the export rasterises, and says
    # what is wrong with a size it does not, as written ("sized 8x6, the image 8x6" was
    # said of 8.4).
    svg = f'<svg {SVG_NS} width="{written}" height="6"><path d="{TRIANGLE}"/></svg>'
    try:
        vectorizer.svg_to_mask(svg)
    except ValueError:
        exported = False
    else:
        exported = True
    assert exported == opens
    if opens:
        assert s.svg_to_paths(svg, 8, 6) == [TRIANGLE]
    else:
        with pytest.raises(ValueError, match=f"not sized in whole pixels .*got '{written}'"):
            s.svg_to_paths(svg, 8, 6)


@pytest.mark.parametrize("placed", ['x="10" y="10"', 'style="x: 10px; y: 10px"', 'x="0px" y="0px"'])
def test_svg_to_paths_ignores_the_root_svgs_position_as_a_renderer_does(placed):
    # Audit 801 F4 (client side): the outline was read 10 px right and down, then
    # refused as drawing otherwise than svg_to_mask, which ignores them.
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30" {placed}>'
           '<path d="M5 5 L25 5 L25 25 L5 25 Z"/></svg>')
    assert s.svg_to_paths(svg, 40, 30) == ["M5,5L25,5L25,25L5,25Z"]
    assert s.svg_to_paths(svg.encode("utf-8"), 40, 30) == ["M5,5L25,5L25,25L5,25Z"]
