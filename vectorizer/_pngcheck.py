"""Whether a PNG that Pillow loaded without a word holds all of its image data.

Pillow checks the CRC of the chunks it reads while opening a PNG, but not of the
image data (IDAT) and IEND, and its zlib decoder reports "done, no error" when
the compressed stream ends, validly, before the last row: the rows it never
wrote stay zero. Both files are damaged, and libpng (so a browser) refuses the
first; :func:`check_png_complete` refuses both.

The other way round, Pillow refuses a PNG for a bad CRC in any chunk, where libpng
only warns about an ancillary chunk's (text, EXIF, colour profile...) and drops it,
and a browser shows the image: :func:`without_damaged_ancillary_chunks` drops them
first, as libpng does.
"""

from __future__ import annotations

import zlib

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour type -> samples per pixel (PNG specification, IHDR).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (first row, row step, first column, column step).
_ADAM7 = (
    (0, 8, 0, 8),
    (0, 8, 4, 8),
    (4, 8, 0, 4),
    (0, 4, 2, 4),
    (2, 4, 0, 2),
    (0, 2, 1, 2),
    (1, 2, 0, 1),
)
# Critical chunks: a CRC error in one is an error, as libpng has it (an ancillary
# chunk's is only a warning there, and the chunk is dropped).
_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
_INFLATE_BLOCK = 1 << 20


def check_png_complete(image: Image.Image, data: bytes) -> None:
    """Raise ValueError when a loaded PNG's image data is damaged or ends early.

    A critical chunk whose CRC does not match is damaged. For the length:
    image memory starts zeroed and rows are written in order, so a last row
    that is not all zero proves the image complete at the cost of reading one
    row, which settles every BUSI image. Otherwise (or for an interlaced PNG,
    whose last row can be written before the last pass) the IDAT stream is
    inflated again, in bounded blocks, and its length compared with what the
    header implies: a 564-byte file declaring 5000x4999 pixels otherwise loads
    as a black image.

    Parameters
    ----------
    image : PIL.Image.Image
        ``data`` opened and loaded by Pillow, before any EXIF orientation.
    data : bytes
        The whole PNG file.

    Raises
    ------
    ValueError
        Saying what is wrong, in words that follow "could not decode the PNG image: ".
    """
    header, idat = _png_chunks(data)
    width, height = image.size
    interlaced = bool(image.info.get("interlace"))
    if not interlaced and image.crop((0, height - 1, width, height)).tobytes().strip(b"\0"):
        return
    if len(header) < 13:
        raise ValueError("its IHDR chunk is cut short")
    bit_depth, colour_type = header[8], header[9]
    bits = bit_depth * _PNG_SAMPLES.get(colour_type, 1)

    def scanlines(w: int, h: int) -> int:  # bytes of h rows of w pixels, filter byte included
        return h * (1 + (w * bits + 7) // 8) if w and h else 0

    if interlaced:
        expected = sum(
            scanlines((width - c0 + cs - 1) // cs, (height - r0 + rs - 1) // rs)
            for r0, rs, c0, cs in _ADAM7
            if width > c0 and height > r0
        )
    else:
        expected = scanlines(width, height)
    inflater = zlib.decompressobj()
    found = 0
    for chunk in idat:
        pending = chunk
        while pending and not inflater.eof and found < expected:
            found += len(inflater.decompress(pending, _INFLATE_BLOCK))
            pending = inflater.unconsumed_tail
    if found >= expected:
        return
    if interlaced:
        raise ValueError(
            f"its image data ends after {found} of its {expected} bytes (truncated)"
        )
    rows = found // (expected // height)
    raise ValueError(f"its image data ends after {rows} of its {height} rows (truncated)")


#: Most chunks a PNG may have. An encoder splits the image data into chunks of 8 KiB or
#: more (libpng's default), so a 64 MiB file has about 8,000; millions of empty chunks
#: cost the readers here and Pillow's a Python loop each, 12-17 s a file (audit 711).
MAX_PNG_CHUNKS = 100_000


def png_chunks(data: bytes):
    """The chunks of a PNG file, in file order, up to and with ``IEND``.

    Yields
    ------
    kind : bytes
        The chunk's type, such as ``b"IDAT"``.
    start : int
        Offset of its payload in ``data``.
    length : int
        Its payload's stated length (the file may end before it).
    """
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = bytes(data[position + 4 : position + 8])
        yield kind, position + 8, length
        if kind == b"IEND":
            return
        position += 12 + length


def check_chunk_count(data: bytes) -> None:
    """Refuse a PNG of more than :data:`MAX_PNG_CHUNKS` chunks, before anything reads them.

    Raises
    ------
    ValueError
        With the reason; the walk stops at the limit, so the check itself is cheap.
    """
    for count, _ in enumerate(png_chunks(data), 1):
        if count > MAX_PNG_CHUNKS:
            raise ValueError(f"it has more than {MAX_PNG_CHUNKS} chunks, far more than any "
                             "encoder writes (its image data split into 8 KiB or larger)")


#: The PNG text chunks: words about the picture, never its pixels.
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def without_damaged_ancillary_chunks(data: bytes, *, text: bool = False) -> bytes:
    """``data`` without its whole ancillary chunks whose CRC does not match.

    Pillow's only way past such a chunk is ``ImageFile.LOAD_TRUNCATED_IMAGES``, which
    would also let truncated images through. An ancillary chunk is one whose type's
    first letter is lower case (PNG specification 5.4); critical chunks, and a chunk
    the file ends inside of, are left for the reading to judge.

    Parameters
    ----------
    data : bytes
        A PNG file.
    text : bool, default False
        Drop the text chunks (:data:`TEXT_CHUNKS`) too, damaged or not. Pillow refuses
        a file whose text inflates past 1 MB a chunk (``MAX_TEXT_CHUNK``) although a
        browser shows its picture; nothing here reads the text.

    Returns
    -------
    bytes
        ``data`` itself when no chunk was dropped (the usual case), else a copy.
    """
    view = memoryview(data)
    kept: list[memoryview] = []
    start = 0  # of the bytes not yet copied to kept
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        end = position + 8 + length
        if end + 4 > len(data) or kind == b"IEND":
            break
        if kind.isalpha() and kind[0] & 0x20:
            stored = int.from_bytes(data[end : end + 4], "big")
            if (text and kind in TEXT_CHUNKS) or zlib.crc32(
                    view[position + 8 : end], zlib.crc32(kind)) != stored:
                kept.append(view[start:position])
                start = end + 4
        position = end + 4
    if not kept:
        return data
    kept.append(view[start:])
    return b"".join(kept)


def _png_chunks(data: bytes) -> tuple[bytes, list[memoryview]]:
    """The IHDR payload and the IDAT payloads of a PNG file, in file order.

    Raises
    ------
    ValueError
        A critical chunk's CRC does not match its type and payload.
    """
    view = memoryview(data)
    header = b""
    idat: list[memoryview] = []
    run_ended = False  # the image data is one run of IDAT chunks, as Pillow reads it
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        end = position + 8 + length
        payload = view[position + 8 : end]
        if kind in _CRITICAL and end + 4 <= len(data):
            # A chunk cut short is Pillow's to refuse (truncated); only a whole one is
            # checked here. crc32 runs at memory speed: a few ms for a 25 MP image.
            stored = int.from_bytes(data[end : end + 4], "big")
            if zlib.crc32(payload, zlib.crc32(kind)) != stored:
                raise ValueError(
                    f"its {kind.decode('ascii')} chunk is damaged (its CRC does not match)"
                )
        if kind == b"IEND":
            break
        if kind == b"IHDR":
            header = bytes(payload)
        elif kind == b"IDAT" and not run_ended:
            idat.append(payload)
        elif idat:
            run_ended = True
        position = end + 4
    return header, idat
