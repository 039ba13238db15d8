"""The lesions of an outline and the areas each encloses: one rule for the status line,
the measurements panel, the saved record and the DICOM SR.

A lesion is an 8-connected region of the saved mask, or several of them joined by one
drawn outline that covers them all (:func:`find_lesions`). A lesion whose drawn
outlines enclose apart areas (a self-crossing ring, a bow-tie, whose loops the even-odd
mask fills both; outlines that only touch) is those areas, each measured over the mask's
pixels inside it (:meth:`Lesions.regions`), but for loops of under a tenth of its largest
area, which go to their nearest (the twist a vertex dragged across an edge leaves): the
SR gives each its own
measurement group, and the panel and the record list each as a region, so that a reader
finds the same regions, and the same sizes, wherever they read them.

Coordinates are the editor's: image pixels, x right, y down, pixel ``(r, c)`` covering
x in [c, c+1], y in [r, r+1]; masks are ``(H, W)`` bool, rows are y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import ndimage

from vectorizer._validate import as_shape

from . import _shapes

#: 8-connectivity, as :func:`vectorizer.measure_regions` finds regions.
EIGHT = np.ones((3, 3), dtype=bool)
#: An apart area of a lesion's outlines is a region of its own only when it is at least
#: this share of the lesion's largest one's area, and at least :data:`MIN_AREA_PX`: a
#: vertex dragged across an outline's edge twists it, and leaves loops of a few pixels
#: that no reader would call a lesion ("Regions 4" for two outlines). They go to the
#: nearest area kept. A bow-tie's two loops stay two regions.
MIN_AREA_SHARE = 0.1
#: See :data:`MIN_AREA_SHARE`; in square pixels.
MIN_AREA_PX = 4.0


@dataclass(frozen=True)
class Lesions:
    """The lesions of a mask and its drawn outlines (see :func:`find_lesions`).

    Attributes
    ----------
    labels : numpy.ndarray
        ``(H, W)`` int, ``ndimage.label(mask, 8-connected)``.
    groups : list of list of int
        Per lesion, its regions' labels, in the order of their first label.
    areas : list of list of shapely.Polygon
        Per lesion, the apart areas its drawn outlines enclose that are large enough to
        be a region of their own (:data:`MIN_AREA_SHARE`), largest first; none for
        a lesion no outline covers (a mask saved without its outlines).
    boxes : list of (slice, slice)
        Per label ``k``, at ``k - 1``: its ``(rows, cols)`` bounding box.
    """

    labels: np.ndarray
    groups: list[list[int]]
    areas: list[list[shapely.Polygon]]
    boxes: list[tuple[slice, slice]]

    def pixels(self, lesion: int) -> tuple[np.ndarray, tuple[slice, slice]]:
        """The pixels of lesion number ``lesion`` (an index of :attr:`groups`):
        ``(H, W)`` bool, and the ``(rows, cols)`` box that holds them all."""
        ks = self.groups[lesion]
        # Labels compared within the lesion's box only: an image can be 25 megapixels.
        box = tuple(slice(min(self.boxes[k - 1][axis].start for k in ks),
                          max(self.boxes[k - 1][axis].stop for k in ks)) for axis in (0, 1))
        pixels = np.zeros(self.labels.shape, dtype=bool)
        pixels[box] = np.isin(self.labels[box], ks)
        return pixels, box

    def regions(self, lesion: int, pixels: np.ndarray, box: tuple[slice, slice],
                ) -> list[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
        """The regions lesion number ``lesion`` encloses, largest first: ``(outer ring
        (n, 2) float32 (x, y), not closed, its pixels (h, w) bool, the (row, col) of
        their pixel (0, 0) in the image)`` each, of its :attr:`areas` that hold a pixel
        of ``pixels`` (its own, in ``box``: :meth:`pixels`); one region, its pixels all
        of them, unless its outlines enclose apart areas; none for a lesion no outline
        covers. Measure each with ``vectorizer.measure_lesion(pixels,
        origin=(row, col))``.

        A pixel is an area's when the area rasterised alone covers it, as the mask was
        rasterised (:func:`._shapes.paths_to_mask`), so the areas' pixels are the mask's;
        one on the line two areas share goes to the larger, so each of the lesion's
        pixels is measured once. A pixel of no area kept goes to the nearest area's (a small loop
        :func:`find_lesions` leaves out, or, never seen, one outside the outlines' fill).
        Loops between pixel centres only: the lesion as one region, its largest loop.

        Each region's pixels are cut to their own bounding box, and each area is
        rasterised only as far as it reaches (:func:`_canvas`): a self-crossing outline
        can have hundreds of loops, and an image 12 megapixels (an image-sized mask each
        took 12 MB and a scan of it).
        """
        areas = self.areas[lesion]
        if not areas:
            return []
        (top, bottom), (left, right) = ((s.start, s.stop) for s in box)
        if len(areas) > 1:
            inside = pixels[box]
            # Per pixel of the lesion's box, the number (from 1) of the area it goes to.
            owner = np.zeros(inside.shape, dtype=np.int32)
            for number, area in enumerate(areas, start=1):
                x0, y0, x1, y1 = area.bounds
                rows = slice(max(top, math.floor(y0)), min(bottom, math.ceil(y1)))
                cols = slice(max(left, math.floor(x0)), min(right, math.ceil(x1)))
                if rows.start >= rows.stop or cols.start >= cols.stop:
                    continue
                path = _shapes.format_path([area.exterior.coords[:-1]], exact=True)
                # Rasterised from the image's origin, as the mask was (no shifted
                # coordinates to round), and only a little past the area's reach: not
                # cut at the lesion's box, where the fill passed over an area lying
                # right of it whose crossing rounds into the box's last column.
                canvas = _canvas(x1, y1, self.labels.shape)
                drawn = _shapes.paths_to_mask([path], canvas)[rows, cols]
                within = (slice(rows.start - top, rows.stop - top),
                          slice(cols.start - left, cols.stop - left))
                owner[within][drawn & inside[within] & (owner[within] == 0)] = number
            taken = np.unique(owner[owner > 0])
            if taken.size:
                unowned = inside & (owner == 0)
                if unowned.any():
                    # The nearest area's: a twist's loop beside the loop it was twisted
                    # from, not the largest loop's, whose axes it would stretch.
                    _, (at_row, at_col) = ndimage.distance_transform_edt(
                        owner == 0, return_indices=True)
                    owner[unowned] = owner[at_row[unowned], at_col[unowned]]
                found = []
                for number, where in enumerate(ndimage.find_objects(owner), start=1):
                    if where is not None:
                        found.append((outer_ring(areas[number - 1]), owner[where] == number,
                                      (top + where[0].start, left + where[1].start)))
                return found
        # One area (the usual case: no raster to make): the lesion's pixels, all of them.
        return [(outer_ring(areas[0]), pixels[box], (top, left))]


def find_lesions(mask: np.ndarray, outlines: Sequence[str] | None = None) -> Lesions:
    """The lesions of ``mask``, and the areas each one's drawn outlines enclose.

    A lesion is an 8-connected region of ``mask`` (as :func:`vectorizer.measure_regions`
    finds them), or several of them joined by one drawn outline that covers them all: an
    outline whose edit pinched off a sliver (a neck narrower than a pixel) rasterises in
    pieces, and a region drawn over the lesion's outline to widen it is the same lesion.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)`` bool mask of the outline.
    outlines : sequence of str, optional
        The region paths ``mask`` was rasterised from; paths that enclose nothing
        (:func:`._shapes.is_region`) are left out. Without them every region is a lesion,
        with no drawn areas.

    Returns
    -------
    Lesions
    """
    labels, count, boxes = _label(mask)
    parent = list(range(count + 1))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    drawn: list[tuple[int, str]] = []  # (a label the path covers, the path)
    for path in outlines or ():
        if not _shapes.is_region(path):
            continue
        covered = _covered(labels, path)
        covered = covered[covered > 0]
        for k in covered[1:]:
            parent[root(int(k))] = root(int(covered[0]))
        if covered.size:
            drawn.append((int(covered[0]), path))
    members: dict[int, list[int]] = {}
    for k in range(1, count + 1):
        members.setdefault(root(k), []).append(k)
    heads = {head: at for at, head in enumerate(members)}
    shapes: list[list[shapely.Geometry]] = [[] for _ in members]
    for k, path in drawn:
        shapes[heads[root(k)]].append(_filled(path))
    return Lesions(labels=labels, groups=list(members.values()),
                   areas=[_apart(group) for group in shapes],
                   boxes=ndimage.find_objects(labels) if boxes is None else boxes)


def _label(mask: np.ndarray) -> tuple[np.ndarray, int, list[tuple[slice, slice]] | None]:
    """``ndimage.label(mask, 8-connected)`` and ``ndimage.find_objects`` of it: the
    labels ``(H, W)`` int32, their count, and per label its ``(rows, cols)`` box (None
    for a mask of no pixel at all, ``H`` or ``W`` 0).

    Both scan only the box of ``mask``'s pixels: over a whole 12-megapixel image they
    took about 60 ms an edit, for an outline of a few thousand pixels. The labels are
    the same: ``ndimage.label`` numbers regions in the order of a row-by-row scan, which
    the box keeps, and no region reaches out of it.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        # No pixel, no label (ndimage.label's int32 zeros). A mask of no row or column
        # gives no boxes: find_lesions raises on it, as ndimage.find_objects did at its end.
        return np.zeros(mask.shape, dtype=np.int32), 0, [] if mask.size else None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[top:bottom].any(axis=0))
    left, right = int(cols[0]), int(cols[-1]) + 1
    within, count = ndimage.label(mask[top:bottom, left:right], structure=EIGHT)
    # np.zeros leaves the pages outside the box unwritten (and unpaid for).
    labels = np.zeros(mask.shape, dtype=within.dtype)
    labels[top:bottom, left:right] = within
    boxes = [(slice(r.start + top, r.stop + top), slice(c.start + left, c.stop + left))
             for r, c in ndimage.find_objects(within)]
    return labels, count, boxes


def _covered(labels: np.ndarray, path: str) -> np.ndarray:
    """The labels (sorted, 0 among them if any of its pixels is outside the mask) of
    the pixels region path ``path`` covers, rasterised as :func:`._shapes.paths_to_mask`
    rasterises it over the whole ``(H, W)`` image ``labels`` is, which it would refuse
    alike, and the labels read within its own reach.

    The path is rasterised from the image's origin as it is (no coordinate moved, so no
    crossing rounded otherwise), on a canvas ending 3 pixels past its largest x and y
    (clipped to the image): the vectorizer's fill (``_rasterize._fill_one``) then
    computes the very crossings, columns and checks it computes on the whole image,
    whose right and bottom edges clip nothing of it that this canvas's do not. It
    writes no pixel left of column ``floor(min x) - 1`` or above row ``floor(min y)``:
    only the canvas from there on is read (``np.zeros`` leaves the rest unwritten).
    """
    height, width = labels.shape
    if height and width:  # (an image of no row or column: paths_to_mask says so below)
        # Checked as its whole rasterisation checked it (more than the vectorizer's
        # pixel limit is refused), though only a corner of it is drawn.
        as_shape((height, width))
    points = np.array([xy for ring in _shapes.parse_path(path) for xy in ring],
                      dtype=np.float64)
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    bottom, right = _canvas(x1, y1, (height, width))
    drawn = _shapes.paths_to_mask([path], (bottom, right))
    top = min(bottom, max(0, math.floor(y0) - 1))
    left = min(right, max(0, math.floor(x0) - 1))
    return np.unique(labels[top:bottom, left:right][drawn[top:, left:]])


def _canvas(x1: float, y1: float, shape: tuple[int, int]) -> tuple[int, int]:
    """The ``(rows, cols)`` of a canvas from the image's origin over which a path whose
    largest coordinates are ``x1``, ``y1`` rasterises as over the whole ``(H, W)`` image
    ``shape``: 3 pixels past them, clipped to the image (at least 1 each).

    The vectorizer's fill (``_rasterize._fill_one``) computes on it the very crossings
    and columns it computes on the whole image, and clips at its right and bottom edges
    only what lies past them, but for one thing: it skips a shape that lies right of the
    canvas's last pixel centre, though a crossing of one of its edges may round to just
    left of that centre (at a vertex on it) and set that pixel on the whole image. No
    shape lies right of column ``ceil(max x)``; the 3 pixels leave room besides for the
    last bit in which svgelements' reading of the numbers may differ from parse_path's
    (or shapely's).
    """
    return (min(shape[0], max(1, math.ceil(y1) + 3)),
            min(shape[1], max(1, math.ceil(x1) + 3)))


def outer_ring(polygon) -> np.ndarray:
    """The outer ring ``(n, 2)`` float32 (x, y) of a shapely polygon, not closed."""
    return np.asarray(polygon.exterior.coords, dtype=np.float32)[:-1]


def _filled(path: str) -> shapely.Geometry:
    """The area a drawn outline's outer ring fills: of its subpaths that enclose any,
    the one that fills the most (the first of them, when several fill as much).

    The editor and the vectorizer write a region's outer ring first, but a saved SVG of
    another writer may list a hole first: taken as the outer ring, its square was the
    lesion's area, and the DICOM SR's polyline of the lesion went round the hole."""
    # "structure": the area the even-odd rule fills, as the mask's (and as
    # _shapes.is_region reads a self-crossing ring), each loop of a bow-tie apart.
    fills = [shapely.make_valid(shapely.Polygon(ring), method="structure")
             for ring in _shapes.parse_path(path) if _shapes._encloses_area(ring)]
    return max(fills, key=lambda fill: fill.area)


def _apart(shapes: list) -> list:
    """The apart polygons of the union of a lesion's drawn outlines (``shapes``, valid
    geometries), largest first, but those too small to be a region of their own
    (:data:`MIN_AREA_SHARE`); none when they enclose no area."""
    if not shapes:
        return []
    union = shapely.unary_union(shapes)
    parts = [g for g in shapely.get_parts(union)
             if isinstance(g, shapely.Polygon) and not g.is_empty and g.area > 0]
    parts.sort(key=lambda g: g.area, reverse=True)
    if not parts:
        return []
    least = max(MIN_AREA_PX, MIN_AREA_SHARE * parts[0].area)
    return [parts[0], *(g for g in parts[1:] if g.area >= least)]
