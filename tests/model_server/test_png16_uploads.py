"""16-bit colour PNG uploads are read on their 16-bit samples (audit 802 F1).

Before, a 16-bit RGB mask of 0/1 gave /vectorize ``regions: []`` with status 200,
and /classify took it for "no lesion outlined".
"""

from __future__ import annotations

import io

import numpy as np
from image_samples import png16_colour_bytes, speckle_image
from PIL import Image

from model_server import decode_image, decode_mask

MASK = np.zeros((48, 64), dtype=bool)
MASK[8:40, 10:30] = True
LIMIT = 10**6


def test_a_16_bit_rgb_mask_of_ones_is_outlined_by_vectorize(client):
    samples = np.dstack([MASK.astype(np.uint16)] * 3)
    form = {"mask": (io.BytesIO(png16_colour_bytes(samples)), "mask.png")}
    response = client.post("/vectorize", data=form, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    assert sum(region["area_px"] for region in response.get_json()["regions"]) == MASK.sum()


def test_decode_mask_and_decode_image_read_16_bit_colour_whole():
    alpha = np.full(MASK.shape, 65535, dtype=np.uint16)
    mask = png16_colour_bytes(np.dstack([MASK.astype(np.uint16), alpha]))
    np.testing.assert_array_equal(decode_mask(mask, max_pixels=LIMIT), MASK)
    grey = speckle_image(48, 64, seed=2).astype(np.uint16) * 16  # 12-bit data
    as_grey = io.BytesIO()
    Image.fromarray(grey).save(as_grey, format="PNG")
    expected = decode_image(as_grey.getvalue(), max_pixels=LIMIT).pixels
    got = decode_image(png16_colour_bytes(np.dstack([grey] * 3 + [alpha])), max_pixels=LIMIT)
    np.testing.assert_array_equal(got.pixels, expected)
