"""The model server and the annotation client accept and refuse the same uploaded files.

One corpus of good and broken files goes through both services' decoders: a
file one refuses, the other refuses too (the client would otherwise show an
image the server will not segment, or the server segment one the client cannot
show), and a file both accept gives both the same pixels and pixel spacing.
Both read through vectorizer.read_image_file; this guards what each service
adds around it. File names never matter: each file is also sent named ``.dcm``.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from image_samples import (
    dicom_bytes,
    early_eoi_jpeg_bytes,
    grey_png_bytes,
    huge_png_bytes,
    jpeg_bytes,
    palette_png_bytes,
    png16_bytes,
    png_bytes,
    recompressed_dicom_bytes,
    speckle_image,
    with_bad_crc,
)
from PIL import Image
from pydicom.uid import HTJ2KLossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

from annotation_client import ImageDecodeError
from annotation_client import decode_image as client_decode
from model_server import decode_image as server_decode
from model_server._errors import ApiError

LIMIT = 25_000_000  # both services' default SONOTRACE_MAX_PIXELS
GREY = speckle_image(96, 128, seed=5)
COLOUR = np.dstack([GREY, 255 - GREY, GREY // 2])


def _saved(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(GREY).save(buffer, format=fmt)
    return buffer.getvalue()


def _exif_turned(fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(GREY).save(buffer, format=fmt, exif=exif.tobytes())
    return buffer.getvalue()


def _progressive_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(COLOUR).save(buffer, format="JPEG", progressive=True)
    return buffer.getvalue()


def _empty_pixel_data() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(GREY)))
    ds.PixelData = b""
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


# id -> (file, the server's status: None when it is read)
CORPUS = {
    # ---- read by both
    "grey-png": (png_bytes(GREY), None),
    "colour-png": (png_bytes(COLOUR), None),
    "neutral-rgb-png": (png_bytes(np.dstack([GREY] * 3)), None),
    "rgba-png": (png_bytes(np.dstack([COLOUR, np.full_like(GREY, 90)])), None),
    "12-bit-in-16-bit-png": (png_bytes(Image.fromarray(GREY.astype(np.uint16) * 16)), None),
    "16-bit-png": (png16_bytes(GREY), None),
    "palette-png": (palette_png_bytes(GREY), None),
    "interlaced-png": (grey_png_bytes(GREY, interlaced=True), None),
    "exif-turned-png": (_exif_turned("PNG"), None),
    "grey-jpeg": (jpeg_bytes(GREY), None),
    "colour-jpeg": (jpeg_bytes(COLOUR), None),
    "cmyk-jpeg": (jpeg_bytes(COLOUR, mode="CMYK"), None),
    "progressive-jpeg": (_progressive_jpeg(), None),
    "exif-turned-jpeg": (_exif_turned("JPEG"), None),
    "jpeg-grey-below": (jpeg_bytes(np.where(np.arange(96)[:, None] < 48, GREY, 128)
                                   .astype(np.uint8)), None),
    "dicom": (dicom_bytes(GREY, PixelSpacing=[0.1, 0.2]), None),
    "dicom-monochrome1": (dicom_bytes(255 - GREY, photometric="MONOCHROME1"), None),
    "dicom-without-preamble": (dicom_bytes(GREY, preamble=False), None),
    "dicom-multi-frame": (dicom_bytes(np.stack([GREY, 255 - GREY])), None),
    "dicom-rgb": (dicom_bytes(COLOUR, photometric="RGB"), None),
    "dicom-12-bit-window": (dicom_bytes(GREY.astype(np.uint16) * 16, bits_stored=12,
                                        WindowCenter=2048, WindowWidth=4096), None),
    "dicom-invalid-window": (dicom_bytes(GREY.astype(np.uint16) * 16, bits_stored=12,
                                         WindowCenter=9, WindowWidth=0.5), None),
    "dicom-implausible-spacing": (dicom_bytes(GREY, PixelSpacing=[1e200, 1e200]), None),
    "dicom-rle": (recompressed_dicom_bytes(GREY, RLELossless), None),
    "dicom-jpeg": (recompressed_dicom_bytes(GREY, JPEGBaseline8Bit, jpeg_bytes(GREY)), None),
    "dicom-jpeg-ls": (recompressed_dicom_bytes(GREY, JPEGLSLossless), None),
    # ---- refused by both
    "empty": (b"", 400),
    "text": (b"hello, I am a text file named scan.png\n" * 10, 415),
    "gif": (_saved("GIF"), 415),
    "zeros": (bytes(300), 415),
    "truncated-png": (png_bytes(GREY)[:600], 400),
    "png-ending-early": (grey_png_bytes(GREY, rows=60), 400),
    "png-bad-crc": (with_bad_crc(png_bytes(GREY)), 400),
    "png-signature-only": (b"\x89PNG\r\n\x1a\n" + bytes(40), 400),
    "truncated-jpeg": (jpeg_bytes(GREY)[:1500], 400),
    "jpeg-early-eoi": (early_eoi_jpeg_bytes(jpeg_bytes(GREY), 0.5), 400),
    "dicom-without-pixel-data": (dicom_bytes(None), 400),
    "dicom-empty-pixel-data": (_empty_pixel_data(), 400),
    "dicom-unknown-syntax": (recompressed_dicom_bytes(GREY, "1.2.3.4.5.6", b"any"), 415),
    "dicom-htj2k": (recompressed_dicom_bytes(GREY, HTJ2KLossless,
                                             b"\xff\x4f\xff\x51" + bytes(99)), 415),
    "dicom-corrupt-jpeg-ls": (recompressed_dicom_bytes(GREY, JPEGLSLossless,
                                                       b"\xff\xd8\xff\xf7" + bytes(99)), 400),
    "dicom-corrupt-jpeg": (recompressed_dicom_bytes(GREY, JPEGBaseline8Bit,
                                                    b"\xff\xd8\xff" + bytes(range(256)) * 4), 400),
    "truncated-dicom": (dicom_bytes(GREY)[:-3000], 400),
    "dicom-slope-0": (dicom_bytes(GREY, RescaleSlope=0), 400),
    "dicom-ybr-one-sample": (dicom_bytes(GREY, PhotometricInterpretation="YBR_FULL"), 400),
    "20000-square-png": (huge_png_bytes(), 413),
    "strip-over-8192-px": (huge_png_bytes(8193, 8), 413),
    "png-over-the-pixel-limit": (huge_png_bytes(6000, 5000, stripes=True), 413),
    # The header claims 6000 x 6000: refused before the pixels are decoded.
    "dicom-over-the-limit": (dicom_bytes(GREY, Rows=6000, Columns=6000), 413),
    "blank-png": (png_bytes(np.zeros((96, 128), np.uint8)), 400),
    "blank-dicom-once-windowed": (dicom_bytes(GREY, WindowCenter=10000, WindowWidth=10), 400),
    "tiny-png": (png_bytes(speckle_image(5, 5)), 400),
}


def _server(data: bytes):
    try:
        return server_decode(data, max_pixels=LIMIT), None
    except ApiError as exc:
        return None, exc


def _client(data: bytes, name: str):
    try:
        return client_decode(data, name, max_pixels=LIMIT), None
    except ImageDecodeError as exc:
        return None, exc


@pytest.mark.parametrize("name", ["upload.png", "upload.dcm"])
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_both_services_read_or_refuse_the_same_file(case, name):
    data, status = CORPUS[case]
    server, refused = _server(data)
    client, said = _client(data, name)
    if status is None:
        assert refused is None and said is None, (refused, said)
        assert client.kind == server.format
        np.testing.assert_array_equal(client.pixels, server.pixels)
        assert client.pixel_spacing_mm == server.pixel_spacing
    else:
        assert server is None and client is None
        assert refused.status == status, refused.message
        # The client's message carries the server's reason, or its own form of it.
        assert str(said).startswith(name) and str(said).endswith(".")


def test_the_corpus_reads_what_each_case_says():
    # Guards the corpus itself: the cases meant to be read are images worth reading.
    for case, (data, status) in CORPUS.items():
        if status is None:
            pixels = server_decode(data, max_pixels=LIMIT).pixels
            assert len(np.unique(pixels)) > 16, case
