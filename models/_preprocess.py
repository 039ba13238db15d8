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
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("image: contains NaN or infinite values")
    if np.issubdtype(np.asarray(image).dtype, np.floating) and arr.max(initial=0) <= 1.0:
        arr = arr * 255.0
    elif arr.max(initial=0) > 255:
        # 16-bit or wider data: stretch its own range to 8 bits.
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / max(hi - lo, 1e-6))
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


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
