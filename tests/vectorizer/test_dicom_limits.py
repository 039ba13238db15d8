"""A DICOM's byte limits stop at the largest image the reader takes at all.

Raising the pixel limit past :data:`vectorizer.MAX_IMAGE_SIDE` squared (to mean "no
pixel limit") used to raise the deflate-bomb guard with it: with 10**9 pixels a 1.5 MB
file inflated to 1.5 GB (audit helper-501, finding 2).
"""

from __future__ import annotations

import io
import zlib

import pytest
from image_samples import deflated_dicom_bytes, speckle_image

from vectorizer import MAX_IMAGE_SIDE, ImageTooLarge, read_image_file
from vectorizer._dicomfile import MAX_DICOM_BYTES_PER_PIXEL, dicom_byte_limit

LARGEST = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
_PIXEL_DATA_HEADER = b"\xe0\x7f\x10\x00OB\x00\x00"


def _deflate_bomb(zeros: int) -> bytes:
    """A small deflated DICOM whose data set inflates to ``zeros`` bytes of pixel data,
    compressed as it is written (no buffer of that size is ever held)."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    small = deflated_dicom_bytes(speckle_image(48, 64, seed=5), b"")
    fp = io.BytesIO(small)
    read_preamble(fp, False)
    _read_file_meta_info(fp)
    start = fp.tell()
    body = zlib.decompress(small[start:], -zlib.MAX_WBITS)
    at = body.rindex(_PIXEL_DATA_HEADER)  # the empty Pixel Data element ends the data set
    body = body[:at] + _PIXEL_DATA_HEADER + zeros.to_bytes(4, "little")
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [small[:start], deflater.compress(body)]
    chunk = bytes(1 << 24)
    for left in range(zeros, 0, -len(chunk)):
        parts.append(deflater.compress(chunk[: min(left, len(chunk))]))
    parts.append(deflater.flush())
    return b"".join(parts)


@pytest.mark.parametrize("max_pixels", [LARGEST, LARGEST + 1, 10**10, None])
def test_the_byte_limit_stops_at_the_largest_image(max_pixels):
    assert dicom_byte_limit(max_pixels) == MAX_DICOM_BYTES_PER_PIXEL * LARGEST


def test_the_byte_limit_follows_a_smaller_pixel_limit():
    assert dicom_byte_limit(1000) == MAX_DICOM_BYTES_PER_PIXEL * 1000


def test_a_pixel_limit_past_the_largest_image_does_not_let_a_deflate_bomb_inflate():
    # 300 MiB of zeros in about 300 kB: over 4 bytes per pixel of 8192 x 8192 plus the
    # header's 16 MiB (285 MB), which is where inflating stops whatever the pixel limit.
    bomb = _deflate_bomb(300 << 20)
    assert len(bomb) < 1 << 20
    with pytest.raises(ImageTooLarge, match="inflates to more than the limit of 285212672 "
                                            "bytes .* of the 67108864-pixel limit"):
        read_image_file(bomb, max_pixels=10**10)


@pytest.mark.parametrize("raw", [str(LARGEST + 1), "10000000000"])
def test_both_services_refuse_a_pixel_limit_past_the_largest_image(raw):
    from annotation_client._config import ClientConfig
    from model_server._app import app_settings

    environ = {"SONOTRACE_MAX_PIXELS": raw}
    for load in (lambda: app_settings({"WARMUP": False}, environ=environ),
                 lambda: ClientConfig.load(environ=environ)):
        with pytest.raises(ValueError, match=rf"SONOTRACE_MAX_PIXELS='{raw}': must be at "
                                             rf"most {LARGEST} \(8192 x 8192\)"):
            load()


def test_both_services_take_the_largest_image_as_their_pixel_limit():
    from annotation_client._config import ClientConfig
    from model_server._app import app_settings

    environ = {"SONOTRACE_MAX_PIXELS": str(LARGEST)}
    assert app_settings({"WARMUP": False}, environ=environ)["MAX_PIXELS"] == LARGEST
    assert ClientConfig.load(environ=environ).max_pixels == LARGEST
