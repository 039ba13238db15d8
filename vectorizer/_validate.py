"""Input checks shared by the public functions.

Every public function calls these at its top so that bad input fails early with a
``ValueError`` or ``TypeError`` naming the offending parameter, never deeper inside
numpy, potrace or svgelements with a confusing message.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

# Masks larger than this are refused: 100 megapixels is far beyond any ultrasound frame
# and keeps a hostile input from exhausting memory.
MAX_PIXELS = 100_000_000


def as_mask(mask, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as a C-contiguous 2-D bool array, checking that it is binary.

    Parameters
    ----------
    mask : array_like, shape (H, W)
        bool, or numbers that are all 0/1 or all 0/255.
    name : str
        Parameter name used in error messages.

    Raises
    ------
    TypeError
        If ``mask`` is not array-like or has a non-numeric dtype.
    ValueError
        If ``mask`` is not 2-D, is empty, is too large, or is not binary.
    """
    if isinstance(mask, str | bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be a 2-D numpy array, got {type(mask).__name__}")
    try:
        arr = np.asarray(mask)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 2-D numpy array: {exc}") from None
    if arr.dtype == object or not (
        arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must have a bool, integer or float dtype, got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got {arr.shape}")
    if arr.size > MAX_PIXELS:
        raise ValueError(f"{name} has {arr.size} pixels, more than the limit of {MAX_PIXELS}")
    if arr.dtype == bool:
        return np.ascontiguousarray(arr)
    nonzero = arr != 0
    if nonzero.any():
        top = arr[nonzero]
        # One pass over the foreground only; all values must agree on one "on" value.
        if not ((top == 1).all() or (top == 255).all()):
            bad = top[(top != 1) & (top != 255)]
            example = bad[0] if bad.size else "a mix of 1 and 255"
            raise ValueError(
                f"{name} must be binary (bool, 0/1 or 0/255), found value {example}"
            )
    return np.ascontiguousarray(nonzero)


def as_shape(shape, name: str = "shape") -> tuple[int, int]:
    """Return ``shape`` as ``(H, W)`` positive ints or raise naming ``name``."""
    if isinstance(shape, str | bytes) or not hasattr(shape, "__len__"):
        raise TypeError(f"{name} must be a (height, width) pair, got {type(shape).__name__}")
    if len(shape) != 2:
        raise ValueError(f"{name} must be a (height, width) pair, got {len(shape)} values")
    out = []
    for v in shape:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral | float | np.floating):
            raise TypeError(f"{name} values must be integers, got {v!r}")
        # A float must be whole and finite (int() of infinity overflows); an int may be
        # too large for a float, and is refused by the pixel limit below.
        if not isinstance(v, numbers.Integral) and (not math.isfinite(v) or v != int(v)):
            raise ValueError(f"{name} values must be whole numbers, got {v!r}")
        v = int(v)
        if v < 1:
            raise ValueError(f"{name} values must be at least 1, got {v}")
        out.append(v)
    if out[0] * out[1] > MAX_PIXELS:
        raise ValueError(f"{name} {tuple(out)} is more than the limit of {MAX_PIXELS} pixels")
    return out[0], out[1]


def check_int(value, name: str, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]`` or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise ValueError(f"{name} must be at least {minimum}{upper}, got {value}")
    return value


def check_float(value, name: str, minimum: float, maximum: float) -> float:
    """Return ``value`` as a finite float in ``[minimum, maximum]`` or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (minimum <= value <= maximum):  # also rejects NaN
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value
