"""The lesion crop: the benign/malignant classifier's input, shared by training and serving.

The multi-task U-Net sees the whole image at 160x160, where a 1 cm lesion is
a dozen pixels wide. The lesion classifier looks again at the lesion alone,
cut from the full-resolution image: a square around the mask's bounding box
with a margin of context on every side (margins and posterior shadowing are
what separate benign from malignant on ultrasound).

Coordinates: images and masks are numpy ``(row, col)`` arrays; boxes are
``(x0, y0, x1, y1)`` in pixels, x along columns.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Side of the classifier's square input, in pixels.
CROP_SIZE = 96
#: Context on each side of the lesion, as a fraction of the box's longer side.
MARGIN = 0.3
#: Training cuts a wider crop once and zooms into it at random (see train_lesion).
CONTEXT_SIZE = 128
CONTEXT_MARGIN = 0.6

#: Human-readable description recorded in the manifest.
CROP_PREPROCESSING = (
    "square around the lesion mask's bounding box, side = longer side x (1 + 2 x margin), "
    "centred on the box, zero outside the image -> antialiased bilinear resize to "
    "crop_size -> float32 / 255 -> shape (1, crop_size, crop_size, 1)"
)


def lesion_box(mask, margin=MARGIN):
    """The square crop box around a mask.

    Parameters
    ----------
    mask : array_like
        ``(H, W)`` bool lesion mask.
    margin : float
        Context added on each side, as a fraction of the bounding box's longer side.

    Returns
    -------
    tuple of 4 int or None
        ``(x0, y0, x1, y1)``, half-open, possibly reaching outside the image;
        None for an empty mask.
    """
    mask = np.asarray(mask, bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(r1 - r0, c1 - c0) * (1.0 + 2.0 * margin)
    half = max(side / 2.0, 4.0)  # a one-pixel mask still gets a usable window
    cy, cx = (r0 + r1) / 2.0, (c0 + c1) / 2.0
    y0, x0 = int(np.floor(cy - half)), int(np.floor(cx - half))
    n = int(np.ceil(2 * half))
    return x0, y0, x0 + n, y0 + n


def lesion_crop(grey, mask, size=CROP_SIZE, margin=MARGIN):
    """Cut the square around the lesion and resize it for the classifier.

    Parameters
    ----------
    grey : numpy.ndarray
        ``(H, W)`` uint8 image.
    mask : array_like
        ``(H, W)`` bool lesion mask of the same size.
    size : int
        Side of the output.
    margin : float
        See :func:`lesion_box`.

    Returns
    -------
    numpy.ndarray or None
        ``(size, size)`` float32 in [0, 1], zero where the square leaves the
        image; None when the mask is empty.
    """
    box = lesion_box(mask, margin)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    h, w = grey.shape
    # Pad only as far as the square leaves the image, so a big image is not copied whole.
    pad = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)))
    window = grey[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    window = np.pad(window, pad)
    # PIL widens its bilinear kernel when shrinking (antialiasing), so a big lesion does not alias.
    out = Image.fromarray(np.ascontiguousarray(window)).resize((size, size), Image.BILINEAR)
    return np.asarray(out, np.float32) / 255.0
