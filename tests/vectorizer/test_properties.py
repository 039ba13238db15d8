"""Property tests: random blobs round-trip; no input makes any function fail other than
with ValueError or TypeError."""

import os
import re

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage.measure import label, points_in_poly, regionprops

from vectorizer import (
    mask_to_paths,
    mask_to_png,
    mask_to_svg,
    measure_regions,
    png_to_mask,
    svg_to_mask,
)

# Moderate by default (the suite shares two cores); raise it for a deeper search.
SETTINGS = settings(
    max_examples=int(os.environ.get("SONOTRACE_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def blobs(draw):
    """A mask made of a few ellipses, some of them cut out as holes."""
    h = draw(st.integers(1, 64))
    w = draw(st.integers(1, 64))
    yy, xx = np.mgrid[:h, :w] + 0.5
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(draw(st.integers(1, 5))):
        cx = draw(st.floats(-5, w + 5))
        cy = draw(st.floats(-5, h + 5))
        rx = draw(st.floats(0.5, 30))
        ry = draw(st.floats(0.5, 30))
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
        if draw(st.booleans()) or not mask.any():
            mask |= inside
        else:
            mask &= ~inside
    return mask


def _on_edge(subpath: str, shape) -> int:
    """How many vertices of one subpath ``'x,y L x,y ...'`` lie on the image's edge."""
    xy = np.array([[float(v) for v in pair.split(",")]
                   for pair in re.findall(r"-?[\d.]+,-?[\d.]+", subpath)])
    h, w = shape
    return int(np.count_nonzero((xy[:, 0] == 0) | (xy[:, 0] == w) | (xy[:, 1] == 0)
                                | (xy[:, 1] == h)))


def _iou(a, b):
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


@SETTINGS
@given(blobs())
def test_random_blobs_round_trip_through_svg(mask):
    back = svg_to_mask(mask_to_svg(mask, turdsize=0))
    assert back.shape == mask.shape
    wrong = np.count_nonzero(back ^ mask)
    # Tracing at twice the resolution keeps every pixel but for rare diagonal pinches.
    assert wrong <= max(2, 0.01 * np.count_nonzero(mask))


@SETTINGS
@given(blobs(), st.integers(3, 40))
def test_random_blobs_give_paths_within_budget(mask, budget):
    paths = mask_to_paths(mask, max_vertices=budget, turdsize=0)
    traced = mask_to_paths(mask, max_vertices=100_000, turdsize=0)
    # The budget is exceeded only by doubling it where the simplified rings would not
    # be valid polygons, and never past the traced rings (mask_to_paths's docstring):
    # a random field of pixels can need that, a lesion-like mask rarely does.
    # And by the vertices a ring cut to the image gets on its edge (audit 801 F12).
    longest = max((sub.count(",") for p in traced for sub in p.split("M")[1:]), default=0)
    for p in paths:
        for sub in p.split("M")[1:]:
            assert 3 <= sub.count(",") <= max(budget, longest) + _on_edge(sub, mask.shape)
    back = svg_to_mask(paths, shape=mask.shape)
    assert back.shape == mask.shape
    # Without a binding budget the polygon is the pixel outline.
    unlimited = svg_to_mask(traced, shape=mask.shape)
    assert np.count_nonzero(unlimited ^ mask) <= max(2, 0.01 * np.count_nonzero(mask))


@SETTINGS
@given(blobs())
def test_measurements_are_consistent(mask):
    regions = measure_regions(mask)
    assert sum(r["area_px"] for r in regions) == np.count_nonzero(mask)
    # The same regions, in the same order (top-left corner of the box first).
    props = sorted(regionprops(label(mask, connectivity=2)), key=lambda p: p.bbox[:2])
    for r, prop in zip(regions, props, strict=True):
        x0, y0, x1, y1 = r["bbox"]
        assert 0 <= x0 < x1 <= mask.shape[1] and 0 <= y0 < y1 <= mask.shape[0]
        assert r["area_px"] <= r["width_px"] * r["height_px"]
        assert max(r["width_px"], r["height_px"]) <= r["max_diameter_px"] + 1e-9
        assert r["max_diameter_px"] <= np.hypot(r["width_px"], r["height_px"]) + 1e-9
        assert x0 < r["centroid"][0] < x1 and y0 < r["centroid"][1] < y1
        assert r["perimeter_px"] > 0
        _check_perpendicular(r, prop.coords)


def _check_perpendicular(region: dict, pixels: np.ndarray) -> None:
    """The perpendicular diameter against shapely: lines across the long axis, clipped
    by the convex hull of the region's pixel squares (``pixels``: (k, 2) rows and
    columns), are never longer, and its ends lie on that hull's edges."""
    (px, py), (qx, qy) = region["max_diameter_endpoints"]
    long = np.array([qx - px, qy - py])
    across = np.subtract(*region["perpendicular_diameter_endpoints"][::-1])
    assert np.linalg.norm(across) == pytest.approx(region["perpendicular_diameter_px"], abs=1e-9)
    assert region["perpendicular_diameter_px"] <= region["max_diameter_px"] + 1e-9
    if region["perpendicular_diameter_px"] == 0:
        return
    assert abs(long @ across) <= 1e-9 * np.linalg.norm(long) * np.linalg.norm(across)
    xy = pixels[:, ::-1].astype(float)
    corners = np.concatenate([xy, xy + (1, 0), xy + (0, 1), xy + (1, 1)])
    hull = shapely.MultiPoint(corners).convex_hull
    u = long / np.linalg.norm(long)
    n = np.array([-u[1], u[0]])
    longest = 0.0
    for t in np.linspace(0, np.linalg.norm(long), 401):
        foot = np.array([px, py]) + t * u
        line = shapely.LineString([foot - 1e4 * n, foot + 1e4 * n])
        longest = max(longest, line.intersection(hull).length)
    assert region["perpendicular_diameter_px"] >= longest - 1e-6
    for end in region["perpendicular_diameter_endpoints"]:
        assert hull.exterior.distance(shapely.Point(end)) < 1e-6


@SETTINGS
@given(
    st.lists(
        st.tuples(st.floats(-10, 50, allow_nan=False), st.floats(-10, 40, allow_nan=False)),
        min_size=3, max_size=12,
    )
)
def test_polygons_fill_exactly_the_pixel_centres_inside(verts):
    shape = (30, 40)
    d = "M " + " L ".join(f"{x!r},{y!r}" for x, y in verts) + " Z"
    got = svg_to_mask([d], shape=shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    expected = points_in_poly(centres, np.array(verts)).reshape(shape)
    # Centres lying exactly on an edge may go either way; they are measure-zero
    # for random floats but hypothesis likes round numbers, so skip those pixels.
    a = np.array(verts)
    b = np.roll(a, -1, axis=0)
    ab = b - a
    ap = centres[:, None, :] - a[None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab**2).sum(-1), 1e-12), 0, 1)
    dist = np.hypot(*(ap - t[..., None] * ab).transpose(2, 0, 1)).min(axis=1)
    sure = (dist > 1e-6).reshape(shape)
    np.testing.assert_array_equal(got[sure], expected[sure])


ANY_ARRAY = hnp.arrays(
    dtype=st.sampled_from(
        [np.bool_, np.uint8, np.int16, np.int64, np.float32, np.float64, np.complex64]
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
)
ANYTHING = st.one_of(
    ANY_ARRAY, st.none(), st.integers(), st.floats(), st.text(max_size=20),
    st.binary(max_size=20), st.lists(st.integers(-2, 300), max_size=5),
    st.lists(st.lists(st.integers(-1, 256), max_size=4), max_size=4),
)


def _only_clean_errors(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except (ValueError, TypeError):
        pass


@SETTINGS
@given(ANYTHING)
def test_mask_functions_never_crash(value):
    for fn in (mask_to_svg, mask_to_paths, measure_regions, mask_to_png):
        _only_clean_errors(fn, value)


@SETTINGS
@given(ANYTHING, ANYTHING)
def test_parameters_never_crash(a, b):
    mask = np.ones((3, 4), dtype=bool)
    _only_clean_errors(mask_to_svg, mask, turdsize=a, alphamax=b)
    _only_clean_errors(mask_to_svg, mask, opttolerance=a)
    _only_clean_errors(mask_to_paths, mask, max_vertices=a, turdsize=b)
    _only_clean_errors(measure_regions, mask, pixel_spacing=a)
    _only_clean_errors(svg_to_mask, ["M0 0 H1 V1 Z"], shape=a)


PATH_TOKENS = st.sampled_from(
    list("MmLlHhVvCcSsQqTtAaZz") + ["0", "1", "-2.5", "1e3", "1e-3", ".5", ",", " ", "e", "x"]
)
PATH_DATA = st.lists(PATH_TOKENS, max_size=40).map(" ".join)


@SETTINGS
@given(PATH_DATA, st.sampled_from(["", ' fill-rule="evenodd"', ' transform="scale(2) rotate(30)"']))
def test_svg_documents_with_any_path_data_never_crash(d, attrs):
    doc = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10">'
        f'<path d="{d}"{attrs}/></svg>'
    )
    try:
        out = svg_to_mask(doc)
    except ValueError:
        return
    assert out.shape == (10, 20) and out.dtype == bool


@SETTINGS
@given(st.lists(st.one_of(PATH_DATA, st.text(max_size=30)), max_size=4))
def test_path_lists_never_crash(paths):
    try:
        out = svg_to_mask(paths, shape=(10, 20))
    except (ValueError, TypeError):
        return
    assert out.shape == (10, 20)


@SETTINGS
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)), st.sampled_from([None, (5, 5)]))
def test_any_text_or_bytes_never_crash(data, shape):
    _only_clean_errors(svg_to_mask, data, shape=shape)
    _only_clean_errors(png_to_mask, data)


@SETTINGS
@given(st.binary(max_size=64), st.integers(0, 200))
def test_corrupted_pngs_never_crash(noise, where):
    good = mask_to_png(np.eye(9, dtype=bool))
    where = min(where, len(good))
    _only_clean_errors(png_to_mask, good[:where] + noise + good[where + len(noise):])


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1)])
def test_degenerate_sizes(shape):
    mask = np.ones(shape, dtype=bool)
    np.testing.assert_array_equal(svg_to_mask(mask_to_svg(mask, turdsize=0)), mask)
    assert measure_regions(mask)[0]["area_px"] == mask.size
