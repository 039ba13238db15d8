"""Image preprocessing shared by training, evaluation and serving.

Every path into the networks goes through :func:`to_grey` and
:func:`prepare_input`, so that training and serving cannot drift apart.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Side of the square network input, in pixels.
INPUT_SIZE = 160

#: Human-readable description recorded in the manifest.
PREPROCESSING = (
    "grey uint8 image -> bilinear resize to INPUT_SIZE x INPUT_SIZE (aspect ratio not kept) "
    "-> float32 / 255 -> shape (1, S, S, 1)"
)


def to_grey(image) -> np.ndarray:
    """Convert an image array to 8-bit grey.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` grey, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA;
        any integer dtype or float in [0, 1] / [0, 255].

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        if arr.shape[2] == 1:
            arr = arr[..., 0]
        else:
            # ITU-R 601 luma, the same weights PIL uses for mode "L".
            rgb = arr[..., :3].astype(np.float32)
            arr = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    if arr.ndim != 2:
        raise ValueError(f"image: expected (H, W) or (H, W, C) array, got shape {arr.shape}")
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ValueError(f"image: too small ({arr.shape[1]}x{arr.shape[0]}), need at least 8x8")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"image: expected numbers, got {arr.dtype} values")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("image: contains NaN or infinite values")
    if arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
        # Signed or wider data (a CT-like int16, a float in [-1, 1], 16-bit): stretch
        # its own range to 8 bits rather than clip away what lies below 0 or above 255.
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / max(hi - lo, 1e-6))
    elif np.issubdtype(np.asarray(image).dtype, np.floating) and arr.max(initial=0) <= 1.0:
        arr = arr * 255.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def mask_from_array(mask, threshold=0) -> np.ndarray:
    """A mask array as ``(H, W)`` bool: what is drawn above ``threshold`` is lesion.

    Parameters
    ----------
    mask : array_like
        ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` grey and alpha, ``(H, W, 3)`` RGB or
        ``(H, W, 4)`` RGBA; numbers or bool. Rows are image rows, top first.
    threshold : number
        A colour value above it is lesion (127 for a JPEG's ringing edges).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` bool. With an alpha channel whose pixels are not all alike, only
        visible pixels count; and when every visible one is black, any visible pixel
        is lesion (a mask drawn in transparency alone).

    Raises
    ------
    ValueError
        Not numbers, NaN, or a shape that is no mask.
    """
    arr = np.asarray(mask)
    if arr.dtype != bool and not (np.issubdtype(arr.dtype, np.integer)
                                  or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"mask: expected numbers, got {arr.dtype} values")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise ValueError("mask: contains NaN values")
    if arr.ndim == 2:
        return arr > threshold
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"mask: expected (H, W) or (H, W, C) array, got shape {arr.shape}")
    if arr.shape[2] in (1, 3):
        return arr.max(axis=2) > threshold
    colour = arr[..., :-1].max(axis=2) > threshold
    alpha = arr[..., -1]
    if alpha.min() == alpha.max():
        return colour if alpha.max() > 0 else np.zeros_like(colour)
    if (colour & (alpha > 0)).any():
        # Drawn in colour on a transparent ground, whose hidden pixels may hold any
        # colour: what is seen counts.
        return colour & (alpha > 0)
    return alpha > 0


def resize_grey(grey: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Resize an ``(H, W)`` uint8 image to ``(size, size)`` float32 in [0, 1]."""
    img = Image.fromarray(grey, mode="L").resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def resize_mask(mask: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Resize an ``(H, W)`` bool mask to ``(size, size)`` float32 in {0, 1}."""
    img = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255, mode="L")
    img = img.resize((size, size), Image.BILINEAR)
    return (np.asarray(img) >= 128).astype(np.float32)


def prepare_input(image, size: int = INPUT_SIZE) -> np.ndarray:
    """Turn any supported image into the network's input batch.

    Returns
    -------
    numpy.ndarray
        ``(1, size, size, 1)`` float32 in [0, 1].
    """
    return resize_grey(to_grey(image), size)[None, :, :, None]


def resize_prob(prob: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a ``(S, S)`` probability map back to ``(height, width)`` float32.

    Bilinear on the float map, so thresholding happens at the image's own
    resolution and outlines stay smooth.
    """
    img = Image.fromarray(np.asarray(prob, dtype=np.float32), mode="F")
    out = np.asarray(img.resize((int(width), int(height)), Image.BILINEAR), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def resize_prob_window(prob: np.ndarray, height: int, width: int, floor: float):
    """The part of ``resize_prob(prob, height, width)`` that can reach ``floor``.

    A bilinear value is a weighted mean of its source pixels (non-negative
    weights), so an output pixel can reach ``floor`` only near a source pixel
    that does. Only that window is resampled, with Pillow's ``box`` so that
    every output pixel samples exactly where the full resize would; the
    serving path, which needs only the thresholded mask, skips most of the
    image this way.

    Parameters
    ----------
    prob : numpy.ndarray
        ``(S, S)`` probability map (any ``(h, w)`` works).
    height, width : int
        Size of the full resize.
    floor : float
        Values below this are of no interest.

    Returns
    -------
    window : numpy.ndarray
        ``(h, w)`` float32 in [0, 1], equal (to float rounding, under 1e-5) to
        the full resize at rows ``row0 .. row0 + h - 1`` and columns
        ``col0 .. col0 + w - 1``; ``(0, 0)`` when nothing can reach ``floor``.
        Outside it every value is below ``floor``.
    offset : tuple of int
        ``(row0, col0)``.
    """
    prob = np.asarray(prob, dtype=np.float32)
    # The margin absorbs rounding in the weighted mean.
    hot = prob >= floor - 1e-6
    rows = np.flatnonzero(hot.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), np.float32), (0, 0)
    cols = np.flatnonzero(hot.any(axis=0))
    (y0, y1), (x0, x1) = (
        _reach(idx[0], idx[-1], n_in, n_out)
        for idx, n_in, n_out in ((rows, prob.shape[0], height), (cols, prob.shape[1], width))
    )
    sy, sx = prob.shape[0] / height, prob.shape[1] / width
    img = Image.fromarray(prob, mode="F").resize(
        (x1 - x0, y1 - y0), Image.BILINEAR, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy)
    )
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0), (y0, x0)


def resize_prob_box(prob: np.ndarray, height: int, width: int, rows, cols) -> np.ndarray:
    """Rows ``rows`` and columns ``cols`` (slices) of ``resize_prob(prob, height, width)``.

    Only that part is resampled, with Pillow's ``box`` as in
    :func:`resize_prob_window`, so it equals the full resize to float rounding.
    """
    prob = np.asarray(prob, dtype=np.float32)
    y0, y1, x0, x1 = rows.start, rows.stop, cols.start, cols.stop
    sy, sx = prob.shape[0] / height, prob.shape[1] / width
    img = Image.fromarray(prob, mode="F").resize(
        (x1 - x0, y1 - y0), Image.BILINEAR, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy)
    )
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)


def _reach(first: int, last: int, n_in: int, n_out: int) -> tuple[int, int]:
    """Output range ``[start, stop)`` whose bilinear taps can touch source pixels
    ``first .. last`` when resizing ``n_in`` pixels to ``n_out`` (Pillow's filter:
    output ``o`` is centred on source coordinate ``(o + 0.5) * scale`` and reaches
    ``max(1, scale)`` either side), with a pixel to spare on each side."""
    scale = n_in / n_out
    support = max(1.0, scale)
    start = int(np.floor((first - 0.5 - support) / scale - 0.5))
    stop = int(np.ceil((last + 1.5 + support) / scale - 0.5)) + 1
    return max(0, start), min(n_out, stop)
