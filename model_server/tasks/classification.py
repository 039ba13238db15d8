"""Lesion classification task: image (+ optional mask) -> normal/benign/malignant."""

from __future__ import annotations

import math

import numpy as np

from .._errors import BadRequest
from ._common import model_input_errors_as_400, model_summary, timed

LABELS = ("normal", "benign", "malignant")


class ClassificationTask:
    """Classify an ultrasound image with ``runtime.classify``.

    Parameters
    ----------
    models : ModelHolder
        Gives the process's loaded ``models.runtime.Runtime``.

    Calling the task with a uint8 image (``(H, W)`` or ``(H, W, 3)``) and an
    optional bool ``(H, W)`` mask of the lesion (e.g. the radiologist's
    corrected region) returns ``label``, ``probabilities`` (the three labels,
    summing to 1), ``model`` and ``timing_ms``.
    """

    name = "classification"

    def __init__(self, models):
        self._models = models

    def __call__(
        self, image: np.ndarray, *, mask: np.ndarray | None = None, timings: dict | None = None
    ) -> dict:
        if mask is not None and mask.shape != image.shape[:2]:
            raise BadRequest(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}; they must have the same size"
            )
        timings = {} if timings is None else timings
        runtime = self._models.runtime()
        with timed(timings, "classify"), model_input_errors_as_400():
            raw = runtime.classify(image, mask=mask)
        probabilities = {label: float(raw[label]) for label in LABELS}
        if not all(math.isfinite(p) for p in probabilities.values()):
            raise RuntimeError(f"runtime returned non-finite probabilities {probabilities}")
        label = max(LABELS, key=probabilities.__getitem__)
        return {
            "label": label,
            "probabilities": probabilities,
            "model": model_summary(runtime),
            "timing_ms": timings,
        }

    def info(self) -> dict:
        return {
            "name": self.name,
            "type": "classification",
            "description": "Normal / benign / malignant probabilities for an ultrasound image, "
            "optionally focused by a lesion mask.",
            "labels": list(LABELS),
            "input": "uint8 grey or RGB image; optional mask PNG of the same size",
            "output": ["label", "probabilities"],
            "model": self._models.info(),
        }
