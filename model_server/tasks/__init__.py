"""Inference tasks, one small class per model (``__call__`` and ``info()``)."""

from .classification import LABELS, ClassificationTask
from .segmentation import SegmentationTask
from .vectorization import VectorizationTask

__all__ = ["LABELS", "ClassificationTask", "SegmentationTask", "VectorizationTask"]
