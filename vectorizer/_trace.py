"""Tracing a bitmap with the potrace C library (through the ``potracecffi`` bindings).

Coordinates
-----------
Potrace gets a bitmap whose scanline ``y`` is the mask's row ``y`` (as
``potracecffi.trace`` would build it), and puts pixel ``(x, y)`` of its bitmap on the
unit square ``[x, x+1] x [y, y+1]``. So its output coordinates are already ours:
pixel ``(r, c)`` covers ``x in [c, c+1]``, ``y in [r, r+1]``, y pointing down. Only
the *orientation* flips relative to potrace's y-up documentation: its
counter-clockwise outer boundaries run clockwise on screen (positive shoelace area in
our coordinates) and holes the other way.

The bitmap is packed here with numpy and handed to ``potrace_trace`` directly rather
than through ``potracecffi.trace``, which packs pixel by pixel in column order and
costs more than the trace itself on a 500x500 mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import potracecffi
from potracecffi import ffi, lib

CURVETO = potracecffi.CURVETO
CORNER = potracecffi.CORNER

_WORD_BYTES = ffi.sizeof("potrace_word")
_WORD_BITS = 8 * _WORD_BYTES
_DPOINT_BYTES = ffi.sizeof("potrace_dpoint_t")
_INT_BYTES = ffi.sizeof("int")
_SIGN_PLUS = ord("+")

MAX_OUTLINES = 10_000
"""Most outlines (regions plus holes) a mask may have to be traced or measured.

A lesion mask has a handful; each outline costs tens of microseconds in Python (up
to a few hundred when measured), so this keeps the worst case near a second. A
checkerboard, one 8-connected region with a hole at every other pixel, has
millions."""


MAX_BOUNDARY_EDGES = 4_000_000
"""Most pixel edges between a mask's foreground and background that may be traced.

Potrace keeps every boundary point, and its curves then pass through Python: about
150 bytes and 0.3 microseconds an edge, so this bounds a trace near 650 MB and a
second. A lesion's outline has a few thousand edges even on an 8192-pixel image; a
comb, one region whose teeth are a pixel apart, passes :data:`MAX_OUTLINES` with
millions (a 4000x4000 one took 2.2 GB and 6 s to trace, then to be refused)."""


def boundary_edges(mask: np.ndarray) -> int:
    """Pixel edges between foreground and background in a 2-D bool ``mask``, the
    image's border counting as background: the length of every outline, in pixels."""
    padded = np.pad(mask, 1)
    return int(np.count_nonzero(padded[1:] != padded[:-1])
               + np.count_nonzero(padded[:, 1:] != padded[:, :-1]))


def count_outlines(mask: np.ndarray, min_pixels: int = 0) -> int:
    """Regions (8-connected) plus holes (4-connected background enclosed by them) of
    more than ``min_pixels`` pixels in a 2-D bool ``mask``: the curves potrace draws
    with ``turdsize=min_pixels`` (a few more, drawn around small regions enclosing
    holes, are caught while reading its output). Two labellings of the foreground's
    bounding box: milliseconds, against seconds for tracing a hostile mask."""
    # Imported here, as in _measure: scipy would slow every start of the CLI.
    from scipy import ndimage

    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0
    cols = np.flatnonzero(mask.any(axis=0))
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    labels, n = ndimage.label(crop, structure=np.ones((3, 3), dtype=bool))
    regions = n
    if min_pixels > 0:
        regions = int(np.count_nonzero(np.bincount(labels.ravel())[1:] > min_pixels))
    labels, n = ndimage.label(~crop)
    if n == 0:
        return regions
    # Background touching the box's edge is outside every region, not a hole.
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    sizes[edge] = 0
    return regions + int(np.count_nonzero(sizes > min_pixels))


def check_outlines(mask: np.ndarray, min_pixels: int, verb: str) -> None:
    """Raise ValueError naming ``mask`` if it has more than MAX_OUTLINES outlines of
    more than ``min_pixels`` pixels (see :func:`count_outlines`), or outlines more than
    MAX_BOUNDARY_EDGES pixel edges long (:func:`boundary_edges`): before tracing, whose
    time and memory grow with both."""
    check_outline_length(boundary_edges(mask), verb)
    check_outline_count(count_outlines(mask, min_pixels), verb)


def check_outline_length(edges: int, verb: str) -> None:
    """Raise ValueError if outlines ``edges`` pixel edges long are over
    :data:`MAX_BOUNDARY_EDGES` (see :func:`check_outlines`)."""
    if edges > MAX_BOUNDARY_EDGES:
        raise ValueError(
            f"mask's outlines are {edges} pixel edges long; at most {MAX_BOUNDARY_EDGES} "
            f"can be {verb} (a lesion's are a few thousand)"
        )


def check_outline_count(n: int, verb: str) -> None:
    """Raise ValueError if ``n`` outlines are over :data:`MAX_OUTLINES` (see
    :func:`check_outlines`)."""
    if n > MAX_OUTLINES:
        raise ValueError(
            f"mask has {n} outlines (regions and holes); at most {MAX_OUTLINES} can be {verb}"
        )


@dataclass(frozen=True, slots=True)
class Ring:
    """One closed potrace curve in image pixel coordinates.

    Attributes
    ----------
    tags : ndarray of int, shape (n,)
        ``CURVETO`` or ``CORNER`` for each segment.
    points : ndarray of float64, shape (n, 3, 2)
        Potrace's control points ``c[i][0..2]`` as (x, y). Segment ``i`` starts at the
        end point of segment ``i - 1`` (``points[i - 1, 2]``) and ends at
        ``points[i, 2]``. A ``CORNER`` segment is two straight lines through the corner
        ``points[i, 1]``; ``points[i, 0]`` is unused. A ``CURVETO`` segment is a cubic
        Bezier with controls ``points[i, 0]`` and ``points[i, 1]``.
    area : int
        Potrace's pixel area of the bitmap path this curve was fitted to.
    """

    tags: np.ndarray
    points: np.ndarray
    area: int


@dataclass(frozen=True, slots=True)
class Region:
    """A filled region: one outer ring plus the rings of its holes."""

    outer: Ring
    holes: tuple[Ring, ...]

    @property
    def rings(self) -> tuple[Ring, ...]:
        return (self.outer, *self.holes)


# _DOUBLE_BITS[b] is byte b with every bit doubled (0b10 -> 0b1100), big-endian.
_DOUBLE_BITS = np.array(
    [int("".join(2 * bit for bit in f"{b:08b}"), 2) for b in range(256)], dtype=">u2"
)


def pack_bitmap(mask: np.ndarray, scale: int = 1) -> np.ndarray:
    """Pack a 2-D bool array, enlarged ``scale`` times, into potrace's word layout.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    scale : {1, 2}
        Each pixel becomes a ``scale x scale`` block.

    Returns
    -------
    ndarray of native ``potrace_word``, shape (scale * H, dy)
        The most significant bit of word 0 of row ``r`` is pixel ``(r, 0)``.
    """
    packed = np.packbits(mask, axis=1)  # MSB-first within bytes, as potrace wants
    if scale == 2:
        packed = _DOUBLE_BITS[packed].view(np.uint8).reshape(packed.shape[0], -1)
        packed = np.repeat(packed, 2, axis=0)
    elif scale != 1:
        raise ValueError(f"scale must be 1 or 2, got {scale}")
    h, w = mask.shape[0] * scale, mask.shape[1] * scale
    dy = (w + _WORD_BITS - 1) // _WORD_BITS
    padded = np.zeros((h, dy * _WORD_BYTES), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    # Big-endian words keep the leftmost pixel in the most significant bit.
    return padded.view(f">u{_WORD_BYTES}").astype(f"=u{_WORD_BYTES}")


def _read_ring(path, dx: float, dy: float, scale: int) -> Ring:
    curve = path.curve
    n = curve.n
    tags = np.frombuffer(ffi.buffer(curve.tag, n * _INT_BYTES), dtype=np.intc).copy()
    pts = np.frombuffer(ffi.buffer(curve.c, n * 3 * _DPOINT_BYTES), dtype=np.float64)
    pts = pts.reshape(n, 3, 2) / scale
    pts[..., 0] += dx
    pts[..., 1] += dy
    return Ring(tags=tags, points=pts, area=int(path.area) // (scale * scale))


def trace(
    mask: np.ndarray,
    *,
    turdsize: int = 2,
    alphamax: float = 1.0,
    opttolerance: float = 0.2,
    turnpolicy: int = potracecffi.TURNPOLICY_BLACK,
    scale: int = 2,
    max_rings: int = MAX_OUTLINES,
) -> list[Region]:
    """Trace a checked 2-D bool mask into regions of potrace curves.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    turdsize, alphamax, opttolerance, turnpolicy
        Potrace's parameters, with ``turdsize`` (an area) and ``opttolerance`` (a
        distance) in pixels of ``mask``. The default turn policy joins foreground
        pixels that touch only diagonally, so regions are 8-connected (and holes
        4-connected), as in ``skimage.measure.label(connectivity=2)``.
    scale : {1, 2}
        Potrace is run on the mask enlarged ``scale`` times and the curves are scaled
        back. At 1 potrace's polygon may stray half a pixel from the pixel
        boundary, which is exactly the distance to the neighbouring pixel centres, and
        its smoothing then cuts through them (a round trip keeps about 99.2 % IoU on
        BUSI lesions). At 2 the outline stays within a quarter pixel of the boundary
        and a round trip keeps the pixels almost exactly.
    max_rings : int
        Raise ValueError once potrace's output has more curves than this, before
        reading the rest (callers check :func:`count_outlines` first; this catches
        the few it cannot foresee).

    Returns
    -------
    list of Region
        One per 8-connected component of the mask that is not dropped for its size,
        sorted top to bottom, then left to right, by the top-left corner of the
        component's pixel bounding box (as ``measure_regions`` orders them; with
        another turn policy, of the curve's control points). Islands inside holes
        are regions of their own.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Potrace treats everything outside the bitmap as background, so tracing the
    # bounding box gives the same curves, shifted, in less time.
    crop = mask[r0:r1, c0:c1]
    options = dict(turdsize=turdsize, alphamax=alphamax, opttolerance=opttolerance,
                   turnpolicy=turnpolicy, scale=scale)
    regions = _trace_crop(crop, int(r0), int(c0), max_rings=max_rings, **options)
    if len(regions) < 2:
        return regions
    if turnpolicy != potracecffi.TURNPOLICY_BLACK:
        # Components are not 8-connected then: ordered by their curves' top-left.
        return sorted(regions, key=_curve_corner)
    # Ordering by the curves' control points (which may stray a quarter pixel past
    # the pixels, or cut a smoothed tip short) put neighbouring regions in another
    # order than measure_regions, so regions[i] stopped measuring paths[i]: regions
    # are ordered by the pixel bounding box of the 8-connected component each
    # outlines, as there.
    from scipy import ndimage

    labels, count = ndimage.label(crop, structure=np.ones((3, 3), dtype=bool))
    boxes = ndimage.find_objects(labels)

    def corner(label: int) -> tuple[int, int, int]:
        return (boxes[label - 1][0].start, boxes[label - 1][1].start, label)

    owners = [_owner(labels, region.outer.points[0, 2] - (c0, r0)) for region in regions]
    if 0 not in owners and len(set(owners)) == len(owners):
        return [region for _, region in sorted(zip(owners, regions, strict=True),
                                               key=lambda pair: corner(pair[0]))]
    # Not one component per region (never seen; the curves stay near their pixels):
    # each component is traced on its own instead, in order, which costs about
    # 0.3 ms a region. The others do not touch it, so it gives the same regions
    # (potrace may round a segment differently with the bitmap's origin moved).
    ordered: list[Region] = []
    for label in sorted(range(1, count + 1), key=corner):
        rs, cs = boxes[label - 1]
        own = labels[rs, cs] == label
        ordered.extend(_trace_crop(own, int(r0 + rs.start), int(c0 + cs.start),
                                   max_rings=max_rings - _ring_count(ordered), **options))
    return ordered


def _curve_corner(region: Region) -> tuple[float, float]:
    pts = region.outer.points[:, 1:, :].reshape(-1, 2)
    return (round(float(pts[:, 1].min()), 6), round(float(pts[:, 0].min()), 6))


def _owner(labels: np.ndarray, point: np.ndarray) -> int:
    """The label whose pixel squares are nearest ``point`` (x, y), among the 3x3 pixels
    around it; 0 when none of them is labelled.

    A traced curve stays within a quarter pixel of its region's pixels (half a pixel
    at scale 1), and two 8-connected components are at least a pixel apart, so the
    nearest labelled square around any point of a curve is its own region's.
    """
    x, y = float(point[0]), float(point[1])
    row, col = int(np.floor(y)), int(np.floor(x))
    best, owner = np.inf, 0
    for r in range(max(row - 1, 0), min(row + 2, labels.shape[0])):
        dy = max(r - y, 0.0, y - (r + 1))
        for c in range(max(col - 1, 0), min(col + 2, labels.shape[1])):
            label = int(labels[r, c])
            if label:
                dx = max(c - x, 0.0, x - (c + 1))
                if dx * dx + dy * dy < best:
                    best, owner = dx * dx + dy * dy, label
    return owner


def _ring_count(regions: list[Region]) -> int:
    return sum(1 + len(region.holes) for region in regions)


def _trace_crop(
    crop: np.ndarray, r0: int, c0: int, *, turdsize: int, alphamax: float,
    opttolerance: float, turnpolicy: int, scale: int, max_rings: int,
) -> list[Region]:
    """Run potrace on ``crop``, whose top-left pixel is the mask's ``(r0, c0)``."""
    words = pack_bitmap(crop, scale)

    params = lib.potrace_param_default()
    if params == ffi.NULL:
        raise MemoryError("potrace could not allocate its parameters")
    state = ffi.NULL
    try:
        # Every path's area at this scale is scale**2 times its area in mask pixels.
        params.turdsize = min(turdsize * scale * scale, 2**31 - 1)
        params.turnpolicy = turnpolicy
        params.alphamax = alphamax
        params.opticurve = 1
        params.opttolerance = opttolerance * scale
        bm = ffi.new("potrace_bitmap_t *")
        bm.w = crop.shape[1] * scale
        bm.h = crop.shape[0] * scale
        bm.dy = words.shape[1]
        bm.map = ffi.cast("potrace_word *", ffi.from_buffer(words))
        state = lib.potrace_trace(params, bm)
        if state == ffi.NULL or state.status != 0:
            raise RuntimeError("potrace failed to trace the mask (out of memory?)")
        regions: list[Region] = []
        outer: Ring | None = None
        holes: list[Ring] = []
        # potrace lists every negative path (hole) right after its positive parent.
        n_rings = 0
        for path in potracecffi.iter_paths(state.plist):
            if path.curve.n == 0:
                continue
            n_rings += 1
            if n_rings > max_rings:
                raise ValueError(f"mask has more than {max_rings} outlines (regions and "
                                 f"holes); at most {max_rings} can be traced")
            ring = _read_ring(path, float(c0), float(r0), scale)
            if path.sign == _SIGN_PLUS:
                if outer is not None:
                    regions.append(Region(outer, tuple(holes)))
                outer, holes = ring, []
            elif outer is not None:
                holes.append(ring)
        if outer is not None:
            regions.append(Region(outer, tuple(holes)))
    finally:
        if state != ffi.NULL:
            lib.potrace_state_free(state)
        lib.potrace_param_free(params)
    return regions
