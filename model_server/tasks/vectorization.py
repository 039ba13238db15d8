"""Mask -> SVG, editable polygons and measurements (no model involved)."""

from __future__ import annotations

import numpy as np

#: Regions and holes of at most this many pixels are left out: the tracers'
#: ``turdsize`` (their default), applied to the mask before it is measured too, since
#: measuring the mask as it was gave ``regions`` a speck's entry that no path has (so
#: ``regions[i]`` stopped describing ``paths[i]`` on 18 of BUSI's ground-truth masks)
#: and a region's area counted pinholes its outline fills.
SPECK_PIXELS = 2


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
        from vectorizer import outline_mask

        from ._common import timed, vectorizer_errors_as_400

        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
        mask = mask.astype(bool, copy=False)
        timings = {} if timings is None else timings
        with timed(timings, "vectorize"), vectorizer_errors_as_400():
            # One call, not measure_regions, mask_to_paths and mask_to_svg in turn: it
            # drops the specks and counts the outlines with the same labellings, which
            # each of those repeats (about 2 ms of a lesion's 8). It refuses as they
            # would, a hostile mask (or a bad spacing) before any tracing is paid for.
            outline = outline_mask(mask, max_vertices, turdsize=SPECK_PIXELS,
                                   pixel_spacing=pixel_spacing)
        return {
            "width": int(mask.shape[1]),
            "height": int(mask.shape[0]),
            "svg": outline.svg,
            "paths": outline.paths,
            # measure_regions already returns plain Python numbers.
            "regions": outline.regions,
        }

    def info(self) -> dict:
        return {
            "name": self.name,
            "type": "vectorization",
            "description": "Binary mask to SVG, editable polygons and region measurements.",
            "input": "mask PNG (0/255), any size",
            "output": ["svg", "paths", "regions"],
        }
