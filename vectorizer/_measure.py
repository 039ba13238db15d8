"""Per-region measurements for the client's side panel (area, perimeter, diameter...)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Set

import numpy as np
import potracecffi
import shapely

from ._trace import CORNER, Ring, check_outlines, trace
from ._validate import as_mask

_CURVE_SAMPLES = 16  # points per Bezier segment when measuring an outline's length
_PATTERN_CACHE_PIXELS = 4096  # regions with bounding boxes up to this size share results

#: Largest pixel spacing accepted, in mm per pixel. Ultrasound frames have about
#: 0.05-0.5 mm; anything near this is a corrupt header, and beyond it areas
#: overflow to infinity, which JSON cannot carry.
MAX_PIXEL_SPACING_MM = 10.0
#: Smallest pixel spacing accepted, in mm per pixel (1 µm): fifty times finer than the
#: finest ultrasound frames; below it is a corrupt header or a typo (1e-320 was taken,
#: and every area came out 0.0).
MIN_PIXEL_SPACING_MM = 0.001


def _ring_points(ring: Ring) -> np.ndarray:
    """A potrace ring flattened to a closed polyline (k, 2).

    A corner segment gives its corner and end point, a curve segment
    ``_CURVE_SAMPLES`` points ending at its end point; all segments are evaluated
    at once and the unused samples of corner segments dropped.
    """
    c = ring.points
    start = np.roll(c[:, 2], 1, axis=0)[:, None]  # each segment starts where the last ended
    t = (np.arange(1, _CURVE_SAMPLES + 1) / _CURVE_SAMPLES)[None, :, None]
    s = 1 - t
    pts = (
        s**3 * start + 3 * s * s * t * c[:, None, 0] + 3 * s * t * t * c[:, None, 1]
        + t**3 * c[:, None, 2]
    )
    corner = ring.tags == CORNER
    pts[corner, 0] = c[corner, 1]
    pts[corner, 1] = c[corner, 2]
    keep = np.ones(pts.shape[:2], dtype=bool)
    keep[corner, 2:] = False
    return pts[keep]


def is_plausible_spacing(row_mm: float, col_mm: float) -> bool:
    """Whether ``(row_mm, col_mm)`` is a pixel spacing ``measure_regions`` accepts.

    Both values finite, at least :data:`MIN_PIXEL_SPACING_MM` and at most
    :data:`MAX_PIXEL_SPACING_MM`. For readers of image headers, which ignore an
    implausible spacing rather than refuse the image.
    """
    return all(math.isfinite(v) and MIN_PIXEL_SPACING_MM <= v <= MAX_PIXEL_SPACING_MM
               for v in (row_mm, col_mm))


def check_spacing(pixel_spacing) -> tuple[float, float] | None:
    if pixel_spacing is None:
        return None
    # A set or a dict has a length but no order: row and column could swap unseen.
    if (isinstance(pixel_spacing, str | bytes | Set | Mapping)
            or not hasattr(pixel_spacing, "__len__")):
        raise TypeError("pixel_spacing must be a (row_mm, col_mm) pair or None, got "
                        f"{type(pixel_spacing).__name__}")
    if len(pixel_spacing) != 2:
        raise ValueError(
            f"pixel_spacing must have 2 values (row_mm, col_mm), got {len(pixel_spacing)}"
        )
    out = []
    for v in pixel_spacing:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"pixel_spacing values must be numbers, got {v!r}")
        v = float(v)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"pixel_spacing values must be finite and positive, got {v}")
        if v < MIN_PIXEL_SPACING_MM:
            raise ValueError(f"pixel_spacing values must be at least {MIN_PIXEL_SPACING_MM:g} mm "
                             f"per pixel, got {v:g}")
        if v > MAX_PIXEL_SPACING_MM:
            raise ValueError(f"pixel_spacing values must be at most {MAX_PIXEL_SPACING_MM:g} mm "
                             f"per pixel, got {v:g}")
        out.append(v)
    return out[0], out[1]


def _calipers(points: np.ndarray) -> tuple[float, np.ndarray, float, np.ndarray]:
    """Where a sonographer puts the calipers on a region: its long axis, then the
    longest chord across it.

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, 2)`` points ``(x, y)`` whose convex hull is the region (the corners of
        its pixel squares, in pixels or scaled to millimetres).

    Returns
    -------
    length : float
        The longest chord of the hull (the max diameter).
    ends : numpy.ndarray
        ``(2, 2)``: its ends ``(x, y)``, hull vertices.
    across : float
        The longest chord of the hull perpendicular to it (0 for a hull without area).
    across_ends : numpy.ndarray
        ``(2, 2)``: its ends ``(x, y)``, on the hull's edges, as calipers placed on the
        margins are. Among equally long chords (a rectangle's middle stretch), the one
        nearest the long chord's middle.
    """
    hull = shapely.convex_hull(shapely.multipoints(points))
    coords = shapely.get_coordinates(hull)
    if len(coords) < 2:
        ends = np.repeat(coords[:1], 2, axis=0)
        return 0.0, ends, 0.0, ends.copy()
    d = coords[:, None, :] - coords[None, :, :]
    d2 = np.einsum("ijk,ijk->ij", d, d)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    ends = coords[[i, j]]
    length = math.sqrt(float(d2[i, j]))
    if not isinstance(hull, shapely.Polygon):  # a line: nothing crosses it
        return length, ends, 0.0, np.repeat(ends[:1], 2, axis=0)
    # In the long chord's frame (a along it from ends[0], b across), the hull's width
    # across is concave and piecewise linear in a: it peaks at a vertex's a, or on a
    # stretch between two vertices (a rectangle's middle), which all count as peaks.
    u = (ends[1] - ends[0]) / length
    n = np.array([-u[1], u[0]])
    a, b = (coords - ends[0]) @ u, (coords - ends[0]) @ n  # a closed ring: last == first
    low, top = _across(a, b, a[:-1])
    width = top - low
    peaks = a[:-1][width >= width.max() - 1e-9]
    at = float(np.clip(length / 2, peaks.min(), peaks.max()))
    (low,), (top,) = _across(a, b, np.array([at]))
    foot = ends[0] + at * u
    return length, ends, float(top - low), np.stack([foot + low * n, foot + top * n])


def _across(a: np.ndarray, b: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where lines ``a = at`` cross a convex ring.

    Parameters
    ----------
    a, b : numpy.ndarray
        ``(v + 1,)`` coordinates of the ring's vertices, closed (last == first), in a
        frame whose first axis ``a`` runs along the long chord.
    at : numpy.ndarray
        ``(k,)`` positions along ``a``, each within the ring's extent.

    Returns
    -------
    low, top : numpy.ndarray
        ``(k,)`` lowest and highest ``b`` of the ring on each line.
    """
    a0, a1, b0, b1 = a[:-1], a[1:], b[:-1], b[1:]
    at = at[:, None]
    inside = (np.minimum(a0, a1) - 1e-9 <= at) & (at <= np.maximum(a0, a1) + 1e-9)
    span = a1 - a0
    steep = np.abs(span) < 1e-12  # an edge along the line: both its ends count
    frac = np.where(steep, 0.0, (at - a0) / np.where(steep, 1.0, span))
    cross = b0 + np.clip(frac, 0.0, 1.0) * (b1 - b0)
    top = np.where(inside, np.where(steep, np.maximum(b0, b1), cross), -np.inf).max(axis=1)
    low = np.where(inside, np.where(steep, np.minimum(b0, b1), cross), np.inf).min(axis=1)
    return low, top


def measure_regions(mask, pixel_spacing=None) -> list[dict]:
    """Measure every connected region of a mask.

    Regions are 8-connected components of the foreground (diagonal neighbours
    belong together), ordered by the top-left corner of their bounding box (top
    to bottom, then left to right). Unlike the tracers, nothing is dropped for size.

    Parameters
    ----------
    mask : array_like, shape (H, W)
        bool, or numbers that are all 0/1 or all 0/255. Pixel ``(r, c)`` covers
        ``x in [c, c+1]``, ``y in [r, r+1]``.
    pixel_spacing : (row_mm, col_mm), optional
        Physical size of a pixel (DICOM ``PixelSpacing`` order: between rows, then
        between columns), each from :data:`MIN_PIXEL_SPACING_MM` to
        :data:`MAX_PIXEL_SPACING_MM`. When given, the millimetre keys are added.

    Returns
    -------
    list of dict
        Per region:

        ``area_px``
            Number of pixels (holes excluded).
        ``perimeter_px``
            Length of the region's smooth outline (potrace curve, holes included), which
            unlike the pixel staircase does not overestimate oblique edges by up to 41 %.
            Traced at the mask's own scale, where potrace rounds the pixels as a lesion
            is round: within 1 % of a disc's or an ellipse's circumference from a few
            pixels of radius up. A region only a few pixels thick is rounded as well,
            so it comes out shorter than its pixel rectangle (a 1 x 10 bar 14 rather
            than 22; the SVG outline, traced at twice the scale to keep every pixel,
            follows the staircase more closely and runs 3-5 % long on a disc).
        ``bbox``
            ``[x0, y0, x1, y1]`` of the pixel squares: columns ``x0 .. x1 - 1`` and rows
            ``y0 .. y1 - 1``.
        ``width_px``, ``height_px``
            ``x1 - x0`` and ``y1 - y0``.
        ``max_diameter_px``
            Longest chord: the largest distance between two points of the region's
            pixel squares, found on their convex hull.
        ``max_diameter_endpoints``
            ``[[x, y], [x, y]]`` ends of that chord, for drawing it.
        ``perpendicular_diameter_px``
            The longest chord of the same hull perpendicular to the max diameter: the
            second caliper of a lesion's size (long axis x perpendicular axis).
        ``perpendicular_diameter_endpoints``
            ``[[x, y], [x, y]]`` ends of that chord, on the hull's edges.
        ``centroid``
            ``[x, y]`` mean of the pixel centres.
        ``area_mm2``, ``perimeter_mm``, ``max_diameter_mm``, ``perpendicular_diameter_mm``,
        ``width_mm``, ``height_mm``
            With ``pixel_spacing`` only; the diameters are measured in millimetres, so
            with non-square pixels they may join other points than in pixels.
        ``max_diameter_mm_endpoints``, ``perpendicular_diameter_mm_endpoints``
            With ``pixel_spacing`` only: ``[[x, y], [x, y]]`` ends, in pixels, of the
            chords the two mm diameters measure (the same chords as in pixels when
            the pixels are square).

    Raises
    ------
    ValueError
        If the mask has more than ``MAX_OUTLINES`` (10000) outlines, regions and
        holes of any size counted (a checkerboard has millions), or a bad
        ``pixel_spacing``.

    Examples
    --------
    >>> import numpy as np
    >>> from vectorizer import measure_regions
    >>> m = np.zeros((4, 6), bool)
    >>> m[1:3, 1:5] = True
    >>> r = measure_regions(m, pixel_spacing=(0.5, 0.5))[0]
    >>> r["area_px"], r["bbox"], r["width_px"], r["height_px"], r["centroid"]
    (8, [1, 1, 5, 3], 4, 2, [3.0, 2.0])
    >>> round(r["max_diameter_px"], 3), r["area_mm2"]
    (4.472, 2.0)
    """
    m = as_mask(mask)
    spacing = check_spacing(pixel_spacing)
    # Labelling costs in proportion to the image, so only the foreground's bounding
    # box is labelled; (top, left) is its offset in the image.
    any_rows = np.flatnonzero(m.any(axis=1))
    if any_rows.size == 0:
        return []
    any_cols = np.flatnonzero(m.any(axis=0))
    top, left = int(any_rows[0]), int(any_cols[0])
    crop = m[top : any_rows[-1] + 1, left : any_cols[-1] + 1]
    # Every region and hole is traced and measured on its own (about 100 us each),
    # so their number is checked first.
    check_outlines(crop, 0, "measured")
    return measure_checked_crop(crop, top, left, spacing)


def measure_lesion(mask, pixel_spacing=None, origin=(0, 0)) -> dict | None:
    """Measure all of a mask's pixels as one lesion, connected or not.

    :func:`measure_regions` measures each 8-connected region on its own. A lesion can be
    in several pieces: an outline drawn with a neck narrower than a pixel rasterises in
    two, and a second outline drawn over the first to widen it is the same lesion. This
    measures their pixels together: the area counts them all, the bounding box and the
    centroid are theirs, the diameters are the chords of their common convex hull (the
    long axis across the pieces, as calipers on the screen would be placed) and the
    perimeter is the length of all their outlines.

    Parameters
    ----------
    mask : array_like, shape (H, W)
        bool, or numbers that are all 0/1 or all 0/255: the lesion's pixels. Pixel
        ``(r, c)`` covers ``x in [c, c+1]``, ``y in [r, r+1]``.
    pixel_spacing : (row_mm, col_mm), optional
        As for :func:`measure_regions`: the millimetre keys are added.
    origin : (int, int), optional
        The ``(row, col)`` in the image of ``mask``'s pixel ``(0, 0)``, for a mask cut
        from a larger image: the coordinates returned (bounding box, centroid, chord
        ends) are then the image's, as if the whole image had been measured.

    Returns
    -------
    dict or None
        The keys of a :func:`measure_regions` entry; None for an empty mask.

    Raises
    ------
    TypeError
        If ``origin`` is not two ints.
    ValueError
        As :func:`measure_regions`: too many outlines, or a bad ``pixel_spacing``; an
        ``origin`` below 0.

    Examples
    --------
    >>> import numpy as np
    >>> from vectorizer import measure_lesion
    >>> m = np.zeros((4, 8), bool)
    >>> m[1:3, 1:3] = m[1:3, 5:7] = True  # two pieces, 2 pixels apart
    >>> r = measure_lesion(m)
    >>> r["area_px"], r["bbox"], round(r["max_diameter_px"], 3)
    (8, [1, 1, 7, 3], 6.325)
    """
    m = as_mask(mask)
    spacing = check_spacing(pixel_spacing)
    if (not isinstance(origin, tuple | list) or len(origin) != 2
            or not all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                       for v in origin)):
        raise TypeError(f"origin must be (row, col) ints, got {origin!r}")
    if min(origin) < 0:
        raise ValueError(f"origin must be at least (0, 0), got {tuple(origin)}")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    crop = m[top : rows[-1] + 1, left : cols[-1] + 1]
    check_outlines(crop, 0, "measured")
    return _entry(crop, top + int(origin[0]), left + int(origin[1]),
                  _outline_measures(crop, spacing), spacing)


def measure_checked_crop(crop: np.ndarray, top: int, left: int, spacing) -> list[dict]:
    """:func:`measure_regions` of a bool mask cropped to its foreground's bounding
    box, ``crop`` ``(h, w)``, whose top-left pixel is the mask's ``(top, left)``;
    ``spacing`` already checked (``(row_mm, col_mm)`` or None), and the outlines of
    ``crop`` too (:func:`~vectorizer._trace.check_outlines` with no minimum size)."""
    # Imported here: scipy.ndimage would add most of a second to every start of the
    # command-line tool. Its label is about twice as fast as scikit-image's here.
    from scipy import ndimage

    labels, count = ndimage.label(crop, structure=np.ones((3, 3), dtype=bool))
    # Everything below works on each region's bounding box with whole-array
    # reductions: lesions have tens of thousands of pixels, and per-pixel index
    # arrays (nonzero, sorting by label) cost several times more.
    if count == 1:  # the usual lesion: its box is the crop
        boxes = [(slice(0, crop.shape[0]), slice(0, crop.shape[1]))]
    else:
        boxes = ndimage.find_objects(labels)
    order = sorted(range(count), key=lambda k: (boxes[k][0].start, boxes[k][1].start))

    # Outline measures do not change when a region moves, so regions of the same
    # pixel pattern (specks of noise, mostly) are measured once.
    patterns: dict[tuple, tuple] = {}
    out = []
    for k in order:
        rows_slice, cols_slice = boxes[k]
        r0, r1, c0, c1 = rows_slice.start, rows_slice.stop, cols_slice.start, cols_slice.stop
        own = crop if count == 1 else labels[r0:r1, c0:c1] == k + 1
        key = (own.shape, own.tobytes()) if own.size <= _PATTERN_CACHE_PIXELS else None
        shape_measures = patterns.get(key) if key is not None else None
        if shape_measures is None:
            shape_measures = _outline_measures(own, spacing)
            if key is not None:
                patterns[key] = shape_measures
        out.append(_entry(own, r0 + top, c0 + left, shape_measures, spacing))
    return out


def _entry(own: np.ndarray, y0: int, x0: int, shape_measures: tuple, spacing) -> dict:
    """One region's :func:`measure_regions` entry: ``own`` (h, w) bool, its pixels in
    their bounding box, whose top-left pixel is the mask's ``(y0, x0)``;
    ``shape_measures`` is :func:`_outline_measures` of ``own``."""
    h, w = own.shape
    (perimeter, diameter, ends, across, across_ends), in_mm = shape_measures
    per_row = np.count_nonzero(own, axis=1)
    per_col = np.count_nonzero(own, axis=0)
    area = int(per_row.sum())
    row_mean = float(per_row @ np.arange(h)) / area
    col_mean = float(per_col @ np.arange(w)) / area
    entry = {
        "area_px": area,
        "perimeter_px": perimeter,
        "bbox": [x0, y0, x0 + w, y0 + h],
        "width_px": w,
        "height_px": h,
        "max_diameter_px": diameter,
        "max_diameter_endpoints": (ends + (x0, y0)).tolist(),
        "perpendicular_diameter_px": across,
        "perpendicular_diameter_endpoints": (across_ends + (x0, y0)).tolist(),
        "centroid": [col_mean + x0 + 0.5, row_mean + y0 + 0.5],
    }
    if spacing is not None:
        row_mm, col_mm = spacing
        entry["area_mm2"] = area * row_mm * col_mm
        entry["perimeter_mm"], entry["max_diameter_mm"] = in_mm[0], in_mm[1]
        entry["perpendicular_diameter_mm"] = in_mm[2]
        entry["max_diameter_mm_endpoints"] = (in_mm[3] + (x0, y0)).tolist()
        entry["perpendicular_diameter_mm_endpoints"] = (in_mm[4] + (x0, y0)).tolist()
        entry["width_mm"] = w * col_mm
        entry["height_mm"] = h * row_mm
    return entry


def _outline_measures(own: np.ndarray, spacing) -> tuple:
    """``(perimeter, longest chord, its ends (2, 2), perpendicular chord, its ends)``
    in pixels and ``(perimeter, longest chord, perpendicular chord)`` in mm (None
    without ``spacing``) for one region given as a bool array ``own`` (h, w) of its
    bounding box; coordinates relative to the box."""
    # The convex hull of a region's pixel squares is that of the outer corners of
    # the leftmost and rightmost pixel of each row.
    filled = own.any(axis=1)
    ys = np.flatnonzero(filled).astype(np.float64)
    left = own[filled].argmax(axis=1)
    right = own.shape[1] - 1 - own[filled, ::-1].argmax(axis=1)
    corners = np.concatenate([
        np.stack([left, ys], 1), np.stack([left, ys + 1], 1),
        np.stack([right + 1, ys], 1), np.stack([right + 1, ys + 1], 1),
    ]).astype(np.float64)
    diameter, ends, across, across_ends = _calipers(corners)

    # Trace the region alone, so that touching neighbours cannot change its outline,
    # with diagonal pixels joined as in the labelling.
    rings = []
    for traced in trace(own, turdsize=0, turnpolicy=potracecffi.TURNPOLICY_BLACK, scale=1):
        rings.extend(_ring_points(ring) for ring in traced.rings)
    perimeter = float(sum(shapely.length(shapely.linearrings(r)) for r in rings))
    in_px = (perimeter, diameter, ends, across, across_ends)
    if spacing is None:
        return in_px, None
    row_mm, col_mm = spacing
    scale = np.array([col_mm, row_mm])
    perimeter_mm = float(sum(shapely.length(shapely.linearrings(r * scale)) for r in rings))
    # Perpendicular in millimetres is not perpendicular in pixels when pixels are not
    # square, so the calipers are placed again on the scaled corners; their ends are
    # given back in pixels, for drawing the chords the mm figures measure.
    diameter_mm, ends_mm, across_mm, across_ends_mm = _calipers(corners * scale)
    return in_px, (perimeter_mm, diameter_mm, across_mm, ends_mm / scale, across_ends_mm / scale)
