"""Masks to and from PNG bytes (8-bit, 0/255, exactly the image's size)."""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._orientation import browser_orientation, turn_upright
from ._png16 import colour_samples, read_wide_colour, wide_colour_too_large, wide_colour_type
from ._pngcheck import check_chunk_count
from ._validate import MAX_PIXELS, as_mask

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow names the stream it read in its messages ("cannot identify image file
# <_io.BytesIO object at 0x7f...>"): a repr that tells the user nothing.
_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")


def mask_to_png(mask, *, compress_level: int = 6) -> bytes:
    """Encode a mask as an 8-bit greyscale PNG with values 0 and 255.

    Parameters
    ----------
    mask : array_like, shape (H, W)
        bool, or numbers that are all 0/1 or all 0/255.
    compress_level : int, 0..9
        zlib level; 1 is a few times faster than 6 and the files differ little.

    Returns
    -------
    bytes
        PNG of width W and height H; pixel (r, c) is 255 where ``mask[r, c]``.

    Notes
    -----
    The file is written here rather than by Pillow: a mask is long runs of
    equal bytes, so every row goes unfiltered and zlib's run-length strategy
    compresses it about three times smaller than Pillow's adaptive filters, in
    about half the time (this runs on every ``/predict``).
    """
    m = as_mask(mask)
    if isinstance(compress_level, bool) or not isinstance(compress_level, int | np.integer):
        raise TypeError(f"compress_level must be an int, got {type(compress_level).__name__}")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be 0..9, got {compress_level}")
    h, w = m.shape
    # Each scanline starts with its filter type, 0 (none).
    rows = np.zeros((h, w + 1), dtype=np.uint8)
    np.multiply(m, np.uint8(255), out=rows[:, 1:], casting="unsafe")
    packer = zlib.compressobj(int(compress_level), zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = packer.compress(rows) + packer.flush()
    # 8-bit greyscale, deflate, adaptive-filter method 0, no interlace.
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"".join(
        [_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b"")]
    )


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_to_mask(data) -> np.ndarray:
    """Decode a PNG mask into a bool array.

    Any PNG mode is accepted: 1-bit, 8/16-bit grey, palette, RGB and RGBA (alpha is
    ignored), 16-bit colour included (read on its 16-bit samples, where Pillow keeps
    only their high byte). A pixel is True when any of its values is above 0, as the
    BUSI masks need: 16-bit levels are not scaled down first, and a colour pixel
    counts if any channel is non-zero (a grey conversion would round a faint red to
    0), as the model server's mask decoding does.

    Parameters
    ----------
    data : bytes
        The PNG file's contents.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Raises
    ------
    TypeError
        If ``data`` is not bytes-like.
    ValueError
        If ``data`` is not a readable PNG, or is larger than 100 megapixels (a 16-bit
        colour PNG: :data:`vectorizer.MAX_WIDE_COLOUR_PIXELS`).
    """
    if isinstance(data, memoryview | bytearray):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"data must be the bytes of a PNG file, got {type(data).__name__}")
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("data is not a PNG image (bad signature)")
    try:
        check_chunk_count(data)
    except ValueError as exc:
        raise ValueError(f"data is not a readable PNG image: {exc}") from None
    # The size from the header, before Pillow, whose own bomb limits (89 and 179
    # megapixels, said in its words) would answer first and differently.
    if data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if w * h > MAX_PIXELS:
            raise ValueError(f"data: PNG size {w}x{h} is above {MAX_PIXELS} pixels")
        too_large = wide_colour_too_large(data)
        if too_large:
            raise ValueError(f"data: {too_large}")
    try:
        with warnings.catch_warnings():
            # Checked above (and again below, on what Pillow reads).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["PNG"])
            w, h = img.size
            if w < 1 or h < 1 or w * h > MAX_PIXELS:
                raise ValueError(f"data: PNG size {w}x{h} is empty or above {MAX_PIXELS} pixels")
            img.load()
            # As the model server reads a mask: turned upright by its EXIF orientation
            # where a browser reads one, like the image it outlines.
            orientation = browser_orientation(data)
            img = turn_upright(img, orientation)
        if wide_colour_type(data) is not None:  # Pillow kept only each sample's high byte
            try:
                wide = read_wide_colour(data, orientation)
            except ValueError as exc:
                raise ValueError(f"data is not a readable PNG image: {exc}") from None
            return np.ascontiguousarray(colour_samples(wide).max(axis=2) > 0)
    except ValueError:
        raise
    except (
        UnidentifiedImageError, OSError, SyntaxError, EOFError,
        Image.DecompressionBombError, Image.DecompressionBombWarning,
    ) as exc:
        reason = _OBJECT_REPR.sub("", str(exc)).strip() or type(exc).__name__
        raise ValueError(f"data is not a readable PNG image: {reason}") from None
    return image_to_mask(img)


def sixteen_bit_to_uint8(values) -> np.ndarray:
    """Scale the values of a 16-bit grey image to uint8, as both services show it.

    An 8-bit image expanded to 16 bits (every value a multiple of 257) is divided
    by 257, which gives back its very pixels, however dark. Otherwise the data are
    taken to use the smallest bit depth that holds them,
    ``bits = max(8, max_value.bit_length())``, and each value ``v`` becomes
    ``round(v * 255 / (2**bits - 1))``: full-range 16-bit data is divided by about
    257, and 12-bit data (a scanner's export, 0..4095) fills 0..255, where dividing
    by 257 would leave an almost black picture that the model outlines as one large
    lesion. The model server decodes with this rule and the annotation client shows
    images by it, so what is shown is what is segmented.

    Parameters
    ----------
    values : array_like
        Integers in [0, 65535], any shape (typically ``(H, W)``).

    Returns
    -------
    numpy.ndarray
        ``uint8``, the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> sixteen_bit_to_uint8(np.array([[0, 4095, 2048]])).tolist()
    [[0, 255, 128]]
    >>> sixteen_bit_to_uint8(np.array([[0, 65535, 257 * 100]])).tolist()
    [[0, 255, 100]]
    >>> sixteen_bit_to_uint8(np.array([[0, 200, 255]])).tolist()
    [[0, 200, 255]]
    """
    values = np.asarray(values, dtype=np.int64)
    if not np.any(values % 257):
        return (values // 257).astype(np.uint8)
    top = (1 << max(8, int(values.max()).bit_length() if values.size else 0)) - 1
    # top is odd, so v * 255 / top is never halfway between two integers: adding
    # top // 2 before flooring rounds to nearest exactly.
    return ((values * 255 + top // 2) // top).astype(np.uint8)


def wide_grey_to_uint8(image: Image.Image) -> np.ndarray | None:
    """A Pillow image of more than 8 bits of grey as uint8, as both services show it.

    16-bit (and integer ``I`` data within 0..65535) by :func:`sixteen_bit_to_uint8`;
    other integers and 32-bit float (``F``) stretched from their minimum to their
    maximum (:func:`stretch_to_uint8`).

    Parameters
    ----------
    image : PIL.Image.Image
        A loaded image of any mode.

    Returns
    -------
    numpy.ndarray or None
        ``uint8`` ``(H, W)``; None for a mode of 8 bits or fewer a channel (the
        caller converts those itself).

    Raises
    ------
    ValueError
        Float pixels that are not finite.
    """
    from ._dicom import stretch_to_uint8

    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and values.min() >= 0 and values.max() <= 65535:
            return sixteen_bit_to_uint8(values)
        return stretch_to_uint8(values)
    if image.mode == "F":
        return stretch_to_uint8(np.asarray(image, dtype=np.float64))
    return None


def image_to_mask(image: Image.Image) -> np.ndarray:
    """The foreground of a decoded mask image: every pixel with a value above 0.

    The rule of :func:`png_to_mask`, for callers that decode the file themselves
    (the model server checks the pixel count against its own limit and turns the
    mask upright by its EXIF orientation first). Grey, 1-bit, 16-bit and float modes are read
    on their raw stored values; palette and colour modes count a pixel when any
    colour channel is non-zero; alpha is ignored.

    Parameters
    ----------
    image : PIL.Image.Image
        A loaded image: 1-bit, grey, 16-bit, integer, float, grey with alpha,
        palette or RGB(A) mode.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Raises
    ------
    TypeError
        If ``image`` is not a Pillow image.
    ValueError
        For modes whose values are not "how much mask" (CMYK, YCbCr, LAB, HSV:
        their zero is not black, so a blank mask would come out full).
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL.Image.Image, got {type(image).__name__}")
    mode = image.mode
    if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
        arr = np.asarray(image)
    elif mode in ("LA", "La"):
        arr = np.asarray(image.getchannel("L"))
    elif mode in _COLOUR_MODES:  # through the palette; any colour channel, without alpha
        arr = np.asarray(image.convert("RGB")).max(axis=2)
    else:
        raise ValueError(f"unsupported mask mode {mode!r}: expected grey, palette or RGB(A)")
    return np.ascontiguousarray(arr > 0)


#: Modes :func:`image_to_mask` reads through RGB: their 0 is black.
_COLOUR_MODES = ("P", "PA", "RGB", "RGBA", "RGBa", "RGBX")
