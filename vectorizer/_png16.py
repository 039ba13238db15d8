"""16-bit colour PNGs (RGB, grey+alpha, RGBA) read on their full 16-bit values.

Pillow has no 16-bit colour mode: it decodes PNG colour types 2, 4 and 6 at bit
depth 16 into 8-bit ``RGB``, ``LA`` and ``RGBA`` by keeping each sample's high
byte. A mask of 0/1 then reads as empty, and 12-bit data as a nearly black
picture (audit 802 F1). Such files are decoded here with pypng instead, on their
stored samples, once Pillow has opened, size-checked and loaded them (so every
other check of the readers applies to them unchanged); 16-bit grey and all other
PNGs stay with Pillow.

pypng is pure Python: it reads about a megapixel every 2 to 5 s on the test
machine (rows filtered with Paeth the slowest), so these files are read up to
:data:`MAX_WIDE_COLOUR_PIXELS`.

Arrays are numpy ``(row, col, sample)``.
"""

from __future__ import annotations

import zlib

import numpy as np
import png
from PIL import Image

from ._orientation import turn_upright

#: PNG colour types whose 16-bit samples Pillow reduces to 8 bits, and their names.
WIDE_COLOUR_TYPES = {2: "RGB", 4: "grey+alpha", 6: "RGBA"}
#: Most pixels of a 16-bit colour PNG that is read: 16 s (RGB) to 19 s (RGBA) for
#: read_image_file at this size with every row Paeth-filtered, 2026-12-07, under the
#: server's 120 s worker timeout; 16-bit grey and 8-bit colour, which Pillow decodes
#: in C, have only the readers' own limits.
MAX_WIDE_COLOUR_PIXELS = 4_000_000


def wide_colour_type(data: bytes) -> int | None:
    """The colour type (2, 4 or 6) of a 16-bit colour PNG, from its IHDR; else None.

    Examples
    --------
    >>> import struct
    >>> ihdr = b"\\x00\\x00\\x00\\x0dIHDR" + struct.pack(">IIBBBBB", 9, 9, 16, 2, 0, 0, 0)
    >>> wide_colour_type(b"\\x89PNG\\r\\n\\x1a\\n" + ihdr)
    2
    >>> wide_colour_type(b"\\x89PNG\\r\\n\\x1a\\n" + ihdr[:16] + bytes([8, 2])) is None
    True
    """
    if len(data) >= 26 and data[12:16] == b"IHDR" and data[24] == 16 and data[25] in (2, 4, 6):
        return data[25]
    return None


def wide_colour_too_large(data: bytes) -> str | None:
    """Why a 16-bit colour PNG is too large to be read here, from its IHDR; else None."""
    kind = wide_colour_type(data)
    if kind is None:
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if width * height <= MAX_WIDE_COLOUR_PIXELS:
        return None
    return (f"a 16-bit {WIDE_COLOUR_TYPES[kind]} PNG of {width}x{height} pixels is over the "
            f"{MAX_WIDE_COLOUR_PIXELS} pixels such files are read up to (their samples are "
            "decoded in pure Python); save it as 16-bit grey or 8-bit colour")


def read_wide_colour(data: bytes, orientation: int = 1) -> np.ndarray:
    """The stored samples of a 16-bit colour PNG, turned upright by ``orientation``.

    Interlaced (Adam7) files included. The caller has checked the file (size, chunk
    count, completeness) with Pillow first.

    Parameters
    ----------
    data : bytes
        The whole PNG file, of a colour type in :data:`WIDE_COLOUR_TYPES` at depth 16.
    orientation : int
        The EXIF orientation to turn the samples by (1: as stored), as
        :func:`vectorizer.turn_upright` turns a Pillow image.

    Returns
    -------
    numpy.ndarray
        ``uint16`` ``(H, W, C)``: C is 3 (RGB), 2 (grey, alpha) or 4 (RGBA).

    Raises
    ------
    ValueError
        The file is not such a PNG, or pypng cannot decode it (saying why).
    """
    if wide_colour_type(data) is None:
        raise ValueError("data is not a 16-bit RGB, grey+alpha or RGBA PNG")
    try:
        width, height, samples, info = png.Reader(bytes=data).read_flat()
    except (png.Error, zlib.error, EOFError, ValueError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    planes = int(info["planes"])
    values = np.frombuffer(samples, dtype=np.uint16).reshape(height, width, planes)
    if orientation == 1:
        return values
    # Each plane as a Pillow I;16 image, so the turn is exactly turn_upright's.
    return np.stack(
        [np.asarray(turn_upright(Image.fromarray(np.ascontiguousarray(values[..., k])),
                                 orientation)) for k in range(planes)],
        axis=2,
    )


def colour_samples(values: np.ndarray) -> np.ndarray:
    """The colour samples of :func:`read_wide_colour`'s array, alpha left out:
    ``(H, W, 1)`` grey or ``(H, W, 3)`` RGB."""
    return values[..., :1] if values.shape[2] == 2 else values[..., :3]
