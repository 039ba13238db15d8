"""Mask -> SVG, editable polygons and measurements (no model involved)."""

from __future__ import annotations

import numpy as np


class VectorizationTask:
    """Outline and measure a binary mask with the ``vectorizer`` package.

    Called with a bool ``(H, W)`` mask (rows first); returns ``width``,
    ``height``, ``svg`` (a document of the mask's size, one evenodd path per
    region), ``paths`` (one absolute ``M x,y L ... Z`` string per region with at
    most ``max_vertices`` vertices per ring, in (x, y) pixel coordinates) and
    ``regions`` (``vectorizer.measure_regions``; in mm as well when
    ``pixel_spacing=(row_mm, col_mm)`` is given).

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
            # Measuring first: it counts every hole, the strictest outline limit, and
            # refuses a hostile mask (or a bad spacing) before any tracing is paid for.
            regions = measure_regions(mask, pixel_spacing=pixel_spacing)
            svg = mask_to_svg(mask)
            paths = mask_to_paths(mask, max_vertices=max_vertices)
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
