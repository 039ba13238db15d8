"""Editable polygons: every ring of a mask's outline with at most ``max_vertices`` vertices
(more only where a region's rings would otherwise cross, step 6), each region a valid
polygon with holes (step 7).

How the vertices are placed
---------------------------
1. Potrace traces the mask at twice its resolution with ``alphamax=0``, which gives its
   optimal polygon: a few hundred vertices per ring that stay within a quarter pixel
   of the pixel boundary (rasterised back it reproduces the mask to 0.99999 IoU).
2. That outline is resampled evenly and a dynamic programme picks the
   ``max_vertices`` resampled points whose polygon fits it with the least summed
   squared distance (prefix sums make every chord's cost O(1)). Unlike
   Douglas-Peucker or Visvalingam-Whyatt, which decide one vertex at a time, this
   spreads the vertices over the whole ring, evenly on round lesions.
3. Those points only split the outline into stretches. A line is fitted through each
   stretch (least squares, again from prefix sums) and the vertices go where the lines
   of neighbouring stretches cross: a chord between two outline points lies inside
   every convex bulge, while a fitted line cuts off about as much as it takes in.
4. A few steps then move the vertices, all at once, down the gradient of the
   symmetric difference between the polygon and the ring's pixels. Moving vertex
   ``v_i`` moves its two edges; the derivative of the area error is the integral
   along those edges of ``+1`` (outside the target) or ``-1`` (inside), weighted by
   how much each edge point moves with ``v_i`` and projected on the edge's outward
   normal, sampled about every pixel. The refined polygon is kept only if it has no
   more wrongly classified pixel centres than the fitted one.
5. No two neighbouring vertices stay closer than :data:`_MIN_EDGE` (2 pixels; on a
   ring too short for that budget, half the spacing the budget allows): where
   they are, the one whose removal changes the area least goes, and the rest are
   refined again. At the zoom the editor opens an image at, two vertices closer than
   that are one handle on screen: dragging it moved one and left the other behind, a
   notch in the outline (on BUSI at 32 vertices, a fifth of the rings had an edge
   under a pixel). It costs about 0.001 of IoU, a fraction of a pixel along the outline.
   The end of a thin part is the exception: an edge whose neighbours run back the way
   they came (a 1-pixel strip, line or tail) keeps both its vertices, since removing
   either would cut the end to a point and lose a triangle as long as the part (a
   1x200 strip came back as a triangle, half its pixels gone). And a ring on which
   the step costs more than 4 pixels and 2 % of its pixels (a slanted 1-pixel line,
   whose staircase needs vertices closer than that) keeps the vertices it had; on
   BUSI that never happens.
6. Rings are simplified one by one, so a region whose simplified rings would cross
   (a hole poking out of its outer ring) or that would intersect another region is
   simplified again with twice the budget until they do not (see
   :func:`region_polygons`).
7. Where the mask pinches (two parts of a region meeting only at a pixel corner, a
   hole meeting its outer ring or another hole at one: noisy AI masks, hand edits),
   the traced outline touches itself, and so may the simplified one. Where it does,
   the outline is joined there through a neck a tenth of a pixel wide (with
   shapely's ``make_valid``), if the budget allows, else simplified again as in step
   6; the traced outline, the last resort, is joined in the same way, which changes
   no pixel. So every path is a valid polygon with holes in shapely's sense, and a
   pinched region stays one path.
8. No vertex is left off the image: a region the fit carried beyond its edge is cut
   to it, which changes no pixel (:func:`_within_image`); the ring may keep a vertex
   or two more than its budget there, on the image's edge.

Cost: on BUSI lesions (about 500x560 px) steps 2 and 4 each take about a millisecond;
everything scales with the length of the outline, except the two rasterisations
of the ring's window used for the pixel lookups and the final error count.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.lib.stride_tricks import sliding_window_view

from . import _rasterize
from ._rasterize import FlatShape, fill
from ._trace import CORNER, Ring, check_outlines, trace
from ._validate import as_mask, check_int

DECIMALS = 2
"""Vertex coordinates are written with this many decimals."""

# Speed against fit, on BUSI's lesion masks at 32 vertices (this runs on every /predict):
# 300 DP points and six gradient steps gain 0.0004 IoU (0.99567 against 0.99528) for
# a quarter more time; a second DP start and ten steps another 0.0001 for a third more.
_ITERATIONS = 4  # gradient steps per refinement
_STEP = 2.0  # initial step, in pixels per unit of normalised gradient
_SAMPLE_SPACING = 1.0  # pixels between gradient samples along an edge
_MAX_SAMPLES = 256  # per edge
_DP_POINTS = 200  # resampled outline points for the vertex-choosing dynamic programme
_DP_STARTS = 1  # starting points tried for the cyclic dynamic programme
_MARGIN = 3  # pixels of background kept around a ring's target raster
_MIN_EDGE = 2.0  # pixels: the shortest edge left between two vertices (step 5)
# Step 5 is undone on a ring where it costs more than this many wrong pixel centres and
# this fraction of the ring's pixels: on BUSI at 32 vertices it costs up to 20 pixels
# of rings of thousands (never undone there), on a slanted 1-px line a third of it.
_MIN_EDGE_LOSS = 4
_MIN_EDGE_LOSS_FRACTION = 0.02


def ring_polygon(ring: Ring) -> np.ndarray:
    """Vertices (k, 2) of a ring traced with ``alphamax=0``.

    Such a ring has only ``CORNER`` segments; the corner ``points[i, 1]`` is a polygon
    vertex and the segment end ``points[i, 2]`` the midpoint of the next edge. Any
    curve segment (not produced with ``alphamax=0``) is sampled instead.
    """
    if (ring.tags == CORNER).all():
        return ring.points[:, 1].copy()
    pts = []
    prev = ring.points[-1, 2]
    t = np.linspace(0, 1, 9)[1:, None]
    for tag, (c0, c1, c2) in zip(ring.tags, ring.points, strict=True):
        if tag == CORNER:
            pts.append(c1[None])
            pts.append(c2[None])
        else:
            s = 1 - t
            pts.append(s**3 * prev + 3 * s * s * t * c0 + 3 * s * t * t * c1 + t**3 * c2)
        prev = c2
    return np.concatenate(pts)


def signed_area(poly: np.ndarray) -> float:
    """Shoelace area; positive when the ring turns clockwise on screen (y down)."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, _next(y)) - np.dot(_next(x), y))


def visvalingam(poly: np.ndarray, n: int) -> np.ndarray:
    """Reduce a closed polygon (k, 2) to ``n`` vertices by Visvalingam-Whyatt.

    Each pass removes the vertices whose triangle with their neighbours is smallest,
    among local minima only (so no two neighbours go together) and at most a quarter
    of the excess: a vectorised approximation of one-at-a-time elimination. Used
    where the dynamic programme cannot run and as an untangled fallback.
    """
    pts = poly
    while len(pts) > n:
        prev = np.roll(pts, 1, axis=0)
        nxt = np.roll(pts, -1, axis=0)
        area = np.abs(
            (prev[:, 0] - pts[:, 0]) * (nxt[:, 1] - pts[:, 1])
            - (nxt[:, 0] - pts[:, 0]) * (prev[:, 1] - pts[:, 1])
        )
        excess = len(pts) - n
        # Remove only local minima, so that no two neighbours go in the same batch
        # and every removed area is still the one the serial algorithm would see.
        local = (area <= np.roll(area, 1)) & (area < np.roll(area, -1))
        cand = np.flatnonzero(local)
        if cand.size == 0:
            cand = np.array([int(np.argmin(area))])
        # At most a quarter of the excess per batch keeps the order close to serial.
        take = max(1, min(cand.size, (excess + 3) // 4))
        drop = cand[np.argsort(area[cand], kind="stable")[:take]]
        keep = np.ones(len(pts), dtype=bool)
        keep[drop] = False
        pts = pts[keep]
    return pts


def resample_closed(poly: np.ndarray, max_points: int, spacing: float = 1.0) -> np.ndarray:
    """Points evenly spaced along a closed polyline (k, 2): ``spacing`` apart, at most
    ``max_points`` of them, at least 8."""
    closed = np.concatenate([poly, poly[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    n = int(min(max_points, max(8, np.ceil(cum[-1] / spacing))))
    s = np.arange(n) * (cum[-1] / n)
    return _pairs(np.interp(s, cum, closed[:, 0]), np.interp(s, cum, closed[:, 1]))


def chord_costs(q: np.ndarray, max_span: int) -> np.ndarray:
    """Fitting cost of every chord of a closed polyline.

    ``cost[i, l - 1]`` is the sum of squared distances from ``q[i+1 .. i+l-1]`` to the
    line through ``q[i]`` and ``q[i+l]`` (indices modulo ``len(q)``), for spans
    ``l = 1 .. max_span``. Prefix sums of x, y, x**2, y**2 and xy make each O(1).
    """
    n = len(q)
    qq = np.concatenate([q, q])
    x, y = qq[:, 0], qq[:, 1]

    def prefix(a):
        return np.concatenate([[0.0], np.cumsum(a)])

    sx, sy, sxx, syy, sxy = prefix(x), prefix(y), prefix(x * x), prefix(y * y), prefix(x * y)
    i = np.arange(n)[:, None]
    j = i + np.arange(1, max_span + 1)[None, :]
    lo, hi = i + 1, j  # interior points lo .. hi - 1
    cnt = (hi - lo).astype(np.float64)
    ax, ay = x[i], y[i]
    dx, dy = x[j] - ax, y[j] - ay
    c = ax * dy - ay * dx
    # sum over interior points of (px * dy - py * dx - c) ** 2, expanded
    num = (
        dy * dy * (sxx[hi] - sxx[lo]) + dx * dx * (syy[hi] - syy[lo]) + c * c * cnt
        - 2 * dx * dy * (sxy[hi] - sxy[lo])
        - 2 * c * dy * (sx[hi] - sx[lo]) + 2 * c * dx * (sy[hi] - sy[lo])
    )
    d2 = dx * dx + dy * dy
    return np.where(d2 > 1e-12, num / np.maximum(d2, 1e-12), np.inf)


def _cheapest_cycle(cost: np.ndarray, n_vertices: int, start: int) -> tuple[float, np.ndarray]:
    """Dynamic programme: the cheapest closed chain of ``n_vertices`` chords from
    ``start`` back to it, around a closed polyline of ``len(cost)`` points."""
    n, max_span = cost.shape
    pos = np.arange(n + 1)
    # Row j of the tables below is span max_span - j, so that a sliding window over the
    # best costs (padded with inf before position 0) lines up with the chord costs
    # without a gather per step, and the minimum runs over the first (contiguous) axis.
    spans = max_span - np.arange(max_span)
    prev = pos[None, :] - spans[:, None]
    chord = cost[(start + np.maximum(prev, 0)) % n, spans[:, None] - 1]
    arrive = np.where(prev >= 0, chord, np.inf)
    padded = np.full(n + 1 + max_span, np.inf)
    window = sliding_window_view(padded[: n + max_span], max_span).T  # a view: sees updates
    history = np.empty((n_vertices + 1, n + 1))
    history[0] = np.inf
    history[0, 0] = 0.0
    for k in range(n_vertices):
        padded[max_span:] = history[k]
        history[k + 1] = (window + arrive).min(axis=0)
    # Only the chosen chain's predecessors are needed, so they are found walking back
    # rather than stored for every position (an argmin per step costs four minima).
    # ``arrive`` is inf wherever ``prev`` is negative, so clipping it is harmless.
    source = np.maximum(prev, 0).T
    arrive_at = arrive.T
    verts = np.empty(n_vertices, dtype=np.int64)
    p = n
    for k in range(n_vertices, 0, -1):
        cand = history[k - 1][source[p]] + arrive_at[p]
        p = int(p - spans[int(cand.argmin())])
        verts[k - 1] = p
    return float(history[n_vertices, n]), (start + verts) % n


def fit_lines(q: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Vertices where the least-squares lines of consecutive stretches of ``q`` meet.

    ``q`` (n, 2) is an evenly resampled closed outline and ``idx`` (m,) sorted indices
    into it; stretch ``k`` runs from ``q[idx[k]]`` to ``q[idx[k + 1]]`` (cyclically).
    A chord between outline points lies inside every convex bulge of the outline; the
    line fitted through the whole stretch passes through its centroid instead, so it
    cuts off about as much as it takes in. Vertex ``k`` is where the lines of stretches
    ``k - 1`` and ``k`` cross, or, when they are nearly parallel or cross far away,
    ``q[idx[k]]`` moved onto both lines halfway.
    """
    n = len(q)
    qq = np.concatenate([q, q])
    x, y = qq[:, 0], qq[:, 1]
    sums = np.concatenate(
        [np.zeros((1, 5)), np.cumsum(np.stack([x, y, x * x, y * y, x * y], 1), axis=0)]
    )
    a = idx
    b = np.append(idx[1:], idx[0] + n)  # stretch k covers points a[k] .. b[k] inclusive
    s = sums[b + 1] - sums[a]
    cnt = (b - a + 1).astype(np.float64)
    mx, my = s[:, 0] / cnt, s[:, 1] / cnt
    cxx = s[:, 2] / cnt - mx * mx
    cyy = s[:, 3] / cnt - my * my
    cxy = s[:, 4] / cnt - mx * my
    theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    d = _pairs(np.cos(theta), np.sin(theta))
    mid = _pairs(mx, my)
    # Line k - 1 meets line k at vertex k.
    d0, m0 = _prev(d), _prev(mid)
    den = d0[:, 0] * d[:, 1] - d0[:, 1] * d[:, 0]
    diff = mid - m0
    safe = np.where(np.abs(den) > 1e-9, den, 1.0)
    u = (diff[:, 0] * d[:, 1] - diff[:, 1] * d[:, 0]) / safe
    cross = m0 + u[:, None] * d0
    corner = q[idx]
    # How far a vertex may move: a fraction of the shorter adjacent stretch.
    seg = np.hypot(*(_next(corner) - corner).T)
    reach = 0.25 * np.minimum(seg, _prev(seg))
    far = (np.abs(den) < 0.1) | (np.hypot(*(cross - corner).T) > reach)
    on0 = m0 + np.sum((corner - m0) * d0, 1)[:, None] * d0
    on1 = mid + np.sum((corner - mid) * d, 1)[:, None] * d
    return np.where(far[:, None], 0.5 * (on0 + on1), cross)


def optimal_vertices(poly: np.ndarray, n_vertices: int) -> np.ndarray:
    """``n_vertices`` points of a closed polyline whose polygon fits it best (least squares).

    The polyline is resampled evenly (at most ``_DP_POINTS`` points) so that the
    cost weighs the outline by length; chords may span at most three times the mean
    spacing of the result. The cyclic problem is solved from ``_DP_STARTS``
    starting points, each next one halfway between two vertices of the first
    solution.
    """
    q = resample_closed(poly, _DP_POINTS)
    n = len(q)
    if n <= n_vertices:
        return q
    max_span = int(min(n - 1, max(2, np.ceil(3 * n / n_vertices))))
    cost = chord_costs(q, max_span)
    best_cost, best = np.inf, None
    start = 0
    for _ in range(_DP_STARTS):
        total, verts = _cheapest_cycle(cost, n_vertices, start)
        if total < best_cost:
            best_cost, best = total, verts
        if not np.isfinite(total):
            break
        first = np.sort(verts)
        start = int((first[0] + first[1]) // 2)
    if best is None:
        return visvalingam(poly, n_vertices)
    return fit_lines(q, np.sort(best))


class _Target:
    """A ring's pixels in a window, for lookups and for exact error counts."""

    def __init__(self, poly: np.ndarray, shape: tuple[int, int]):
        h, w = shape
        x0 = max(0, int(np.floor(poly[:, 0].min())) - _MARGIN)
        y0 = max(0, int(np.floor(poly[:, 1].min())) - _MARGIN)
        x1 = min(w, int(np.ceil(poly[:, 0].max())) + _MARGIN)
        y1 = min(h, int(np.ceil(poly[:, 1].max())) + _MARGIN)
        self.x0, self.y0 = x0, y0
        self.shape = (y1 - y0, x1 - x0)
        self.pixels = self.rasterise(poly)
        self.area = int(np.count_nonzero(self.pixels))
        # Lookups outside the window (vertices may wander) read background.
        self.padded = np.zeros((self.shape[0] + 2, self.shape[1] + 2), dtype=bool)
        self.padded[1:-1, 1:-1] = self.pixels
        self.flat = self.padded.ravel()
        # before[r, c]: target pixels left of column c in row r, for error_change.
        self.before = np.zeros((self.shape[0], self.shape[1] + 1), dtype=np.int64)
        np.cumsum(self.pixels, axis=1, out=self.before[:, 1:])

    def rasterise(self, poly: np.ndarray) -> np.ndarray:
        local = poly - (self.x0, self.y0)
        edges = np.concatenate([local, _next(local)], axis=1)
        return fill([FlatShape(edges=edges, evenodd=True)], self.shape)

    def errors(self, poly: np.ndarray) -> int:
        return int(np.count_nonzero(self.rasterise(poly) ^ self.pixels))

    def _crossing_sums(self, poly: np.ndarray) -> int:
        """Sum over the crossings of ``poly``'s edges with pixel-centre rows of
        ``s * (2 * before[r, c] - c)``: ``s`` is +1 for an edge running down, ``r`` the
        row and ``c`` the first column whose centre lies right of the crossing, as in
        :func:`fill`, clipped to the window; crossings in rows outside it are left out,
        so that like :meth:`errors` only the window's pixels count."""
        a = poly - (self.x0, self.y0)
        b = _next(a)
        down = b[:, 1] > a[:, 1]
        ylo = np.minimum(a[:, 1], b[:, 1])
        yhi = np.maximum(a[:, 1], b[:, 1])
        rlo = np.ceil(ylo - 0.5).astype(np.int64)
        counts = np.ceil(yhi - 0.5).astype(np.int64) - rlo
        edge = np.repeat(np.arange(len(a)), counts)
        rows = rlo[edge] + np.arange(edge.size) - np.repeat(np.cumsum(counts) - counts, counts)
        slope = (b[edge, 0] - a[edge, 0]) / (b[edge, 1] - a[edge, 1])
        cols = np.floor(a[edge, 0] + (rows + 0.5 - a[edge, 1]) * slope + 0.5).astype(np.int64)
        h, w = self.shape
        ok = (rows >= 0) & (rows < h)
        rows, cols, edge = rows[ok], np.minimum(np.maximum(cols[ok], 0), w), edge[ok]
        sign = np.where(down[edge], 1, -1)
        return int(np.sum(sign * (2 * self.before[rows, cols] - cols)))

    def error_change(self, new: np.ndarray, old: np.ndarray) -> int:
        """``errors(new) - errors(old)`` for positively oriented simple polygons, from
        their edge crossings alone (no rasterisation).

        Where the polygons disagree on a pixel, the one that covers it is right if the
        target does. Per row, ``old``'s winding minus ``new``'s (each -1 inside, by the
        crossing signs) is +1 on pixels only ``new`` covers and -1 on those only ``old``
        covers, and each crossing adds its sign from its column on. Summing
        ``1 - 2 * target`` from every crossing to the window's right edge therefore
        gives the change; the terms that are the same for every crossing of a row cancel, since
        a closed ring's crossing signs sum to zero in each row, which leaves
        ``2 * before[r, c] - c`` per crossing.
        """
        return self._crossing_sums(old) - self._crossing_sums(new)

    def inside(self, xy: np.ndarray) -> np.ndarray:
        """Whether points (..., 2) fall on a target pixel (unit squares)."""
        h, w = self.padded.shape
        # Clipping lands points beyond the window on the background border. (Two
        # ufuncs: np.clip's Python wrapper costs more than the work on a few hundred.)
        c = np.minimum(np.maximum(xy[..., 0] - (self.x0 - 1), 0), w - 1).astype(np.int64)
        r = np.minimum(np.maximum(xy[..., 1] - (self.y0 - 1), 0), h - 1).astype(np.int64)
        return self.flat[r * w + c]


# The helpers below stand in for np.roll and np.stack, whose Python-level wrappers
# cost several microseconds a call: more than the arithmetic on a 32-vertex ring,
# and the polygon fit makes hundreds of such calls on every /predict.
def _next(a: np.ndarray) -> np.ndarray:
    return np.concatenate((a[1:], a[:1]))


def _prev(a: np.ndarray) -> np.ndarray:
    return np.concatenate((a[-1:], a[:-1]))


def _pairs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(n, 2)`` array of the points ``(x[i], y[i])``."""
    out = np.empty((len(x), 2))
    out[:, 0] = x
    out[:, 1] = y
    return out


def refine(poly: np.ndarray, target: _Target, iterations: int | None = None) -> np.ndarray:
    """Move the vertices of a positively oriented polygon to fit ``target``.

    Returns whichever of the start and the refined polygon has fewer wrong pixel
    centres, so refinement never makes the result worse.
    """
    iterations = _ITERATIONS if iterations is None else iterations
    v = poly.astype(np.float64).copy()
    n = len(v)
    for it in range(iterations):
        e = _next(v) - v  # edge i runs from v[i] to v[i+1]
        length = np.hypot(e[:, 0], e[:, 1])
        # Each edge gets samples about _SAMPLE_SPACING apart; the offset within the
        # spacing changes every iteration so that the pixel grid does not alias.
        k = np.minimum(np.maximum(np.ceil(length / _SAMPLE_SPACING), 2), _MAX_SAMPLES)
        k = k.astype(np.int64)
        edge = np.repeat(np.arange(n), k)
        first = np.cumsum(k) - k
        t = (np.arange(edge.size) - first[edge] + (0.5 + 0.618034 * it) % 1.0) / k[edge]
        pts = v[edge] + t[:, None] * e[edge]
        f = 1.0 - 2.0 * target.inside(pts)  # d(error)/d(outward area): +1 out, -1 in
        w_end = np.bincount(edge, f * t, n) / k  # how edge i's error pulls on v[i+1]
        w_start = np.bincount(edge, f, n) / k - w_end  # ... and on its start v[i]
        # Outward normal times length, for positive (shoelace) orientation.
        normal = _pairs(e[:, 1], -e[:, 0])
        grad = normal * w_start[:, None] + _prev(normal * w_end[:, None])
        # Divide by the length the vertex sweeps so that the step is in pixels.
        sweep = 0.5 * (length + _prev(length)) + 1e-9
        step = _STEP * (1 - it / iterations) + 0.05
        v = v - step * grad / sweep[:, None]
    if iterations == 0:
        return v
    # A tangled or turned-over polygon's winding is not a coverage; simplify_ring
    # rejects it anyway.
    if not _simple(v):
        return poly.astype(np.float64)
    return v if target.error_change(v, poly) <= 0 else poly.astype(np.float64)


def simplify_ring(poly: np.ndarray, max_vertices: int, shape: tuple[int, int]) -> np.ndarray:
    """Best-fitting polygon of at most ``max_vertices`` vertices for a dense ring.

    ``poly`` (k, 2) must be positively oriented (see :func:`signed_area`); ``shape``
    is the image's (H, W). The result has the same orientation. When the fit
    would tangle (a vertex pushed across an edge of a thin part), it falls back to
    the untangled starting polygon, then to plain Visvalingam-Whyatt elimination.
    """
    # Half the spacing the budget allows, on a small ring: there the vertices are the
    # ring's own corners, and fewer would no longer describe it.
    min_edge = min(_MIN_EDGE, 0.5 * float(np.hypot(*(_next(poly) - poly).T).sum()) / max_vertices)
    if len(poly) <= max_vertices:
        return _spread(poly, None, min_edge, shape)
    target = _Target(poly, shape)
    start = optimal_vertices(poly, max_vertices)
    best = refine(start, target)
    for candidate in (best, start):
        if _simple(candidate):
            return _spread(candidate, target, min_edge, shape)
    return _spread(visvalingam(poly, max_vertices), None, min_edge, shape)


def _without_short_edges(poly: np.ndarray, min_edge: float) -> np.ndarray:
    """``poly`` with vertices removed until no edge is shorter than ``min_edge`` (or three
    are left), except at the end of a thin part: of the two ends of the shortest edge,
    the one whose triangle with its neighbours is smaller goes, as Visvalingam-Whyatt
    would choose.

    An edge whose neighbours run back the way they came (turn by more than 90 degrees
    across it, :func:`_caps`) ends a part no wider than the edge: a 1-pixel strip, line
    or tail. Removing either end would turn that end into a point and lose a triangle
    as long as the part, which refining cannot win back, so both ends stay.
    """
    v = np.asarray(poly, dtype=np.float64)
    while len(v) > 3:
        e = _next(v) - v  # edge i runs from v[i] to v[i+1]
        length = np.hypot(e[:, 0], e[:, 1])
        short = np.flatnonzero((length < min_edge) & ~_caps(e))
        if short.size == 0:
            break
        i = int(short[np.argmin(length[short])])
        j = (i + 1) % len(v)
        a, c = v - _prev(v), _next(v) - _prev(v)
        twice_area = np.abs(a[:, 0] * c[:, 1] - a[:, 1] * c[:, 0])
        v = np.delete(v, i if twice_area[i] <= twice_area[j] else j, axis=0)
    return v


def _caps(e: np.ndarray) -> np.ndarray:
    """Which edges of a ring (its edge vectors ``e``, (k, 2)) end a thin part: the
    edges before and after them point more than 90 degrees apart."""
    before, after = _prev(e), _next(e)
    return before[:, 0] * after[:, 0] + before[:, 1] * after[:, 1] < 0


def _spread(poly: np.ndarray, target: _Target | None, min_edge: float,
            shape: tuple[int, int]) -> np.ndarray:
    """Step 5: ``poly`` with no edge under ``min_edge``, refined again against ``target``
    when vertices went, if the result is a valid polygon (else ``poly``).

    ``poly`` itself is kept where the result gets more than ``_MIN_EDGE_LOSS`` pixel
    centres and ``_MIN_EDGE_LOSS_FRACTION`` of the ring's pixels more wrong than it
    (``target``, or without one ``poly``'s own pixels, as on a ring already within
    its budget, which is then its traced outline): on a slanted 1-pixel line the
    vertices 2 px apart cut through its staircase and lost up to half of it."""
    spread = _without_short_edges(poly, min_edge)
    if len(spread) == len(poly):
        return poly
    if target is None:
        result = spread if _simple(spread) else poly
        target = _Target(poly, shape)
    else:
        refined = _without_short_edges(refine(spread, target), min_edge)
        result = refined if _simple(refined) else spread if _simple(spread) else poly
    if result is not poly and target.error_change(result, poly) > max(
            _MIN_EDGE_LOSS, _MIN_EDGE_LOSS_FRACTION * target.area):
        return poly
    return result


def _simple(poly: np.ndarray) -> bool:
    """Whether the ring ``poly`` (k, 2) is a valid polygon (shapely: simple, not
    touching itself) with positive orientation: a tiny ring fitted with a few vertices
    can turn over, outlining its region inside out."""
    return signed_area(poly) > 0 and bool(shapely.is_valid(shapely.Polygon(poly)))


def _fmt_ring(poly: np.ndarray) -> str:
    vals = np.round(poly, DECIMALS).tolist()
    parts = []
    for i, (x, y) in enumerate(vals):
        xs = f"{x:.{DECIMALS}f}".rstrip("0").rstrip(".")
        ys = f"{y:.{DECIMALS}f}".rstrip("0").rstrip(".")
        xs = "0" if xs == "-0" else xs
        ys = "0" if ys == "-0" else ys
        parts.append(f"{'M' if i == 0 else 'L'} {xs},{ys}")
    return " ".join(parts) + " Z"


def region_polygons(mask: np.ndarray, max_vertices: int, turdsize: int) -> list[list[np.ndarray]]:
    """Per region, the simplified rings (outer first, then holes) as (k, 2) arrays.

    Outer rings have positive shoelace area (clockwise on screen), holes negative,
    so even-odd and non-zero filling agree. Coordinates are ``(x, y)`` image pixels,
    already rounded to ``DECIMALS`` as :func:`mask_to_paths` writes them. Every
    region's rings form a valid polygon with holes (in shapely's sense: each ring
    simple, the holes inside the outer ring and crossing neither it nor each other),
    and no two regions intersect.

    Each ring is simplified on its own, so a simplified ring can touch or cross
    itself (where the mask pinches: two parts of an 8-connected region joined by a
    pixel corner, a hole meeting its outer ring or another hole at a corner; or
    under a small budget, at a thin part), a simplified hole can cross its outer
    ring or another hole, and one region can overlap another (two close regions, an
    island near the edge of the hole it lies in). A region whose simplified rings
    touch or cross only where its parts meet is joined there through a neck a tenth
    of a pixel wide (:func:`_pulled_apart`), if its rings stay within the budget; a
    region that still does not make a valid polygon with holes, or that intersects
    another region, is simplified again with twice the budget, until no region
    does, or the budget covers its traced rings, which it then is
    (:func:`_traced_rings`: joined in the same way where they touch, which changes
    no pixel), so this ends. ``max_vertices`` may therefore be exceeded, on the
    regions that could not be described within it; every region that fits keeps
    it. A pinched region stays one region, as ``measure_regions`` counts it.
    """
    return _outlined(mask, max_vertices, turdsize)[0]


def _outlined(mask: np.ndarray, max_vertices: int, turdsize: int,
              max_chars: int | None = None) -> tuple[list[list[np.ndarray]], list[str]]:
    """:func:`region_polygons`' rings, and the path :func:`mask_to_paths` writes for
    each region.

    With ``max_chars``, a ValueError is raised as soon as the paths reach more than
    that many characters, at the first pass or after any round of simplifying again.
    A round only gives a region a larger budget or its traced rings, which hold at
    least as many vertices, so the paths could not come back under it; on a noise mask
    (thousands of holes in one region) the rounds would cost tens of seconds and
    gigabytes before the paths were refused for their length.
    """
    dense = []
    for region in trace(mask, turdsize=turdsize, alphamax=0.0, opttolerance=0.2, scale=2):
        rings = [ring_polygon(ring) for ring in region.rings]
        dense.append([p if signed_area(p) > 0 else p[::-1] for p in rings])
    budgets = [max_vertices] * len(dense)
    out, written, total = [], [], 0
    for rings in dense:
        # Checked ring by ring: a noise mask's first pass alone (one region of
        # thousands of holes) took seconds of a server's worker before its paths were
        # refused for their length.
        limit = None if max_chars is None else (total, max_chars)
        out.append(_within_image(_simplify_region(rings, max_vertices, mask.shape, limit),
                                 mask.shape, max_vertices))
        written.append(_path_of(out[-1]))
        total += len(written[-1])
    _check_length(written, max_chars)
    traced: set[int] = set()  # regions that are their traced rings, which fit
    while misfits := _misfits(out) - traced:
        for i in misfits:
            if all(len(p) <= budgets[i] for p in dense[i]):
                out[i] = _within_image(_traced_rings(dense[i]), mask.shape, budgets[i])
                traced.add(i)
            else:
                budgets[i] *= 2
                out[i] = _within_image(_simplify_region(dense[i], budgets[i], mask.shape),
                                       mask.shape, budgets[i])
            written[i] = _path_of(out[i])
            _check_length(written, max_chars)
    return out, written


def _within_image(rings: list[np.ndarray], shape: tuple[int, int],
                  budget: int) -> list[np.ndarray]:
    """A region's rings (outer first, then holes; oriented as written) brought inside
    the image ``shape`` (H, W), the rectangle ``[0, W] x [0, H]``, where a vertex lies
    beyond it; no ring gets more than ``budget`` vertices, or than it had.

    The fit places a vertex where the lines fitted to two stretches of the outline
    cross, and the refinement moves vertices by the pixel centres they cover; at the
    image's edge neither holds a vertex inside (on random blobs touching the edge, 1
    vertex in 150 lay up to 20 px out at 8 vertices, 5 px at 64). The editor cannot
    reach such a vertex (its axes end at the image) and a DICOM SR would carry it as
    a negative coordinate (audit 801 F12).

    Every pixel centre lies inside the rectangle, so the region cut to it covers the
    same pixels; the excursion beyond the edge becomes a stretch along it, a vertex
    more. A ring the cut takes past its budget loses, one at a time, the vertex whose
    removal costs the fewest pixels, unless moving its vertices onto the edge instead
    (which turns the edges to them) costs fewer. Where the cut leaves no single valid
    polygon (a region invalid already, which is simplified again anyway, or one the
    cut parts in two), the vertices are moved onto the edge.
    """
    h, w = shape
    every = np.concatenate(rings)
    if every.min() >= 0 and every[:, 0].max() <= w and every[:, 1].max() <= h:
        return rings
    clamped = [np.column_stack((np.clip(p[:, 0], 0, w), np.clip(p[:, 1], 0, h)))
               for p in rings]
    try:
        polygon = shapely.Polygon(rings[0], rings[1:])
        if shapely.is_valid(polygon):
            cut = shapely.clip_by_rect(polygon, 0, 0, w, h)
            if isinstance(cut, shapely.Polygon) and not cut.is_empty \
                    and len(cut.interiors) == len(rings) - 1:
                out = _rounded_as_drawn(_rings_of(cut), rings, shape)
                out = [p[(p != _prev(p)).any(axis=1)] for p in out]
                out = [_within_budget(p, shape, max(budget, len(r)))
                       for p, r in zip(out, rings, strict=True)]
                if shapely.is_valid(shapely.Polygon(out[0], out[1:])):
                    return out
    except shapely.errors.GEOSException:
        pass
    return clamped


def _within_budget(ring: np.ndarray, shape: tuple[int, int], limit: int) -> np.ndarray:
    """``ring`` (cut to the image, rounded) less, while it has more than ``limit``
    vertices, the vertex whose removal changes no pixel it covers, as long as one
    does; the rest of the excess stays, each extra vertex on the image's edge."""
    if len(ring) <= limit:
        return ring
    # Pixels are counted on the positively oriented ring (a hole is written reversed).
    hole = signed_area(ring) < 0
    v = ring[::-1] if hole else ring
    target = _Target(v, shape)
    while len(v) > max(limit, 3):
        for i in range(len(v)):
            fewer = np.delete(v, i, axis=0)
            if _simple(fewer) and target.error_change(fewer, v) == 0 \
                    and target.errors(fewer) == target.errors(v):
                v = fewer
                break
        else:
            break
    return v[::-1] if hole else v


def _rounded_as_drawn(cut: list[np.ndarray], rings: list[np.ndarray],
                     shape: tuple[int, int]) -> list[np.ndarray]:
    """The rings ``cut`` (``rings`` cut to the image ``shape``) rounded to ``DECIMALS``,
    covering the pixels ``rings`` cover where rounding allows.

    The cut's new vertices lie on the image's edge wherever an edge of ``rings``
    crossed it; rounded to the nearest, one tilts that edge a little, which changed a
    pixel on one mask in fifteen (a long edge, a centre on or near it). Where the
    rounded rings fill otherwise than ``rings``, each such vertex is tried at the two
    grid points either side of it along the edge, and kept where fewer pixels then
    differ: on random blobs touching the edge, one mask in 600 is left a pixel off.
    """
    h, w = shape
    every = np.concatenate(rings)
    # From the image's corner, not the rings' box: shifted, an edge through a pixel
    # centre could round to the other side of it, unlike in svg_to_mask.
    corner = min(w, int(np.ceil(every[:, 0].max()))), min(h, int(np.ceil(every[:, 1].max())))

    def pixels(rs: list[np.ndarray]) -> np.ndarray:
        edges = np.concatenate([np.concatenate([p, _next(p)], axis=1) for p in rs])
        return fill([FlatShape(edges=edges, evenodd=True)], corner[::-1])

    want = pixels(rings)
    out = [np.round(p, DECIMALS) for p in cut]
    wrong = int(np.count_nonzero(pixels(out) ^ want))
    scale = 10.0**DECIMALS
    for k, ring in enumerate(cut):
        for i, along in np.argwhere(ring != out[k]):
            if wrong == 0:
                return out
            value = np.floor(ring[i, along] * scale)
            for other in (value, value + 1, value - 1, value + 2):
                trial = out[k].copy()
                trial[i, along] = other / scale
                if trial[i, along] == out[k][i, along]:
                    continue
                tried = [*out[:k], trial, *out[k + 1:]]
                differing = int(np.count_nonzero(pixels(tried) ^ want))
                if differing < wrong:
                    out, wrong = tried, differing
    return out


def _rings_of(polygon: shapely.Polygon) -> list[np.ndarray]:
    """A valid polygon's rings as written: the outer one positively oriented, the holes
    negatively, without a point repeated."""
    # Shapely's counter-clockwise is (x, y) with y up: positive shoelace area here.
    polygon = shapely.orient_polygons(polygon, exterior_cw=False)
    out = []
    for ring in (polygon.exterior, *polygon.interiors):
        xy = shapely.get_coordinates(ring)[:-1]
        out.append(xy[(xy != _prev(xy)).any(axis=1)])
    return out


def _path_of(rings: list[np.ndarray]) -> str:
    """The path of one region's rings (outer first, then holes), as written."""
    return " ".join(_fmt_ring(p) for p in rings)


def _check_length(paths: list[str], max_chars: int | None) -> None:
    if max_chars is not None and (total := sum(map(len, paths))) > max_chars:
        _refuse_length(total, max_chars)


def _refuse_length(total: int, max_chars: int) -> None:
    raise ValueError(f"svg_or_paths has at least {total} characters of path data; at "
                     f"most {max_chars} can be rasterised")


def _traced_rings(rings: list[np.ndarray]) -> list[np.ndarray]:
    """A region's positively oriented traced rings (outer first, then holes; (k, 2)
    arrays) rounded to ``DECIMALS``, the holes turned to negative orientation, and
    pulled apart where they touch or cross.

    The traced outline of a pinch (two parts of a region joined only by a pixel
    corner, or a hole meeting its outer ring or another hole at one) passes through
    the same point twice, or, since potrace moves its vertices up to a quarter pixel,
    crosses itself there. Its area is taken apart into valid pieces there, which are
    then joined through a neck reaching ``_PINCH_GAP`` from the point where they meet
    (:func:`_pulled_apart`). That point lies on the traced outline, within a quarter
    pixel of the pixel boundary, so at least a quarter pixel from every pixel centre:
    this changes no pixel. Rings that cannot be joined into one polygon are returned
    as they are (never seen: a region is 8-connected).
    """
    out = [np.round(p if i == 0 else p[::-1], DECIMALS) for i, p in enumerate(rings)]
    if shapely.is_valid(shapely.Polygon(out[0], out[1:])):
        return out
    return _pulled_apart(out) or out


_PINCH_GAP = 0.05  # pixels: the half-width of the neck that joins two parts at a pinch


def _pulled_apart(rings: list[np.ndarray]) -> list[np.ndarray] | None:
    """The area of ``rings`` (a region's outer ring first, then holes) as one valid
    polygon with holes, its parts joined where they meet; None if they do not meet.

    ``shapely.make_valid`` with its ``structure`` method takes the area apart into
    valid pieces at every point where the rings touch or cross: what the outer ring
    encloses, once or more often (where a simplified ring folds over itself, the
    even-odd fill would leave out what both folds cover), less what the holes
    enclose. Where two pieces meet, a small square standing on a corner, its corners
    ``_PINCH_GAP`` from the meeting point, joins them through a neck, which also
    parts a hole from the outer ring or another hole there; elsewhere the outline
    does not move. Coordinates are then rounded to ``DECIMALS``, or where that alone
    would break the polygon snapped to that grid by ``shapely.set_precision``, which
    keeps it valid. Returns the rings with the outer one positively oriented and the
    holes negatively.
    """
    try:
        pieces = shapely.get_parts(shapely.make_valid(
            shapely.Polygon(rings[0], rings[1:]), method="structure", keep_collapsed=False))
        if len(pieces) > 1:
            first, second = shapely.STRtree(pieces).query(pieces, predicate="intersects")
            pairs = first < second
            meets = shapely.intersection(shapely.boundary(pieces[first[pairs]]),
                                         shapely.boundary(pieces[second[pairs]]))
            # quad_segs=1: a point grows into a square standing on a corner (a line,
            # where pieces share an edge, into a strip).
            necks = shapely.buffer(meets, _PINCH_GAP, quad_segs=1)
            pieces = np.concatenate([pieces, necks])
        joined = shapely.union_all(pieces)
        # Rounded as written; set_precision (about as slow as the rest) only where
        # rounding alone breaks the polygon.
        polygon = shapely.transform(joined, lambda xy: np.round(xy, DECIMALS))
        if not shapely.is_valid(polygon):
            polygon = shapely.set_precision(joined, 10.0**-DECIMALS)
    except shapely.errors.GEOSException:  # GEOS's overlay can fail on slivers
        return None
    if not isinstance(polygon, shapely.Polygon) or polygon.is_empty \
            or not shapely.is_valid(polygon):
        return None
    # Shapely's counter-clockwise is (x, y) with y up: positive shoelace area here.
    polygon = shapely.orient_polygons(polygon, exterior_cw=False)
    out = []
    for ring in (polygon.exterior, *polygon.interiors):
        xy = np.round(shapely.get_coordinates(ring)[:-1], DECIMALS)
        # Rounding can make neighbours one point: the path would repeat it.
        out.append(xy[(xy != _prev(xy)).any(axis=1)])
    return out


def _simplify_region(rings: list[np.ndarray], max_vertices: int,
                     shape: tuple[int, int],
                     limit: tuple[int, int] | None = None) -> list[np.ndarray]:
    """A region's positively oriented dense rings simplified, rounded to ``DECIMALS``,
    and the holes turned to negative orientation; where they touch or cross, pulled
    apart as :func:`_pulled_apart` does, if that keeps every hole (a hole crossing
    the outer ring would become a notch in it) and every ring then keeps
    ``max_vertices``.

    With ``limit`` ``(spent, max_chars)``, a ValueError (:func:`_check_length`'s) is
    raised as soon as the rings written so far, after ``spent`` characters of other
    regions' paths, pass ``max_chars``."""
    out = []
    spent = None if limit is None else limit[0]
    for i, poly in enumerate(rings):
        poly = np.round(simplify_ring(poly, max_vertices, shape), DECIMALS)
        out.append(poly[::-1] if i > 0 else poly)
        if limit is not None:
            spent += len(_fmt_ring(poly)) + (i > 0)  # the rings joined by a blank
            if spent > limit[1]:
                _refuse_length(spent, limit[1])
    if shapely.is_valid(shapely.Polygon(out[0], out[1:])) or _hole_astray(out):
        return out
    fixed = _pulled_apart(out)
    if fixed is not None and len(fixed) == len(out) \
            and all(len(p) <= max_vertices for p in fixed):
        return fixed
    return out


def _hole_astray(rings: list[np.ndarray]) -> bool:
    """Whether a hole of ``rings`` (outer first) reaches outside the outer ring: then
    :func:`_pulled_apart` would make it a notch, and is not tried (on noisy masks with
    dozens of holes a region, that cost about a millisecond each time)."""
    if len(rings) == 1:
        return False
    try:
        outer = shapely.Polygon(rings[0])
        if not shapely.is_valid(outer):
            outer = shapely.make_valid(outer, method="structure", keep_collapsed=False)
        holes = shapely.polygons(shapely.linearrings(
            np.concatenate(rings[1:]), indices=np.repeat(np.arange(len(rings) - 1),
                                                          [len(hole) for hole in rings[1:]])))
        return not shapely.covered_by(holes, outer).all()
    except shapely.errors.GEOSException:  # a hole crossing itself
        return False


def _misfits(regions: list[list[np.ndarray]]) -> set[int]:
    """Indices of the regions whose rings are not a valid polygon with holes (a ring
    touching or crossing itself, a hole crossing the outer ring, lying outside it or
    crossing another hole), are not oriented as written (the outer ring positive, the
    holes negative), or that intersect another region (shapely)."""
    if not regions:
        return set()
    polygons = np.array([shapely.Polygon(rings[0], rings[1:]) for rings in regions])
    oriented = [signed_area(rings[0]) > 0 and all(signed_area(p) < 0 for p in rings[1:])
                for rings in regions]
    valid = shapely.is_valid(polygons) & np.array(oriented, dtype=bool)
    bad = set(np.flatnonzero(~valid).tolist())
    # Only valid polygons are compared: GEOS predicates on invalid ones are unreliable,
    # and those regions are simplified again anyway.
    index = np.flatnonzero(valid)
    if len(index) < 2:
        return bad
    pairs = shapely.STRtree(polygons[index]).query(polygons[index], predicate="intersects")
    apart = pairs[0] != pairs[1]
    bad.update(index[pairs[0][apart]].tolist())
    return bad


def mask_to_paths(mask, max_vertices=32, *, turdsize=2) -> list[str]:
    """Outline each region of a mask as a polygon path with few, well-placed vertices.

    For editing in the browser: plotly can drag polygon vertices but not Bezier
    control points. Each ring gets at most ``max_vertices`` vertices, placed to keep
    as many pixels right as possible (see the module notes), unless that budget
    cannot describe its region: rings are simplified one by one, and where a
    simplified hole would cross or leave its outer ring or another hole, or a region
    would intersect another, that region's rings are simplified again with twice the
    budget, until the paths are valid polygons with holes (in shapely's sense) and no
    two regions intersect. This happens mostly below 8 vertices (on BUSI lesion
    masks, 2 of 636 at 4 vertices and 1 at 32: a three-pixel pinhole one pixel
    inside the lesion's edge). Where the mask pinches (two parts of a region meeting
    only at a pixel corner, a hole meeting its outer ring at corners), the outline
    is joined through a neck a tenth of a pixel wide, which changes no pixel: the
    region stays one path, valid too. Every vertex lies on the image, in
    ``[0, W] x [0, H]``: a region the fit carried beyond the image's edge is cut to
    it, which changes no pixel, and a ring may then keep a vertex or two more than
    ``max_vertices``, on the image's edge, where no other vertex can go without
    changing a pixel.

    Parameters
    ----------
    mask : array_like, shape (H, W)
        bool, or numbers that are all 0/1 or all 0/255. Pixel ``(r, c)`` covers
        ``x in [c, c+1]``, ``y in [r, r+1]``.
    max_vertices : int >= 3, default 32
        Vertex budget per ring (outer boundary or hole); exceeded, by doubling, only
        on a region whose rings would otherwise cross, and by vertices on the image's
        edge where a ring is cut to the image (see above).
    turdsize : int, default 2
        Regions and holes of at most this many pixels are dropped, as in
        :func:`mask_to_svg`.

    Raises
    ------
    ValueError
        If the mask has more than ``MAX_OUTLINES`` (10000) outlines, counting regions
        and holes of more than ``turdsize`` pixels. And if ``svg_to_mask`` would
        refuse the paths for one of its limits, with its reason: more than
        ``MAX_PARSED_BYTES`` (300,000) characters of path data in all (thousands of
        small regions), or a fill over its budget (bounding boxes of the regions over
        100 megapixels in total, more than 20 million crossings of edges with pixel
        rows), or coordinates beyond ``MAX_COORDINATE``. Paths this function returns
        always rasterise back.

    Returns
    -------
    list of str
        One path per region, ordered top to bottom then left to right, in absolute
        coordinates ``'M x,y L x,y ... Z'``; holes follow as extra ``M ... Z``
        subpaths. Outer rings run clockwise on screen and holes counter-clockwise,
        so even-odd and non-zero fills agree. ``svg_to_mask(paths, shape=(H, W))``
        rasterises them back.

    Examples
    --------
    >>> import numpy as np
    >>> from vectorizer import mask_to_paths
    >>> m = np.zeros((4, 6), bool)
    >>> m[1:3, 2:5] = True
    >>> mask_to_paths(m)
    ['M 2,1 L 5,1 L 5,3 L 2,3 Z']
    """
    m = as_mask(mask)
    max_vertices = check_int(max_vertices, "max_vertices", 3, 1_000_000)
    turdsize = check_int(turdsize, "turdsize", 0, 1_000_000_000)
    check_outlines(m, turdsize, "traced")
    return checked_mask_to_paths(m, max_vertices, turdsize)


def checked_mask_to_paths(m: np.ndarray, max_vertices: int, turdsize: int) -> list[str]:
    """:func:`mask_to_paths` of a bool ``(H, W)`` mask and parameters already checked,
    its outlines too (:func:`~vectorizer._trace.check_outlines`)."""
    try:
        # The length is checked as the paths are made, and not only at the end: see
        # _outlined.
        regions, paths = _outlined(m, max_vertices, turdsize,
                                   max_chars=_rasterize.MAX_PARSED_BYTES)
        _check_rasterisable(paths, regions, m.shape)
    except ValueError as exc:
        raise ValueError(f"mask outlines to paths that svg_to_mask cannot rasterise back: "
                         f"{exc}") from None
    return paths


def _check_rasterisable(paths: list[str], regions: list[list[np.ndarray]],
                        shape: tuple[int, int]) -> None:
    """Raise the ValueError ``svg_to_mask(paths, shape)`` would raise, without parsing.

    ``regions`` are the rings ``paths`` write, already rounded as written, so their
    numbers are those svg_to_mask reads and their edges those it fills. Its checks,
    in its order: the number of paths, their total length, the coordinates, the
    fill's work. (Its limit of 2**21 points a path needs more than 10 MB of path
    data, past the limit on their length.)
    """
    limits = _rasterize  # read at every call, so that the limits stay one set of numbers
    if len(paths) > limits.MAX_SHAPES:
        raise ValueError(f"svg_or_paths has {len(paths)} paths; at most {limits.MAX_SHAPES} "
                         "can be rasterised")
    total = sum(len(d) for d in paths)
    if total > limits.MAX_PARSED_BYTES:
        raise ValueError(f"svg_or_paths has {total} characters of path data; at most "
                         f"{limits.MAX_PARSED_BYTES} can be rasterised")
    shapes = []
    for rings in regions:
        edges = np.concatenate([np.concatenate([p, _next(p)], axis=1) for p in rings])
        if np.abs(edges).max() > limits.MAX_COORDINATE:
            raise ValueError(f"svg_or_paths: path coordinates beyond "
                             f"+/-{limits.MAX_COORDINATE:g} pixels are not supported")
        shapes.append(FlatShape(edges=edges, evenodd=True))
    limits._check_fill_work(shapes, *shape)
