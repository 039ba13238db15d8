"""Whether a JPEG that Pillow loaded without a word holds all of its scan data.

A JPEG whose entropy-coded data stops early, at an end-of-image (EOI) marker,
decodes without an error: libjpeg warns ("premature end of data segment"), but
Pillow silences libjpeg's warnings, and every block after the cut is left with
all coefficients zero, which decodes to sample value 128 in every component --
a uniform grey that used to be shown and segmented as part of the image.

The check, for a sequential JPEG (SOF0/SOF1, one scan):

1. Cheap filter. A cut leaves the last block grey, so an image whose
   bottom-right pixel is not exactly 128 grey (almost every real image) is
   complete as far as this check can tell, at no cost.
2. Proof. Otherwise the file is decoded again without its EOI marker, followed
   by a few stuffed 0xFF bytes. libjpeg then has no marker to stop at: when the
   scan data is complete, every row is out before it needs more, and Pillow
   ends the image as it does at an EOI; when the scan data ends early, the
   padding runs out long before the remaining blocks do, and Pillow reports the
   file truncated. 16 bytes are twice the look-ahead libjpeg-turbo's Huffman
   decoder asks for (57 bits), so a complete file never runs short.

Not caught: a cut inside the last block (up to 16x16 pixels of it), and
progressive or multi-scan JPEGs, which libjpeg reads to the EOI before giving a
single row (a cut in their first scan leaves the same grey; a cut in a later
one leaves a complete picture at lower fidelity). None of these is refused
wrongly: a complete file passes both steps.
"""

from __future__ import annotations

import io
import re

from PIL import Image, JpegImagePlugin

# A marker inside entropy-coded data: 0xFF followed by neither a stuffed 0x00 nor a
# restart marker (RST0-RST7).
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
# Start-of-frame markers of sequential Huffman-coded JPEGs: baseline and extended.
_SEQUENTIAL_FRAMES = frozenset({0xC0, 0xC1})
_OTHER_FRAMES = frozenset(range(0xC2, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG, DAC
# 0xFF 0x00 is a stuffed 0xFF: all-ones entropy data, never a marker.
_PROBE_PADDING = b"\xff\x00" * 16


def check_jpeg_complete(image: Image.Image, data: bytes) -> None:
    """Raise ValueError when a sequential JPEG's scan data ends before its last block.

    Parameters
    ----------
    image : PIL.Image.Image
        ``data`` opened and loaded by Pillow, before any EXIF orientation.
    data : bytes
        The whole JPEG file.

    Raises
    ------
    ValueError
        Saying what is wrong, in words that follow "could not decode the JPEG image: ".
    """
    if not _ends_in_grey(image):
        return
    end = _single_scan_end(data)
    if end is None:
        return
    probe = JpegImagePlugin.JpegImageFile(io.BytesIO(data[:end] + _PROBE_PADDING))
    try:
        probe.load()
    except OSError:
        raise ValueError(
            "its scan data ends before its last rows: an end-of-image marker cuts it short, "
            "and the missing rows would be grey (truncated)"
        ) from None


def _ends_in_grey(image: Image.Image) -> bool:
    """Whether the bottom-right pixel is what a block of zero coefficients decodes to.

    That is 128 in grey and in RGB from YCbCr; other colour spaces (CMYK, YCCK) are
    always checked.
    """
    corner = image.getpixel((image.width - 1, image.height - 1))
    if image.mode == "L":
        return corner == 128
    if image.mode == "RGB":
        return corner == (128, 128, 128)
    return True


def _single_scan_end(data: bytes) -> int | None:
    """Offset of the marker that ends the one scan of a sequential JPEG, or None.

    None for a progressive, lossless or arithmetic-coded frame, for more than one
    scan, and for a marker structure this walk does not follow (Pillow read the file,
    so it is not refused for that here).
    """
    position, frame, scan_end = 2, None, None
    while position + 2 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0xD9:  # EOI
            return scan_end if frame in _SEQUENTIAL_FRAMES else None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            position += 2
            continue
        if marker in _SEQUENTIAL_FRAMES or marker in _OTHER_FRAMES:
            frame = marker
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:  # SOS: entropy-coded data up to the next marker
            if scan_end is not None:
                return None  # a second scan
            found = _MARKER.search(data, position)
            if found is None:
                return None
            position = scan_end = found.start()
    return None
