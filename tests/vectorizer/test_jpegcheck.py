"""A JPEG whose scan data an early end-of-image marker cuts short is refused.

Pillow decodes such a file without a word and fills the rest with grey
(vectorizer._jpegcheck says why and how it is told from a complete file).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_samples import early_eoi_jpeg_bytes, jpeg_bytes, speckle_image
from PIL import Image

from vectorizer import CorruptImage, read_image_file
from vectorizer._jpegcheck import _single_scan_end

MESSAGE = (
    "could not decode the JPEG image: its scan data ends before its last rows: an "
    "end-of-image marker cuts it short, and the missing rows would be grey (truncated)"
)
GREY = speckle_image(160, 200, seed=4)
COLOUR = np.dstack([GREY, 255 - GREY, GREY // 2])


def read(data: bytes):
    return read_image_file(data, max_pixels=None)


def _jpeg(pixels, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("pixels", "options"),
    [
        (GREY, {"quality": 90}),
        (COLOUR, {"quality": 90}),  # 4:2:0, 16x16 blocks
        (COLOUR, {"quality": 75, "subsampling": 0, "optimize": True}),
        (GREY, {"quality": 50, "restart_marker_blocks": 3}),
    ],
    ids=["grey", "colour", "colour-444-optimized", "restart-markers"],
)
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_a_jpeg_cut_short_by_an_eoi_marker_is_corrupt(pixels, options, keep):
    data = _jpeg(pixels, **options)
    cut = early_eoi_jpeg_bytes(data, keep)
    shown = np.asarray(Image.open(io.BytesIO(cut)))
    assert (shown[-8:, -8:] == 128).all()  # what Pillow gives: a grey tail, no error
    np.testing.assert_allclose(read(data).pixels.astype(float).mean(), pixels.mean(), atol=2)
    with pytest.raises(CorruptImage) as info:
        read(cut)
    assert info.value.message == MESSAGE


def test_a_jpeg_cut_where_a_restart_interval_ends_is_corrupt():
    # No entropy data is cut mid-way: the next interval and its RST marker are gone.
    data = _jpeg(GREY, quality=50, restart_marker_blocks=1)
    at = data.index(b"\xff\xd5", data.rindex(b"\xff\xda"))  # the sixth restart marker
    with pytest.raises(CorruptImage, match="end-of-image marker"):
        read(data[:at] + b"\xff\xd9")


@pytest.mark.parametrize(
    "pixels",
    [
        np.where(np.arange(160)[:, None] < 80, GREY, 128).astype(np.uint8),
        np.dstack([np.where(np.arange(160)[:, None] < 80, GREY, 128)] * 3).astype(np.uint8),
    ],
    ids=["grey", "rgb"],
)
@pytest.mark.parametrize("options", [{}, {"restart_marker_blocks": 2}, {"optimize": True}])
def test_a_complete_jpeg_whose_last_rows_are_grey_is_read(pixels, options):
    # Its bottom-right pixel is exactly the grey a cut leaves: the proof decides.
    data = _jpeg(pixels, quality=95, **options)
    assert np.asarray(Image.open(io.BytesIO(data)))[-1, -1].tolist() in (128, [128] * 3)
    image = read(data)
    assert image.pixels.shape[:2] == (160, 200)


def test_a_complete_cmyk_jpeg_is_read():
    # Other colour spaces are always put to the proof.
    data = jpeg_bytes(COLOUR, mode="CMYK")
    assert read(data).pixels.shape == (160, 200, 3)


def test_a_sweep_of_encoder_settings_refuses_no_complete_file():
    rng = np.random.default_rng(0)
    for i in range(40):
        height, width = (int(side) for side in rng.integers(8, 200, 2))
        pixels = speckle_image(height, width, seed=i)
        pixels[height // 2 :] = 128  # a grey lower half: every file goes to the proof
        if i % 2:
            pixels = np.dstack([pixels, pixels, 255 - pixels])
        options = {"quality": int(rng.integers(5, 101)), "optimize": bool(i % 3 == 0)}
        if i % 4 == 0:
            options["restart_marker_blocks"] = int(rng.integers(1, 5))
        read(_jpeg(pixels, **options))  # no CorruptImage


def test_a_progressive_jpeg_is_not_put_to_the_proof():
    # libjpeg reads a progressive file to its EOI marker before giving a row, so the
    # proof cannot tell; a cut in a later scan leaves a complete, softer picture.
    data = _jpeg(GREY, quality=90, progressive=True)
    assert _single_scan_end(data) is None
    cut = early_eoi_jpeg_bytes(data, 0.5)
    assert read(cut).pixels.shape == (160, 200)


def test_the_scan_is_found_past_markers_restarts_and_stuffed_bytes():
    data = _jpeg(GREY, quality=90, restart_marker_blocks=2)
    assert _single_scan_end(data) == len(data) - 2  # the EOI
    assert _single_scan_end(data + b"trailing bytes some cameras add") == len(data) - 2
    assert _single_scan_end(data[:-2]) is None  # no EOI: Pillow refuses it as truncated
    # Two scans (as a sequential JPEG of one scan per component has): libjpeg reads such
    # a file to its EOI before giving a row, so the proof would refuse a complete one.
    sos = data.rindex(b"\xff\xda")
    assert _single_scan_end(data[:-2] + data[sos:]) is None
