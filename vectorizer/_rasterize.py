"""SVG path geometry to a boolean mask, by exact scanline filling at pixel centres.

Pixel ``(r, c)`` covers ``x in [c, c+1]``, ``y in [r, r+1]``; it is inside a shape when
its centre ``(c + 0.5, r + 0.5)`` is, under the shape's fill rule. Curves are
flattened to polylines whose distance from the true curve is below ``FLATNESS`` pixels,
so a pixel comes out differently from an exact renderer only when the curve passes
within that distance of its centre.

The fill is vectorised: every polygon edge is intersected with every pixel-centre row
it spans, each crossing adds its winding (+1 downwards, -1 upwards) to the first
pixel whose centre lies right of it, and a cumulative sum along each row then gives
the winding number of every pixel centre. Ties follow half-open rules: a centre
exactly on an edge counts as left of it, and an edge covers the centre rows from its
upper end (included) to its lower end (excluded), so two shapes sharing an edge never
both claim a pixel. A large shape's rows are summed a band at a time, and its crossings
computed a chunk of edges at a time, so the scratch memory stays bounded whatever the
canvas and the edges.
"""

from __future__ import annotations

import io
import logging
import math
import re
from dataclasses import dataclass
from xml.etree import ElementTree

import numpy as np
from svgelements import (
    SVG,
    Arc,
    Circle,
    Close,
    CubicBezier,
    Ellipse,
    Length,
    Line,
    Move,
    Path,
    QuadraticBezier,
    Rect,
    Shape,
    SVGLexicalParser,
)

from ._svgcheck import (
    MAX_PARSED_BYTES,
    MAX_SHAPES,
    NOT_FINITE,
    PATH_CHARS,
    TRAILING_DOT,
    check_document,
    hide_undrawn,
    path_grammar_error,
    root_attributes,
    unplace_root,
)
from ._symbols import VIEWPORT, place_symbols
from ._validate import MAX_PIXELS, as_shape

log = logging.getLogger(__name__)

FLATNESS = 0.002
"""Largest allowed distance, in pixels, between a curve and its flattened polyline."""

# Caps the points one curve segment may expand to, so that absurd coordinates cannot
# exhaust memory; at this many points the flattening is still far below a pixel for
# any curve that fits in an image of MAX_PIXELS.
_MAX_SEGMENT_POINTS = 1 << 14
_MAX_TOTAL_POINTS = 1 << 21
# Filling costs time in proportion to the crossings of edges with pixel rows and to
# the bounding box of every shape (about 15 ns a pixel); both are summed over all
# shapes and bounded so that any accepted input fills in about two seconds.
_MAX_CROSSINGS = 20_000_000
_MAX_FILL_PIXELS = MAX_PIXELS

#: Cells filled at once by one shape (a band of whole rows of its bounding box), and
#: crossings of edges with rows computed at once: together they bound the fill's
#: scratch memory whatever the canvas and the edges.
_BAND_CELLS = 1 << 22
_CHUNK_CROSSINGS = 1 << 18

MAX_SVG_BYTES = 4_000_000
"""Largest SVG document accepted, in bytes (read at about 0.3 s per MB)."""

# Coordinates beyond this many pixels are refused: no mask is that large, and the
# crossing arithmetic stays exact far below it.
MAX_COORDINATE = 1e7


@dataclass(frozen=True, slots=True)
class FlatShape:
    """A shape flattened to the straight edges of closed polylines.

    Attributes
    ----------
    edges : ndarray of float64, shape (m, 4)
        ``(x0, y0, x1, y1)`` per edge, in pixels (x right, y down). Their order does
        not matter for filling.
    evenodd : bool
        True for ``fill-rule="evenodd"``, False for ``nonzero``.
    clips : tuple of ndarray of float64, each of shape (k, 4)
        Closed polylines, as ``edges``, that the shape is clipped to (filled nonzero):
        a pixel is inside only if it is inside each. Empty for no clip.
    """

    edges: np.ndarray
    evenodd: bool
    clips: tuple[np.ndarray, ...] = ()


_NO_EDGES = np.zeros((0, 4))


def _arc_points(arc: Arc) -> np.ndarray:
    """Points ``(n, 2)`` along a transformed svgelements ``Arc``, after its start, up to
    and including its end, within ``FLATNESS`` of the arc.

    The arc is ``centre + cos(t) * u + sin(t) * v``, with ``u`` and ``v`` its points
    at t = 0 and a quarter turn (``prx``, ``pry``) less its centre: an affine
    transform maps them and leaves ``t`` as it was. svgelements' own points take
    ``u`` and ``v`` to be perpendicular, which a skew, or a non-uniform scale of a
    rotated ellipse, makes them no longer: it drew a skewed circle skewed the other
    way, rows off where a renderer puts it.
    """
    c, p, q = (np.array([pt.x, pt.y], dtype=np.float64)
               for pt in (arc.center, arc.prx, arc.pry))
    basis = np.stack([p - c, q - c], axis=1)  # columns u, v
    if not (np.isfinite(basis).all() and math.isfinite(arc.sweep)):
        raise ValueError("svg_or_paths: path data contains non-finite arc parameters")
    # The largest semi-axis of the ellipse: the basis's largest singular value.
    r = float(np.linalg.norm(basis, 2))
    if r <= FLATNESS:
        n = 1
    else:
        # Chord sagitta r * (1 - cos(dtheta / 2)) <= FLATNESS fixes the angular step
        # (on the circle the ellipse is the affine image of, whose distances the map
        # stretches by at most r).
        step = 2.0 * math.acos(max(-1.0, 1.0 - FLATNESS / r))
        n = max(1, min(_MAX_SEGMENT_POINTS, math.ceil(abs(arc.sweep) / step)))
    end = np.array([[arc.end.x, arc.end.y]], dtype=np.float64)
    det = basis[0, 0] * basis[1, 1] - basis[0, 1] * basis[1, 0]
    if n == 1 or not abs(det) > 1e-12 * r * r:
        return end  # a tiny arc, or one flattened onto a line: a chord covers it
    start = np.array([arc.start.x, arc.start.y], dtype=np.float64)
    cos0, sin0 = np.linalg.solve(basis, start - c)
    # svgelements turns the sweep over with every mirroring transform, as its
    # perpendicular frame turns over; in the transformed u, v it keeps its sign.
    sweep = arc.sweep if det > 0 else -arc.sweep
    t = math.atan2(sin0, cos0) + sweep * np.arange(1, n)[:, None] / n
    points = c + np.cos(t) * basis[:, 0] + np.sin(t) * basis[:, 1]
    return np.concatenate([points, end])


def flatten_path(path: Path) -> np.ndarray:
    """Flatten an svgelements ``Path`` (its transform applied) into polygon edges.

    Every segment becomes a row of a cubic Bezier table (lines and arcs as
    degenerate one-step rows, quadratics degree-elevated, which is exact), then all
    cubics are sampled at once. Open subpaths are closed, as SVG does for filling.

    Returns
    -------
    ndarray of float64, shape (m, 4)
        Edges ``(x0, y0, x1, y1)``.
    """
    rows = _PathRows()
    previous = None
    for seg in path.segments(transformed=True):
        previous, seg = seg, _unreflected(seg, previous)
        if isinstance(seg, Move):
            rows.move((seg.end.x, seg.end.y))
            continue
        if rows.start is None or seg.start is None:
            raise ValueError("svg_or_paths: path data must start with a moveto (M or m)")
        if isinstance(seg, Close):
            rows.close()
            continue
        end = (seg.end.x, seg.end.y)
        if isinstance(seg, Line):
            rows.line(end)
        elif isinstance(seg, CubicBezier):
            c1, c2 = seg.control1, seg.control2
            rows.cubic((c1.x, c1.y), (c2.x, c2.y), end)
        elif isinstance(seg, QuadraticBezier):
            q, here = seg.control, rows.here
            # Degree elevation: this cubic is exactly the quadratic.
            c1 = (here[0] + 2 / 3 * (q.x - here[0]), here[1] + 2 / 3 * (q.y - here[1]))
            c2 = (end[0] + 2 / 3 * (q.x - end[0]), end[1] + 2 / 3 * (q.y - end[1]))
            rows.cubic(c1, c2, end)
        elif isinstance(seg, Arc):
            rows.polyline(_arc_points(seg))
        else:  # pragma: no cover - svgelements has no other segment types
            raise ValueError(f"svg_or_paths: unsupported path segment {type(seg).__name__}")
        if rows.too_long():
            raise ValueError("svg_or_paths: path data is too complex to rasterise")
    return rows.edges()


def _unreflected(seg, previous):
    """``seg`` with the control point a smooth curve (``S``, ``T``) takes when the
    segment before it, ``previous``, is a curve of the other degree: its start point.

    SVG reflects the previous control point only after a curve of the same kind
    (``S`` after ``C`` or ``S``, ``T`` after ``Q`` or ``T``). svgelements reflected
    a quadratic's control point for an ``S`` and a cubic's for a ``T``: ``Q ... S``
    filled 142 pixels of 674 that Chromium left empty.
    """
    if not getattr(seg, "smooth", False):
        return seg
    if isinstance(seg, CubicBezier) and isinstance(previous, QuadraticBezier):
        return CubicBezier(seg.start, seg.start, seg.control2, seg.end, smooth=False)
    if isinstance(seg, QuadraticBezier) and isinstance(previous, CubicBezier):
        return QuadraticBezier(seg.start, seg.start, seg.end, smooth=False)
    return seg


class _PathRows:
    """A path's table of cubic Bezier rows ``(x0, y0, x1, y1, x2, y2, x3, y3,
    is_curve)`` (lines as degenerate rows), built segment by segment, plus the edge
    that closes every subpath and the edges of flattened arcs. Points are ``(x, y)``
    tuples."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.closers: list[tuple] = []
        # Arcs come flattened: their edges, (k, 4) arrays, kept whole. As a row a
        # point, 3000 arcs of a 1000-pixel image (170 KB) took 8 s to fill.
        self.polylines: list[np.ndarray] = []
        self.polyline_edges = 0
        self.start: tuple | None = None
        self.here: tuple | None = None

    def _close_edge(self) -> None:
        if self.start is not None and self.here is not None and self.here != self.start:
            self.closers.append((*self.here, *self.start))

    def move(self, point: tuple) -> None:
        self._close_edge()
        self.start = self.here = point

    def close(self) -> None:
        self._close_edge()
        self.here = self.start  # drawing continues from the subpath's start point

    def line(self, point: tuple) -> None:
        self.rows.append((*self.here, *self.here, *point, *point, False))
        self.here = point

    def cubic(self, c1: tuple, c2: tuple, point: tuple) -> None:
        self.rows.append((*self.here, *c1, *c2, *point, True))
        self.here = point

    def polyline(self, points: np.ndarray) -> None:
        """Straight edges from the current point through ``points`` (k, 2)."""
        ends = np.concatenate([np.array([self.here], dtype=np.float64), points])
        self.polylines.append(np.concatenate([ends[:-1], ends[1:]], axis=1))
        self.polyline_edges += len(points)
        self.here = (float(points[-1, 0]), float(points[-1, 1]))

    def too_long(self) -> bool:
        return len(self.rows) + self.polyline_edges > _MAX_TOTAL_POINTS

    def edges(self) -> np.ndarray:
        """Polygon edges (m, 4) ``(x0, y0, x1, y1)``, open subpaths closed."""
        self._close_edge()
        edges = _edges_from_rows(self.rows, self.closers)
        if not self.polylines:
            return edges
        arcs = np.concatenate(self.polylines)
        _check_coordinates(arcs)
        return np.concatenate([edges, arcs])


def curve_chords(ctrl: np.ndarray) -> np.ndarray:
    """How many chords each cubic Bezier is flattened into.

    Parameters
    ----------
    ctrl : ndarray of float64, shape (m, 4, 2)
        Start, two controls and end of each cubic, as ``(x, y)``.

    Returns
    -------
    ndarray of int64, shape (m,)
        The fewest uniform-parameter chords within ``FLATNESS`` of the curve, at least
        1 and at most ``_MAX_SEGMENT_POINTS``.
    """
    # A cubic lies within (3/4) max|second difference| / n**2 of its n uniform-parameter
    # chords; that fixes n for the flatness bound.
    d1 = np.hypot(*(ctrl[:, 0] - 2 * ctrl[:, 1] + ctrl[:, 2]).T)
    d2 = np.hypot(*(ctrl[:, 1] - 2 * ctrl[:, 2] + ctrl[:, 3]).T)
    n = np.ceil(np.sqrt(0.75 * np.maximum(d1, d2) / FLATNESS))
    return np.clip(n, 1, _MAX_SEGMENT_POINTS).astype(np.int64)


def _check_coordinates(table: np.ndarray) -> None:
    """Refuse coordinates (an array of them) that are not finite or beyond
    ``MAX_COORDINATE``."""
    if not np.isfinite(table).all():
        raise ValueError("svg_or_paths: path data contains non-finite coordinates")
    if np.abs(table).max() > MAX_COORDINATE:
        raise ValueError(
            f"svg_or_paths: path coordinates beyond +/-{MAX_COORDINATE:g} pixels are not supported"
        )


def _edges_from_rows(rows: list[tuple], closers: list[tuple]) -> np.ndarray:
    """Sample a table of cubic Bezier rows ``(x0, y0, x1, y1, x2, y2, x3, y3, is_curve)``
    (lines as degenerate rows) into polygon edges (m, 4), plus the ``closers`` edges."""
    if not rows:
        return np.array(closers, dtype=np.float64) if closers else _NO_EDGES
    table = np.array(rows, dtype=np.float64)
    _check_coordinates(table[:, :8])
    ctrl = table[:, :8].reshape(-1, 4, 2)
    is_curve = table[:, 8].astype(bool)
    n = np.where(is_curve, curve_chords(ctrl), 1)
    total = int(n.sum())
    if total > _MAX_TOTAL_POINTS:
        raise ValueError("svg_or_paths: path data is too complex to rasterise")
    row = np.repeat(np.arange(len(n)), n)
    first = np.cumsum(n) - n
    t = ((np.arange(total) - first[row] + 1) / n[row])[:, None]
    s = 1.0 - t
    c = ctrl[row]
    pts = (s * s * s) * c[:, 0] + (3 * s * s * t) * c[:, 1] + (3 * s * t * t) * c[:, 2] \
        + (t * t * t) * c[:, 3]
    prev = np.empty_like(pts)
    prev[1:] = pts[:-1]
    prev[first] = ctrl[:, 0]
    edges = np.concatenate([prev, pts], axis=1)
    if closers:
        edges = np.concatenate([edges, np.array(closers, dtype=np.float64)])
    return edges


def fill(shapes: list[FlatShape], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise flattened shapes into a bool mask of ``shape`` (H, W).

    Each shape is filled under its own fill rule; the result is their union.
    """
    h, w = shape
    _check_fill_work(shapes, h, w)
    out = np.zeros((h, w), dtype=bool)
    for s in shapes:
        if not len(s.edges):
            continue
        if s.clips:
            _fill_clipped(s, out)
        else:
            _fill_one(s, out)
    return out


def _window(edges: np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
    """Rows ``top:bottom`` and columns ``left:right`` of an ``h x w`` canvas holding
    every pixel whose centre may lie inside the closed polylines ``edges`` (m, 4)."""
    x, y = edges[:, 0::2], edges[:, 1::2]
    top, bottom = np.clip(np.ceil([y.min() - 0.5, y.max() - 0.5]), 0, h).astype(int)
    left, right = np.clip([np.floor(x.min()), np.ceil(x.max())], 0, w).astype(int)
    return int(top), int(bottom), int(left), int(right)


def _fill_clipped(s: FlatShape, out: np.ndarray) -> None:
    """Fill ``s`` into ``out`` where it is inside each of its clips too, within the
    shape's own bounding box (so that it costs that box once per polyline, as
    :func:`_check_fill_work` counts it, not the whole canvas).

    The box is cut out by moving the edges by whole pixels, which leaves every
    difference of coordinates the fill computes as it was: a crossing lands in
    another column only if it lies within a rounding error (1e-12 pixel) of a pixel
    centre's column."""
    top, bottom, left, right = _window(s.edges, *out.shape)
    if bottom <= top or right <= left:
        return
    shift = np.array([left, top, left, top], dtype=np.float64)
    inside = np.zeros((bottom - top, right - left), dtype=bool)
    _fill_one(FlatShape(edges=s.edges - shift, evenodd=s.evenodd), inside)
    for clip in s.clips:
        within = np.zeros_like(inside)
        if len(clip):
            _fill_one(FlatShape(edges=clip - shift, evenodd=False), within)
        inside &= within
    out[top:bottom, left:right] |= inside


def _check_fill_work(shapes: list[FlatShape], h: int, w: int) -> None:
    """Refuse, before any filling, shapes whose crossings or bounding boxes (clipped
    to the ``h x w`` image) add up to more than the fill's time budget."""
    if len(shapes) > MAX_SHAPES:
        raise ValueError(f"svg_or_paths has {len(shapes)} shapes; at most {MAX_SHAPES} "
                         "can be rasterised")
    crossings = pixels = 0
    for s in shapes:
        if not len(s.edges):
            continue
        x = np.clip(s.edges[:, 0::2], 0, w)
        y = np.clip(np.ceil(s.edges[:, 1::2] - 0.5), 0, h)
        crossings += int(np.abs(y[:, 1] - y[:, 0]).sum())
        # Columns whose centres x = c + 0.5 can lie between the extreme x: from
        # floor(min) to ceil(max) - 1, so a shape over the whole canvas counts w.
        # A clipped shape's box is filled again for each clip, whose edges cross
        # at most its rows each.
        rows = y.max() - y.min()
        pixels += int(rows * (np.ceil(x.max()) - np.floor(x.min()))) * (1 + len(s.clips))
        crossings += int(rows) * sum(len(clip) for clip in s.clips)
    if crossings > _MAX_CROSSINGS or pixels > _MAX_FILL_PIXELS:
        raise ValueError(
            "svg_or_paths is too complex to rasterise: its shapes cross pixel rows "
            f"{crossings} times and their bounding boxes cover {pixels} pixels in total "
            f"(limits {_MAX_CROSSINGS} and {_MAX_FILL_PIXELS})"
        )


def _fill_one(s: FlatShape, out: np.ndarray) -> None:
    h, w = out.shape
    x0, y0, x1, y1 = s.edges.T
    down = y1 > y0
    ylo = np.where(down, y0, y1)
    yhi = np.where(down, y1, y0)
    # Pixel-centre rows r with ylo <= r + 0.5 < yhi (half-open, so a vertex on a
    # centre row is counted once).
    rlo = np.clip(np.ceil(ylo - 0.5), 0, h).astype(np.int64)
    rhi = np.clip(np.ceil(yhi - 0.5), 0, h).astype(np.int64)
    keep = rhi > rlo
    if not keep.any():
        return
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    rlo, rhi = rlo[keep], rhi[keep]
    slope = (x1 - x0) / (y1 - y0)
    wind = None if s.evenodd else np.where(down[keep], 1, -1).astype(np.int32)

    # A crossing lands in the first column whose centre lies right of it, between the
    # columns of the edge's two ends; one column of margin each side absorbs rounding
    # in the interpolation. Columns without crossings before them stay outside, and
    # every row's windings sum to zero, so the margins change no pixel.
    xmin, xmax = min(x0.min(), x1.min()), max(x0.max(), x1.max())
    first = int(np.clip(np.floor(xmin + 0.5), 0, w))
    if first >= w:
        return  # every crossing is at or beyond the right edge
    c_min = max(0, first - 1)
    c_max = int(np.clip(np.floor(xmax + 0.5) + 1, 0, w))
    width = c_max - c_min + 1  # the last column takes the crossings at or beyond w

    # Bands of whole rows bound the running sums (5 bytes a cell for the winding, 2
    # for even-odd); chunks of edges bound the crossings computed at once (about 60
    # bytes each), so a shape of any size fills in bounded scratch memory. A row's
    # winding starts at 0 at its left end, so each band needs only its own crossings,
    # and adding them up chunk by chunk changes nothing.
    band = max(1, min(_BAND_CELLS // width, _CHUNK_CROSSINGS))
    r_min, r_max = int(rlo.min()), int(rhi.max())
    for top in range(r_min, r_max, band):
        bottom = min(top + band, r_max)
        sel = np.flatnonzero((rlo < bottom) & (rhi > top))
        if not sel.size:
            continue  # no crossing in these rows: nothing of them is inside
        start = np.maximum(rlo[sel], top)
        counts = np.minimum(rhi[sel], bottom) - start
        acc = np.zeros(((bottom - top) * width,), dtype=np.uint8 if wind is None else np.int32)
        ends = np.cumsum(counts)
        # Each chunk ends at the edge that reaches the next multiple of the budget: at
        # most the budget plus one edge's crossings in the band (itself at most band).
        cuts = np.searchsorted(ends, np.arange(_CHUNK_CROSSINGS, int(ends[-1]),
                                               _CHUNK_CROSSINGS), side="left")
        bounds = np.unique(np.concatenate([[0], cuts + 1, [sel.size]]))
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            _add_crossings(acc, sel[lo:hi], start[lo:hi], counts[lo:hi], x0, y0, slope,
                           wind, top, c_min, width, w)
        acc = acc.reshape(bottom - top, width)
        if wind is None:
            # Parity survives uint8 wrap-around: the count mod 256 keeps its last bit.
            inside = (np.cumsum(acc, axis=1, dtype=np.uint8, out=acc) & 1).astype(bool)
        else:
            inside = np.cumsum(acc, axis=1, dtype=np.int32, out=acc) != 0
        out[top:bottom, c_min:c_max] |= inside[:, : c_max - c_min]


def _add_crossings(acc, edges, start, counts, x0, y0, slope, wind, top, c_min, width, w):
    """Add the crossings of ``edges`` with rows ``start .. start + counts - 1`` (each
    edge its own range) into the band's flat accumulator ``acc``: +1 per crossing for
    even-odd, the edge's winding for nonzero, in the first column whose centre lies
    strictly right of the crossing."""
    total = int(counts.sum())
    edge = np.repeat(edges, counts)
    rows = np.arange(total, dtype=np.int64)
    rows += np.repeat(start - (np.cumsum(counts) - counts), counts)
    xc = (rows + 0.5 - y0[edge]) * slope[edge]
    xc += x0[edge]
    cols = np.clip(np.floor(xc + 0.5, out=xc), 0, w).astype(np.int64)
    idx = (rows - top) * width + (cols - c_min)
    if wind is None:
        np.add.at(acc, idx, np.uint8(1))
    else:
        np.add.at(acc, idx, wind[edge])


# --- SVG documents -------------------------------------------------------------------

# Documents in exactly the form mask_to_svg writes (regions_to_svg) skip svgelements:
# its per-number parsing is most of svg_to_mask's time on them (about 8 of 10 ms on a
# BUSI lesion), and their geometry needs none of its generality (no transforms, an
# identity viewBox, absolute M, L, C and Z only). Anything else, however close to that
# form, goes through svgelements; the two agree edge for edge (tests/vectorizer).
_OWN_DOCUMENT = re.compile(
    r'<svg xmlns="http://www\.w3\.org/2000/svg" width="([1-9][0-9]{0,8})" '
    r'height="([1-9][0-9]{0,8})" viewBox="0 0 \1 \2">\n'
    r'((?:<path fill-rule="evenodd" d="[MLCZ0-9eE.+\- ]*"/>\n)*)</svg>\n?'
)
_OWN_PATH = re.compile(r'<path fill-rule="evenodd" d="([^"]*)"/>')
_OWN_COMMAND = re.compile(r"([MLCZ])([^MLCZ]*)")
_OWN_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_OWN_ARITY = {"M": 2, "L": 2, "C": 6, "Z": 0}


def _own_path_rows(d: str) -> _PathRows | None:
    """The Bezier rows of path data in mask_to_svg's form, or None for anything else."""
    commands = _OWN_COMMAND.findall(d)
    if not d.startswith("M") or sum(len(c) + len(a) for c, a in commands) != len(d):
        return None
    rows = _PathRows()
    for command, args in commands:
        parts = args.split()
        if len(parts) != _OWN_ARITY[command] or not all(map(_OWN_NUMBER.fullmatch, parts)):
            return None
        v = [float(p) for p in parts]
        if command == "M":
            rows.move((v[0], v[1]))
        elif command == "Z":
            rows.close()
        elif command == "L":
            rows.line((v[0], v[1]))
        else:
            rows.cubic((v[0], v[1]), (v[2], v[3]), (v[4], v[5]))
        if rows.too_long():
            return None
    return rows


def _parse_own_document(data: bytes) -> tuple[list[FlatShape], tuple[int, int]] | None:
    """Shapes and size (H, W) of a document in mask_to_svg's form, else None."""
    match = _OWN_DOCUMENT.fullmatch(data.decode("ascii", errors="replace"))
    if match is None:
        return None
    width, height = int(match.group(1)), int(match.group(2))
    if width * height > MAX_PIXELS:
        return None  # the general parser reports it
    # Counted before any path is read: 59,090 paths in 3.9 MB were parsed into edges
    # (4.9 s, 111 MB) before the fill refused them (audit 801, F11).
    if (count := match.group(3).count("<path")) > MAX_SHAPES:
        raise ValueError(f"svg_or_paths has {count} shapes; at most {MAX_SHAPES} can be "
                         "rasterised")
    if TRAILING_DOT.search(match.group(3)):
        # Refused as the general parser refuses it, at any size (audit 801, F10).
        for d in _OWN_PATH.findall(match.group(3)):
            if error := path_grammar_error(d):
                raise ValueError(f"svg_or_paths: {error}")
    shapes = []
    for d in _OWN_PATH.findall(match.group(3)):
        parsed = _own_path_rows(d)
        if parsed is None:
            return None
        try:
            edges = parsed.edges()
        except ValueError:
            return None  # out-of-range coordinates: let the general parser say so
        shapes.append(FlatShape(edges=edges, evenodd=True))
    return shapes, (height, width)



def _path_data_error(d: str) -> str | None:
    """Where svgelements' path-data reader stops in ``d``, said as
    ``"cannot read 'L2 Z' at position 15"`` (or its own message), or None if it reads
    all of it."""
    lexer = SVGLexicalParser()
    try:
        lexer.parse(Path(), d)
    except Exception as exc:
        return _where_reading_stopped(d, getattr(lexer, "pos", None), exc)
    rest = d[lexer.pos:].strip()
    return f"cannot read {rest[:20]!r} at position {lexer.pos}" if rest else None


_COMMAND_LETTER = re.compile(r"[MmLlHhVvCcSsQqTtAaZz]")


def _where_reading_stopped(d: str, where, exc: BaseException) -> str:
    """What svgelements' path-data reader failed on in ``d``, with a position: it often
    raises with no text ("ValueError while parsing" said nothing of where)."""
    if not isinstance(where, int) or not 0 <= where <= len(d):
        return _reason(exc)
    if where < len(d) and not str(exc).strip():
        return f"cannot read {d[where:].strip()[:20]!r} at position {where}"
    if where < len(d) and isinstance(exc, TypeError):  # "must be real number, not None"
        return f"a number or an arc flag (0 or 1) is missing or wrong before position {where}"
    if where == len(d):
        # It ran out of numbers: name the command that wanted more.
        letters = list(_COMMAND_LETTER.finditer(d, 0, where))
        if letters:
            last = letters[-1]
            wrong = ", or a wrong one (an arc's flags are 0 or 1)" if last.group() in "Aa" else ""
            return (f"the {last.group()!r} command at position {last.start()} has too few "
                    f"numbers{wrong}, where the path data ends at position {where}")
        return f"the path data ends at position {where} without a command"
    return _reason(exc)


def _unreadable_path_data(data: bytes) -> str | None:
    """The first ``d`` attribute of a well-formed document that svgelements cannot
    read, named with its element and the place it stops; None if all read."""
    try:
        elements = ElementTree.fromstring(data).iter()
        for count, element in enumerate(elements):
            d = element.get("d")
            if d is None or (error := _path_data_error(d)) is None:
                continue
            tag = element.tag.rpartition("}")[2] if isinstance(element.tag, str) else "?"
            named = f" id={element.get('id')!r}" if element.get("id") else ""
            return f"the path data of <{tag}>{named} (element {count + 1}), " \
                   f"{d.strip()[:40]!r}: {error}"
    except ElementTree.ParseError:
        return None
    return None


def _reason(exc: BaseException) -> str:
    """What went wrong, for an error message: the exception's text, else its type.

    (An exception object is always truthy, so ``exc or ...`` never falls back.)
    """
    text = " ".join(str(exc).split())
    return text or f"{type(exc).__name__} while parsing"


_RELATIVE_UNIT = re.compile(r"[0-9.]\s*(em|ex|ch|rem|vw|vh|vmin|vmax)\s*$", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _whole(value: float, what: str, raw=None) -> int:
    # 1e-3: a size in mm or cm comes back from svgelements' 96 dpi with rounding
    # (25.4mm is 96.00005 px).
    if not math.isfinite(value) or value < 1 or abs(value - round(value)) > 1e-3:
        # svgelements reads "nan" and "inf" as 0, so the attribute as written is shown.
        got = repr(raw) if raw is not None else value
        raise ValueError(
            f"svg_or_paths: SVG {what} must be a whole number of pixels >= 1, got {got}"
        )
    return int(round(value))


_UTF16_START = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16", b"<\x00": "utf-16-le",
                b"\x00<": "utf-16-be"}
#: The XML declaration up to its encoding (group 1), and the encoding. Linear: the
#: declaration is read as characters and whole runs of blanks, each run taken at once
#: (possessive) and passed over unless the encoding follows it; the lazy
#: "[^>]*?\s+encoding" it replaces tried every blank of a run against the rest of the
#: run ("<?xml" and 32,000 blanks took 1.4 s, and up to MAX_SVG_BYTES are read).
_ENCODING_ATTRIBUTE = r"""encoding\s*+=\s*+["'][^"']*+["']"""
_XML_ENCODING = re.compile(
    rf"""^(\s*+<\?xml(?:[^>\s]|\s++(?!{_ENCODING_ATTRIBUTE}))*+)\s++{_ENCODING_ATTRIBUTE}"""
)


def _as_utf8(data: bytes) -> bytes:
    """A UTF-16 document (with or without byte-order mark) re-encoded as UTF-8, with
    its XML declaration's encoding dropped; anything else unchanged."""
    encoding = _UTF16_START.get(data[:2])
    if encoding is None:
        return data
    try:
        text = data.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise ValueError(f"svg_or_paths is not valid UTF-16 text: {exc.reason}") from None
    return _XML_ENCODING.sub(r"\1", text, count=1).encode("utf-8")


def parse_svg(source: str | bytes) -> tuple[list[FlatShape], tuple[int, int] | None]:
    """Parse an SVG document into flattened shapes and its size ``(H, W)`` if it has one.

    The size comes from the root's ``width``/``height`` (in px), else from its
    ``viewBox``; it is None when the document has neither.
    """
    size = len(source) if isinstance(source, str) else memoryview(source).nbytes
    if size > MAX_SVG_BYTES:
        raise ValueError(f"svg_or_paths is {size} bytes long; at most {MAX_SVG_BYTES} can be "
                         "rasterised")
    if isinstance(source, str):
        data = source.encode("utf-8")
    else:
        data = _as_utf8(bytes(source))
    if b"<svg" not in data and b":svg" not in data:
        raise ValueError("svg_or_paths is not an SVG document (no <svg> element)")
    own = _parse_own_document(data)
    if own is not None:
        return own
    if len(data) > MAX_PARSED_BYTES:
        raise ValueError(
            f"svg_or_paths is {len(data)} bytes long; at most {MAX_PARSED_BYTES} can be "
            "rasterised unless the document is in mask_to_svg's own form"
        )
    return _parse_with_svgelements(data)


# fill-rule="inherit" and visibility="inherit" as attributes, and fill-rule: inherit
# or visibility: inherit in a style or stylesheet.
_FILL_RULE_INHERIT = re.compile(
    rb"""\s(?:fill-rule|visibility)\s*=\s*(["'])\s*inherit\s*\1"""
    rb"""|(?:fill-rule|visibility)\s*:\s*inherit\s*(?:!important\s*)?;?"""
)
# Values of visibility (svgelements gives each shape its own or the inherited one)
# with which a renderer does not draw the shape.
_INVISIBLE = ("hidden", "collapse")


def _parse_with_svgelements(data: bytes) -> tuple[list[FlatShape], tuple[int, int] | None]:
    # svgelements expands every <use> before any limit below can apply: a small
    # document of nested <use> would cost it minutes. Refused first, in milliseconds.
    check_document(data, "svg_or_paths")
    # svgelements keeps an explicit "inherit" as the value (read as nonzero below);
    # fill-rule and visibility are inherited properties, so leaving it out means the
    # same thing.
    data = _FILL_RULE_INHERIT.sub(b"", data)
    root = root_attributes(data)
    for key in ("width", "height"):
        _check_relative_unit(key, root.get(key))
    data = unplace_root(data, root)
    data = _give_paths_data(data)
    data = place_symbols(hide_undrawn(data))
    try:
        # reify=False leaves identity transforms unapplied, which halves parse time.
        svg = SVG.parse(io.BytesIO(data), reify=False, on_error="raise")
    except ZeroDivisionError:
        # The one way found: an arc's radius whose square is 0 in floating point.
        raise ValueError(
            "svg_or_paths: a number in the document is too small to compute with (an arc "
            "radius under about 1e-154, whose square is 0 in floating point); an arc of "
            "radius 0 is a straight line"
        ) from None
    except Exception as exc:  # svgelements raises ParseError, ValueError, KeyError, ...
        # It says "ValueError while parsing" of path data it cannot read: which path,
        # and where in it, says more.
        reason = _unreadable_path_data(data) or _reason(exc)
        raise ValueError(f"svg_or_paths is not a valid SVG document: {reason}") from None
    if not isinstance(svg, SVG):
        raise ValueError("svg_or_paths is not an SVG document (root element is not <svg>)")

    values = svg.values
    has_size = "width" in values and "height" in values
    if not has_size and ("width" in values or "height" in values):
        raise ValueError("svg_or_paths: SVG has only one of width and height")
    for key in ("width", "height"):
        raw = values.get(key)
        # svgelements takes a percentage of the viewBox, or without one of a 1000-pixel
        # viewport it makes up: the latter is no size the document gave.
        if isinstance(raw, str) and raw.strip().endswith("%") and svg.viewbox is None:
            raise ValueError(
                f"svg_or_paths: SVG {key} {raw!r} is a percentage of a viewport the "
                "document does not define: give it in pixels, or add a viewBox (a "
                "percentage is taken of the viewBox)"
            )
        _check_relative_unit(key, raw)
    if svg.viewbox is not None:
        _check_viewbox(values.get("viewBox"))
    size = None
    if has_size or svg.viewbox is not None:
        size = (_whole(float(svg.height), "height", values.get("height")),
                _whole(float(svg.width), "width", values.get("width")))
        if size[0] * size[1] > MAX_PIXELS:
            raise ValueError(f"svg_or_paths: SVG size {size} is larger than {MAX_PIXELS} pixels")

    shapes: list[FlatShape] = []
    viewport = None  # the user-space size percentages are of, (width, height)
    if svg.viewbox is not None:
        viewport = (svg.viewbox.width, svg.viewbox.height)
    elif has_size:
        viewport = (float(svg.width), float(svg.height))
    viewports: dict[str, np.ndarray] = {}  # VIEWPORT-k: the k-th clipping <use>'s box
    try:
        for element in svg.elements():
            if not isinstance(element, Shape):
                continue
            marks = [key for key in element.values if key.startswith(VIEWPORT + "-")]
            if VIEWPORT in element.values.get("attributes", {}):
                # The box of the innermost <use> it is drawn from: the last mark
                # svgelements copied (the keys keep the order they were set in).
                viewports[marks[-1]] = flatten_path(Path(element))
                continue
            if len(shapes) == MAX_SHAPES:
                raise ValueError(f"svg_or_paths has more than {MAX_SHAPES} shapes; at most "
                                 f"{MAX_SHAPES} can be rasterised")
            # A hidden shape is not drawn, though a child may be made visible again.
            if str(element.values.get("visibility", "")).strip().lower().startswith(
                    _INVISIBLE):
                continue
            d = element.values.get("d")
            # Checked again here: a style can give a shape its path data.
            if isinstance(d, str) and (bad := PATH_CHARS.search(d)):
                raise ValueError(
                    f"svg_or_paths: path data has {bad.group()!r} at position {bad.start()}"
                )
            if isinstance(d, str) and (error := path_grammar_error(d)):
                raise ValueError(f"svg_or_paths: {error}")
            if isinstance(element, Rect | Circle | Ellipse) and not _sized_as_svg(
                    element, viewport):
                continue  # a size SVG draws nothing with
            rule = str(element.values.get("fill-rule", "nonzero")).strip().lower()
            # A <path> is already a Path; other shapes (rect, circle...) convert.
            edges = flatten_path(element if isinstance(element, Path) else Path(element))
            if not viewports.keys() >= set(marks):  # pragma: no cover - drawn first
                raise ValueError("svg_or_paths: the viewBox of a <symbol> it draws could "
                                 "not be placed")
            shapes.append(FlatShape(edges=edges, evenodd=(rule == "evenodd"),
                                    clips=tuple(viewports[key] for key in marks)))
    except ValueError:
        raise
    except Exception as exc:  # malformed geometry surfacing from svgelements
        raise ValueError(
            f"svg_or_paths: invalid SVG geometry: {_reason(exc)}"
        ) from None
    return shapes, size


def _own_length(element, key: str) -> str | None:
    """The shape's own ``key`` as written (attribute, ``style`` or stylesheet), or None
    when it has none or ``auto``. svgelements' ``values`` also hold what every element
    inherits from its ancestors: a ``<rect>`` without a width there has the root's."""
    raw = element.values.get("attributes", {}).get(key)
    if raw is None or str(raw).strip().lower() == "auto":
        return None
    return str(raw)


#: Which size a percentage of each geometry attribute is of: the viewport's width (0),
#: its height (1), or its normalised diagonal sqrt((w**2 + h**2) / 2) (2).
_PERCENT_OF = {"x": 0, "cx": 0, "width": 0, "rx": 0, "y": 1, "cy": 1, "height": 1, "ry": 1,
               "r": 2}
_GEOMETRY_OF = {Rect: ("x", "y", "width", "height", "rx", "ry"), Circle: ("cx", "cy", "r"),
                Ellipse: ("cx", "cy", "rx", "ry")}
_PERCENTAGE = re.compile(r"\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)%\s*")


def _resolve_percentages(element, viewport: tuple[float, float] | None) -> dict[str, float]:
    """Set the geometry of a ``<rect>``, ``<circle>`` or ``<ellipse>`` given in ``%``
    as SVG reads it: of the viewport's (the root's ``viewBox``, else its ``width`` and
    ``height``) width for ``x``, ``cx``, ``width`` and ``rx``, of its height for ``y``,
    ``cy``, ``height`` and ``ry``, and of its normalised diagonal for ``r``; returns
    the values set, by attribute.

    svgelements took a rect's width in % of the viewport's height, and made a circle
    of ``r="10%"`` an ellipse. A percentage without a viewport (no ``viewBox``, no
    ``width`` and ``height``) is refused, as is one that is not a plain number.
    """
    attributes = element.values.get("attributes", {})
    resolved = {}
    for key in _GEOMETRY_OF[type(element)]:
        raw = attributes.get(key)
        if raw is None or "%" not in str(raw):
            continue
        said = f"svg_or_paths: a <{type(element).__name__.lower()}> with {key}={str(raw)[:30]!r}"
        number = _PERCENTAGE.fullmatch(str(raw))
        if number is None or viewport is None:
            raise ValueError(f"{said} is not supported: "
                             + ("give it in pixels, or as a number and %" if number is None
                                else "a percentage of a viewport the document does not "
                                "define (no viewBox, width or height); give it in pixels"))
        w, h = viewport
        base = (w, h, math.sqrt((w * w + h * h) / 2))[_PERCENT_OF[key]]
        value = resolved[key] = float(number.group(1)) * base / 100
        if key == "r":
            element.rx = element.ry = value
        else:
            setattr(element, key, value)
    return resolved


def _sized_as_svg(element, viewport: tuple[float, float] | None) -> bool:
    """False if SVG draws nothing for this ``<rect>``, ``<circle>`` or ``<ellipse>``;
    else True, with its corner or ellipse radii set as SVG 2 reads them.

    A width, height or radius that is missing, zero or negative (an error in SVG 1.1,
    an invalid value that falls back to 0 or ``auto`` in SVG 2) draws nothing, where
    svgelements drew a width of -5 from x leftwards and a rect without a width to the
    image's edge. SVG 2 reads a radius ``rx`` or ``ry`` that is missing or negative
    as the other one (an ``<ellipse rx="8">`` is a circle of radius 8, which
    svgelements drew with ``ry`` 1): audit 801, F7. Percentages are taken of
    ``viewport`` (:func:`_resolve_percentages`). A rect's corner radii are then each
    cut to half its side (:func:`_corner_radii`).
    """
    resolved = _resolve_percentages(element, viewport)
    if isinstance(element, Rect):
        for key in ("width", "height"):
            if _own_length(element, key) is None or not getattr(element, key) > 0:
                return False
        element.rx, element.ry = _corner_radii(element, resolved)
        return True
    if isinstance(element, Circle):
        return _own_length(element, "r") is not None and element.rx > 0
    given = [_own_length(element, key) is not None and radius >= 0
             for key, radius in (("rx", element.rx), ("ry", element.ry))]
    if given == [False, False]:
        return False
    if not all(given):
        element.rx = element.ry = element.rx if given[0] else element.ry
    return element.rx > 0 and element.ry > 0


def _corner_radii(rect, resolved: dict[str, float]) -> tuple[float, float]:
    """A ``<rect>``'s corner radii ``(rx, ry)`` as SVG 2 reads them: one that is missing
    or negative is the other one as given, and each is then cut to half the side it
    runs along (both 0, square corners, when either is). ``resolved`` holds the ones
    given in %, already taken of the viewport.

    svgelements cuts them so, but only the ones it reads itself, and a negative one
    became 0: cutting ``rx`` first and copying it to a missing ``ry`` made
    ``<rect width="30" height="10" rx="8">`` corners of 5 x 5 rather than 8 x 5 (16
    pixels off), and a radius in % was not cut at all (60 pixels off at
    ``rx="30%"``).
    """
    radii = []
    for key in ("rx", "ry"):
        value = None
        if _own_length(rect, key) is not None:
            value = resolved.get(key)
            if value is None:
                value = Length(_own_length(rect, key)).value(ppi=96.0)
                # A unit svgelements cannot convert alone (em): its own reading, cut.
                value = value if isinstance(value, float) else getattr(rect, key)
        radii.append(value if value is not None and value >= 0 else None)
    rx, ry = radii
    if rx is None and ry is None:
        return 0.0, 0.0
    rx, ry = (ry if rx is None else rx), (rx if ry is None else ry)
    rx, ry = min(rx, rect.width / 2), min(ry, rect.height / 2)
    return (0.0, 0.0) if rx == 0 or ry == 0 else (rx, ry)


def _check_relative_unit(key: str, raw) -> None:
    """Refuse a root ``width`` or ``height`` in a unit relative to a font or viewport.

    svgelements reads these as plain numbers of pixels, which they are not; checked
    before it parses too, since with a ``viewBox`` it failed first ("ValueError while
    parsing"): audit 801, F9.
    """
    if isinstance(raw, str) and (unit := _RELATIVE_UNIT.search(raw)):
        raise ValueError(
            f"svg_or_paths: SVG {key} {raw!r} is in {unit.group(1)}, a unit relative to "
            "a font or a viewport the document does not define: give it in pixels"
        )


# A <path> start tag without a d attribute (possibly: a ">" inside a value ends the
# look early, which only costs a needless re-reading).
_PATH_WITHOUT_D = re.compile(rb"<(?:[\w.-]+:)?path(?=[\s/>])(?![^>]*\sd\s*=)")


def _give_paths_data(data: bytes) -> bytes:
    """``data`` with ``d=""`` on every ``<path>`` that has no ``d``.

    SVG draws nothing for it, as for ``d=""``; svgelements failed on it ("object of
    type 'NoneType' has no len()"): audit 801, F9. A ``d`` from a style still wins.
    """
    if not _PATH_WITHOUT_D.search(data):
        return data
    root = ElementTree.fromstring(data)
    changed = False
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.rpartition("}")[2] == "path" \
                and "d" not in element.attrib:
            element.set("d", "")
            changed = True
    return ElementTree.tostring(root, encoding="utf-8") if changed else data


def _check_viewbox(text) -> None:
    """Refuse a root ``viewBox`` that is not four finite numbers with a positive width
    and height. svgelements skips a value it cannot read and takes the next in its
    place ("nan 0 10 10" became x 0, y 10, width 10 and no height, which then failed
    as a TypeError)."""
    parts = [part for part in re.split(r"[\s,]+", str(text).strip()) if part]
    numbers = [float(part) for part in parts if _PLAIN_NUMBER.fullmatch(part)]
    if (len(parts) != 4 or len(numbers) != 4 or not all(map(math.isfinite, numbers))
            or numbers[2] <= 0 or numbers[3] <= 0):
        raise ValueError(
            f"svg_or_paths: SVG viewBox {str(text)[:60]!r} must be four finite numbers "
            "(min-x, min-y, width, height) with a positive width and height"
        )


def parse_path_strings(paths) -> list[FlatShape]:
    """Parse a list of SVG path-data strings; each is one even-odd shape."""
    if len(paths) > MAX_SHAPES:
        raise ValueError(f"svg_or_paths has {len(paths)} paths; at most {MAX_SHAPES} can be "
                         "rasterised")
    for i, d in enumerate(paths):
        if not isinstance(d, str):
            raise TypeError(f"svg_or_paths[{i}] must be a path-data str, got {type(d).__name__}")
    # Checked before parsing, which is where the time goes.
    total = sum(len(d) for d in paths)
    if total > MAX_PARSED_BYTES:
        raise ValueError(f"svg_or_paths has {total} characters of path data; at most "
                         f"{MAX_PARSED_BYTES} can be rasterised")
    shapes = []
    for i, d in enumerate(paths):
        if not d.strip():
            continue
        # Named as a document's path data names them (see _svgcheck), not as text the
        # parser "cannot read".
        if (bad := PATH_CHARS.search(d)) and (word := NOT_FINITE.match(d, bad.start())):
            raise ValueError(f"svg_or_paths[{i}]: path data has {word.group()!r} at position "
                             f"{bad.start()}, which is not a finite number")
        if error := path_grammar_error(d):
            raise ValueError(f"svg_or_paths[{i}]: {error}")
        path = Path()
        lexer = SVGLexicalParser()
        try:
            lexer.parse(path, d)
        except Exception as exc:
            reason = _where_reading_stopped(d, getattr(lexer, "pos", None), exc)
            raise ValueError(f"svg_or_paths[{i}] is not valid SVG path data: {reason}") from None
        rest = d[lexer.pos :].strip()
        if rest:
            raise ValueError(
                f"svg_or_paths[{i}] is not valid SVG path data: cannot read {rest[:20]!r} "
                f"at position {lexer.pos}"
            )
        try:
            edges = flatten_path(path)
        except ValueError as exc:
            raise ValueError(f"svg_or_paths[{i}]: {exc}".replace(": svg_or_paths:", ":")) from None
        except Exception as exc:
            raise ValueError(
                f"svg_or_paths[{i}] is not valid SVG path data: {_reason(exc)}"
            ) from None
        shapes.append(FlatShape(edges=edges, evenodd=True))
    return shapes


def check_rasterisable(svg: str) -> None:
    """Raise the ValueError ``svg_to_mask(svg)`` would raise, without filling a pixel.

    For a document with its own size, such as :func:`mask_to_svg` writes: the same
    parsing and the same limits (its length, flattened points, crossings of edges
    with pixel rows and bounding boxes) as :func:`svg_to_mask`.
    """
    shapes, size = parse_svg(svg)
    if size is None:
        raise ValueError("svg_or_paths: the SVG has no width/height or viewBox to size it")
    _check_fill_work(shapes, *size)


def svg_to_mask(svg_or_paths, shape=None) -> np.ndarray:
    """Rasterise an SVG document, or a list of SVG path strings, into a bool mask.

    A pixel is set when its centre lies inside a shape under the shape's fill rule.
    Any SVG path data is accepted: absolute or relative commands, ``M L H V C S Q T A
    Z``, transforms on paths and groups, ``viewBox`` scaling, ``<use>``, several paths,
    and the basic shapes (``rect``, ``circle``, ``ellipse``, ``polygon``; one whose
    size is missing, zero or negative draws nothing, a missing or negative radius
    of an ellipse or a corner is the other one, as in SVG 2, and a position or size in
    ``%`` is of the root's ``viewBox``, or else of its size). In a
    document each shape follows its own (possibly inherited) ``fill-rule``, with SVG's
    initial value ``nonzero`` when none is given; a list of path strings is filled
    even-odd. Only geometry counts: paint (``fill="none"`` too), strokes, opacity and
    text are ignored, and a ``clip-path`` or ``mask`` is refused (svgelements ignores
    them, and they change the outline a renderer draws) unless it cuts nothing drawn.
    What a renderer does not draw is not filled either: the content of ``<defs>``,
    ``<clipPath>``, ``<pattern>``, ``<mask>``, ``<marker>`` and ``<symbol>`` (unless a
    ``<use>`` draws it), elements with ``display="none"`` or ``visibility="hidden"``
    (or ``collapse``), and every child of a ``<switch>`` but the first whose conditions
    hold (``requiredExtensions`` never does; a ``systemLanguage`` is refused), and
    outside a switch, elements with ``requiredExtensions`` (with ``systemLanguage``,
    refused), as browsers apply the conditions there too. A
    ``<use>`` of a ``<symbol>`` with a ``viewBox`` is refused (its content would not be
    scaled to the ``<use>``'s size) unless it gives the ``viewBox``'s own width and
    height (Illustrator's symbols: the content is then moved, and clipped to the
    ``viewBox``, as a renderer does), so is a ``transform-origin`` or ``transform-box``
    other than the initial one on an element with a transform (svgelements turns
    everything about 0,0), a ``<style>``
    setting ``display``, ``visibility``, ``fill-rule``, ``transform`` or geometry through
    selectors or at-rules svgelements does not apply, and a
    nested ``<svg>`` with a ``viewBox``, or placed or sized (``x``, ``y``, ``width``,
    ``height``): its content would be drawn misplaced. The root ``<svg>``'s
    ``x`` and ``y`` are ignored, as SVG says. A document whose
    ``<use>`` elements expand without bound or beyond these limits is refused before
    svgelements expands anything (:func:`vectorizer.check_svg_document`).
    The document is parsed with svgelements, except one in exactly the form
    :func:`mask_to_svg` writes, which is read directly (the same edges, four times
    faster); curves are flattened to within 0.002 pixel and filled exactly at pixel
    centres.

    Parameters
    ----------
    svg_or_paths : str or bytes or list of str
        An SVG document, or a list of path-data strings (each one region, holes as
        extra subpaths, filled even-odd), for instance as edited in the browser.
    shape : tuple of int (H, W), optional
        Output size. Required for a list of paths and for a document without
        ``width``/``height`` or ``viewBox``; must agree with the document's size
        when both are given.

    Returns
    -------
    ndarray of bool, shape (H, W)
        ``mask[r, c]`` is True when the point ``x = c + 0.5, y = r + 0.5`` (SVG user
        units = pixels, y down) is filled.

    Raises
    ------
    TypeError
        If ``svg_or_paths`` or ``shape`` has the wrong type.
    ValueError
        If the SVG or path data is malformed, the size is unknown, or ``shape``
        disagrees with the document's size.

    Examples
    --------
    >>> from vectorizer import svg_to_mask
    >>> svg_to_mask(["M 1,0 L 3,0 L 3,2 L 1,2 Z"], shape=(3, 4)).astype(int)
    array([[0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    if shape is not None:
        shape = as_shape(shape)
    if isinstance(svg_or_paths, str | bytes | bytearray | memoryview):
        shapes, size = parse_svg(svg_or_paths)
        if size is None and shape is None:
            raise ValueError(
                "shape is required: the SVG has no width/height or viewBox to size the mask"
            )
        if size is not None and shape is not None and size != shape:
            raise ValueError(f"shape {shape} does not match the SVG's size (H, W) = {size}")
        out_shape = shape if shape is not None else size
    elif isinstance(svg_or_paths, list | tuple):
        if shape is None:
            raise ValueError("shape (H, W) is required when svg_or_paths is a list of paths")
        shapes = parse_path_strings(svg_or_paths)
        out_shape = shape
    else:
        raise TypeError(
            "svg_or_paths must be an SVG document (str or bytes) or a list of path strings, "
            f"got {type(svg_or_paths).__name__}"
        )
    return fill(shapes, out_shape)
