"""Small image files built in memory, for the tests of every package.

Arrays are numpy ``(row, col)``; every helper returns the encoded bytes of a
real file (PNG, JPEG or DICOM written by Pillow / pydicom). Import it by name
(``from image_samples import png_bytes``): pytest puts ``tests/`` on ``sys.path``
for the whole suite, through its conftest.
"""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
from PIL import Image


def speckle_image(height: int = 160, width: int = 200, seed: int = 0) -> np.ndarray:
    """A uint8 ``(height, width)`` ultrasound-like image: speckle with a dark ellipse."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    background = 90 + 40 * rng.random((height, width))
    inside = ((rows - height * 0.5) / (height * 0.22)) ** 2 + (
        (cols - width * 0.5) / (width * 0.25)
    ) ** 2 <= 1
    image = np.where(inside, 25 + 15 * rng.random((height, width)), background)
    return image.astype(np.uint8)


def png_bytes(array_or_image, **save_kwargs) -> bytes:
    image = (
        array_or_image
        if isinstance(array_or_image, Image.Image)
        else Image.fromarray(np.asarray(array_or_image))
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_kwargs)
    return buffer.getvalue()


def png16_bytes(grey: np.ndarray) -> bytes:
    """16-bit greyscale PNG of an 8-bit image (values v * 257, the standard expansion)."""
    wide = grey.astype(np.uint16) * 257
    return png_bytes(Image.fromarray(wide))  # uint16 arrays are mode I;16


def palette_png_bytes(grey: np.ndarray) -> bytes:
    """Palette ("P") PNG whose palette is the grey ramp, so indices equal grey levels."""
    image = Image.fromarray(grey, mode="L").convert("P")
    image.putdata(grey.ravel().tolist())
    image.putpalette([v for level in range(256) for v in (level, level, level)])
    return png_bytes(image)


def jpeg_bytes(array_or_image, mode: str | None = None, quality: int = 95) -> bytes:
    image = (
        array_or_image
        if isinstance(array_or_image, Image.Image)
        else Image.fromarray(np.asarray(array_or_image))
    )
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def huge_png_bytes(width: int = 20000, height: int = 20000, stripes: bool = False) -> bytes:
    """A valid 1-bit PNG of ``width`` x ``height`` (a few tens of kB): all black, or with
    ``stripes`` every other column white (not blank once decoded)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + (b"\x55" if stripes else b"\x00") * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def dicom_bytes(
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    preamble: bool = True,
    **elements,
) -> bytes:
    """A DICOM ultrasound file holding ``pixels``.

    ``pixels`` is ``(rows, cols)``, ``(frames, rows, cols)`` for multi-frame
    grey, or ``(rows, cols, 3)`` for RGB; None writes a file without pixel
    data. ``elements`` are extra keyword=value data elements (PixelSpacing=...).
    With ``preamble=False`` the bare data set is written (no preamble, no meta).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = "Test^Synthetic"
    if pixels is not None:
        if bits_stored is None:
            bits_stored = 8 if pixels.dtype == np.uint8 else 16
        ds.set_pixel_data(
            pixels, photometric_interpretation=photometric, bits_stored=bits_stored
        )
    else:
        ds.Rows, ds.Columns = 64, 64
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    if preamble:
        ds.save_as(buffer, enforce_file_format=True)
    else:
        del ds.file_meta
        pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True)
    return buffer.getvalue()


def recompressed_dicom_bytes(
    pixels: np.ndarray, syntax, fragment: bytes | None = None, **elements
) -> bytes:
    """A DICOM of ``pixels`` re-encoded with transfer ``syntax``.

    With ``fragment`` the pixel data is that one encapsulated fragment instead
    (a JPEG stream, junk...); ``elements`` are set on the data set last.
    """
    import pydicom
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(pixels)))
    if fragment is None:
        ds.compress(syntax)
    else:
        ds.PixelData = encapsulate([fragment])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = syntax
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def deflated_dicom_bytes(pixels: np.ndarray, pixel_data: bytes | None = None) -> bytes:
    """A DICOM of ``pixels`` in the Deflated Explicit VR Little Endian syntax, carrying
    ``pixel_data`` instead of their own bytes when given (the header unchanged)."""
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(pixels)))
    if pixel_data is not None:
        ds.PixelData = pixel_data
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload and the CRC of type and payload."""
    body = kind + payload
    return len(payload).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def grey_png_bytes(
    pixels: np.ndarray, *, rows: int | None = None, interlaced: bool = False
) -> bytes:
    """An 8-bit grey PNG of ``pixels`` whose (complete, valid) zlib stream holds only
    the first ``rows`` scanlines, or all of them; Adam7-interlaced if asked."""
    height, width = pixels.shape
    if interlaced:
        passes = [
            pixels[r0::rs, c0::cs]
            for r0, rs, c0, cs in ((0, 8, 0, 8), (0, 8, 4, 8), (4, 8, 0, 4), (0, 4, 2, 4),
                                   (2, 4, 0, 2), (0, 2, 1, 2), (1, 2, 0, 1))
        ]
        lines = [b"\0" + line.tobytes() for part in passes if part.size for line in part]
    else:
        lines = [b"\0" + line.tobytes() for line in pixels]
    stream = zlib.compress(b"".join(lines[:rows]))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, interlaced])
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", stream)
        + png_chunk(b"IEND", b"")
    )


def with_bad_crc(png: bytes, kind: bytes = b"IDAT") -> bytes:
    """``png`` with the CRC of its first ``kind`` chunk flipped; the data is intact."""
    position = png.index(kind) - 4
    end = position + 8 + int.from_bytes(png[position : position + 4], "big")
    return png[:end] + bytes(b ^ 0xFF for b in png[end : end + 4]) + png[end + 4 :]


def early_eoi_jpeg_bytes(jpeg: bytes, keep: float = 0.5) -> bytes:
    """``jpeg`` with its (last) scan's entropy-coded data cut to the fraction ``keep``
    and an end-of-image marker (FF D9) after it: a file that Pillow decodes without
    a word, grey below the cut."""
    start = jpeg.rindex(b"\xff\xda") + 2
    start += int.from_bytes(jpeg[start : start + 2], "big")  # past the SOS header
    end = jpeg.rindex(b"\xff\xd9")
    cut = start + int((end - start) * keep)
    if jpeg[cut - 1] == 0xFF:  # not half a stuffed 0xFF 0x00
        cut -= 1
    return jpeg[:cut] + b"\xff\xd9"


def png16_colour_bytes(samples: np.ndarray, *, interlace: bool = False,
                       exif: bytes | None = None) -> bytes:
    """A 16-bit colour PNG written by pypng (Pillow cannot write 16-bit colour).

    ``samples`` is ``(H, W, C)`` of 0..65535: C = 2 grey+alpha (colour type 4), 3 RGB
    (2) or 4 RGBA (6). ``interlace`` writes Adam7; ``exif`` adds an ``eXIf`` chunk
    right after the header, where browsers read it.
    """
    import png

    values = np.asarray(samples, dtype=np.uint16)
    height, width, planes = values.shape
    writer = png.Writer(width, height, greyscale=planes == 2, alpha=planes in (2, 4),
                        bitdepth=16, interlace=interlace)
    buffer = io.BytesIO()
    writer.write_array(buffer, values.reshape(-1).tolist())
    data = buffer.getvalue()
    if exif is not None:
        end_of_header = 8 + 8 + 13 + 4
        data = data[:end_of_header] + png_chunk(b"eXIf", exif) + data[end_of_header:]
    return data


_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def progressive_jpeg(pixels: np.ndarray, extra_scans: int = 0) -> bytes:
    """A progressive JPEG of ``pixels`` (grey ``(H, W)`` uint8) with its last scan
    repeated ``extra_scans`` times more, before the end-of-image marker."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last = data.rfind(b"\xff\xda")
    end = _JPEG_SCAN_END.search(data, last + 2 + int.from_bytes(data[last + 2 : last + 4], "big"))
    scan = data[last : end.start()]
    return data[: end.start()] + scan * extra_scans + data[end.start() :]
