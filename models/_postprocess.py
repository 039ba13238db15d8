"""Turn a lesion probability map into a clean binary mask."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

#: Allowed values of PostProcess's numbers: (lowest, highest or None, lowest allowed).
_RANGES = {"threshold": (0.0, 1.0, False), "min_area_frac": (0.0, 1.0, True),
           "keep_relative": (0.0, 1.0, True), "min_confidence": (0.0, None, True),
           "normal_gate": (0.0, None, True), "gate_keep_confidence": (0.0, None, True)}


@dataclass(frozen=True)
class PostProcess:
    """Post-processing settings, recorded in the manifest.

    Attributes
    ----------
    threshold : float
        Probability at or above which a pixel is lesion.
    min_area_frac : float
        Components smaller than this fraction of the image area are dropped
        (speckle-sized false positives).
    keep_relative : float
        Components smaller than this fraction of the largest component are
        dropped; a second real lesion is rarely a tenth of the first.
    fill_holes : bool
        Fill enclosed holes; BUSI lesions are outlined as solid regions.
    normal_gate : float
        When the classifier's probability of "normal" is at least this, the
        whole-image mask is empty. Above 1 disables the gate. Not applied
        inside a user's box, where the user has said there is a lesion.
    min_confidence : float
        Components whose mean probability is below this are dropped. On
        normal images the network leaves faint, diffuse blobs, while on
        lesions it is confident inside the outline, so this removes false
        outlines that the classifier's gate misses. 0 disables it; like the
        gate, it is not applied inside a user's box.
    gate_keep_confidence : float
        What the gate keeps: when it fires, components whose mean probability
        is at least this survive (a confident outline is not erased because
        the classifier leans towards "normal"). Above 1 the gate empties the
        whole mask.
    """

    threshold: float = 0.5
    min_area_frac: float = 0.001
    keep_relative: float = 0.1
    fill_holes: bool = True
    normal_gate: float = 0.5
    min_confidence: float = 0.0
    gate_keep_confidence: float = 2.0

    def __post_init__(self):
        # A hand-edited manifest or override: a threshold of 1.5 would silently empty
        # every outline, so out-of-range values are refused with the field's name.
        for name, (lo, hi, lo_allowed) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"postprocess.{name}: expected a number, got {value!r}")
            if not (value > lo or (lo_allowed and value == lo)) or (hi is not None
                                                                     and not value <= hi):
                bounds = ("[" if lo_allowed else "(") + f"{lo}, " + (
                    f"{hi}]" if hi is not None else "inf)")
                raise ValueError(f"postprocess.{name}: {value!r} is outside {bounds}")
            # Plain floats: settings tuned from numpy arrays (np.float32) are written
            # to the manifest, and json cannot write numpy scalars.
            object.__setattr__(self, name, float(value))
        if not isinstance(self.fill_holes, bool | np.bool_):
            raise ValueError(f"postprocess.fill_holes: expected true or false, "
                             f"got {self.fill_holes!r}")
        object.__setattr__(self, "fill_holes", bool(self.fill_holes))

    def to_dict(self) -> dict:
        return asdict(self)


def postprocess(prob, settings: PostProcess = PostProcess(), *, shape=None, offset=(0, 0)):
    """Threshold, remove small components and fill holes.

    Parameters
    ----------
    prob : array_like
        ``(H, W)`` float probabilities in [0, 1], or a window of such a map
        (see ``shape``).
    shape : tuple of int, optional
        ``(H, W)`` of the whole map when ``prob`` is only a window of it, at
        ``offset`` = ``(row0, col0)``; everything outside the window counts as
        below the threshold. Areas are still fractions of the whole image.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` bool mask.

    Examples
    --------
    >>> p = np.zeros((50, 50)); p[10:30, 10:30] = 0.9; p[15:20, 15:20] = 0.1; p[45, 45] = 1
    >>> m = postprocess(p); int(m.sum()), bool(m[45, 45])
    (400, False)
    """
    prob = np.asarray(prob, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"prob: expected a 2-D array, got shape {prob.shape}")
    shape = prob.shape if shape is None else (int(shape[0]), int(shape[1]))
    oy, ox = int(offset[0]), int(offset[1])
    if oy < 0 or ox < 0 or oy + prob.shape[0] > shape[0] or ox + prob.shape[1] > shape[1]:
        raise ValueError(f"prob: a {prob.shape} window at {offset} does not fit in {shape}")
    out = np.zeros(shape, bool)
    hot = prob >= settings.threshold
    rows = np.flatnonzero(hot.any(axis=1))
    if rows.size == 0:
        return out
    cols = np.flatnonzero(hot.any(axis=0))
    # Work inside the bounding box: lesions cover a few percent of the image,
    # and holes cannot reach outside the box, so the result is identical.
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    mask = hot[r0:r1, c0:c1]
    # 8-connected, as the vectorizer counts regions.
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    areas[0] = 0
    image_area = shape[0] * shape[1]
    keep_min = max(settings.min_area_frac * image_area, settings.keep_relative * areas.max())
    keep = areas >= keep_min
    if settings.min_confidence > 0:
        sums = np.bincount(labels.ravel(), weights=prob[r0:r1, c0:c1].ravel(), minlength=n + 1)
        keep &= sums >= settings.min_confidence * np.maximum(areas, 1)
    keep[0] = False
    mask = keep[labels]
    if settings.fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    out[oy + r0 : oy + r1, ox + c0 : ox + c1] = mask
    return out
