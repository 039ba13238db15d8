"""potrace through potracecffi: bitmap packing, coordinates, orientation, grouping."""

import numpy as np
import pytest

from vectorizer import MAX_OUTLINES, mask_to_paths, mask_to_svg, measure_regions
from vectorizer._trace import CORNER, CURVETO, pack_bitmap, trace


def _bits(words: np.ndarray, row: int, col: int) -> int:
    word_bits = 8 * words.dtype.itemsize
    return int(words[row, col // word_bits]) >> (word_bits - 1 - col % word_bits) & 1


def test_pack_bitmap_puts_leftmost_pixel_in_most_significant_bit():
    mask = np.zeros((2, 70), dtype=bool)
    mask[0, 0] = mask[0, 64] = mask[1, 69] = True
    words = pack_bitmap(mask)
    assert words.shape == (2, 2)
    on = {(r, c) for r in range(2) for c in range(70) if _bits(words, r, c)}
    assert on == {(0, 0), (0, 64), (1, 69)}
    # Padding bits beyond the width stay clear.
    assert all(_bits(words, 1, c) == 0 for c in range(70, 128))


def test_pack_bitmap_scale_two_doubles_every_pixel():
    mask = np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)
    words = pack_bitmap(mask, scale=2)
    assert words.shape == (4, 1)
    big = np.array([[_bits(words, r, c) for c in range(6)] for r in range(4)], dtype=bool)
    np.testing.assert_array_equal(big, np.kron(mask, np.ones((2, 2), dtype=bool)))


@pytest.mark.parametrize("scale", [1, 2])
def test_rectangle_corners_are_its_pixel_corners(scale):
    # Rows 1-2, columns 2-4: x in [2, 5], y in [1, 3].
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 2:5] = True
    (region,) = trace(mask, alphamax=0.0, scale=scale)
    assert region.holes == ()
    ring = region.outer
    assert (ring.tags == CORNER).all()
    corners = {tuple(p) for p in ring.points[:, 1].tolist()}
    assert corners == {(2.0, 1.0), (5.0, 1.0), (5.0, 3.0), (2.0, 3.0)}
    assert ring.area == 6


def test_single_pixel_is_traced_inside_its_square_not_flipped():
    mask = np.zeros((10, 12), dtype=bool)
    mask[3, 7] = True  # x in [7, 8], y in [3, 4]
    (region,) = trace(mask, turdsize=0)
    ends = region.outer.points[:, 2]
    assert ends[:, 0].min() >= 7 and ends[:, 0].max() <= 8
    assert ends[:, 1].min() >= 3 and ends[:, 1].max() <= 4
    centre = ends.mean(axis=0)
    np.testing.assert_allclose(centre, [7.5, 3.5], atol=1e-9)


def test_holes_follow_their_region_and_islands_are_regions():
    mask = np.zeros((20, 30), dtype=bool)
    mask[2:16, 2:16] = True
    mask[5:13, 5:13] = False  # hole
    mask[7:11, 7:11] = True  # island inside the hole
    mask[1:4, 20:25] = True  # another region, higher up but to the right
    regions = trace(mask)
    assert len(regions) == 3
    # Sorted by the top-left of the outer ring: y first.
    tops = [r.outer.points[:, 2, 1].min() for r in regions]
    assert tops == sorted(tops)
    ring_ends = [r.outer.points[:, 2] for r in regions]
    assert ring_ends[0][:, 0].min() >= 20  # the region at rows 1-3
    assert len(regions[1].holes) == 1 and regions[1].outer.area == 14 * 14
    assert regions[1].holes[0].area == 8 * 8
    assert regions[2].holes == () and regions[2].outer.area == 16


def test_diagonal_neighbours_are_one_region():
    mask = np.zeros((6, 6), dtype=bool)
    mask[1:3, 1:3] = True
    mask[3:5, 3:5] = True  # touches the first block only at a corner
    assert len(trace(mask)) == 1


def test_turdsize_counts_pixels_of_the_mask_not_of_the_enlarged_bitmap():
    mask = np.zeros((10, 10), dtype=bool)
    mask[1, 1:3] = True  # 2 pixels
    mask[5:8, 5:8] = True
    mask[6, 6] = False  # 1-pixel hole
    assert len(trace(mask, turdsize=2)) == 1
    assert trace(mask, turdsize=2)[0].holes == ()  # the pinhole is filled
    assert len(trace(mask, turdsize=1)) == 2
    assert len(trace(mask, turdsize=0)[1].holes) == 1


def _potrace_itself(mask: np.ndarray, opttolerance: float) -> list[tuple[list, np.ndarray]]:
    """potracecffi's own trace of ``mask`` enlarged twice (as trace's default scale
    does), with the given tolerance in pixels of that enlarged bitmap: each curve's
    tags and control points, scaled back to pixels of ``mask``."""
    import potracecffi

    big = np.kron(mask, np.ones((2, 2), dtype=bool))
    state = potracecffi.trace(big, turdsize=2 * 2 * 2, turnpolicy=potracecffi.TURNPOLICY_BLACK,
                              alphamax=1.0, opticurve=1, opttolerance=opttolerance)
    curves = []
    for path in potracecffi.iter_paths(state.plist):
        c = path.curve
        points = [[[c.c[i][j].x, c.c[i][j].y] for j in range(3)] for i in range(c.n)]
        curves.append(([int(c.tag[i]) for i in range(c.n)], np.array(points) / 2))
    return curves


def test_opttolerance_is_in_pixels_of_the_mask_not_of_the_enlarged_bitmap():
    # A right triangle whose hypotenuse is a 4:3 staircase; its top-left pixel is
    # (0, 0), so trace's crop to the bounding box moves nothing.
    yy, xx = np.mgrid[:30, :24]
    mask = 3 * yy >= 4 * xx
    # Potrace runs on the mask enlarged twice, where a distance of d mask pixels is
    # 2d bitmap pixels: a tolerance of t mask pixels must reach potrace as 2t, and
    # the curves are then potrace's own on that bitmap, halved.
    for t in (0.1, 0.2, 0.5):
        (region,) = trace(mask, opttolerance=t)
        ((tags, points),) = _potrace_itself(mask, 2 * t)
        assert region.outer.tags.tolist() == tags
        np.testing.assert_allclose(region.outer.points[:, 1:], points[:, 1:], atol=1e-9)
        curved = region.outer.tags == CURVETO  # a corner's first point is unused
        np.testing.assert_allclose(region.outer.points[curved, 0], points[curved, 0], atol=1e-9)
    # The shape tells the two apart: at 0.4 bitmap pixels (the default 0.2 in mask
    # pixels) potrace merges two neighbouring curve segments that it keeps apart at
    # 0.2, so passing the tolerance unscaled would give 18 segments, not 17.
    ((unscaled, _),) = _potrace_itself(mask, 0.2)
    assert len(trace(mask, opttolerance=0.2)[0].outer.tags) == 17 == len(unscaled) - 1


def test_empty_mask_has_no_regions():
    assert trace(np.zeros((5, 5), dtype=bool)) == []


# --- the outline limit (MAX_OUTLINES), shared by measure_regions, mask_to_svg and
# mask_to_paths, which all count outlines here before tracing


def checkerboard(n):
    return (np.indices((n, n)).sum(0) % 2).astype(bool)


def test_measure_regions_refuses_a_checkerboard_before_tracing_it():
    # One region with about 320,000 one-pixel holes: minutes of work before the limit.
    with pytest.raises(ValueError, match=r"^mask has \d+ outlines .*at most 10000 can be measured"):
        measure_regions(checkerboard(800))


def test_trace_refuses_too_many_outlines():
    m = checkerboard(200)  # about 20000 one-pixel holes, kept with turdsize=0
    with pytest.raises(ValueError, match=r"^mask has \d+ outlines .*can be traced"):
        mask_to_svg(m, turdsize=0)
    with pytest.raises(ValueError, match=r"^mask has \d+ outlines .*can be traced"):
        mask_to_paths(m, turdsize=0)
    # With the default turdsize the holes are filled: one region.
    assert mask_to_svg(m).count("<path") == 1


def test_many_separate_regions_refused():
    n = 3 * (int(MAX_OUTLINES**0.5) + 2)
    m = np.zeros((n, n), bool)
    keep = (np.arange(n) % 3) < 2  # 2x2 blocks, 8-disconnected
    m[np.ix_(keep, keep)] = True
    for f in (measure_regions, mask_to_svg, mask_to_paths):
        with pytest.raises(ValueError, match="^mask has"):
            f(m)


def comb(n):
    """One region: a bar along the top, teeth a pixel wide and a pixel apart below it."""
    m = np.zeros((n, n), bool)
    m[:, ::2] = True
    m[0] = True
    return m


def test_boundary_edges_count_every_outline_in_pixels():
    from vectorizer._trace import boundary_edges

    square = np.zeros((6, 7), bool)
    square[1:4, 2:6] = True  # 3 x 4
    assert boundary_edges(square) == 2 * (3 + 4)
    assert boundary_edges(np.ones((3, 5), bool)) == 2 * (3 + 5)  # the border counts
    ring = np.pad(np.ones((5, 5), bool), 1)
    ring[3, 3] = False
    assert boundary_edges(ring) == 4 * 5 + 4
    assert boundary_edges(np.zeros((4, 4), bool)) == 0


def test_a_comb_is_refused_by_its_length_before_tracing(monkeypatch):
    import vectorizer
    from vectorizer import _trace
    from vectorizer._trace import boundary_edges

    # One region, so the outline count lets it through; its outline is long.
    m = comb(2100)
    assert boundary_edges(m) > vectorizer.MAX_BOUNDARY_EDGES
    assert _trace.count_outlines(m, 2) <= MAX_OUTLINES

    def never(*_args, **_kwargs):
        raise AssertionError("traced")

    for module in ("_svg", "_polygons", "_measure"):
        monkeypatch.setattr(f"vectorizer.{module}.trace", never)
    for f, verb in ((mask_to_svg, "traced"), (mask_to_paths, "traced"),
                    (measure_regions, "measured")):
        with pytest.raises(ValueError, match=rf"^mask's outlines are {boundary_edges(m)} pixel "
                                             rf"edges long; at most 4000000 can be {verb}"):
            f(m)


def test_the_length_limit_is_the_one_applied(monkeypatch):
    from vectorizer._trace import boundary_edges

    m = comb(40)
    monkeypatch.setattr("vectorizer._trace.MAX_BOUNDARY_EDGES", boundary_edges(m))
    assert mask_to_svg(m).count("<path") == 1  # at the limit: traced
    monkeypatch.setattr("vectorizer._trace.MAX_BOUNDARY_EDGES", boundary_edges(m) - 1)
    for f in (mask_to_svg, mask_to_paths, measure_regions):
        with pytest.raises(ValueError, match="pixel edges long"):
            f(m)


def test_outline_limit_keeps_ordinary_masks():
    m = np.zeros((60, 60), bool)
    m[10:50, 10:50] = True
    m[20:30, 20:30] = False  # a hole
    assert len(measure_regions(m)) == 1
    assert len(mask_to_paths(m)) == 1


def _owner(path: str, labels: np.ndarray) -> int:
    """The 8-connected component (label) that path ``path`` covers most."""
    from vectorizer import svg_to_mask

    drawn = svg_to_mask([path], shape=labels.shape)
    return int(np.bincount(labels[drawn], minlength=labels.max() + 1)[1:].argmax()) + 1


def _paths_of_svg(svg: str) -> list[str]:
    import re

    return re.findall(r' d="([^"]+)"', svg)


def test_regions_come_in_the_order_measure_regions_lists_them():
    # A smoothed tip's control points sit above its pixel row: ordering by them
    # put the bar at x = 8..9 first, so regions[i] measured another region than paths[i].
    from scipy import ndimage

    m = np.zeros((8, 12), bool)
    m[2, 1:4] = True
    m[2, 8] = m[2, 9] = True
    m[3:5, 6:10] = True
    rng = np.random.default_rng(5)
    masks = [m] + [rng.random((10, 14)) < 0.25 for _ in range(150)]
    checked = 0
    for mask in masks:
        labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        kept = [k + 1 for k in range(count) if np.count_nonzero(labels == k + 1) > 2]
        mask = np.isin(labels, kept)  # the tracers drop regions of up to 2 pixels
        labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        if count < 2:
            continue
        boxes = ndimage.find_objects(labels)
        # the documented order: top-left corner of each region's pixel bounding box
        expected = sorted(range(1, count + 1),
                          key=lambda k: (boxes[k - 1][0].start, boxes[k - 1][1].start))
        measured = measure_regions(mask)
        assert [r["bbox"][:2] for r in measured] == [
            [boxes[k - 1][1].start, boxes[k - 1][0].start] for k in expected
        ]
        for paths in (mask_to_paths(mask, max_vertices=64), _paths_of_svg(mask_to_svg(mask))):
            assert len(paths) == len(measured)
            assert [_owner(p, labels) for p in paths] == expected
        checked += 1
    assert checked > 50


def test_each_region_traced_alone_comes_in_the_same_order(monkeypatch):
    # The fallback for a curve that cannot be matched to its pixels (not seen in
    # practice) traces every component on its own: it must give the same regions in
    # the same order. (Their curves may differ in a segment: potrace's optimisation
    # rounds differently when the bitmap's origin moves.)
    from scipy import ndimage

    import vectorizer._trace as tracing

    rng = np.random.default_rng(9)
    masks = [rng.random((24, 30)) < 0.3 for _ in range(40)]
    owner = tracing._owner
    fast = [trace(m, alphamax=a) for m in masks for a in (0.0, 1.0)]
    monkeypatch.setattr(tracing, "_owner", lambda labels, point: 0)
    alone = [trace(m, alphamax=a) for m in masks for a in (0.0, 1.0)]
    assert sum(len(regions) > 1 for regions in fast) > 30
    for m, got, want in zip([m for m in masks for _ in (0, 1)], alone, fast, strict=True):
        labels, _ = ndimage.label(m, structure=np.ones((3, 3), bool))
        assert [owner(labels, r.outer.points[0, 2]) for r in got] == [
            owner(labels, r.outer.points[0, 2]) for r in want
        ]
        assert [len(r.holes) for r in got] == [len(r.holes) for r in want]
