"""Mask -> SVG, editable polygons and measurements (no model involved)."""

from __future__ import annotations

import numpy as np

#: Regions and holes of at most this many pixels are left out: the tracers'
#: ``turdsize`` (their default), applied to the mask before it is measured too.
SPECK_PIXELS = 2


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """``mask`` without 8-connected regions of at most :data:`SPECK_PIXELS` pixels and
    with holes that small filled: what the tracers outline.

    The tracers drop those; measuring the mask as it was gave ``regions`` a speck's entry
    that no path has, so ``regions[i]`` stopped describing ``paths[i]`` (18 of BUSI's
    ground-truth masks), and a region's area counted pinholes its outline fills.
    """
    from skimage import morphology

    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return mask
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Only the foreground's bounding box, with a ring of background around it: labelling
    # the whole image cost 7 ms on a BUSI mask, and a notch at the image's edge is open
    # to the outside, not a hole.
    crop = np.pad(mask[r0:r1, c0:c1], 1)
    crop = morphology.remove_small_objects(crop, max_size=SPECK_PIXELS, connectivity=2)
    # Holes are the background's 4-connected components, the complement of 8-connected
    # regions.
    crop = morphology.remove_small_holes(crop, max_size=SPECK_PIXELS, connectivity=1)
    out = np.zeros_like(mask)
    out[r0:r1, c0:c1] = crop[1:-1, 1:-1]
    return out


class VectorizationTask:
    """Outline and measure a binary mask with the ``vectorizer`` package.

    Called with a bool ``(H, W)`` mask (rows first); returns ``width``,
    ``height``, ``svg`` (a document of the mask's size, one evenodd path per
    region), ``paths`` (one absolute ``M x,y L ... Z`` string per region with at
    most ``max_vertices`` vertices per ring, in (x, y) pixel coordinates) and
    ``regions`` (``vectorizer.measure_regions``; in mm as well when
    ``pixel_spacing=(row_mm, col_mm)`` is given), ``regions[i]`` measuring the region
    ``paths[i]`` outlines. Regions and holes of at most :data:`SPECK_PIXELS` pixels
    are left out of all three.

    A ``ValueError`` from the vectorizer (a mask it refuses, such as one with
    too many regions, or a pixel spacing out of its range) is a 400.
    """

    name = "vectorization"

    def __call__(
        self,
        mask: np.ndarray,
        *,
        max_vertices: int = 32,
        pixel_spacing: tuple[float, float] | None = None,
        timings: dict | None = None,
    ) -> dict:
        from vectorizer import mask_to_paths, mask_to_svg, measure_regions

        from ._common import timed, vectorizer_errors_as_400

        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
        mask = mask.astype(bool, copy=False)
        timings = {} if timings is None else timings
        with timed(timings, "vectorize"), vectorizer_errors_as_400():
            mask = _without_specks(mask)
            # Measuring first: it counts every hole, the strictest outline limit, and
            # refuses a hostile mask (or a bad spacing) before any tracing is paid for.
            # Then the paths, which refuse a mask whose outlines are too long as soon
            # as they are (a noise mask held a worker for 7 s), before the SVG.
            regions = measure_regions(mask, pixel_spacing=pixel_spacing)
            paths = mask_to_paths(mask, max_vertices=max_vertices)
            svg = mask_to_svg(mask)
        return {
            "width": int(mask.shape[1]),
            "height": int(mask.shape[0]),
            "svg": svg,
            "paths": paths,
            # measure_regions already returns plain Python numbers.
            "regions": regions,
        }

    def info(self) -> dict:
        return {
            "name": self.name,
            "type": "vectorization",
            "description": "Binary mask to SVG, editable polygons and region measurements.",
            "input": "mask PNG (0/255), any size",
            "output": ["svg", "paths", "regions"],
        }
