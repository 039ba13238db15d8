"""Training reads 16-bit colour PNGs on their 16-bit samples, as the server does (audit 802 F1)."""

from __future__ import annotations

import numpy as np
from image_samples import png16_colour_bytes, speckle_image

from models.data import read_image, read_mask
from vectorizer import read_image_file

MASK = np.zeros((40, 48), dtype=bool)
MASK[5:25, 10:40] = True


def test_a_16_bit_rgb_image_is_read_as_the_server_reads_it(tmp_path):
    grey = speckle_image(40, 48, seed=4).astype(np.uint16) * 16  # 12-bit data
    path = tmp_path / "scan.png"
    path.write_bytes(png16_colour_bytes(np.dstack([grey] * 3)))
    served = read_image_file(path.read_bytes(), max_pixels=None).pixels
    np.testing.assert_array_equal(read_image(path), served)
    assert read_image(path).max() > 64  # not the high bytes (0..15 of 12-bit data)


def test_16_bit_colour_masks_of_ones_are_not_empty(tmp_path):
    ones = MASK.astype(np.uint16)
    opaque = np.full(MASK.shape, 65535, dtype=np.uint16)
    for name, samples in {
        "rgb": np.dstack([ones] * 3),
        "la": np.dstack([ones, opaque]),
        "rgba": np.dstack([ones] * 3 + [opaque]),
    }.items():
        path = tmp_path / f"{name}_mask.png"
        path.write_bytes(png16_colour_bytes(samples))
        np.testing.assert_array_equal(read_mask([path], MASK.shape), MASK, err_msg=name)
