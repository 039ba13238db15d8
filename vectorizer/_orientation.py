"""The EXIF orientation of a PNG or JPEG file, read where browsers read it.

A radiologist sees the image as the browser shows it, so the model must see the
same pixels and the saved mask must lie in that frame. Pillow's ``getexif`` is
more lenient than a browser: it also takes an orientation from an XMP packet, from
ImageMagick's ``Raw profile type exif`` text chunk, from a PNG ``eXIf`` chunk
after the image data, and from an orientation stored with the wrong type or count.
Chromium ignores all of these and shows such a file as stored; turning it here put
the scan on its side for the model and in the saved files while any viewer showed it
upright.

The rule, as Chromium applies it: in the first segment or chunk that holds EXIF, the
first tag 0x0112 of the first image file directory that is of type SHORT and count 1
(an entry of another type or count is passed over), with a value 1-8. JPEG: an APP1
segment starting ``Exif\\0``, anywhere before the first scan (SOS), stray bytes between
segments skipped as libjpeg skips them. PNG: an ``eXIf`` chunk after ``IHDR`` and
before the first ``IDAT``. Anything else is orientation 1, as stored.
"""

from __future__ import annotations

import zlib

from PIL import Image

from ._pngcheck import PNG_SIGNATURE, png_chunks

_ORIENTATION_TAG = 0x0112
_SHORT = 3
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}
#: Markers walked before giving up: a camera writes a dozen before the scan, and a file
#: of millions of empty segments would cost seconds of Python (audit 709).
_MAX_SEGMENTS = 100_000

#: How each orientation is turned upright (as Pillow's ``ImageOps.exif_transpose``).
_TURN = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def browser_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) a browser applies to the PNG or JPEG file ``data``.

    Parameters
    ----------
    data : bytes
        The whole file. Other formats, and files whose EXIF cannot be read, give 1.

    Returns
    -------
    int
        1 (as stored) to 8, in the EXIF numbering.
    """
    data = bytes(data)
    if data.startswith(b"\xff\xd8"):
        exif = _jpeg_exif(data)
    elif data.startswith(PNG_SIGNATURE):
        exif = _png_exif(data)
    else:
        exif = None
    return _tiff_orientation(exif) if exif else 1


def turn_upright(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` turned as EXIF ``orientation`` says; ``image`` itself when it is 1.

    Coordinates: the result's pixel (x, y) is what a browser draws at (x, y).
    """
    turn = _TURN.get(orientation)
    return image if turn is None else image.transpose(turn)


def _jpeg_exif(data: bytes) -> bytes | None:
    """The TIFF data of the first ``Exif`` APP1 segment before the first scan."""
    pos = 2
    for _ in range(_MAX_SEGMENTS):
        if pos + 4 > len(data):
            return None
        if data[pos] != 0xFF:
            # Stray bytes before a marker: libjpeg skips to the next 0xFF, and so do we.
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return None
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (_SOS, _EOI):
            return None
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2:
            return None
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00"):
            return segment[6:]
        pos += 2 + length
    return None


def _png_exif(data: bytes) -> bytes | None:
    """The content of the ``eXIf`` chunk before the first ``IDAT``."""
    for number, (kind, start, length) in enumerate(png_chunks(data)):
        if number == 0 and kind != b"IHDR":  # browsers do not show such a file at all
            return None
        if kind in (b"IDAT", b"IEND") or number >= _MAX_SEGMENTS:
            return None
        if kind == b"eXIf":
            content = data[start:start + length]
            crc = data[start + length:start + length + 4]
            # A chunk that fails its CRC is dropped, as libpng drops it (and the reader).
            if crc != zlib.crc32(kind + content).to_bytes(4, "big"):
                return None
            return content
    return None


def _tiff_orientation(tiff: bytes) -> int:
    """Orientation from the first IFD of EXIF's TIFF data; 1 if absent or malformed."""
    if tiff[:4] == b"II*\x00":
        order = "little"
    elif tiff[:4] == b"MM\x00*":
        order = "big"
    else:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd < 8 or ifd + 2 > len(tiff):
        return 1
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i]
        if len(entry) < 12:
            return 1
        if int.from_bytes(entry[0:2], order) != _ORIENTATION_TAG:
            continue
        kind, n = int.from_bytes(entry[2:4], order), int.from_bytes(entry[4:8], order)
        if kind != _SHORT or n != 1:
            continue  # Chromium passes over a malformed entry to a later, proper one
        value = int.from_bytes(entry[8:10], order)
        return value if 1 <= value <= 8 else 1
    return 1
