"""mask_to_paths: polygon outlines under a vertex budget, placed to keep the region."""

import re

import numpy as np
import pytest
import shapely
from skimage.draw import line as draw_line

from vectorizer import mask_to_paths, svg_to_mask
from vectorizer._polygons import signed_area, visvalingam

NUMBER = r"-?\d+(?:\.\d+)?"
RING = rf"M {NUMBER},{NUMBER}(?: L {NUMBER},{NUMBER})+ Z"
PATH = re.compile(rf"^{RING}(?: {RING})*$")


def _rings(path: str) -> list[np.ndarray]:
    out = []
    for sub in re.findall(r"M[^M]*", path):
        pts = re.findall(rf"({NUMBER}),({NUMBER})", sub)
        out.append(np.array(pts, dtype=float))
    return out


def _iou(a, b):
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


def _disc(shape, cx, cy, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 < r**2


def test_rectangle_is_its_four_corners():
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 2:5] = True
    assert mask_to_paths(mask) == ["M 2,1 L 5,1 L 5,3 L 2,3 Z"]
    np.testing.assert_array_equal(svg_to_mask(mask_to_paths(mask), shape=(4, 6)), mask)


def test_empty_mask_has_no_paths():
    assert mask_to_paths(np.zeros((5, 5), dtype=bool)) == []


def test_full_mask_and_border_regions():
    full = np.ones((6, 9), dtype=bool)
    assert mask_to_paths(full) == ["M 0,0 L 9,0 L 9,6 L 0,6 Z"]
    corner = _disc((40, 40), 0, 0, 20) | _disc((40, 40), 40, 40, 12)
    paths = mask_to_paths(corner, max_vertices=32)
    assert len(paths) == 2
    assert _iou(svg_to_mask(paths, shape=(40, 40)), corner) > 0.98


@pytest.mark.parametrize("budget", [3, 4, 5, 8, 16, 32, 64])
def test_every_ring_respects_the_vertex_budget(budget):
    mask = _disc((120, 160), 60, 60, 45) & ~_disc((120, 160), 60, 60, 15)
    mask |= _disc((120, 160), 130, 90, 20)
    paths = mask_to_paths(mask, max_vertices=budget)
    assert len(paths) == 2
    for p in paths:
        assert PATH.match(p), p
        for ring in _rings(p):
            assert 3 <= len(ring) <= budget
    assert [len(_rings(p)) for p in paths] == [2, 1]


def test_more_vertices_fit_better():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:200, :200]
    angle = np.arctan2(yy - 100, xx - 100)
    radius = 60 + 12 * np.sin(5 * angle + 1) + 6 * np.cos(3 * angle)
    mask = np.hypot(yy - 100, xx - 100) < radius + rng.normal(0, 0.3, (200, 200))
    ious = [_iou(svg_to_mask(mask_to_paths(mask, n), shape=mask.shape), mask) for n in (8, 16, 32)]
    assert ious[0] < ious[1] < ious[2]
    assert ious[1] > 0.97 and ious[2] > 0.99


def test_disc_with_16_vertices_is_nearly_exact():
    mask = _disc((200, 200), 100.3, 99.6, 70)
    (path,) = mask_to_paths(mask, max_vertices=16)
    assert len(_rings(path)[0]) == 16
    # The best 16-gon misses about 0.6 % of a disc; pixelisation adds a little.
    assert _iou(svg_to_mask([path], shape=mask.shape), mask) > 0.99


def _dp_iou(mask, budget):
    """Douglas-Peucker (shapely simplify) with the tolerance that meets the budget."""
    from vectorizer._polygons import region_polygons

    (rings,) = region_polygons(mask, 10_000, 2)
    poly = shapely.Polygon(rings[0])
    lo, hi = 0.0, 50.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if len(poly.simplify(mid).exterior.coords) - 1 > budget:
            lo = mid
        else:
            hi = mid
    simple = np.asarray(poly.simplify(hi).exterior.coords)[:-1]
    d = "M " + " L ".join(f"{x},{y}" for x, y in simple.tolist()) + " Z"
    return _iou(svg_to_mask([d], shape=mask.shape), mask)


def test_vertices_are_placed_better_than_douglas_peucker():
    yy, xx = np.mgrid[:240, :240]
    angle = np.arctan2(yy - 120, xx - 120)
    radius = 70 + 18 * np.sin(4 * angle) + 9 * np.sin(7 * angle + 2)
    mask = np.hypot(yy - 120, xx - 120) < radius
    for budget in (12, 16, 24):
        ours = _iou(svg_to_mask(mask_to_paths(mask, budget), shape=mask.shape), mask)
        assert ours > _dp_iou(mask, budget) + 0.003, budget


def test_orientation_outer_clockwise_holes_counter_clockwise():
    mask = _disc((100, 100), 50, 50, 40) & ~_disc((100, 100), 50, 50, 20)
    (path,) = mask_to_paths(mask, max_vertices=24)
    outer, hole = _rings(path)
    assert signed_area(outer) > 0 > signed_area(hole)
    # Hence even-odd and non-zero fills agree.
    doc = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        f'<path fill-rule="nonzero" d="{path}"/></svg>'
    )
    np.testing.assert_array_equal(svg_to_mask(doc), svg_to_mask([path], shape=(100, 100)))
    assert _iou(svg_to_mask([path], shape=(100, 100)), mask) > 0.98


def test_rings_stay_simple_for_thin_spiky_shapes():
    mask = np.zeros((80, 80), dtype=bool)
    mask[10:70, 38:42] = True
    mask[38:42, 10:70] = True
    mask[20:60, 20:24] = True
    mask |= _disc((80, 80), 60, 60, 8)
    for budget in (4, 6, 8, 12):
        for path in mask_to_paths(mask, budget):
            for ring in _rings(path):
                assert shapely.Polygon(ring).is_valid


@pytest.mark.parametrize("shape, rows, cols", [
    ((50, 300), 20, slice(10, 210)),   # a 1x200 strip
    ((300, 50), slice(10, 210), 20),   # the same standing
    ((1, 100), 0, slice(None)),        # a whole image one pixel high
])
def test_a_one_pixel_strip_stays_a_rectangle(shape, rows, cols):
    # The 2-px minimum edge deleted an end of the 1-px end edge: a triangle, half the
    # strip lost (audit 502, finding 1).
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    (path,) = mask_to_paths(mask)
    assert len(_rings(path)[0]) == 4, path
    np.testing.assert_array_equal(svg_to_mask([path], shape=shape), mask)


def test_thin_lines_and_tails_keep_their_pixels():
    square_with_tail = np.zeros((160, 160), dtype=bool)
    square_with_tail[20:120, 20:120] = True
    square_with_tail[60, 120:160] = True  # a 40-px tail one pixel wide
    ell = np.zeros((120, 120), dtype=bool)
    ell[10, 10:110] = ell[10:110, 10] = True
    diagonal = np.zeros((120, 120), dtype=bool)
    diagonal[np.arange(10, 110), np.arange(10, 110)] = True
    for mask in (square_with_tail, ell, diagonal):
        for budget in (16, 32):
            paths = mask_to_paths(mask, budget)
            assert all(len(ring) <= budget for p in paths for ring in _rings(p))
            np.testing.assert_array_equal(svg_to_mask(paths, shape=mask.shape), mask)


def test_a_slanted_one_pixel_line_keeps_its_pixels():
    # Vertices kept 2 px apart cut through the staircase of a slanted 1-px line: at 30
    # degrees, 60 px long, 0.82 IoU; a two-pixel-wide one at 5 degrees 0.32. Where the
    # rule costs that much, the ring keeps its closer vertices.
    for degrees, width, budget in ((30, 1, 32), (5, 2, 32)):
        mask = np.zeros((400, 400), dtype=bool)
        angle = np.radians(degrees)
        rr, cc = draw_line(200, 200, round(200 + 60 * np.sin(angle)),
                           round(200 + 60 * np.cos(angle)))
        for dx in range(width):
            mask[rr, cc + dx] = True
        paths = mask_to_paths(mask, budget)
        assert _iou(svg_to_mask(paths, shape=mask.shape), mask) > 0.95, (degrees, width)


def test_specks_are_dropped_by_turdsize():
    mask = np.zeros((30, 30), dtype=bool)
    mask[5:20, 5:20] = True
    mask[25, 25] = True
    assert len(mask_to_paths(mask)) == 1
    assert len(mask_to_paths(mask, turdsize=0)) == 2


def test_visvalingam_removes_the_least_area_first():
    square_with_bumps = np.array(
        [[0, 0], [5, 0.01], [10, 0], [10, 10], [5, 12], [0, 10]], dtype=float
    )
    # (5, 0.01) makes an almost flat triangle; (5, 12) a large one.
    np.testing.assert_array_equal(
        visvalingam(square_with_bumps, 5), square_with_bumps[[0, 2, 3, 4, 5]]
    )
    assert len(visvalingam(square_with_bumps, 3)) == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"max_vertices": 2}, ValueError, "max_vertices"),
        ({"max_vertices": 0}, ValueError, "max_vertices"),
        ({"max_vertices": 16.0}, TypeError, "max_vertices"),
        ({"max_vertices": "16"}, TypeError, "max_vertices"),
        ({"max_vertices": None}, TypeError, "max_vertices"),
        ({"turdsize": -3}, ValueError, "turdsize"),
    ],
)
def test_bad_parameters_are_refused_naming_them(kwargs, error, word):
    with pytest.raises(error, match=word):
        mask_to_paths(np.ones((4, 4), dtype=bool), **kwargs)


def test_bad_masks_are_refused():
    with pytest.raises(ValueError, match="mask"):
        mask_to_paths(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="mask"):
        mask_to_paths(np.full((3, 3), 0.25))
    with pytest.raises(TypeError, match="mask"):
        mask_to_paths("mask")


def test_error_change_from_crossings_matches_rasterised_counts():
    from vectorizer._polygons import _Target

    rng = np.random.default_rng(7)

    def star(cx, cy, k, rmin, rmax, half_pixels=False):
        angle = np.sort(rng.uniform(0, 2 * np.pi, k))
        radius = rng.uniform(rmin, rmax, k)
        poly = np.stack([cx + radius * np.cos(angle), cy + radius * np.sin(angle)], axis=1)
        if half_pixels:  # vertices on pixel centres and edges: the rasteriser's ties
            poly = np.round(poly * 2) / 2
        return poly if signed_area(poly) > 0 else poly[::-1]

    checked = 0
    for _ in range(150):
        cx, cy = rng.uniform(0, 60, 2)
        target = star(cx, cy, int(rng.integers(3, 40)), 5, 20)
        new = star(cx + rng.normal(0, 5), cy + rng.normal(0, 5), int(rng.integers(3, 20)), 3, 40)
        old = star(cx, cy, int(rng.integers(3, 20)), 3, 40, half_pixels=True)
        if not all(shapely.Polygon(p).is_valid for p in (target, new, old)):
            continue
        t = _Target(target, (50, 70))
        assert t.error_change(new, old) == t.errors(new) - t.errors(old)
        checked += 1
    assert checked > 50


# --- small budgets: rings simplified one by one must still describe the regions ------


def _region_polygons(paths: list[str]) -> list[shapely.Polygon]:
    out = []
    for p in paths:
        outer, *holes = _rings(p)
        out.append(shapely.Polygon(outer, holes))
    return out


@pytest.mark.parametrize("budget", [3, 4, 5, 6, 7, 8])
def test_holes_stay_inside_their_outer_ring_at_small_budgets(budget):
    # A thin ring whose big hole comes within 2 px of the outer edge: simplified on
    # their own, a 3-gon hole pokes out of a 3-gon outer ring.
    ring = _disc((100, 100), 50, 50, 40) & ~_disc((100, 100), 55, 50, 33)
    (path,) = mask_to_paths(ring, max_vertices=budget)
    outer, *holes = _rings(path)
    assert len(holes) == 1
    (polygon,) = _region_polygons([path])
    assert polygon.is_valid, shapely.is_valid_reason(polygon)
    assert shapely.Polygon(outer).contains(shapely.Polygon(holes[0]))
    assert signed_area(outer) > 0 > signed_area(holes[0])
    # The region rasterised back is (roughly) the ring, not its outer disc or a sliver.
    back = svg_to_mask([path], shape=ring.shape)
    assert _iou(back, ring) > 0.5


def test_two_holes_do_not_cross_at_small_budgets():
    mask = np.zeros((60, 100), dtype=bool)
    mask[5:55, 5:95] = True
    mask[10:50, 10:49] = False
    mask[10:50, 51:90] = False  # two holes 2 px apart
    for budget in (3, 4, 5, 6):
        (polygon,) = _region_polygons(mask_to_paths(mask, max_vertices=budget))
        assert polygon.is_valid, (budget, shapely.is_valid_reason(polygon))


@pytest.mark.parametrize("budget", [3, 4, 5, 6, 8])
def test_regions_do_not_overlap_at_small_budgets(budget):
    two_bars = np.zeros((60, 60), dtype=bool)
    two_bars[10:50, 10:28] = True
    two_bars[10:50, 30:50] = True
    # An island in a hole, 2 px from the hole's edge all round.
    island = _disc((100, 100), 50, 50, 45) & ~_disc((100, 100), 50, 50, 30)
    island |= _disc((100, 100), 50, 50, 28)
    for mask in (two_bars, island):
        polygons = _region_polygons(mask_to_paths(mask, max_vertices=budget))
        assert len(polygons) == 2
        assert all(p.is_valid for p in polygons)
        assert not polygons[0].intersects(polygons[1])


def test_the_budget_is_kept_wherever_the_rings_fit():
    # The rings of test_holes_stay_inside... need more than 3 vertices; a region
    # whose simplified rings fit is never given more.
    ring = _disc((100, 200), 50, 50, 40) & ~_disc((100, 200), 55, 50, 33)
    far = _disc((100, 200), 150, 50, 30) & ~_disc((100, 200), 150, 50, 10)
    paths = mask_to_paths(ring | far, max_vertices=3)
    assert [len(r) for r in _rings(paths[1])] == [3, 3]
    assert max(len(r) for r in _rings(paths[0])) > 3


# --- every list of paths mask_to_paths returns, svg_to_mask reads back --------------
# svg_to_mask reads at most 300,000 characters of path strings and bounds its fill;
# a mask within mask_to_paths' outline limit can outline to more than that.


def test_a_mask_whose_paths_are_too_long_to_read_back_is_refused():
    m = np.zeros((1000, 1000), dtype=bool)
    for y in range(0, 1000, 11):
        for x in range(0, 1000, 11):
            m[y : y + 7, x : x + 7] = True  # 8281 squares: 330,000 characters of paths
    with pytest.raises(ValueError, match=r"cannot rasterise back: .*at most 300000"):
        mask_to_paths(m)
    part = m[:300, :300]
    np.testing.assert_array_equal(svg_to_mask(mask_to_paths(part), shape=part.shape), part)


def test_a_noise_mask_is_refused_for_length_before_it_is_simplified_again(monkeypatch):
    # Random 0/1 pixels make one 8-connected region with about a thousand holes whose
    # simplified rings cross: simplifying it again and again (each time with twice the
    # budget) took 33 s and 3 GB on a 562x471 mask sent to /vectorize, only for the paths
    # to be refused for their length at the end. Its first pass is already too long.
    from vectorizer import _polygons

    rounds = []
    misfits = _polygons._misfits
    monkeypatch.setattr(_polygons, "_misfits", lambda regions: rounds.append(1) or
                        misfits(regions))
    noise = np.random.default_rng(0).random((300, 300)) < 0.5
    with pytest.raises(ValueError, match=r"cannot rasterise back: svg_or_paths has at least "
                                         r"3\d{5} characters .*at most 300000"):
        mask_to_paths(noise)
    assert rounds == []


def test_a_noise_mask_is_refused_as_soon_as_its_rings_pass_the_length(monkeypatch):
    # The first pass was checked only once every region was simplified: a 562x471 noise
    # mask (one region, thousands of holes) held a /vectorize worker for 7 s, and four
    # of them kept /health waiting 15 s. Now the rings simplified stop at the length.
    from vectorizer import _polygons

    simplified = []
    simplify = _polygons.simplify_ring
    monkeypatch.setattr(_polygons, "simplify_ring",
                        lambda *a, **k: simplified.append(1) or simplify(*a, **k))
    noise = np.random.default_rng(0).random((471, 562)) < 0.5
    with pytest.raises(ValueError, match=r"svg_or_paths has at least 300\d{3} characters"):
        mask_to_paths(noise)
    rings = sum(len(region.rings) for region in
                _polygons.trace(noise, turdsize=2, alphamax=0.0, opttolerance=0.2, scale=2))
    assert len(simplified) < rings / 2  # about a third of them: 300,000 of 990,000 characters


def test_paths_whose_boxes_are_too_costly_to_fill_are_refused():
    side = 1604  # 200 nested square rings, 2 px wide and 2 px apart
    m = np.zeros((side, side), dtype=bool)
    for k in range(400):
        m[2 * k : side - 2 * k, 2 * k : side - 2 * k] = k % 2 == 0
    with pytest.raises(ValueError, match=r"cannot rasterise back: .*bounding boxes cover "
                                         r"173\d+ pixels .*100000000"):
        mask_to_paths(m)


def test_paths_beyond_svg_to_masks_coordinates_are_refused():
    m = np.zeros((2, 10_000_100), dtype=bool)
    m[:, -5:] = True
    with pytest.raises(ValueError, match=r"cannot rasterise back: .*beyond \+/-1e\+07"):
        mask_to_paths(m)


@pytest.mark.parametrize("limit", ["MAX_PARSED_BYTES", "_MAX_CROSSINGS", "_MAX_FILL_PIXELS"])
@pytest.mark.parametrize("budget", [4, 32])
def test_mask_to_paths_refuses_exactly_what_svg_to_mask_would(monkeypatch, limit, budget):
    # Each limit is lowered to the least value at which svg_to_mask still reads the
    # paths: mask_to_paths must return them there, and refuse the mask one below.
    from vectorizer import _rasterize

    mask = _disc((120, 160), 60, 60, 45) & ~_disc((120, 160), 60, 60, 15)
    mask |= _disc((120, 160), 130, 90, 20) | _disc((120, 160), 140, 20, 9)
    paths = mask_to_paths(mask, budget)
    lo, hi = 0, getattr(_rasterize, limit)  # refused at lo, read at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        monkeypatch.setattr(_rasterize, limit, mid)
        try:
            svg_to_mask(paths, shape=mask.shape)
        except ValueError:
            lo = mid
        else:
            hi = mid
    monkeypatch.setattr(_rasterize, limit, hi)
    assert mask_to_paths(mask, budget) == paths
    monkeypatch.setattr(_rasterize, limit, hi - 1)
    with pytest.raises(ValueError, match="cannot rasterise back"):
        mask_to_paths(mask, budget)


# --- no vertex off the image (audit 801 F12) ------------------------------------------
# The fit put vertices beyond the image's edge, where no pixel centre held them: the
# editor could not reach them and a DICOM SR carried negative coordinates.
_YY, _XX = np.mgrid[:60, :80]
_EDGE_MASKS = {
    "disc at the left edge": (_XX - 2) ** 2 + (_YY - 30) ** 2 <= 20**2,
    "disc in a corner": (_XX - 1) ** 2 + (_YY - 1) ** 2 <= 25**2,
    "ellipse past the top": ((_XX - 40) / 30.0) ** 2 + ((_YY + 5) / 20.0) ** 2 <= 1,
}


def _beyond(paths, shape) -> np.ndarray:
    xy = np.concatenate([r for p in paths for r in _rings(p)])
    h, w = shape
    return xy[(xy[:, 0] < 0) | (xy[:, 1] < 0) | (xy[:, 0] > w) | (xy[:, 1] > h)]


@pytest.mark.parametrize("name", sorted(_EDGE_MASKS))
@pytest.mark.parametrize("budget", [4, 8, 12, 16, 32])
def test_no_vertex_lies_off_the_image_and_no_pixel_changes_for_it(name, budget, monkeypatch):
    from vectorizer import _polygons

    mask = _EDGE_MASKS[name]
    paths = mask_to_paths(mask, max_vertices=budget)
    assert len(_beyond(paths, mask.shape)) == 0, paths
    for p in paths:
        assert PATH.match(p), p
        assert shapely.Polygon(*(lambda r: (r[0], r[1:]))(_rings(p))).is_valid
        for ring in _rings(p):
            # Past the budget only by vertices on the image's edge.
            on_edge = np.count_nonzero((ring == 0).any(axis=1) | (ring[:, 0] == mask.shape[1])
                                       | (ring[:, 1] == mask.shape[0]))
            assert len(ring) <= budget + on_edge
    # The fit as it was, its vertices left where they fell: the same pixels.
    monkeypatch.setattr(_polygons, "_within_image", lambda rings, shape, budget: rings)
    uncut = mask_to_paths(mask, max_vertices=budget)
    np.testing.assert_array_equal(svg_to_mask(paths, shape=mask.shape),
                                  svg_to_mask(uncut, shape=mask.shape))


def test_the_fit_did_put_vertices_off_the_image_on_these_masks(monkeypatch):
    # So the test above tests something.
    from vectorizer import _polygons

    monkeypatch.setattr(_polygons, "_within_image", lambda rings, shape, budget: rings)
    for mask in _EDGE_MASKS.values():
        assert any(len(_beyond(mask_to_paths(mask, max_vertices=b), mask.shape))
                   for b in (4, 8, 12, 16, 32))
