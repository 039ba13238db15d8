"""Lesion segmentation task: image (+ optional box) -> mask, outlines, measurements."""

from __future__ import annotations

import numpy as np

from ._common import model_input_errors_as_400, model_summary, timed
from .vectorization import VectorizationTask


class SegmentationTask:
    """Segment the lesion in an ultrasound image with ``runtime.predict_mask``.

    Parameters
    ----------
    models : ModelHolder
        Gives the process's loaded ``models.runtime.Runtime``.

    Calling the task with a uint8 image (``(H, W)`` grey or ``(H, W, 3)``
    RGB) returns a dict with ``mask`` (bool ``(H, W)``, the image's size),
    ``model`` and ``timing_ms``, plus the vectorizer's ``svg``, ``paths`` and
    ``regions`` unless ``vectorize=False``. ``box=(x0, y0, x1, y1)`` in
    pixels (x = column, integer pixel edges) restricts the segmentation to
    that region.
    """

    name = "segmentation"

    def __init__(self, models, vectorization: VectorizationTask | None = None):
        self._models = models
        self._vectorize = vectorization or VectorizationTask()

    def __call__(
        self,
        image: np.ndarray,
        *,
        box: tuple[int, int, int, int] | None = None,
        max_vertices: int = 32,
        pixel_spacing: tuple[float, float] | None = None,
        vectorize: bool = True,
        timings: dict | None = None,
    ) -> dict:
        timings = {} if timings is None else timings
        runtime = self._models.runtime()
        with timed(timings, "segment"), model_input_errors_as_400():
            mask = np.asarray(runtime.predict_mask(image, box=box), dtype=bool)
        if mask.shape != image.shape[:2]:
            raise RuntimeError(f"runtime returned a mask of shape {mask.shape} for {image.shape}")
        result = {"mask": mask, "model": model_summary(runtime), "timing_ms": timings}
        if vectorize:
            result.update(
                self._vectorize(
                    mask, max_vertices=max_vertices, pixel_spacing=pixel_spacing, timings=timings
                )
            )
        return result

    def info(self) -> dict:
        return {
            "name": self.name,
            "type": "segmentation",
            "description": "Breast-lesion segmentation of an ultrasound image, "
            "optionally inside a box.",
            "labels": ["lesion"],
            "input": "uint8 grey or RGB image, any size; optional box x0,y0,x1,y1",
            "output": ["mask", "svg", "paths", "regions"],
            "model": self._models.info(),
        }
