"""svg_to_mask: exact pixel-centre filling of any SVG path data, and its errors."""

import re

import numpy as np
import pytest
import shapely
from _timing import growth
from hypothesis import given
from hypothesis import strategies as st
from skimage.measure import points_in_poly

from vectorizer import svg_to_mask
from vectorizer._rasterize import (
    _XML_ENCODING,
    MAX_PARSED_BYTES,
    MAX_SHAPES,
    MAX_SVG_BYTES,
    _as_utf8,
)


def _doc(body: str, w: int = 10, h: int = 8, extra: str = "") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" {extra}>'
        f"{body}</svg>"
    )


def _centres(shape):
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    return np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)


def _rect(shape, x0, y0, x1, y1):
    """Pixels whose centre lies in [x0, x1] x [y0, y1] (no centre on the border)."""
    c = _centres(shape)
    inside = (c[:, 0] > x0) & (c[:, 0] < x1) & (c[:, 1] > y0) & (c[:, 1] < y1)
    return inside.reshape(shape)


def test_docstring_rectangle():
    got = svg_to_mask(["M 1,0 L 3,0 L 3,2 L 1,2 Z"], shape=(3, 4))
    expected = np.array([[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "d",
    [
        "M1 1 L4 1 L4 3 L1 3 Z",
        "M1 1 H4 V3 H1 Z",
        "m1 1 h3 v2 h-3 z",
        "m1 1 l3 0 l0 2 l-3 0 z",
        "M1,1 4,1 4,3 1,3z",  # implicit lineto after moveto
        "M 1 1 L 4 1 L 4 3 L 1 3",  # unclosed: filled as if closed
        "M4 3 L1 3 L1 1 L4 1 Z",  # other orientation
    ],
)
def test_equivalent_path_spellings_fill_the_same_pixels(d):
    got = svg_to_mask(_doc(f'<path d="{d}"/>'))
    expected = np.zeros((8, 10), dtype=bool)
    expected[1:3, 1:4] = True
    np.testing.assert_array_equal(got, expected)


def test_random_polygons_match_an_independent_point_in_polygon_test():
    rng = np.random.default_rng(1)
    shape = (37, 53)
    centres = _centres(shape)
    for _ in range(40):
        k = int(rng.integers(3, 12))
        verts = rng.uniform([-5, -5], [58, 42], size=(k, 2))
        d = "M " + " L ".join(f"{x!r},{y!r}" for x, y in verts.tolist()) + " Z"
        got = svg_to_mask([d], shape=shape)
        expected = points_in_poly(centres, verts).reshape(shape)  # even-odd
        np.testing.assert_array_equal(got, expected)


def _circle_expected(shape, cx, cy, r, margin=0.01):
    c = _centres(shape)
    dist = np.hypot(c[:, 0] - cx, c[:, 1] - cy) - r
    inside = (dist < 0).reshape(shape)
    unsure = (np.abs(dist) < margin).reshape(shape)
    return inside, unsure


@pytest.mark.parametrize(
    "body",
    [
        '<circle cx="20.3" cy="15.1" r="11.37"/>',
        '<ellipse cx="20.3" cy="15.1" rx="11.37" ry="11.37"/>',
        '<path d="M 8.93 15.1 A 11.37 11.37 0 0 1 31.67 15.1 A 11.37 11.37 0 0 1 8.93 15.1 Z"/>',
        '<path d="m 8.93 15.1 a 11.37 11.37 0 1 0 22.74 0 a 11.37 11.37 0 1 0 -22.74 0 z"/>',
        # A unit circle scaled by a transform.
        '<circle r="1" transform="translate(20.3 15.1) scale(11.37)"/>',
    ],
)
def test_arcs_and_circles_are_exact_at_pixel_centres(body):
    got = svg_to_mask(_doc(body, w=40, h=30))
    inside, unsure = _circle_expected((30, 40), 20.3, 15.1, 11.37)
    np.testing.assert_array_equal(got[~unsure], inside[~unsure])
    assert unsure.sum() < 5


@pytest.mark.parametrize(
    ("body", "matrix", "radii", "half"),
    [
        # (a, b, c, d, e, f) maps local (x, y) to (a x + c y + e, b x + d y + f).
        ('<g transform="translate(20 15) skewY(-22.5)"><circle r="8"/></g>',
         (1, np.tan(np.radians(-22.5)), 0, 1, 20, 15), (8, 8), False),
        ('<g transform="scale(1.5 0.7)"><ellipse rx="10" ry="4" '
         'transform="translate(13 21) rotate(30)"/></g>',
         (1.5 * np.cos(np.radians(30)), 0.7 * np.sin(np.radians(30)),
          -1.5 * np.sin(np.radians(30)), 0.7 * np.cos(np.radians(30)), 19.5, 14.7),
         (10, 4), False),
        # Mirrored and skewed: the two arcs' sweep must keep its side of the chord.
        ('<path transform="matrix(1 0.3 0.5 -1 20 15)" '
         'd="M -10 0 A 10 4 0 0 1 10 0 A 10 4 0 0 1 -10 0 Z"/>',
         (1, 0.3, 0.5, -1, 20, 15), (10, 4), False),
        ('<path transform="matrix(1 0.3 0.5 -1 20 15)" d="M -10 0 A 10 4 0 0 1 10 0 Z"/>',
         (1, 0.3, 0.5, -1, 20, 15), (10, 4), True),
    ],
)
def test_arcs_under_a_skew_or_a_turned_scale_are_where_a_renderer_draws_them(
        body, matrix, radii, half):
    # svgelements draws an arc from axes it takes to be perpendicular, which a skew
    # (or a non-uniform scale of a turned ellipse) makes them no longer: the circle
    # came out skewed the other way, 30 pixels off of 200, and Chromium drew it here.
    shape = (30, 40)
    a, b, c, d, e, f = matrix
    local = (_centres(shape) - (e, f)) @ np.linalg.inv(np.array([[a, c], [b, d]])).T
    level = np.hypot(local[:, 0] / radii[0], local[:, 1] / radii[1]) - 1
    inside = level < 0
    unsure = np.abs(level) < 0.01
    if half:  # the half drawn from (-10, 0) to (10, 0) clockwise on screen: y < 0
        inside &= local[:, 1] < 0
        unsure |= np.abs(local[:, 1]) < 0.05
    got = svg_to_mask(_doc(body, w=40, h=30)).ravel()
    np.testing.assert_array_equal(got[~unsure], inside[~unsure])
    assert inside.sum() > 60 and unsure.sum() < 15


def _bezier_polygon(ctrl, n=4000):
    t = np.linspace(0, 1, n)[:, None]
    ctrl = np.asarray(ctrl, dtype=float)
    if len(ctrl) == 3:
        return (1 - t) ** 2 * ctrl[0] + 2 * (1 - t) * t * ctrl[1] + t**2 * ctrl[2]
    return (
        (1 - t) ** 3 * ctrl[0] + 3 * (1 - t) ** 2 * t * ctrl[1]
        + 3 * (1 - t) * t**2 * ctrl[2] + t**3 * ctrl[3]
    )


def _near_polyline(shape, poly, tol=0.02):
    """Pixels whose centre is within tol of the closed polyline (ambiguous ones)."""
    ring = shapely.LinearRing(poly)
    d = shapely.distance(shapely.points(_centres(shape)), ring)
    return (d < tol).reshape(shape)


@pytest.mark.parametrize(
    ("d", "pieces"),
    [
        ("M 2 20 Q 20 -10 38 20 Z", [[(2, 20), (20, -10), (38, 20)]]),
        ("M 2 20 q 18 -30 36 0 Z", [[(2, 20), (20, -10), (38, 20)]]),
        ("M 2 20 C 10 -5 30 45 38 10 Z", [[(2, 20), (10, -5), (30, 45), (38, 10)]]),
        # T reflects the previous quadratic control point: (20, 2) -> (30, 18) about (25, 10)
        (
            "M 15 10 Q 20 2 25 10 T 35 10 Z",
            [[(15, 10), (20, 2), (25, 10)], [(25, 10), (30, 18), (35, 10)]],
        ),
        # S reflects the previous cubic's second control point: (12, 25) about (20, 15)
        (
            "M 4 15 C 6 2 12 25 20 15 S 30 2 36 15 Z",
            [[(4, 15), (6, 2), (12, 25), (20, 15)], [(20, 15), (28, 5), (30, 2), (36, 15)]],
        ),
        # After a curve of the other kind there is nothing to reflect: S and T start with
        # their control point on the current point (svgelements reflected (12, 2) for
        # the S, and (12, 25) for the T; Chromium did not).
        (
            "M 4 15 Q 12 2 20 15 S 30 2 36 15 Z",
            [[(4, 15), (12, 2), (20, 15)], [(20, 15), (20, 15), (30, 2), (36, 15)]],
        ),
        (
            "M 4 15 C 6 2 12 25 20 15 T 35.3 10.2 Z",
            [[(4, 15), (6, 2), (12, 25), (20, 15)], [(20, 15), (20, 15), (35.3, 10.2)]],
        ),
    ],
)
def test_bezier_curves_match_a_dense_independent_flattening(d, pieces):
    shape = (30, 40)
    got = svg_to_mask([d], shape=shape)
    poly = np.concatenate([_bezier_polygon(p) for p in pieces])
    expected = points_in_poly(_centres(shape), poly).reshape(shape)
    near = _near_polyline(shape, poly)
    np.testing.assert_array_equal(got[~near], expected[~near])
    assert expected.sum() > 20 and near.sum() < 0.05 * expected.sum()


@pytest.mark.parametrize(
    ("body", "box"),
    [
        ('<g transform="translate(3,2) scale(2)"><path d="M0 0 h2 v1 h-2 z"/></g>', (3, 2, 7, 4)),
        ('<path d="M0 0 h2 v1 h-2 z" transform="matrix(2 0 0 3 1 1)"/>', (1, 1, 5, 4)),
        # rotate(90) maps (x, y) to (-y, x): [0, 4] x [0, 2] -> [-2, 0] x [0, 4]
        ('<g transform="translate(5 1)"><rect width="4" height="2" transform="rotate(90)"/></g>',
         (3, 1, 5, 5)),
        ('<rect x="1" y="1" width="3" height="2" style="fill:red;stroke:none"/>', (1, 1, 4, 3)),
    ],
)
def test_transforms_and_nested_elements(body, box):
    got = svg_to_mask(_doc(body))
    np.testing.assert_array_equal(got, _rect((8, 10), *box))


def test_viewbox_scales_user_units_to_pixels():
    svg = _doc('<rect x="1" y="1" width="2" height="1"/>', w=10, h=8, extra='viewBox="0 0 5 4"')
    np.testing.assert_array_equal(svg_to_mask(svg), _rect((8, 10), 2, 2, 6, 4))


def test_viewbox_alone_gives_the_size():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 6 5">'
        '<rect width="2" height="2"/></svg>'
    )
    got = svg_to_mask(svg)
    assert got.shape == (5, 6)
    np.testing.assert_array_equal(got, _rect((5, 6), 0, 0, 2, 2))


def test_several_paths_are_united():
    body = (
        '<path d="M0 0 H3 V3 H0 Z"/><path d="M2 2 H6 V5 H2 Z"/>'
        '<rect x="8" y="6" width="2" height="2"/>'
    )
    got = svg_to_mask(_doc(body))
    expected = (
        _rect((8, 10), 0, 0, 3, 3) | _rect((8, 10), 2, 2, 6, 5) | _rect((8, 10), 8, 6, 10, 8)
    )
    np.testing.assert_array_equal(got, expected)


SAME_WAY_RINGS = "M0 0 H10 V8 H0 Z M2 2 H8 V6 H2 Z"  # both rings clockwise on screen
RING = _rect((8, 10), 0, 0, 10, 8) & ~_rect((8, 10), 2, 2, 8, 6)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (f'<path fill-rule="evenodd" d="{SAME_WAY_RINGS}"/>', RING),
        (f'<path style="fill-rule: evenodd" d="{SAME_WAY_RINGS}"/>', RING),
        (f'<g fill-rule="evenodd"><path d="{SAME_WAY_RINGS}"/></g>', RING),
        # SVG's initial fill rule is nonzero: same-direction rings fill the hole.
        (f'<path d="{SAME_WAY_RINGS}"/>', _rect((8, 10), 0, 0, 10, 8)),
        (f'<path fill-rule="nonzero" d="{SAME_WAY_RINGS}"/>', _rect((8, 10), 0, 0, 10, 8)),
        # Opposite directions make a hole under either rule.
        ('<path d="M0 0 H10 V8 H0 Z M2 2 V6 H8 V2 Z"/>', RING),
        # "inherit" takes the parent's rule, as leaving the property out does.
        (f'<g fill-rule="evenodd"><path fill-rule="inherit" d="{SAME_WAY_RINGS}"/></g>', RING),
        (f'<g fill-rule="evenodd"><path style="fill-rule:inherit" d="{SAME_WAY_RINGS}"/></g>',
         RING),
        (f'<g fill-rule="nonzero"><path fill-rule="inherit" d="{SAME_WAY_RINGS}"/></g>',
         _rect((8, 10), 0, 0, 10, 8)),
    ],
)
def test_fill_rules(body, expected):
    np.testing.assert_array_equal(svg_to_mask(_doc(body)), expected)


def test_path_strings_are_filled_even_odd():
    np.testing.assert_array_equal(svg_to_mask([SAME_WAY_RINGS], shape=(8, 10)), RING)
    np.testing.assert_array_equal(svg_to_mask((SAME_WAY_RINGS, ""), shape=[8, 10]), RING)
    assert not svg_to_mask([], shape=(3, 4)).any()


def test_shared_edge_through_pixel_centres_is_claimed_once():
    # x = 2.5 runs through the centres of column 2.
    left = svg_to_mask(["M0 0 H2.5 V4 H0 Z"], shape=(4, 5))
    right = svg_to_mask(["M2.5 0 H5 V4 H2.5 Z"], shape=(4, 5))
    assert not (left & right).any()
    assert (left | right).all()


def test_geometry_outside_the_image_is_clipped():
    got = svg_to_mask(["M -100 -100 H 3 V 2 H -100 Z", "M 8 6 H 1000 V 1000 H 8 Z"], shape=(8, 10))
    np.testing.assert_array_equal(got, _rect((8, 10), 0, 0, 3, 2) | _rect((8, 10), 8, 6, 10, 8))


def test_shape_may_repeat_the_documents_size():
    svg = _doc('<rect width="2" height="2"/>')
    np.testing.assert_array_equal(svg_to_mask(svg, shape=(8, 10)), svg_to_mask(svg))
    np.testing.assert_array_equal(svg_to_mask(svg.encode()), svg_to_mask(svg))


def test_document_without_size_needs_a_shape():
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><rect width="2" height="2"/></svg>'
    with pytest.raises(ValueError, match="shape"):
        svg_to_mask(svg)
    assert svg_to_mask(svg, shape=(3, 3)).sum() == 4


@pytest.mark.parametrize(
    ("args", "error", "word"),
    [
        (("<svg",), ValueError, "svg_or_paths"),
        (("not an svg at all",), ValueError, "svg_or_paths"),
        (("<html><body>svg</body></html>",), ValueError, "svg_or_paths"),
        ((_doc('<path d="M1 1 L foo 2 Z"/>'),), ValueError, "svg_or_paths"),
        ((_doc('<path d="L 1 1 L 5 5 Z"/>'),), ValueError, "svg_or_paths"),
        ((_doc('<path d="M 1e400 1 L 5 5 L 1 5 Z"/>'),), ValueError, "svg_or_paths"),
        ((_doc('<path d="M 1e12 1 L 5 5 L 1 5 Z"/>'),), ValueError, "svg_or_paths"),
        ((_doc("", w="100mm"),), ValueError, "svg_or_paths"),
        ((_doc("", w="2.5"),), ValueError, "svg_or_paths"),
        ((_doc("", w="0"),), ValueError, "svg_or_paths"),
        ((_doc("", w="10em"),), ValueError, "relative to"),
        ((_doc("", w="10vw"),), ValueError, "relative to"),
        ((_doc("", extra='viewBox="0 0 -10 8"'),), ValueError, "viewBox"),
        ((_doc("", extra='viewBox="0 0 0 0"'),), ValueError, "viewBox"),
        # svgelements skipped what it could not read: a TypeError comparing None.
        ((_doc("", extra='viewBox="0 0 nan 10"'),), ValueError, "viewBox '0 0 nan 10' must"),
        ((_doc("", extra='viewBox="0 0 10"'),), ValueError, "viewBox '0 0 10' must be four"),
        ((_doc("", extra='viewBox="nan 0 10 10"'),), ValueError, "finite numbers"),
        ((_doc("", extra='viewBox="0 0 1e400 10"'),), ValueError, "finite numbers"),
        # Its square underflows to 0: svgelements said only "float division by zero".
        ((_doc('<path d="M1 1 A1e-300 1e-300 0 0 1 5 5 Z"/>'),), ValueError,
         "arc radius under about 1e-154"),
        ((_doc('<svg x="2" y="2" width="5" height="5" viewBox="0 0 1 1"><rect width="1" '
               'height="1"/></svg>'),), ValueError, "nested <svg>"),
        (('<svg xmlns="http://www.w3.org/2000/svg" width="5"/>',), ValueError, "svg_or_paths"),
        ((_doc(""), (8, 11)), ValueError, "shape"),
        ((["M0 0 H1 V1 Z"],), ValueError, "shape"),
        ((["M0 0 H1 V1 Z"], (3,)), ValueError, "shape"),
        ((["M0 0 H1 V1 Z"], (0, 4)), ValueError, "shape"),
        ((["M0 0 H1 V1 Z"], (2.5, 4)), ValueError, "shape"),
        ((["M0 0 H1 V1 Z"], (float("inf"), 4)), ValueError, "shape"),
        ((["M0 0 H1 V1 Z"], (float("nan"), 4)), ValueError, "shape"),
        ((["M0 0 H1 V1 Z"], (10**400, 4)), ValueError, "shape"),
        ((["M0 0 H1 V1 Z"], "3x4"), TypeError, "shape"),
        ((["M0 0 H1 V1 Z"], (None, 4)), TypeError, "shape"),
        ((["M0 0 H1 V1 Z", "M 1 1 X 3"], (3, 4)), ValueError, r"svg_or_paths\[1\]"),
        ((["M0 0 H1 V1 Z", 5], (3, 4)), TypeError, r"svg_or_paths\[1\]"),
        ((42,), TypeError, "svg_or_paths"),
        (({"d": "M0 0"},), TypeError, "svg_or_paths"),
        ((np.zeros((3, 3)),), TypeError, "svg_or_paths"),
    ],
)
def test_bad_input_is_refused_naming_the_parameter(args, error, word):
    with pytest.raises(error, match=word):
        svg_to_mask(*args)


def test_use_defs_and_hidden_elements():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' width="10" height="6">'
        '<defs><path id="sq" d="M0 0 H2 V2 H0 Z"/></defs>'
        '<use xlink:href="#sq" x="1" y="1"/><use href="#sq" x="6" y="3"/>'
        '<path d="M9 0 H10 V1 H9 Z" display="none"/></svg>'
    )
    expected = _rect((6, 10), 1, 1, 3, 3) | _rect((6, 10), 6, 3, 8, 5)
    np.testing.assert_array_equal(svg_to_mask(svg), expected)


@pytest.mark.parametrize(
    "wrapper",
    [
        ('<mask id="m">', "</mask>"),
        ('<marker id="k" markerWidth="3" markerHeight="3">', "</marker>"),
        ('<symbol id="s">', "</symbol>"),
        ('<g><mask id="m"><g>', "</g></mask></g>"),  # nested in a group, and wrapping one
    ],
    ids=["mask", "marker", "symbol", "nested"],
)
def test_masks_markers_and_symbols_are_not_drawn_where_they_stand(wrapper):
    # svgelements does not know them and drew their shapes as a group's: the square
    # inside came out as part of the outline.
    start, end = wrapper
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="6">'
        f'{start}<path d="M0 0 H2 V2 H0 Z"/>{end}'
        '<path d="M6 3 H8 V5 H6 Z"/></svg>'
    )
    np.testing.assert_array_equal(svg_to_mask(svg), _rect((6, 10), 6, 3, 8, 5))
    # Without a namespace, and under a prefix, the same.
    bare = svg.replace(' xmlns="http://www.w3.org/2000/svg"', "")
    np.testing.assert_array_equal(svg_to_mask(bare), _rect((6, 10), 6, 3, 8, 5))


def test_a_symbol_is_drawn_through_a_use():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' width="10" height="6">'
        '<symbol id="s"><path d="M0 0 H2 V2 H0 Z"/></symbol>'
        '<use xlink:href="#s" x="1" y="1"/>'
        # An element inside a mask is drawn where a <use> draws it, too.
        '<mask id="m"><path id="p" d="M0 0 H2 V2 H0 Z"/></mask><use href="#p" x="6" y="3"/>'
        "</svg>"
    )
    expected = _rect((6, 10), 1, 1, 3, 3) | _rect((6, 10), 6, 3, 8, 5)
    np.testing.assert_array_equal(svg_to_mask(svg), expected)


def _assert_same_shapes(fast, general):
    assert fast is not None
    assert fast[1] == general[1]
    assert len(fast[0]) == len(general[0])
    for a, b in zip(fast[0], general[0], strict=True):
        assert a.evenodd == b.evenodd
        np.testing.assert_array_equal(a.edges, b.edges)


def fill_general(data):
    from vectorizer._rasterize import _parse_with_svgelements, fill

    shapes, size = _parse_with_svgelements(data)
    return fill(shapes, size)


def _masks_with_holes_and_islands(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(20, 90, size=2)
    yy, xx = np.mgrid[:h, :w]
    m = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 5))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 20)
        m ^= (xx - cx) ** 2 + ((yy - cy) * rng.uniform(0.5, 2)) ** 2 < r * r
    return m | (rng.random((h, w)) < 0.01)


@pytest.mark.parametrize("seed", range(25))
def test_own_documents_take_the_fast_path_edge_for_edge(seed):
    from vectorizer import mask_to_svg
    from vectorizer._rasterize import _parse_own_document, _parse_with_svgelements

    m = _masks_with_holes_and_islands(seed)
    for doc in (mask_to_svg(m), mask_to_svg(m, alphamax=0), mask_to_svg(m, turdsize=0)):
        data = doc.encode()
        _assert_same_shapes(_parse_own_document(data), _parse_with_svgelements(data))
        np.testing.assert_array_equal(svg_to_mask(doc), fill_general(data))


def test_empty_own_document_is_an_empty_mask():
    from vectorizer import mask_to_svg
    from vectorizer._rasterize import _parse_own_document

    doc = mask_to_svg(np.zeros((7, 9), bool))
    assert _parse_own_document(doc.encode()) == ([], (7, 9))
    assert not svg_to_mask(doc).any() and svg_to_mask(doc).shape == (7, 9)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.replace('fill-rule="evenodd"', 'fill-rule="nonzero"'),
        lambda d: d.replace('viewBox="0 0 40 30"', 'viewBox="0 0 80 60"'),
        lambda d: d.replace("<path ", '<path transform="translate(3 2)" ', 1),
        lambda d: d.replace(" L", " l", 1),
        lambda d: d.replace("M", "M 1e400 0 L", 1),
        lambda d: d.replace(" Z", " 5 Z", 1),
        lambda d: d.replace("</svg>", "<rect width='3' height='3'/></svg>"),
    ],
)
def test_anything_else_goes_through_svgelements(edit):
    from vectorizer import mask_to_svg
    from vectorizer._rasterize import _parse_own_document

    m = np.zeros((30, 40), bool)
    m[5:20, 8:30] = True
    m[9:12, 12:15] = False
    doc = edit(mask_to_svg(m))
    assert doc != mask_to_svg(m)
    assert _parse_own_document(doc.encode()) is None
    try:
        expected = fill_general(doc.encode())
    except ValueError as exc:  # the general parser refuses it: so must svg_to_mask
        with pytest.raises(ValueError, match=str(exc)[:20].replace("(", r"\(")):
            svg_to_mask(doc)
        return
    np.testing.assert_array_equal(svg_to_mask(doc), expected)


# --- bounded work and clear reasons on hostile documents

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">{}</svg>'


@pytest.mark.parametrize("d", ["M 1 1 L foo", "M 1 1 Lnan 3"])
def test_bad_path_reason_is_not_empty(d):
    with pytest.raises(ValueError) as info:
        svg_to_mask(SVG.format(f'<path d="{d}"/>'))
    assert not str(info.value).rstrip().endswith(":")


def test_bad_path_string_reason_is_not_empty():
    with pytest.raises(ValueError) as info:
        svg_to_mask(["1 1 "], shape=(5, 5))
    assert not str(info.value).rstrip().endswith(":")


def test_bad_path_string_says_where_it_stopped():
    with pytest.raises(ValueError, match=r"svg_or_paths\[1\] .*cannot read 'foo' at position 8"):
        svg_to_mask(["M 0 0 L 1 0 L 1 1 Z", "M 1 1 L foo"], shape=(5, 5))


@pytest.mark.parametrize(("d", "said"), [("M 1 1 Lnan 3", "'nan' at position 7"),
                                         ("M 1 1 L 2 Infinity Z", "'Infinity' at position 10")])
def test_a_non_finite_number_in_a_path_string_is_named_as_in_a_document(d, said):
    # It was "cannot read 'nan 3' at position 7"; a document's path data says which
    # number is not finite, and so does a list of path strings now.
    with pytest.raises(ValueError, match=rf"^svg_or_paths\[1\]: path data has {said}, which "
                                         r"is not a finite number$"):
        svg_to_mask(["M 0 0 L 1 0 L 1 1 Z", d], shape=(5, 5))


def test_document_too_costly_to_fill_is_refused():
    w = 9000
    doc = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{w}">'
           + "".join(f'<path d="M0 0 L{w} {i} L0 {w} Z"/>' for i in range(50)) + "</svg>")
    with pytest.raises(ValueError, match="too complex"):
        svg_to_mask(doc)


def test_long_path_list_refused_before_parsing():
    d = "M0 0 " + "L 1 1 L 2 0 " * (MAX_PARSED_BYTES // 10) + "Z"
    with pytest.raises(ValueError, match="characters of path data"):
        svg_to_mask([d], shape=(10, 10))


def test_too_many_shapes_refused():
    with pytest.raises(ValueError, match=f"at most {MAX_SHAPES}"):
        svg_to_mask(["M0 0 L1 0 L1 1 Z"] * (MAX_SHAPES + 1), shape=(5, 5))


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_width_is_reported_as_written(value):
    with pytest.raises(ValueError, match=f"got '{value}'"):
        svg_to_mask(f'<svg xmlns="http://www.w3.org/2000/svg" width="{value}" height="5"/>')


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_document(encoding):
    doc = ('<?xml version="1.0" encoding="UTF-16"?>\n'
           + SVG.format('<path d="M 1 1 L 4 1 L 4 3 L 1 3 Z"/>'))
    expected = svg_to_mask(SVG.format('<path d="M 1 1 L 4 1 L 4 3 L 1 3 Z"/>'))
    assert expected.sum() == 6
    np.testing.assert_array_equal(svg_to_mask(doc.encode(encoding)), expected)


# Nested squares, both winding one way (nonzero: all filled) and one reversed (a hole),
# and a star whose centre the two rules disagree on, spread over rows with gaps between.
_NONZERO_DOC = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="61" height="90">'
    '<path d="M2 2 H40 V30 H2 Z M10 8 H30 V20 H10 Z"/>'
    '<path d="M2 40 H40 V60 H2 Z M10 45 V55 H30 V45 Z"/>'
    '<path d="M30 62 L40 88 L16 72 H44 L20 88 Z"/>'
    '<path fill-rule="evenodd" d="M44 62 L54 88 L30 72 H58 L34 88 Z"/></svg>'
)


@pytest.mark.parametrize("band_cells", [1, 7, 64, 500])
@pytest.mark.parametrize("seed", range(6))
def test_a_fill_in_bands_of_rows_is_the_fill_in_one(monkeypatch, seed, band_cells):
    # Large shapes are filled a band of rows at a time to bound memory; the bands
    # (down to one row each) must not change a pixel.
    from vectorizer import _rasterize, mask_to_svg

    m = _masks_with_holes_and_islands(seed)
    docs = [mask_to_svg(m), mask_to_svg(m, alphamax=0), _NONZERO_DOC]
    whole = [svg_to_mask(doc) for doc in docs]
    assert whole[2][15, 5] and whole[2][15, 20]  # nonzero: no hole in the first path
    assert whole[2][50, 5] and not whole[2][50, 20]  # the second's hole (reversed)
    assert whole[2][76, 30] and not whole[2][76, 44]  # the stars' centres, by rule
    monkeypatch.setattr(_rasterize, "_BAND_CELLS", band_cells)
    for doc, expected in zip(docs, whole, strict=True):
        np.testing.assert_array_equal(svg_to_mask(doc), expected)


@pytest.mark.timeout(5)
def test_thousands_of_large_arcs_are_filled_in_about_a_second():
    # 3000 arcs across a 1000-pixel image (160 KB, within every limit) flatten to 1.7
    # million points, which went through Python one by one: 8 s to fill, held by a
    # server worker. Now about a second; the limit leaves room for a busy machine.
    rng = np.random.default_rng(0)
    arcs = " ".join(
        f"A {rx:.2f} {ry:.2f} {turn:.1f} {large} {sweep} {x:.2f} {y:.2f}"
        for rx, ry, turn, large, sweep, x, y in zip(
            *rng.uniform(1, 50, (2, 3000)), rng.uniform(0, 90, 3000),
            *rng.integers(0, 2, (2, 3000)), *rng.uniform(0, 1000, (2, 3000)), strict=True))
    doc = _doc(f'<path transform="rotate(10) scale(1.2 0.8)" d="M 100 100 {arcs} Z"/>',
               1000, 1000)
    assert 900_000 < svg_to_mask(doc).sum() < 1_000_000


@pytest.mark.parametrize("chunk", [1, 5, 64])
@pytest.mark.parametrize("seed", range(4))
def test_a_fill_in_chunks_of_crossings_is_the_fill_in_one(monkeypatch, seed, chunk):
    # The crossings of edges with rows are computed a chunk of edges at a time to
    # bound memory; the chunks (down to one crossing each) must not change a pixel.
    from vectorizer import _rasterize, mask_to_svg

    m = _masks_with_holes_and_islands(seed)
    docs = [mask_to_svg(m), mask_to_svg(m, alphamax=0), _NONZERO_DOC]
    whole = [svg_to_mask(doc) for doc in docs]
    monkeypatch.setattr(_rasterize, "_CHUNK_CROSSINGS", chunk)
    for doc, expected in zip(docs, whole, strict=True):
        np.testing.assert_array_equal(svg_to_mask(doc), expected)


def _own_form(w: int, h: int, *paths: str) -> str:
    body = "".join(f'<path fill-rule="evenodd" d="{d}"/>\n' for d in paths)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}">\n{body}</svg>\n')


def test_a_shape_over_the_whole_largest_canvas_is_filled():
    # The fill's budget is the canvas's 100 megapixels: one shape covering all of the
    # largest canvas fits it exactly, one pixel more does not. (The bounding box used
    # to count one column too many, which refused mask_to_svg's own output.)
    n = 10_000
    whole = f"M0 0L{n} 0L{n} {n}L0 {n}Z"
    mask = svg_to_mask(_own_form(n, n, whole))
    assert mask.shape == (n, n) and mask.all()
    del mask
    with pytest.raises(ValueError, match="bounding boxes cover 100000001 pixels"):
        svg_to_mask(_own_form(n, n, whole, "M0 0L1 0L1 1L0 1Z"))


def test_the_fill_memory_is_bounded_however_many_crossings():
    # A zigzag of 19,000 edges each crossing all 1000 rows: 19 million crossings, near
    # the limit. At about 60 bytes each, all at once, they took 1.2 GB.
    import tracemalloc

    w, h, n = 2000, 1000, 19_000
    d = "M0 0" + "".join(f"L{(i + 1) * 0.1:.1f} {h if i % 2 == 0 else 0}" for i in range(n))
    doc = _own_form(w, h, d + "Z")
    tracemalloc.start()
    try:
        mask = svg_to_mask(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert mask[:, 1901:].sum() == 0 and mask.sum() > 0
    assert peak < 150e6, f"{peak / 1e6:.0f} MB"


def test_a_percentage_size_needs_a_viewbox():
    # Without a viewBox svgelements takes a percentage of a made-up 1000-pixel viewport.
    with pytest.raises(ValueError, match="SVG width '100%' is a percentage"):
        svg_to_mask(_doc('<path d="M0 0 L5 0 L5 5 Z"/>', w="100%", h="100%"))
    # With one, it is a percentage of the viewBox, as units are converted to pixels.
    square = '<path d="M0 0 H50 V40 H0 Z"/>'
    full = svg_to_mask(_doc(square, w="100%", h="100%", extra='viewBox="0 0 50 40"'))
    assert full.shape == (40, 50) and full.all()
    half = svg_to_mask(_doc(square, w="50%", h="50%", extra='viewBox="0 0 50 40"'))
    assert half.shape == (20, 25) and half.all()


def test_a_size_in_millimetres_that_is_whole_pixels_is_read_at_96_dpi():
    doc = ('<svg xmlns="http://www.w3.org/2000/svg" width="25.4mm" height="1in">'
           '<rect width="96" height="48"/></svg>')
    mask = svg_to_mask(doc)
    assert mask.shape == (96, 96) and mask.sum() == 96 * 48


@pytest.mark.parametrize("nested", [
    '<svg x="2" y="3"><path d="M0 0 H2 V2 H0 Z"/></svg>',
    '<svg x="2" y="3" width="5" height="5"><rect x="1" width="2" height="2"/></svg>',
    '<svg width="3" height="3"><path d="M0 0 H6 V6 H0 Z"/></svg>',
])
def test_a_placed_or_sized_nested_svg_is_refused(nested):
    # svgelements drew a path in <svg x="2" y="3"> at 0,0, gave a <rect> the <svg>'s y
    # but kept its own x, and did not clip to the <svg>'s size: audit 502, finding 6.
    with pytest.raises(ValueError, match="nested <svg> element with (x|width)="):
        svg_to_mask(_doc(nested))


def test_a_nested_svg_at_its_initial_place_and_size_is_a_group():
    for nested in ("<svg>", '<svg x="0" y="0px" width="100%" height="100%">'):
        got = svg_to_mask(_doc(f'{nested}<path d="M2 3 H4 V5 H2 Z"/></svg>'))
        np.testing.assert_array_equal(got, _rect((8, 10), 2, 3, 4, 5))


@pytest.mark.parametrize("hidden", [
    '<path visibility="hidden" d="M0 0 H2 V2 H0 Z"/>',
    '<path visibility="collapse" d="M0 0 H2 V2 H0 Z"/>',
    '<path style="visibility: hidden" d="M0 0 H2 V2 H0 Z"/>',
    '<style>.h { visibility: hidden }</style><path class="h" d="M0 0 H2 V2 H0 Z"/>',
    '<g visibility="hidden"><path d="M0 0 H2 V2 H0 Z"/></g>',
    '<g visibility="hidden"><path visibility="inherit" d="M0 0 H2 V2 H0 Z"/></g>',
])
def test_hidden_shapes_are_not_drawn(hidden):
    # They were filled (audit 502, finding 6); a renderer draws nothing there.
    got = svg_to_mask(_doc(hidden + '<path d="M6 3 H8 V5 H6 Z"/>'))
    np.testing.assert_array_equal(got, _rect((8, 10), 6, 3, 8, 5))


def test_a_child_of_a_hidden_group_can_be_made_visible():
    got = svg_to_mask(_doc('<g visibility="hidden"><path d="M0 0 H2 V2 H0 Z"/>'
                           '<path visibility="visible" d="M6 3 H8 V5 H6 Z"/></g>'))
    np.testing.assert_array_equal(got, _rect((8, 10), 6, 3, 8, 5))


SQUARE_AT_6_3 = '<path d="M6 3 H8 V5 H6 Z"/>'
EVERYTHING = '<path d="M0 0 H10 V8 H0 Z"/>'


@pytest.mark.parametrize("switch", [
    f"<switch>{SQUARE_AT_6_3}{EVERYTHING}</switch>",
    f"<switch><title>a title</title><desc>is not drawn</desc>{SQUARE_AT_6_3}{EVERYTHING}"
    "</switch>",
    # As Illustrator writes it: a foreignObject requiring its own extension, then the
    # drawing. No extension is supported, so the group is drawn.
    '<switch><foreignObject requiredExtensions="http://ns.adobe.com/AdobeIllustrator/10.0/"'
    f' width="10" height="8"/><g>{SQUARE_AT_6_3}</g>{EVERYTHING}</switch>',
    f'<switch><path requiredExtensions="x" d="M0 0 H10 V8 H0 Z"/>{SQUARE_AT_6_3}</switch>',
    f'<switch><g requiredFeatures="http://www.w3.org/TR/SVG11/feature#Shape">{SQUARE_AT_6_3}'
    f"</g>{EVERYTHING}</switch>",
])
def test_a_switch_draws_only_its_first_child_whose_conditions_hold(switch):
    # Every child was filled: 80 px instead of the first child's 4 (audit 502, finding 6).
    np.testing.assert_array_equal(svg_to_mask(_doc(switch)), _rect((8, 10), 6, 3, 8, 5))


def test_a_child_a_switch_does_not_draw_is_drawn_through_a_use():
    got = svg_to_mask(_doc(f'<switch>{SQUARE_AT_6_3}<path id="p" d="M0 0 H2 V2 H0 Z"/>'
                           '</switch><use href="#p" x="1" y="1"/>'))
    np.testing.assert_array_equal(got, _rect((8, 10), 6, 3, 8, 5) | _rect((8, 10), 1, 1, 3, 3))


def test_a_switch_that_chooses_by_language_is_refused():
    with pytest.raises(ValueError, match="<switch> that chooses by systemLanguage"):
        svg_to_mask(_doc(f'<switch><g systemLanguage="fr">{EVERYTHING}</g>{SQUARE_AT_6_3}'
                         "</switch>"))


@pytest.mark.parametrize("hidden", [
    '<path requiredExtensions="x" d="M0 0 H10 V8 H0 Z"/>',
    '<path requiredExtensions="" d="M0 0 H10 V8 H0 Z"/>',
    f'<g requiredExtensions="http://example.org/ext">{EVERYTHING}</g>',
])
def test_outside_a_switch_an_element_requiring_an_extension_is_not_drawn(hidden):
    # Browsers apply the conditions to every element, not only a switch's children:
    # the whole image was filled where a viewer showed the small square alone.
    np.testing.assert_array_equal(svg_to_mask(_doc(hidden + SQUARE_AT_6_3)),
                                  _rect((8, 10), 6, 3, 8, 5))
    held = f'<g requiredFeatures="http://www.w3.org/TR/SVG11/feature#Shape">{SQUARE_AT_6_3}</g>'
    np.testing.assert_array_equal(svg_to_mask(_doc(held)), _rect((8, 10), 6, 3, 8, 5))


def test_a_use_does_not_draw_an_element_requiring_an_extension_but_draws_its_child():
    # Chromium draws nothing for the first two (the copy keeps the condition), and the
    # child alone, moved, for the third (audit 709, F3).
    for hidden in (f'<defs><path id="p" requiredExtensions="x" d="M0 0 H10 V8 H0 Z"/></defs>'
                   f'<use href="#p"/>{SQUARE_AT_6_3}',
                   f'<path id="p" requiredExtensions="x" d="M0 0 H10 V8 H0 Z"/><use href="#p"/>'
                   f'{SQUARE_AT_6_3}'):
        np.testing.assert_array_equal(svg_to_mask(_doc(hidden)), _rect((8, 10), 6, 3, 8, 5))
    child = svg_to_mask(_doc('<g requiredExtensions="x"><path id="c" d="M0 0 H2 V2 H0 Z"/></g>'
                             '<use href="#c" x="1" y="1"/>'))
    np.testing.assert_array_equal(child, _rect((8, 10), 1, 1, 3, 3))


def test_a_language_condition_where_nothing_is_drawn_is_not_refused():
    for where in ("defs", "clipPath"):
        got = svg_to_mask(_doc(f'<{where} id="w"><g systemLanguage="fr">{EVERYTHING}</g>'
                               f"</{where}>{SQUARE_AT_6_3}"))
        np.testing.assert_array_equal(got, _rect((8, 10), 6, 3, 8, 5))


@pytest.mark.parametrize("drawn", [
    '<defs><rect id="f" systemLanguage="fr" width="10" height="8"/></defs><use href="#f"/>',
    '<symbol id="s"><rect systemLanguage="fr" width="10" height="8"/></symbol><use href="#s"/>',
    '<defs><g id="g"><path systemLanguage="fr" d="M0 0 H10 V8 H0 Z"/></g></defs>'
    '<use xlink:href="#g"/>',
])
def test_a_language_condition_a_use_draws_is_refused(drawn):
    # Audit 805 F3: accepted and filled whatever the language, where Chromium (English)
    # drew nothing; the copy a <use> draws keeps the condition.
    with pytest.raises(ValueError, match="systemLanguage condition"):
        svg_to_mask(_doc(drawn + SQUARE_AT_6_3,
                         extra='xmlns:xlink="http://www.w3.org/1999/xlink"'))


@pytest.mark.parametrize("namespace", ["http://www.w3.org/1999/xhtml",
                                       "http://www.w3.org/1998/Math/MathML"])
def test_an_extension_chromium_supports_holds(namespace):
    # Audit 805 F4: Chromium draws an element requiring XHTML or MathML, and a switch
    # picks a child requiring them (here an empty foreignObject: nothing drawn).
    got = svg_to_mask(_doc(f'<rect requiredExtensions="{namespace}" width="2" height="2"/>'
                           + SQUARE_AT_6_3))
    np.testing.assert_array_equal(got, _rect((8, 10), 6, 3, 8, 5) | _rect((8, 10), 0, 0, 2, 2))
    switch = svg_to_mask(_doc(f'<switch><foreignObject requiredExtensions="{namespace}" '
                              f'width="10" height="8"/>{SQUARE_AT_6_3}</switch>'))
    assert not switch.any()


def test_outside_a_switch_an_element_drawn_by_language_is_refused():
    with pytest.raises(ValueError, match="<g> with a systemLanguage condition"):
        svg_to_mask(_doc(f'<g systemLanguage="fr">{EVERYTHING}</g>{SQUARE_AT_6_3}'))


#: UTF-16 declarations on which the encoding pattern did quadratic work.
_SLOW_DECLARATIONS = {
    "blanks": lambda n: "<?xml" + " " * n,
    "blanks before an encoding without a value": lambda n: "<?xml" + " " * n + "encoding",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shape", list(_SLOW_DECLARATIONS))
def test_a_utf16_declaration_is_read_in_time_linear_in_its_length(shape):
    # "<?xml" and 32,000 blanks in UTF-16 took 1.4 s: the pattern tried each blank
    # against the rest of the run. A ratio of times, not a time, so a slow machine
    # passes and quadratic work (64 here) does not.
    def make(n):
        return _SLOW_DECLARATIONS[shape](n).encode("utf-16")

    assert growth(_as_utf8, make, 4000) < 24


@pytest.mark.timeout(10)
@pytest.mark.parametrize("shape", list(_SLOW_DECLARATIONS))
def test_a_utf16_document_as_large_as_accepted_is_refused_for_its_size(shape):
    # 4 MB of it would have taken hours before its size was looked at.
    head = _SLOW_DECLARATIONS[shape](MAX_SVG_BYTES // 2 - 200)
    data = (head + "?>" + _doc("")).encode("utf-16")
    assert len(data) <= MAX_SVG_BYTES
    with pytest.raises(ValueError, match=f"at most {MAX_PARSED_BYTES} can be rasterised"):
        svg_to_mask(data)


#: The pattern before it was made linear: what it replaced, the new one must replace.
_QUADRATIC_XML_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*["'][^"']*["']""")


@given(st.tuples(
    st.sampled_from(["", " ", "\n "]),
    st.sampled_from(["<?xml", "<?xm", ""]),
    st.lists(st.sampled_from([" ", "\t", "\n", "encoding", "=", "'", '"', ">", "?", "a",
                              "utf-16", "e", "ncoding", "<?xml"]), max_size=14).map("".join),
).map("".join))
def test_the_encoding_is_dropped_as_the_quadratic_pattern_dropped_it(text):
    expected = _QUADRATIC_XML_ENCODING.sub(r"\1", text, count=1)
    assert _XML_ENCODING.sub(r"\1", text, count=1) == expected


def test_a_utf16_declarations_encoding_is_dropped_wherever_it_stands():
    for declaration, kept in [
        ('<?xml version="1.0" encoding="UTF-16"?>', '<?xml version="1.0"?>'),
        ("<?xml  encoding='utf-16'  version='1.0' ?>", "<?xml  version='1.0' ?>"),
        ('<?xml version="1.0"\n\tencoding = "UTF-16" standalone="no"?>',
         '<?xml version="1.0" standalone="no"?>'),
        ('<?xml version="1.0"?>', '<?xml version="1.0"?>'),
    ]:
        assert _as_utf8((declaration + _doc("")).encode("utf-16")) == (
            kept + _doc("")).encode("utf-8")


def test_an_svg_inside_another_root_is_refused_for_its_root():
    # Not as a nested <svg> with a width: the document is not an SVG document at all.
    doc = ('<html><body><svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
           '<path d="M2 2 L4 2 L4 4 Z"/></svg></body></html>')
    with pytest.raises(ValueError, match=r"root element is not <svg>"):
        svg_to_mask(doc)


@pytest.mark.parametrize(("body", "said"), [
    ('<g><path id="lesion" d="M2 2 L10 2 L10 8 L2 Z"/></g>',
     "the path data of <path> id='lesion' (element 3), 'M2 2 L10 2 L10 8 L2 Z': cannot "
     "read 'Z' at position 20"),
    ('<path d="M2 Z"/>', "(element 2), 'M2 Z': cannot read 'Z' at position 3"),
    ('<path d="M2 2 A 1 1 0 2 1 5 5 Z"/>', "a number or an arc flag (0 or 1) is missing or "
                                           "wrong before position 21"),
])
def test_unreadable_path_data_in_a_document_is_placed(body, said):
    # It was "is not a valid SVG document: ValueError while parsing", which said
    # neither which path nor where (audit 502, finding 10).
    with pytest.raises(ValueError) as refused:
        svg_to_mask(_doc(body))
    message = str(refused.value)
    assert message.startswith("svg_or_paths is not a valid SVG document: the path data of <path>")
    assert message.endswith(said), message


def test_an_overflowing_transform_is_named():
    # It was "path data contains non-finite coordinates" (audit 502, finding 10).
    with pytest.raises(ValueError, match=r"transform 'scale\(1e400\)' has '1e400', which is "
                                         "not a finite number"):
        svg_to_mask(_doc('<path transform="scale(1e400)" d="M2 2 L4 2 L4 4 Z"/>'))


@pytest.mark.parametrize("place", ['x="10" y="10"', 'x="-3" y="7.5px"', 'x="0px" y="0px"',
                                   'style="fill:red; x: 10px;y:3px"'])
def test_x_and_y_on_the_root_svg_are_ignored(place):
    # SVG ignores them on the outermost <svg>, and Chromium drew the square at (2, 1)
    # whatever they were; svgelements moved it by them (audit 801, F4).
    got = svg_to_mask(_doc('<rect x="2" y="1" width="4" height="3"/>',
                           extra=f'{place} viewBox="0 0 10 8"'))
    np.testing.assert_array_equal(got, _rect((8, 10), 2, 1, 6, 4))


def test_a_root_placed_at_zero_is_read_as_written():
    from vectorizer._svgcheck import root_attributes, unplace_root

    data = _doc("", extra='x="0px" y="0px"').encode()
    assert unplace_root(data, root_attributes(data)) is data


@pytest.mark.parametrize("shape", [
    '<rect x="2" y="2" width="-3" height="4"/>',
    '<rect x="2" y="2" height="4"/>',  # svgelements took the root's width: to the edge
    '<rect x="2" y="2" width="3" height="0"/>',
    '<g width="5"><rect x="2" y="2" height="4"/></g>',
    '<circle cx="4" cy="4"/>',
    '<circle cx="4" cy="4" r="-3"/>',
    '<ellipse cx="4" cy="4"/>',
    '<ellipse cx="4" cy="4" rx="0" ry="3"/>',
])
def test_a_basic_shape_of_no_size_draws_nothing(shape):
    # Chromium drew none of them; svgelements filled from 4 to 50 pixels (audit 801, F7).
    assert not svg_to_mask(_doc(shape)).any()


@pytest.mark.parametrize("ellipse", ['rx="3"', 'ry="3"', 'rx="-2" ry="3"', 'rx="3" ry="-1"'])
def test_an_ellipse_radius_missing_or_negative_is_the_other_one(ellipse):
    # SVG 2 (and Chromium): a circle of radius 3; svgelements took 1, or the negative.
    got = svg_to_mask(_doc(f'<ellipse cx="5" cy="4" {ellipse}/>'))
    np.testing.assert_array_equal(got, svg_to_mask(_doc('<circle cx="5" cy="4" r="3"/>')))
    assert got.sum() == 32


def test_a_negative_corner_radius_is_the_other_one():
    square = svg_to_mask(_doc('<rect x="1" y="1" width="8" height="6" rx="-2"/>'))
    assert square.sum() == 48  # both radii fall back to 0: square corners
    rounded = svg_to_mask(_doc('<rect x="1" y="1" width="8" height="6" rx="-2" ry="2"/>'))
    np.testing.assert_array_equal(
        rounded, svg_to_mask(_doc('<rect x="1" y="1" width="8" height="6" rx="2" ry="2"/>')))


def _rounded_rect(shape, x, y, w, h, rx, ry):
    """Pixels whose centre lies inside the rect with elliptical corners rx x ry, and
    those whose centre lies within about 0.02 pixel of a corner (unsure)."""
    c = _centres(shape)
    # Distance into the corner zone along each axis (0 outside it).
    dx = np.maximum(np.maximum(x + rx - c[:, 0], c[:, 0] - (x + w - rx)), 0)
    dy = np.maximum(np.maximum(y + ry - c[:, 1], c[:, 1] - (y + h - ry)), 0)
    inside = (c[:, 0] > x) & (c[:, 0] < x + w) & (c[:, 1] > y) & (c[:, 1] < y + h)
    level = np.hypot(dx / rx, dy / ry) - 1
    return (inside & (level < 0)).reshape(shape), (np.abs(level) < 0.004).reshape(shape)


@pytest.mark.parametrize(("rect", "radii"), [
    ('rx="8"', (8, 5)),
    ('style="rx: 8px"', (8, 5)),
    ('rx="-3" ry="8"', (8, 5)),
    ('rx="30%"', (12, 5)),  # of the viewport's width, 40
    ('ry="40%"', (12, 5)),  # of its height, 30
    ('rx="10%" ry="60%"', (4, 5)),
    ('rx="2mm"', (2 * 96 / 25.4, 5)),
])
def test_a_corner_radius_is_cut_to_half_its_side_after_a_missing_one_is_taken(rect, radii):
    # SVG 2: a missing or negative radius is the other one as given, and each is then
    # cut to half the side it runs along. The corners of a 30 x 10 rect with rx="8"
    # came out 5 x 5 (ry was copied from rx once rx was cut to 5), 16 pixels off
    # where Chromium drew 8 x 5, and a radius in % was not cut at all.
    got = svg_to_mask(_doc(f'<rect x="2.2" y="3.1" width="30" height="10" {rect}/>', 40, 30))
    expected, unsure = _rounded_rect((30, 40), 2.2, 3.1, 30, 10, *radii)
    np.testing.assert_array_equal(got[~unsure], expected[~unsure])
    assert unsure.sum() <= 4


@pytest.mark.parametrize("doc, expected", [
    # x, width of the viewport's width; y, height of its height.
    (_doc('<rect x="10%" y="25%" width="50%" height="50%"/>'), _rect((8, 10), 1, 2, 6, 6)),
    (_doc('<rect style="x: 10%; width: 50%" y="2" height="4"/>'), _rect((8, 10), 1, 2, 6, 6)),
    # With a viewBox, of the viewBox's size (10 x 8 here), then scaled with the rest.
    (_doc('<rect x="10%" y="25%" width="50%" height="50%"/>', 20, 16, 'viewBox="0 0 10 8"'),
     _rect((16, 20), 2, 4, 12, 12)),
])
def test_a_percentage_position_or_size_of_a_rect_is_of_the_viewport(doc, expected):
    # Refused until session 40 (svgelements took a rect's width="50%" of the height);
    # Chromium drew each of these as the same rectangle in pixels.
    np.testing.assert_array_equal(svg_to_mask(doc), expected)


@pytest.mark.parametrize("percent, pixels", [
    ('<circle cx="50%" cy="50%" r="20%"/>', '<circle cx="8.5" cy="3.5" r="2.6"/>'),
    ('<ellipse cx="40%" cy="60%" rx="30%" ry="25%"/>',
     '<ellipse cx="6.8" cy="4.2" rx="5.1" ry="1.75"/>'),
    ('<rect x="10%" y="10%" width="80%" height="70%" rx="20%" ry="25%"/>',
     '<rect x="1.7" y="0.7" width="13.6" height="4.9" rx="3.4" ry="1.75"/>'),
])
def test_a_percentage_radius_is_of_the_viewport(percent, pixels):
    # r is of the normalised diagonal sqrt((w**2 + h**2) / 2), 13 for this 17 x 7
    # viewBox; rx of the width and ry of the height. Chromium painted each the same,
    # grey level for grey level, as the shape in pixels; svgelements drew r="20%" as an
    # ellipse of the width and the height.
    extra = 'viewBox="0 0 17 7"'
    np.testing.assert_array_equal(svg_to_mask(_doc(percent, 34, 14, extra)),
                                  svg_to_mask(_doc(pixels, 34, 14, extra)))


@pytest.mark.parametrize("doc, said", [
    ('<svg xmlns="http://www.w3.org/2000/svg"><rect width="50%" height="2"/></svg>',
     "a <rect> with width='50%' is not supported: a percentage of a viewport the document "
     "does not define"),
    (_doc('<symbol id="s"><rect width="50%" height="2"/></symbol><use href="#s"/>'),
     "a <rect> inside a <symbol> with a size in % is not supported"),
])
def test_a_percentage_without_one_viewport_is_refused(doc, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        svg_to_mask(doc, shape=(8, 10))


def test_a_size_from_a_stylesheet_counts():
    got = svg_to_mask(_doc('<style>.a { width: 3px }</style><rect class="a" x="2" y="1" '
                           'height="4"/>'))
    np.testing.assert_array_equal(got, _rect((8, 10), 2, 1, 5, 5))


@pytest.mark.parametrize("d, said", [
    ("M1 1 L8. 1 L8 6 Z", "the number '8.' ending in its decimal point at position 6"),
    ("M1 1 L8 1 L2.e0 6 Z", "the number '2.' ending in its decimal point at position 11"),
    ("M,1 1 L8 1 L8 6 Z", "a comma right after the command 'M' at position 1"),
    ("M1 1 L ,8 1 L8 6 Z", "a comma right after the command 'L' at position 7"),
])
def test_path_data_chromium_stops_at_is_refused_on_every_reading(d, said):
    # Chromium drew nothing from "8." or "M," on; svgelements refused the first and
    # read on past the second, and the own-form reader read "8." (audit 801, F10).
    from vectorizer import mask_to_svg

    readings = [_doc(f'<path d="{d}"/>'), [d]]
    if "," not in d:  # in mask_to_svg's own form, read without svgelements
        own = mask_to_svg(np.ones((8, 10), bool)).replace('d="', f'd="{d} ', 1)
        readings.append(own)
    for reading in readings:
        with pytest.raises(ValueError, match=re.escape(said)):
            svg_to_mask(reading, shape=(8, 10))


def test_a_comma_after_a_closepath_is_read_as_chromium_reads_it():
    got = svg_to_mask(_doc('<path d="M1 1 H4 V4 H1 Z, M6 1 H9 V4 H6 Z"/>'))
    np.testing.assert_array_equal(got, _rect((8, 10), 1, 1, 4, 4) | _rect((8, 10), 6, 1, 9, 4))


@pytest.mark.parametrize("size", ['width="4em" height="3em"', 'width="10" height="2ex"'])
def test_a_size_in_font_units_is_named_even_with_a_viewbox(size):
    # With a viewBox, svgelements failed first: "ValueError while parsing" (audit 801, F9).
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 8" '
           f'{size}><path d="M0 0H1V1Z"/></svg>')
    with pytest.raises(ValueError, match=r"is in e[mx], a unit relative to a font"):
        svg_to_mask(svg)


def test_a_path_without_data_is_an_empty_shape():
    # As d="" is: SVG draws nothing. svgelements said "object of type 'NoneType' has no
    # len()" (audit 801, F9).
    got = svg_to_mask(_doc('<path/><path id="p" fill="red"></path><rect x="1" y="1" '
                           'width="2" height="2"/>'))
    np.testing.assert_array_equal(got, _rect((8, 10), 1, 1, 3, 3))


@pytest.mark.parametrize("d, said", [
    ("M0 0 L5", "the 'L' command at position 5 has too few numbers, where the path data "
                "ends at position 7"),
    ("M0 0 A1 1 0 2 1 3 3", "the 'A' command at position 5 has too few numbers, or a wrong "
                            "one (an arc's flags are 0 or 1)"),
])
def test_path_data_that_ends_too_soon_names_its_command(d, said):
    # It said "ValueError while parsing", in a list and in a document (audit 801, F9).
    with pytest.raises(ValueError, match=r"^svg_or_paths\[0\] .*" + re.escape(said)):
        svg_to_mask([d], shape=(8, 10))
    with pytest.raises(ValueError, match=r"<path> \(element 2\).*" + re.escape(said)):
        svg_to_mask(_doc(f'<path d="{d}"/>'))


def test_an_own_form_document_of_too_many_paths_is_refused_before_any_is_read(monkeypatch):
    # 59,090 paths in 3.9 MB were each parsed into edges, 4.9 s and 111 MB, before the
    # fill counted them (audit 801, F11).
    import vectorizer._rasterize as rasterize

    def read(d):
        raise AssertionError("a path was read")

    monkeypatch.setattr(rasterize, "_own_path_rows", read)
    path = '<path fill-rule="evenodd" d="M0 0 L9 0 L9 9 L0 9 Z"/>\n'
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" '
           f'viewBox="0 0 10 10">\n{path * (MAX_SHAPES + 1)}</svg>\n')
    with pytest.raises(ValueError, match=f"has {MAX_SHAPES + 1} shapes; at most {MAX_SHAPES}"):
        svg_to_mask(svg)


def test_a_clipped_symbol_fills_the_pixels_inside_both_its_shape_and_its_viewbox():
    # The clip is filled in the shape's own box, moved by whole pixels: the same pixel
    # centres as filling both across the canvas, also turned and at fractions of pixels.
    place = 'transform="rotate(20 10 10) translate(3.3 2.7)"'
    clipped = svg_to_mask(_doc(
        '<symbol id="s" viewBox="0 0 10 10"><circle cx="5" cy="5" r="7"/></symbol>'
        f'<g {place}><use href="#s" width="10" height="10"/></g>', 24, 22))
    circle = svg_to_mask(_doc(f'<circle {place} cx="5" cy="5" r="7"/>', 24, 22))
    viewbox = svg_to_mask(_doc(f'<rect {place} width="10" height="10"/>', 24, 22))
    assert 0 < clipped.sum() < circle.sum()
    np.testing.assert_array_equal(clipped, circle & viewbox)


def test_many_small_shapes_in_a_large_clipped_symbol_are_filled_in_their_own_boxes():
    # Each shape's clip was filled over the whole viewBox: 400 squares in a symbol of
    # 1000 x 1000 counted 400 million pixels, and were refused as too complex.
    squares = "".join(f'<rect x="{i % 20 * 50}" y="{i // 20 * 50}" width="10" height="10"/>'
                      for i in range(400))
    got = svg_to_mask(_doc(f'<symbol id="s" viewBox="0 0 1000 1000">{squares}</symbol>'
                           '<use href="#s" width="1000" height="1000" x="5" y="5"/>', 1005, 1005))
    assert got.sum() == 400 * 100
    assert got[5:15, 5:15].all() and got[955:965, 955:965].all()
