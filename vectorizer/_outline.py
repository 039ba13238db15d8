"""A mask's SVG, editable paths and measurements at once, with its specks dropped.

The model server answers every ``/predict`` with all three. Each public function
checks the mask's outlines on its own before tracing (two labellings of the
foreground's bounding box, the costliest part of a lesion's vectorization after
the simplification), and dropping the specks first took two more: done here, the
specks are dropped and the outlines counted with the same two labellings, once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._measure import check_spacing, measure_checked_crop
from ._polygons import checked_mask_to_paths
from ._svg import check_trace_params, checked_mask_to_svg
from ._trace import boundary_edges, check_outline_count, check_outline_length
from ._validate import as_mask, check_int


class MaskOutline(NamedTuple):
    """What :func:`outline_mask` gives: the mask it outlined and its three forms."""

    mask: np.ndarray
    """bool ``(H, W)``: the input without its specks, which the other three describe."""
    svg: str
    """:func:`~vectorizer.mask_to_svg` of ``mask``."""
    paths: list[str]
    """:func:`~vectorizer.mask_to_paths` of ``mask``."""
    regions: list[dict]
    """:func:`~vectorizer.measure_regions` of ``mask``; ``regions[i]`` measures the
    region ``paths[i]`` outlines."""


def despeckle(mask: np.ndarray, max_pixels: int) -> tuple[np.ndarray, int]:
    """Drop a bool ``(H, W)`` mask's specks and count its outlines.

    Returns the mask without 8-connected regions of at most ``max_pixels`` pixels and
    with its holes (4-connected background enclosed by a region) that small filled,
    as the tracers' ``turdsize`` drops them; and the number of regions plus holes
    left, which is :func:`~vectorizer._trace.count_outlines` of that mask with any
    minimum size (none is left at or under ``max_pixels``).
    """
    from scipy import ndimage

    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return mask, 0
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # The foreground's bounding box with a ring of background around it, so that the
    # background outside every region is one component, the ring's.
    crop = np.pad(mask[r0:r1, c0:c1], 1)
    labels, n = ndimage.label(crop, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = sizes <= max_pixels
    small[0] = False
    if small.any():
        crop[small[labels]] = False
    regions = n - int(np.count_nonzero(small))
    # Holes are labelled after the specks go: a speck in a hole is part of it then.
    labels, n = ndimage.label(~crop)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    outside = labels[0, 0]
    small = sizes <= max_pixels
    small[0] = small[outside] = False
    if small.any():
        # A hole is enclosed by one region, so filling it joins no regions.
        crop[small[labels]] = True
    holes = n - 1 - int(np.count_nonzero(small))
    if regions == 0:
        return np.zeros_like(mask), 0
    out = np.zeros_like(mask)
    out[r0:r1, c0:c1] = crop[1:-1, 1:-1]
    return out, regions + holes


def outline_mask(mask, max_vertices=32, *, turdsize=2, pixel_spacing=None) -> MaskOutline:
    """Outline and measure a mask as the model server answers it.

    The same as dropping the mask's specks (regions and holes of at most ``turdsize``
    pixels), then calling :func:`~vectorizer.measure_regions`,
    :func:`~vectorizer.mask_to_paths` and :func:`~vectorizer.mask_to_svg` on what is
    left, with the same refusals, in about two thirds of the time: the outlines are
    counted once, by the labellings that drop the specks.

    Parameters
    ----------
    mask : array_like, shape (H, W)
        bool, or numbers that are all 0/1 or all 0/255. Pixel ``(r, c)`` covers
        ``x in [c, c+1]``, ``y in [r, r+1]``.
    max_vertices : int >= 3, default 32
        The paths' vertex budget per ring (see :func:`~vectorizer.mask_to_paths`).
    turdsize : int >= 0, default 2
        Regions and holes of at most this many pixels are left out of all three.
    pixel_spacing : (row_mm, col_mm), optional
        Adds the millimetre measures (see :func:`~vectorizer.measure_regions`).

    Returns
    -------
    MaskOutline
        ``mask`` (the input without its specks), ``svg``, ``paths`` and ``regions``.

    Raises
    ------
    TypeError, ValueError
        On a bad mask or parameter, or a mask any of the three functions refuses, with
        their messages (the outline limits are worded as ``measure_regions``'s, which
        is the strictest: it counts holes of any size).

    Examples
    --------
    >>> import numpy as np
    >>> from vectorizer import outline_mask
    >>> m = np.zeros((6, 8), bool)
    >>> m[1:4, 1:5] = True
    >>> m[5, 7] = True  # a speck: left out of all three
    >>> out = outline_mask(m, pixel_spacing=(0.5, 0.5))
    >>> out.paths, out.regions[0]["area_mm2"], int(out.mask.sum())
    (['M 1,1 L 5,1 L 5,4 L 1,4 Z'], 3.0, 12)
    """
    m = as_mask(mask)
    # In the order the three functions in turn would refuse them: the spacing first.
    spacing = check_spacing(pixel_spacing)
    max_vertices = check_int(max_vertices, "max_vertices", 3, 1_000_000)
    turdsize, alphamax, opttolerance = check_trace_params(turdsize, 1.0, 0.2)
    m, outlines = despeckle(m, turdsize)
    check_outline_length(boundary_edges(m), "measured")
    check_outline_count(outlines, "measured")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        regions = []
    else:
        cols = np.flatnonzero(m.any(axis=0))
        top, left = int(rows[0]), int(cols[0])
        crop = m[top : rows[-1] + 1, left : cols[-1] + 1]
        regions = measure_checked_crop(crop, top, left, spacing)
    # The paths before the SVG: they refuse outlines too long to edit as soon as they
    # are (a noise mask once held a worker for 7 s), before the SVG is traced.
    paths = checked_mask_to_paths(m, max_vertices, turdsize)
    svg = checked_mask_to_svg(m, turdsize, alphamax, opttolerance)
    return MaskOutline(mask=m, svg=svg, paths=paths, regions=regions)
