"""16-bit colour PNGs (RGB, grey+alpha, RGBA) are read on their 16-bit samples (audit 802 F1).

Pillow keeps only the high byte of such samples: a mask of 0/1 read as empty and
12-bit data as a nearly black picture. Each test here failed before pypng read them.
"""

from __future__ import annotations

import numpy as np
import pytest
from image_samples import png16_bytes, png16_colour_bytes, png_chunk, speckle_image
from PIL import Image

from vectorizer import (
    MAX_WIDE_COLOUR_PIXELS,
    CorruptImage,
    ImageTooLarge,
    png_to_mask,
    read_image_file,
    read_mask_file,
    read_wide_colour,
    wide_colour_type,
)
from vectorizer._pngcheck import MAX_PNG_CHUNKS

GREY = speckle_image(40, 56, seed=5)
MASK = np.zeros((40, 56), dtype=bool)
MASK[10:30, 5:20] = True
OPAQUE = np.full(MASK.shape, 65535, dtype=np.uint16)


def planes(values: np.ndarray, kind: str) -> np.ndarray:
    """``values`` (H, W) as the samples of a 16-bit PNG of ``kind``, alpha opaque."""
    return {
        "RGB": np.dstack([values] * 3),
        "grey+alpha": np.dstack([values, OPAQUE]),
        "RGBA": np.dstack([values] * 3 + [OPAQUE]),
    }[kind]


KINDS = ("RGB", "grey+alpha", "RGBA")


def read(data: bytes):
    return read_image_file(data, max_pixels=10**6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("level", [1, 255])
def test_a_mask_of_small_values_is_read_whole_not_empty(kind, level):
    data = png16_colour_bytes(planes(MASK.astype(np.uint16) * level, kind))
    np.testing.assert_array_equal(png_to_mask(data), MASK)
    np.testing.assert_array_equal(read_mask_file(data, max_pixels=10**6), MASK)


def test_a_mask_counts_any_colour_sample_and_ignores_alpha():
    samples = np.zeros((*MASK.shape, 4), dtype=np.uint16)
    samples[..., 2] = MASK  # blue 1 only
    samples[..., 3] = 65535 * ~MASK  # alpha opposite to the mask
    data = png16_colour_bytes(samples)
    np.testing.assert_array_equal(png_to_mask(data), MASK)
    np.testing.assert_array_equal(read_mask_file(data, max_pixels=None), MASK)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [16, 4, 1, 257])  # 12-bit, 10-bit, 8-bit values, expanded
def test_an_image_is_read_by_the_rule_of_16_bit_grey(kind, scale):
    values = GREY.astype(np.uint16) * scale
    expected = read(png16_bytes(GREY) if scale == 257 else _grey16(values)).pixels
    image = read(png16_colour_bytes(planes(values, kind)))
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.mode == {"RGB": "RGB;16", "grey+alpha": "LA;16", "RGBA": "RGBA;16"}[kind]


def test_colour_keeps_its_balance_the_rule_taken_over_all_channels():
    values = np.dstack([GREY, GREY // 2, GREY // 4]).astype(np.uint16) * 16  # 12-bit
    pixels = read(png16_colour_bytes(values)).pixels
    assert pixels.shape == (*GREY.shape, 3)
    top = 4095  # the largest value, 255 * 16, needs 12 bits
    np.testing.assert_array_equal(pixels, (values.astype(np.int64) * 255 + top // 2) // top)


def test_an_interlaced_file_is_read_as_the_same_file_not_interlaced():
    values = planes(GREY.astype(np.uint16) * 16, "RGBA")
    plain = read(png16_colour_bytes(values)).pixels
    np.testing.assert_array_equal(read(png16_colour_bytes(values, interlace=True)).pixels, plain)
    mask = png16_colour_bytes(planes(MASK.astype(np.uint16), "RGB"), interlace=True)
    np.testing.assert_array_equal(png_to_mask(mask), MASK)


def test_the_exif_orientation_turns_the_16_bit_samples():
    exif = Image.Exif()
    exif[0x0112] = 6
    tiff = exif.tobytes().removeprefix(b"Exif\x00\x00")
    values = planes(GREY.astype(np.uint16) * 16, "RGB")
    image = read(png16_colour_bytes(values, exif=tiff))
    assert image.orientation == 6
    stored = read(png16_colour_bytes(values)).pixels
    np.testing.assert_array_equal(image.pixels, np.rot90(stored, -1))
    mask = png16_colour_bytes(planes(MASK.astype(np.uint16), "grey+alpha"), exif=tiff)
    np.testing.assert_array_equal(png_to_mask(mask), np.rot90(MASK, -1))
    np.testing.assert_array_equal(read_mask_file(mask, max_pixels=None), np.rot90(MASK, -1))


def test_a_file_over_the_pixel_limit_is_refused_from_its_header():
    side = int(MAX_WIDE_COLOUR_PIXELS**0.5) + 1
    header = png_chunk(b"IHDR", side.to_bytes(4, "big") * 2 + bytes([16, 2, 0, 0, 0]))
    data = b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")
    with pytest.raises(ImageTooLarge, match="16-bit RGB PNG .* pure Python"):
        read_image_file(data, max_pixels=None)
    with pytest.raises(ImageTooLarge):
        read_mask_file(data, max_pixels=None)
    with pytest.raises(ValueError, match="16-bit RGB PNG"):
        png_to_mask(data)


def test_the_limits_of_every_png_still_apply():
    values = planes(GREY.astype(np.uint16) * 16, "RGB")
    data = png16_colour_bytes(values)
    with pytest.raises(ImageTooLarge):
        read_image_file(data, max_pixels=100)
    end = data.index(b"IEND") - 4
    cut = data[:33] + data[33:end][: (end - 33) // 2]
    with pytest.raises(CorruptImage):
        read(cut)
    many = data[:33] + png_chunk(b"tEXt", b"a\x00b") * (MAX_PNG_CHUNKS + 1) + data[33:]
    with pytest.raises(CorruptImage, match="chunks"):
        read_mask_file(many, max_pixels=None)


def test_the_colour_type_is_read_from_the_header():
    assert wide_colour_type(png16_colour_bytes(planes(MASK.astype(np.uint16), "RGBA"))) == 6
    assert wide_colour_type(png16_bytes(GREY)) is None
    with pytest.raises(ValueError, match="not a 16-bit"):
        read_wide_colour(png16_bytes(GREY))


def _grey16(values: np.ndarray) -> bytes:
    from image_samples import png_bytes

    return png_bytes(Image.fromarray(values.astype(np.uint16)))
